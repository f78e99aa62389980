"""Photovoltaic generation with pvlib: clear sky at the site times a cloud factor, then
pvlib's ``ModelChain`` (PVWatts DC/AC, SAPM cell temperature, Hay–Davies transposition).

Clear-sky irradiance is pvlib's Ineichen–Perez model with the Linke turbidity climatology
bundled in pvlib (``pvlib/data/LinkeTurbidities.h5``) — nothing is downloaded. The all-sky
GHI (clear-sky GHI × clearness) is split into DNI and DHI with the Erbs model.

Energy per slot is the mean AC power at the slot's midpoint times the slot length, in Wh,
never negative. References: Ineichen & Perez (2002) doi:10.1016/S0038-092X(02)00045-2;
Erbs et al. (1982) doi:10.1016/0038-092X(82)90302-4; Dobos, PVWatts v5 (NREL/TP-6A20-62641).

pvlib (with the SciPy it imports: a fifth of the service's start-up) is imported by the functions
that compute: the service and the commands that only read a scenario's PV specifications never
load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pvlib.location import Location


@dataclass(frozen=True, slots=True)
class Site:
    """Where the panels are: degrees north/east, metres above sea level, IANA zone."""

    latitude: float
    longitude: float
    altitude_m: float
    timezone: str

    def location(self) -> Location:
        from pvlib.location import Location

        return Location(self.latitude, self.longitude, tz=self.timezone, altitude=self.altitude_m)


@dataclass(frozen=True, slots=True)
class PVSpec:
    """A rooftop array.

    kwp : DC nameplate [kWp] (> 0)
    tilt_deg : from horizontal [°], 0–90
    azimuth_deg : compass bearing the panels face [°], 180 = south
    system_loss_fraction : PVWatts lumped DC losses (soiling, wiring, mismatch …), 0–0.5
    inverter_efficiency : nominal, (0, 1]
    gamma_pdc_per_k : power temperature coefficient [1/K] (crystalline Si ≈ -0.004)
    """

    kwp: float
    tilt_deg: float = 30.0
    azimuth_deg: float = 180.0
    system_loss_fraction: float = 0.14
    inverter_efficiency: float = 0.96
    gamma_pdc_per_k: float = -0.004

    def __post_init__(self) -> None:
        if not self.kwp > 0:
            raise ValueError(f"kwp: must be > 0, got {self.kwp}")
        if not 0 <= self.tilt_deg <= 90:
            raise ValueError(f"tilt_deg: must be in [0, 90], got {self.tilt_deg}")
        if not 0 <= self.azimuth_deg < 360:
            raise ValueError(f"azimuth_deg: must be in [0, 360), got {self.azimuth_deg}")
        if not 0 <= self.system_loss_fraction <= 0.5:
            raise ValueError(f"system_loss_fraction: must be in [0, 0.5], got {self.system_loss_fraction}")
        if not 0 < self.inverter_efficiency <= 1:
            raise ValueError(f"inverter_efficiency: must be in (0, 1], got {self.inverter_efficiency}")


def slot_midpoints(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Midpoints of the slots starting at ``index`` (constant step assumed)."""
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=30)
    return index + step / 2


def clear_sky(site: Site, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Ineichen clear-sky ``ghi``, ``dni``, ``dhi`` [W m-2] at the slot midpoints (indexed by slot start)."""
    cs = site.location().get_clearsky(slot_midpoints(index), model="ineichen")
    cs.index = index
    return cs


def all_sky(site: Site, index: pd.DatetimeIndex, ghi_w_m2: np.ndarray) -> pd.DataFrame:
    """Split all-sky GHI into DNI/DHI with Erbs; returns pvlib weather (midpoint-indexed)."""
    import pvlib

    mid = slot_midpoints(index)
    solpos = site.location().get_solarposition(mid)
    ghi = pd.Series(np.asarray(ghi_w_m2, dtype=float), index=mid).clip(lower=0)
    parts = pvlib.irradiance.erbs(ghi, solpos["zenith"], mid)
    return pd.DataFrame({"ghi": ghi, "dni": parts["dni"].fillna(0), "dhi": parts["dhi"].fillna(0)}, index=mid)


def ac_energy_wh(site: Site, spec: PVSpec, weather: pd.DataFrame, slot_minutes: int) -> np.ndarray:
    """AC energy per slot [Wh, ≥ 0] from pvlib weather (``ghi``, ``dni``, ``dhi``, ``temp_air``)."""
    import pvlib
    from pvlib.modelchain import ModelChain
    from pvlib.pvsystem import PVSystem

    nameplate_w = spec.kwp * 1000.0
    # PVWatts applies the lumped system losses to DC power: the same as derating pdc0.
    system = PVSystem(
        surface_tilt=spec.tilt_deg,
        surface_azimuth=spec.azimuth_deg,
        module_parameters={"pdc0": nameplate_w * (1.0 - spec.system_loss_fraction), "gamma_pdc": spec.gamma_pdc_per_k},
        inverter_parameters={"pdc0": nameplate_w, "eta_inv_nom": spec.inverter_efficiency},
        temperature_model_parameters=pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][
            "close_mount_glass_glass"
        ],
    )
    chain = ModelChain(
        system, site.location(), aoi_model="physical", spectral_model="no_loss",
        temperature_model="sapm", losses_model="no_loss",
    )
    chain.run_model(weather)
    ac = np.nan_to_num(np.asarray(chain.results.ac, dtype=float), nan=0.0)
    return np.clip(ac, 0.0, None) * slot_minutes / 60.0


def pv_energy_wh(site: Site, spec: PVSpec, index: pd.DatetimeIndex, ghi_w_m2: np.ndarray,
                 temp_c: np.ndarray, slot_minutes: int) -> np.ndarray:
    """Integer AC energy per slot [Wh] for an array under all-sky GHI and air temperature."""
    weather = all_sky(site, index, ghi_w_m2)
    weather["temp_air"] = np.asarray(temp_c, dtype=float)
    weather["wind_speed"] = 1.0
    return np.rint(ac_energy_wh(site, spec, weather, slot_minutes)).astype(np.int64)
