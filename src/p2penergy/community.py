"""The community: participants with their devices, tariffs and per-slot series.

Built from a scenario and its generated (or measured) data by :func:`build_community`;
everything downstream (agents, physics, accounts, results) sees only these values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from p2penergy.assets.battery import BatterySpec
from p2penergy.assets.car import PhvSpec
from p2penergy.market import MarketSettings
from p2penergy.outage import HOME_LOAD_SHARES, OFFICE_LOAD_SHARES, LoadShares, Outage, outage_mask
from p2penergy.tariffs.buyback import OWN_SCHEMES, Buyback, ExportCredit
from p2penergy.tariffs.office import DemandTariff
from p2penergy.tariffs.retail import RetailTariff

HOME_KIND, OFFICE_KIND, CAR_KIND = "home", "office", "car"
LOCATION_CODES = {"home": 0, "office": 1, "road": 2}
LOCATIONS = ("home", "office", "road")



def pv_device_id(site_id: str) -> str:
    """The id of a site's PV system: certificates name it as their device (simulation and service)."""
    return f"{site_id}-pv"

@dataclass(frozen=True, slots=True)
class Participant:
    """One trading participant. Series are int64 arrays over the community's index.

    ``group`` is the home type (``consumer``, ``pv_battery``, ...), ``office`` or ``phv``.
    A car's ``location`` holds codes into ``LOCATIONS``; ``drive_wh`` what driving needs;
    ``car_store`` is its usable battery window as a ``BatterySpec``, ``phv`` its converter
    limits. A car's utility energy is billed on its ``owner``'s contract (incrementally).
    The office's chargers (``charger_power_w`` in all) are expected occupied by the employees'
    cars during ``charger_hours`` (local, from–to) of its business days: Monday–Friday except
    ``days_off`` (its own calendar: public holidays and closures). ``export_cap_wh``: with export
    control (``[network] export_control``), the most the site's meter puts out net in a slot; its PV
    beyond is curtailed (sim/physics.py ``dispatch_site``); ``None``: no cap.
    """

    id: str
    kind: str
    group: str
    load_wh: np.ndarray
    pv_wh: np.ndarray
    battery: BatterySpec | None = None
    pv_device: str | None = None
    pv_capacity_w: int = 0
    owner: str | None = None
    car_store: BatterySpec | None = None
    phv: PhvSpec | None = None
    location: np.ndarray | None = None
    drive_wh: np.ndarray | None = None
    fuel_cost_per_kwh: float = 0.0
    retail: RetailTariff | None = None
    contract_a: int = 0
    buyback: Buyback | None = None
    office_tariff: DemandTariff | None = None
    charger_power_w: int = 0
    charger_hours: tuple[float, float] = (0.0, 0.0)
    days_off: frozenset[date] = frozenset()
    export_cap_wh: int | None = None

    @property
    def has_pv(self) -> bool:
        return self.pv_device is not None

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.days_off

    @property
    def battery_id(self) -> str:
        """Storage id of the home battery: the ``device`` of offers of its stored energy."""
        return f"{self.id}-battery"


@dataclass(frozen=True, slots=True)
class Community:
    """All participants over one index of slot starts (tz-aware, the market's timezone).

    ``index`` is local for calendars and display; :meth:`slot` gives a slot's identity, its
    UTC start (what the exchange, the journal and every per-slot key use).

    ``days_off``: weekdays that are not business days (public holidays, company closures),
    public knowledge the forecasters use. ``report_days`` shortens the report month to that
    many local days from ``report_first_day`` (quick runs and tests; days of 92 or 100
    quarter hours count as one day); bills are then for those days only.
    ``baseline_export_credit``: how the utility-only baseline credits the homes' exports.
    ``outages``: grid outages (p2penergy/outage.py); their slots run as an island (sim/island.py).
    """

    settings: MarketSettings
    index: pd.DatetimeIndex
    participants: dict[str, Participant]
    report_month: date
    weather: pd.DataFrame
    seed: int
    grid_kg_co2_per_kwh: float
    rounding: str = "down"
    days_off: frozenset[date] = frozenset()
    report_days: int | None = None
    baseline_export_credit: ExportCredit = OWN_SCHEMES
    report_first_day: int = 1
    weather_forecasts: pd.DataFrame | None = None
    outages: tuple[Outage, ...] = ()
    _month_slice: slice = field(init=False, repr=False)
    _starts: tuple[datetime, ...] = field(init=False, repr=False)
    _islanded: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        local = self.index.tz_convert(self.settings.tz)
        mask = ((local.year == self.report_month.year) & (local.month == self.report_month.month)
                & (local.day >= self.report_first_day))
        if self.report_days is not None:
            mask &= local.day < self.report_first_day + self.report_days
        where = np.flatnonzero(mask)
        if where.size == 0:
            raise ValueError(f"period: the data has no slot in the report month {self.report_month:%Y-%m}"
                             f" from day {self.report_first_day}")
        object.__setattr__(self, "_month_slice", slice(int(where[0]), int(where[-1]) + 1))
        object.__setattr__(self, "_starts", utc_starts(self.index))
        object.__setattr__(self, "_islanded", outage_mask(self._starts, self.outages))

    def islanded(self, i: int) -> bool:
        """Whether slot ``i`` falls in an outage (no utility import or export)."""
        return bool(self._islanded[i])

    def islanded_slots(self) -> int:
        """How many of the report month's slots fall in an outage."""
        return int(self._islanded[self._month_slice].sum())

    @property
    def month(self) -> slice:
        """Positions of the report month's slots in ``index``."""
        return self._month_slice

    def slot(self, i: int) -> datetime:
        """The start of slot ``i`` as a UTC instant (the slot's identity)."""
        return self._starts[i]

    def of_kind(self, kind: str) -> list[Participant]:
        return [p for p in self.participants.values() if p.kind == kind]


def load_shares(p: Participant) -> LoadShares:
    """How ``p``'s load splits into critical, essential and deferrable (p2penergy/outage.py)."""
    return OFFICE_LOAD_SHARES if p.kind == OFFICE_KIND else HOME_LOAD_SHARES


# The types flows and diagrams aggregate participants by (results.json ``flows``, the report's Sankeys).
PARTICIPANT_TYPES = ("office", "consumer", "prosumer", "car")


def participant_type(p: Participant) -> str:
    """``p``'s type in ``PARTICIPANT_TYPES``: the office, a car, a home with PV (``prosumer``)
    or a home without (``consumer``; a consumer's car is a ``car`` of its own)."""
    if p.kind == OFFICE_KIND:
        return "office"
    if p.kind == CAR_KIND:
        return "car"
    return "prosumer" if p.has_pv else "consumer"


def utc_starts(index: pd.DatetimeIndex) -> tuple[datetime, ...]:
    """Slot starts of a tz-aware index as UTC datetimes, the market's slot keys.

    A local datetime of a zone with daylight saving time is no key: the two autumn 02:15s
    compare and hash equal, and neither equals its UTC instant (PEP 495).
    """
    return tuple(index.tz_convert(UTC).to_pydatetime())
