"""Generate a community's series from a scenario: weather, PV, loads and car commutes.

Deterministic: every component draws from its own generator seeded by the scenario's seed
and the component's name (``SeedSequence([seed, crc32(name)])``), so adding a home does not
change the others' series. The whole scenario period is always generated (the weather and
noise processes run from its first day); ``start``/``end`` only cut a window out of it, so a
window equals the same slots of the full run.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from p2penergy.assets.car import commute
from p2penergy.assets.home_load import h25_shape, home_load_wh
from p2penergy.assets.office_load import office_load_wh
from p2penergy.assets.profiles import business_days, public_holidays
from p2penergy.assets.pv import PVSpec, ac_energy_wh, all_sky, clear_sky
from p2penergy.assets.weather import local_days, simulate
from p2penergy.scenario.measured import read_measured
from p2penergy.scenario.measured_weather import on_grid, read_weather, read_weather_forecasts
from p2penergy.scenario.model import Scenario


@dataclass(frozen=True)
class CommunityData:
    """Series per slot (index: slot starts, market timezone).

    weather: ``temp_c``, ``ghi_w_m2``, ``clearsky_ghi_w_m2``, ``cloud_index`` (0 clear – 1 dark), ``day_type``
    sites[site_id]: integer ``load_wh`` and ``pv_wh`` (≥ 0; PV 0 without panels)
    cars[car_id]: ``location`` ∈ {home, office, road}, integer ``drive_wh``, float ``drive_km``
    business_day: per slot, True on the office's business days
    weather_forecasts: issued weather forecasts (``issued_at``, ``slot_start``, the weather columns)
    read from the scenario's ``weather.forecast_csv``; None: the agents get synthetic ones
    """

    scenario: Scenario
    index: pd.DatetimeIndex
    weather: pd.DataFrame
    sites: dict[str, pd.DataFrame]
    cars: dict[str, pd.DataFrame]
    business_day: pd.Series
    measured: frozenset[str] = field(default_factory=frozenset)
    weather_forecasts: pd.DataFrame | None = None

    @property
    def owners(self) -> dict[str, str | None]:
        """Car id → owner home id (None for an office fleet car)."""
        return {c.id: c.owner for c in self.scenario.cars}

    def window(self, start: date | None = None, end: date | None = None) -> CommunityData:
        """The slots of local days ``start..end`` (inclusive)."""
        tz = self.index.tz
        lo = pd.Timestamp(start or self.scenario.period.start, tz=tz)
        hi = pd.Timestamp((end or self.scenario.period.end) + timedelta(days=1), tz=tz)
        mask = (self.index >= lo) & (self.index < hi)
        return CommunityData(
            self.scenario, self.index[mask], self.weather[mask],
            {k: v[mask] for k, v in self.sites.items()}, {k: v[mask] for k, v in self.cars.items()},
            self.business_day[mask], self.measured, self.weather_forecasts,
        )

    def month(self, month: date | None = None) -> CommunityData:
        """One calendar month (default: the scenario's report month)."""
        first = (month or self.scenario.period.report_month).replace(day=1)
        nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        return self.window(first, nxt - timedelta(days=1))


def rng_for(seed: int, name: str) -> np.random.Generator:
    """The generator of one component (``name`` such as ``weather`` or ``home:house-01``)."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode())]))


def slot_index(scenario: Scenario) -> pd.DatetimeIndex:
    """Slot starts from the first local midnight of the period to the end of its last day."""
    m = scenario.market
    first = pd.Timestamp(scenario.period.start, tz=m.tz)
    after = pd.Timestamp(scenario.period.end + timedelta(days=1), tz=m.tz)
    return pd.date_range(first, after, freq=f"{m.slot_minutes}min", inclusive="left", name="slot_start")


def generate(scenario: Scenario, start: date | None = None, end: date | None = None) -> CommunityData:
    """All series of the scenario (then cut to ``start..end`` if given, inside the period)."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and not scenario.period.start <= value <= scenario.period.end:
            raise ValueError(f"{name}: must lie in the scenario period {scenario.period.start}..{scenario.period.end}")
    seed = scenario.scenario.seed
    slot = scenario.market.slot_minutes
    index = slot_index(scenario)
    site = scenario.site()

    clear = clear_sky(site, index)
    weather = simulate(index, clear["ghi"].to_numpy(), scenario.weather.params(), rng_for(seed, "weather"))
    zone = scenario.market.timezone
    if scenario.weather.measured_csv is not None:
        path = scenario.resolve(scenario.weather.measured_csv)
        weather = on_grid(read_weather(path, site, zone), index, str(path)).assign(day_type="measured")
    forecasts = (read_weather_forecasts(scenario.resolve(scenario.weather.forecast_csv), site, zone)
                 if scenario.weather.forecast_csv is not None else None)
    temp = weather["temp_c"].to_numpy()

    days, pos = local_days(index)
    years = {d.year for d in days}
    public = public_holidays(scenario.location.holiday_country, years, scenario.location.holiday_subdivision)
    closed = public | set(scenario.calendar.office_closed)
    business_day = business_days(days, closed)
    business_slot = business_day[pos]

    pv_weather = all_sky(site, index, weather["ghi_w_m2"].to_numpy())
    pv_weather["temp_air"] = temp
    pv_weather["wind_speed"] = 1.0
    unit_cache: dict[tuple[float, float, float], np.ndarray] = {}

    def pv_wh(spec: PVSpec | None) -> np.ndarray:
        if spec is None:
            return np.zeros(len(index), dtype=np.int64)
        key = (spec.tilt_deg, spec.azimuth_deg, spec.system_loss_fraction)
        if key not in unit_cache:
            unit = PVSpec(1.0, spec.tilt_deg, spec.azimuth_deg, spec.system_loss_fraction)
            unit_cache[key] = ac_energy_wh(site, unit, pv_weather, slot)
        return np.rint(unit_cache[key] * spec.kwp).astype(np.int64)

    sites: dict[str, pd.DataFrame] = {}
    measured: set[str] = set()
    office = scenario.office
    if office.measured_csv is not None:
        sites[office.id] = read_measured(scenario.resolve(office.measured_csv), index, office.id)
        measured.add(office.id)
    else:
        load = office_load_wh(index, temp, business_slot, office.load.spec(), slot, rng_for(seed, f"site:{office.id}"))
        sites[office.id] = _frame(index, load, pv_wh(office.pv.spec() if office.pv else None))

    shape = h25_shape(index, slot, holidays=closed)
    for home in scenario.homes:
        if home.measured_csv is not None:
            sites[home.id] = read_measured(scenario.resolve(home.measured_csv), index, home.id)
            measured.add(home.id)
            continue
        spec = home.load_spec(scenario.home_types[home.type], slot)
        load = home_load_wh(index, shape, temp, business_slot, spec, slot, rng_for(seed, f"site:{home.id}"))
        sites[home.id] = _frame(index, load, pv_wh(home.pv.spec() if home.pv else None))

    phv = scenario.phv.spec()
    cars = {
        car.id: commute(index, business_day, car.commute_spec(), phv, slot, rng_for(seed, f"car:{car.id}"))
        for car in scenario.cars
    }
    data = CommunityData(
        scenario, index, weather, sites, cars, pd.Series(business_slot, index=index, name="business_day"),
        frozenset(measured), forecasts,
    )
    return data if start is None and end is None else data.window(start, end)


def _frame(index: pd.DatetimeIndex, load_wh: np.ndarray, pv_wh: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"load_wh": load_wh.astype(np.int64), "pv_wh": pv_wh.astype(np.int64)}, index=index)
