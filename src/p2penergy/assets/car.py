"""Plug-in hybrid cars: parameters and a seeded commute model.

Per slot a car is in exactly one place: ``home`` (at its owner's charger), ``office``
(parked at the office's chargers) or ``road`` (driving, or parked elsewhere — not
chargeable). A slot in which the car drives at all is ``road``; so it never goes from
``home`` to ``office`` without a ``road`` slot between. ``drive_wh`` is the traction
energy the slot's driving needs (km × ``wh_per_km``); what the battery cannot supply, the
engine does at ``fuel_l_per_km`` (see :func:`fuel_cost`).

Business days (the office's calendar): leave home about ``depart_hour``, drive
``one_way_km`` at ``speed_kmh``, park at the office, leave about ``leave_hour``, drive home;
sometimes an evening errand; ``absence_probability`` of a business day at home (leave).
Other days: with ``leisure_probability`` a leisure trip of mean ``leisure_km`` around midday.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from p2penergy.assets.battery import BatterySpec
from p2penergy.assets.profiles import local_minutes

HOME, OFFICE, ROAD = "home", "office", "road"
LOCATIONS = (HOME, OFFICE, ROAD)


@dataclass(frozen=True, slots=True)
class PhvSpec:
    """A plug-in hybrid's energy parameters.

    battery_nominal_wh : nameplate [Wh]; usable_wh : the window the car lets you use [Wh]
    charge_power_w / discharge_power_w : AC charger power [W] (discharge 0 = no V2X)
    ev_range_km : electric range on ``usable_wh`` [km] → ``wh_per_km``
    hybrid_km_per_l : fuel economy once the battery is empty [km/L]
    """

    battery_nominal_wh: int = 8800
    usable_wh: int = 7000
    charge_power_w: int = 3000
    discharge_power_w: int = 3000
    charge_efficiency: float = 0.92
    discharge_efficiency: float = 0.92
    ev_range_km: float = 68.2
    hybrid_km_per_l: float = 30.8

    def __post_init__(self) -> None:
        if not 0 < self.usable_wh <= self.battery_nominal_wh:
            raise ValueError(f"usable_wh: must be in (0, battery_nominal_wh], got {self.usable_wh}")
        if self.charge_power_w <= 0 or self.discharge_power_w < 0:
            raise ValueError("charge_power_w: must be > 0 (discharge_power_w >= 0)")
        if self.ev_range_km <= 0 or self.hybrid_km_per_l <= 0:
            raise ValueError("ev_range_km, hybrid_km_per_l: must be > 0")

    @property
    def wh_per_km(self) -> float:
        return self.usable_wh / self.ev_range_km

    @property
    def fuel_l_per_km(self) -> float:
        return 1.0 / self.hybrid_km_per_l

    def battery(self, initial_soc_wh: int | None = None) -> BatterySpec:
        """The traction battery as a :class:`BatterySpec` over its usable window."""
        return BatterySpec(
            capacity_wh=self.usable_wh, power_w=max(self.charge_power_w, self.discharge_power_w),
            charge_efficiency=self.charge_efficiency, discharge_efficiency=self.discharge_efficiency,
            soc_min_wh=0, soc_max_wh=self.usable_wh,
            initial_soc_wh=self.usable_wh if initial_soc_wh is None else initial_soc_wh,
        )


def fuel_cost(unserved_wh: int, spec: PhvSpec, fuel_price_per_l: Decimal) -> Decimal:
    """Money for driving on the engine what the battery could not supply (unrounded).

    km = unserved_wh / wh_per_km; litres = km / hybrid_km_per_l; cost = litres × price.
    """
    if unserved_wh < 0:
        raise ValueError(f"unserved_wh: must be >= 0, got {unserved_wh}")
    litres = Decimal(unserved_wh) / Decimal(repr(spec.wh_per_km)) / Decimal(repr(spec.hybrid_km_per_l))
    return litres * fuel_price_per_l


@dataclass(frozen=True, slots=True)
class CommuteSpec:
    """A driver's habits. Hours are local clock hours (7.75 = 07:45)."""

    one_way_km: float
    depart_hour: float = 7.75
    depart_sd_h: float = 0.25
    leave_hour: float = 18.25
    leave_sd_h: float = 0.6
    speed_kmh: float = 30.0
    errand_probability: float = 0.2
    errand_km: float = 8.0
    leisure_probability: float = 0.6
    leisure_km: float = 35.0
    absence_probability: float = 0.05

    def __post_init__(self) -> None:
        if self.one_way_km <= 0 or self.speed_kmh <= 0:
            raise ValueError("one_way_km, speed_kmh: must be > 0")
        if not 0 < self.depart_hour < self.leave_hour < 24:
            raise ValueError(f"leave_hour: must be after depart_hour, both in (0, 24), got {self.depart_hour}, "
                             f"{self.leave_hour}")
        for name in ("errand_probability", "leisure_probability", "absence_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}: must be in [0, 1]")


_CODE = {HOME: 0, OFFICE: 1, ROAD: 2}


def _trip(place: np.ndarray, km: np.ndarray, start_min: int, minutes: int, distance_km: float) -> int:
    """Mark a drive on the minute timeline; returns the minute it ends."""
    start = max(0, min(1439, start_min))
    end = max(start + 1, min(1440, start + max(1, minutes)))
    place[start:end] = _CODE[ROAD]
    km[start:end] += distance_km / (end - start)
    return end


def day_timeline(business: bool, spec: CommuteSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Minute-by-minute place codes and km for one local day (1440 minutes), starting and ending at home."""
    place = np.zeros(1440, dtype=np.int8)
    km = np.zeros(1440)
    draws = rng.random(4)
    normals = rng.standard_normal(3)
    drive_min = int(np.rint(spec.one_way_km / spec.speed_kmh * 60))
    if business and draws[0] >= spec.absence_probability:
        depart = int(np.rint((spec.depart_hour + spec.depart_sd_h * normals[0]) * 60))
        depart = max(5 * 60, min(depart, 10 * 60))
        arrive = _trip(place, km, depart, drive_min, spec.one_way_km)
        leave = int(np.rint((spec.leave_hour + spec.leave_sd_h * normals[1]) * 60))
        leave = max(arrive + 4 * 60, min(leave, 22 * 60))
        place[arrive:leave] = _CODE[OFFICE]
        home = _trip(place, km, leave, drive_min, spec.one_way_km)
        if draws[1] < spec.errand_probability and home < 21 * 60:
            out = home + 30 + int(draws[2] * 60)
            leg = int(np.rint(spec.errand_km / 2 / spec.speed_kmh * 60))
            there = _trip(place, km, out, leg, spec.errand_km / 2)
            place[there:min(1440, there + 40)] = _CODE[ROAD]
            _trip(place, km, there + 40, leg, spec.errand_km / 2)
    elif not business and draws[0] < spec.leisure_probability:
        distance = float(rng.gamma(2.0, spec.leisure_km / 2.0))
        leg = int(np.rint(distance / 2 / 40.0 * 60))
        out = int(np.rint((10.5 + 1.2 * normals[2]) * 60))
        out = max(7 * 60, min(out, 15 * 60))
        there = _trip(place, km, out, leg, distance / 2)
        stay = 60 + int(draws[3] * 180)
        place[there:min(1440, there + stay)] = _CODE[ROAD]
        _trip(place, km, min(there + stay, 1438 - leg), leg, distance / 2)
    return place, km


def commute(index: pd.DatetimeIndex, business_day: np.ndarray, spec: CommuteSpec, phv: PhvSpec,
            slot_minutes: int, rng: np.random.Generator) -> pd.DataFrame:
    """Per slot ``location`` (home | office | road) and integer ``drive_wh``.

    ``business_day`` holds one flag per local day of ``index`` (in order).
    """
    day = index.normalize()
    days = day.unique()
    if len(business_day) != len(days):
        raise ValueError(f"business_day: needs one flag per day ({len(days)}), got {len(business_day)}")
    pos = days.get_indexer(day)
    start = local_minutes(index)
    codes = np.zeros(len(index), dtype=np.int8)
    km = np.zeros(len(index))
    for d in range(len(days)):
        place, km_min = day_timeline(bool(business_day[d]), spec, rng)
        sel = np.flatnonzero(pos == d)
        s = start[sel]
        e = np.minimum(s + slot_minutes, 1440)
        cum = np.concatenate(([0.0], np.cumsum(km_min)))
        km[sel] = cum[e] - cum[s]
        # minutes on the road / at the office inside each slot (works for repeated clock times at DST ends)
        road_cum = np.concatenate(([0], np.cumsum(place == _CODE[ROAD])))
        office_cum = np.concatenate(([0], np.cumsum(place == _CODE[OFFICE])))
        road = road_cum[e] - road_cum[s]
        office = office_cum[e] - office_cum[s]
        codes[sel] = np.where(road > 0, _CODE[ROAD], np.where(office > 0, _CODE[OFFICE], _CODE[HOME]))
    names = np.array(LOCATIONS, dtype=object)
    drive = np.rint(km * phv.wh_per_km).astype(np.int64)
    return pd.DataFrame({"location": names[codes], "drive_wh": drive, "drive_km": km}, index=index)
