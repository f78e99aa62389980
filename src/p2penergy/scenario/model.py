"""The scenario file's schema (pydantic, at the edge): validates a TOML mapping and names
the key at fault. ``[market]`` is parsed by :meth:`MarketSettings.from_mapping`."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, InstanceOf, field_validator, model_validator

from p2penergy.assets.battery import BatterySpec
from p2penergy.assets.car import CommuteSpec, PhvSpec
from p2penergy.assets.home_load import HomeLoadSpec
from p2penergy.assets.office_load import OfficeLoadSpec
from p2penergy.assets.profiles import public_holidays
from p2penergy.assets.pv import PVSpec, Site
from p2penergy.market import MarketSettings
from p2penergy.outage import Outage
from p2penergy.scenario._base import Strict as _Model
from p2penergy.scenario.climate import Calendar, Emissions, Location, Period, Weather
from p2penergy.scenario.prices import Tariffs
from p2penergy.tariffs import Buyback, DemandTariff, ExportCredit
from p2penergy.tariffs.buyback import NO_CREDIT, OWN_SCHEME

HOME_TYPES = ("consumer", "consumer_phv", "pv_only", "pv_battery", "pv_phv", "pv_battery_phv")
HomeType = Literal["consumer", "consumer_phv", "pv_only", "pv_battery", "pv_phv", "pv_battery_phv"]
Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]


class Meta(_Model):
    name: str
    description: str = ""
    seed: int = Field(ge=0)


class BaselineModel(_Model):
    """The utility-only baseline. ``export_credit``: how it credits the homes' exports —
    ``own-scheme`` (each home's FIT or post-FIT), ``none``, or a scheme of ``[tariffs.buyback]``
    for every home with PV (e.g. ``post-fit``)."""

    export_credit: str = OWN_SCHEME


class HomeTypeDefaults(_Model):
    base_kwh_per_day: float = Field(gt=0, le=100)
    cooling_w_per_k: float = Field(ge=0, le=2000)
    cooling_threshold_c: float = 24.0
    commuter: bool = True


class PVModel(_Model):
    kwp: float = Field(gt=0, le=2000)
    tilt_deg: float = Field(default=30, ge=0, le=90)
    azimuth_deg: float = Field(default=180, ge=0, lt=360)
    system_loss_fraction: float = Field(default=0.14, ge=0, le=0.5)

    def spec(self) -> PVSpec:
        return PVSpec(self.kwp, self.tilt_deg, self.azimuth_deg, self.system_loss_fraction)


class BatteryModel(_Model):
    capacity_wh: int = Field(gt=0)
    power_w: int = Field(gt=0)
    charge_efficiency: float = Field(default=0.95, gt=0, le=1)
    discharge_efficiency: float = Field(default=0.95, gt=0, le=1)
    soc_min_wh: int = Field(default=0, ge=0)
    soc_max_wh: int | None = None
    initial_soc_wh: int | None = None

    @model_validator(mode="after")
    def _spec(self) -> BatteryModel:
        self.spec()
        return self

    def spec(self) -> BatterySpec:
        return BatterySpec(**self.model_dump())


HOME_VOLTS = 100
"""Volts per contract ampere of a Japanese low-voltage home contract (100 V service)."""


class Home(_Model):
    id: Id
    type: HomeType
    contract_a: int = Field(ge=10, le=60)
    buyback: str | None = None
    pv_connected: date | None = None
    pv: PVModel | None = None
    battery: BatteryModel | None = None
    load_scale: float = Field(default=1.0, gt=0, le=5)
    base_kwh_per_day: float | None = Field(default=None, gt=0, le=100)
    cooling_w_per_k: float | None = Field(default=None, ge=0, le=2000)
    measured_csv: Path | None = None

    @model_validator(mode="after")
    def _kind(self) -> Home:
        has_pv = self.type.startswith("pv_")
        if has_pv and self.pv is None:
            raise ValueError(f"pv: required for a home of type {self.type}")
        if not has_pv and self.pv is not None:
            raise ValueError(f"pv: not allowed for a home of type {self.type} (use a pv_* type)")
        if ("battery" in self.type) != (self.battery is not None):
            raise ValueError(f"battery: {'required' if 'battery' in self.type else 'not allowed'} for type {self.type}")
        if has_pv and (self.buyback is None) == (self.pv_connected is None):
            raise ValueError("buyback: a home with PV needs a buyback scheme (a name from [tariffs.buyback]) "
                             "or pv_connected (its FIT from [tariffs.fit]), not both")
        if not has_pv and self.pv_connected is not None:
            raise ValueError(f"pv_connected: not allowed for a home of type {self.type} (no PV)")
        return self

    @property
    def contract_power_w(self) -> int:
        """The contract breaker's power [W]: ``contract_a`` amperes at ``HOME_VOLTS``."""
        return self.contract_a * HOME_VOLTS

    def load_spec(self, defaults: HomeTypeDefaults, slot_minutes: int) -> HomeLoadSpec:
        base = self.base_kwh_per_day if self.base_kwh_per_day is not None else defaults.base_kwh_per_day
        cool = self.cooling_w_per_k if self.cooling_w_per_k is not None else defaults.cooling_w_per_k
        return HomeLoadSpec(base_kwh_per_day=base * self.load_scale, cooling_w_per_k=cool * self.load_scale,
                            max_power_w=self.contract_power_w, cooling_threshold_c=defaults.cooling_threshold_c,
                            commuter=defaults.commuter)


class Chargers(_Model):
    count: int = Field(ge=0, le=1000)
    power_w: int = Field(gt=0)


class OfficeLoadModel(_Model):
    base_w: float = Field(gt=0)
    peak_w: float = Field(gt=0)
    cooling_w_per_k: float = Field(default=0, ge=0)
    cooling_threshold_c: float = 24.0
    open_hour: float = Field(default=8.0, ge=0, le=24)
    close_hour: float = Field(default=18.5, ge=0, le=24)
    noise_sd: float = Field(default=0.05, ge=0, le=0.5)

    @model_validator(mode="after")
    def _spec(self) -> OfficeLoadModel:
        self.spec()
        return self

    def spec(self) -> OfficeLoadSpec:
        return OfficeLoadSpec(**self.model_dump())


class Office(_Model):
    id: Id = "office"
    contract_kw: int = Field(gt=0)
    pv: PVModel | None = None
    chargers: Chargers
    load: OfficeLoadModel
    measured_csv: Path | None = None


class PhvModel(_Model):
    battery_nominal_wh: int = Field(gt=0)
    usable_wh: int = Field(gt=0)
    charge_power_w: int = Field(gt=0)
    discharge_power_w: int = Field(default=0, ge=0)
    charge_efficiency: float = Field(default=0.92, gt=0, le=1)
    discharge_efficiency: float = Field(default=0.92, gt=0, le=1)
    ev_range_km: float = Field(gt=0)
    hybrid_km_per_l: float = Field(gt=0)

    @model_validator(mode="after")
    def _spec(self) -> PhvModel:
        self.spec()
        return self

    def spec(self) -> PhvSpec:
        return PhvSpec(**self.model_dump())


class Car(_Model):
    id: Id
    owner: Id | None
    one_way_km: float = Field(gt=0, le=200)
    depart_hour: float = Field(default=7.75, gt=0, lt=24)
    leave_hour: float = Field(default=18.25, gt=0, lt=24)
    errand_probability: float = Field(default=0.2, ge=0, le=1)
    leisure_probability: float = Field(default=0.6, ge=0, le=1)
    leisure_km: float = Field(default=35.0, gt=0, le=500)
    absence_probability: float = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _spec(self) -> Car:
        self.commute_spec()
        return self

    def commute_spec(self) -> CommuteSpec:
        return CommuteSpec(
            one_way_km=self.one_way_km, depart_hour=self.depart_hour, leave_hour=self.leave_hour,
            errand_probability=self.errand_probability, leisure_probability=self.leisure_probability,
            leisure_km=self.leisure_km, absence_probability=self.absence_probability,
        )


class OutageModel(_Model):
    """``[[outages]]``: no utility from ``start`` (with its UTC offset) for ``duration_hours``,
    announced ``announced_hours`` before (absent: unannounced). See p2penergy/outage.py."""

    start: datetime
    duration_hours: float = Field(gt=0, le=31 * 24)
    announced_hours: float | None = Field(default=None, ge=0, le=31 * 24)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must have a UTC offset, e.g. 2020-08-20T13:00:00+09:00")
        return value

    def outage(self) -> Outage:
        return Outage(self.start, timedelta(hours=self.duration_hours), self.announced_hours)


class NetworkModel(_Model):
    """``[network]``: the feeder the community is on (docs/network.md). ``feeder``: the shipped
    default (homes on its house connections in scenario order, the office on the MV bus) unless
    ``file`` names a pandapower JSON network; ``sites``: site id → bus name (or index) of the
    network, required for every home with a ``file``; ``power_factor``: every site draws
    ``|P| · tan(acos(pf))`` of reactive power; ``voltage_band``: ``japan`` (101 ± 6 V at 100 V:
    0.95–1.07 p.u.) or ``europe`` (± 10 %), or ``v_min_pu``/``v_max_pu`` of your own;
    ``market_limits`` (default false): the market respects the feeder's limits — the CDA each
    site's hosting capacity at matching, a call auction the linearised limits of each slot
    (docs/network.md); ``export_control`` (default false): each home's inverter curtails PV so its
    meter never puts out more than its export limit (the CDA's, from the hosting capacity)."""

    feeder: Literal["kerber-landnetz-kabel-2"] = "kerber-landnetz-kabel-2"
    file: Path | None = None
    sites: dict[str, str | int] = Field(default_factory=dict)
    power_factor: float = Field(default=0.95, gt=0, le=1)
    voltage_band: Literal["japan", "europe"] = "japan"
    v_min_pu: float | None = Field(default=None, gt=0, lt=1)
    v_max_pu: float | None = Field(default=None, gt=1, lt=2)
    market_limits: bool = False
    export_control: bool = False


class Scenario(_Model):
    """A whole community: where, when, rules, prices, sites and cars. ``base_dir`` resolves
    relative paths (measured CSVs) and is set by :func:`load_scenario`."""

    scenario: Meta
    location: Location
    period: Period
    market: InstanceOf[MarketSettings]
    emissions: Emissions
    weather: Weather
    calendar: Calendar = Calendar()
    tariffs: Tariffs
    baseline: BaselineModel = BaselineModel()
    home_types: dict[HomeType, HomeTypeDefaults]
    phv: PhvModel
    homes: list[Home] = Field(min_length=0)
    office: Office
    cars: list[Car] = Field(default_factory=list)
    outages: list[OutageModel] = Field(default_factory=list)
    network: NetworkModel | None = None
    base_dir: Path | None = None

    @field_validator("market", mode="before")
    @classmethod
    def _market(cls, value: Any) -> Any:
        if isinstance(value, MarketSettings):
            return value
        if not isinstance(value, dict):
            raise ValueError("must be a table of market settings")
        return MarketSettings.from_mapping(value)

    @model_validator(mode="after")
    def _links(self) -> Scenario:
        ids = [h.id for h in self.homes] + [self.office.id]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"homes: duplicate site id {dup[0]!r}")
        car_ids = [c.id for c in self.cars]
        if len(set(car_ids)) != len(car_ids):
            raise ValueError("cars: duplicate car id")
        homes = {h.id: h for h in self.homes}
        owners: dict[str, int] = {}
        for i, car in enumerate(self.cars):
            if car.owner is not None and car.owner not in homes:
                raise ValueError(f"cars[{i}].owner: {car.owner!r} is not a home id")
            if car.owner is not None:
                owners[car.owner] = owners.get(car.owner, 0) + 1
        for i, home in enumerate(self.homes):
            if home.type not in self.home_types:
                raise ValueError(f"homes[{i}].type: no [home_types.{home.type}] defaults")
            wants_car = home.type.endswith("_phv")
            if wants_car and not owners.get(home.id):
                raise ValueError(f"homes[{i}].type: {home.type} needs a car whose owner is {home.id!r}")
            if not wants_car and owners.get(home.id):
                raise ValueError(f"homes[{i}].type: {home.type} may not own a car (use a *_phv type)")
            if home.buyback is not None and home.buyback not in self.tariffs.buyback:
                raise ValueError(f"homes[{i}].buyback: unknown scheme {home.buyback!r}; known: "
                                 f"{', '.join(sorted(self.tariffs.buyback))}")
            if home.pv_connected is not None:
                try:
                    self.home_buyback(home, self.period.report_month)
                except ValueError as exc:
                    raise ValueError(f"homes[{i}].pv_connected: {str(exc).split(': ', 1)[-1]}") from exc
        _check_export_credit("baseline.export_credit", self.baseline.export_credit, self.tariffs)
        if self.network is not None:
            site_ids = set(ids)
            for site in self.network.sites:
                if site not in site_ids:
                    raise ValueError(f"network.sites.{site}: not a site id (homes and the office: cars "
                                     "are where they are parked)")
            if self.network.file is not None:
                for i, home in enumerate(self.homes):
                    if home.id not in self.network.sites:
                        raise ValueError(f"network.sites: no bus for homes[{i}] ({home.id!r}) on network.file")
        months = {d.month for d in _months(self.period.start, self.period.end)}
        missing = sorted(months - set(self.weather.day_type_probabilities))
        if missing:
            raise ValueError(f"weather.day_type_probabilities: no entry for month {missing[0]} of the period")
        return self

    # -- conveniences -------------------------------------------------------------------
    def site(self) -> Site:
        return Site(self.location.latitude, self.location.longitude, self.location.altitude_m, self.market.timezone)

    def home(self, home_id: str) -> Home:
        for home in self.homes:
            if home.id == home_id:
                return home
        raise KeyError(home_id)

    def home_buyback(self, home: Home, month: date) -> Buyback | None:
        """How ``home``'s exports are credited in ``month`` (its scheme, or its FIT by connection year)."""
        return self.tariffs.pv_buyback(home.buyback, home.pv_connected, month)

    def with_baseline_export_credit(self, credit: str, field: str = "baseline.export_credit") -> Scenario:
        """The same scenario whose baseline credits exports by ``credit`` (checked, the error names ``field``)."""
        _check_export_credit(field, credit, self.tariffs)
        return self.model_copy(update={"baseline": BaselineModel(export_credit=credit)})

    def baseline_export_credit(self) -> ExportCredit:
        credit = self.baseline.export_credit
        if credit == OWN_SCHEME:
            return ExportCredit.own()
        if credit == NO_CREDIT:
            return ExportCredit.none()
        return ExportCredit.scheme(self.tariffs.buyback_scheme(credit))  # type: ignore[arg-type]
    def office_contract(self) -> DemandTariff:
        """The office's utility contract, with the public holidays of the period's years (a
        time-of-use contract prices them as days off)."""
        years = range(self.period.start.year, self.period.end.year + 1)
        loc = self.location
        return self.tariffs.office_tariff(years, public_holidays(loc.holiday_country, years, loc.holiday_subdivision))

    def site_ids(self) -> list[str]:
        return [self.office.id, *(h.id for h in self.homes)]

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() or self.base_dir is None else self.base_dir / path


def _check_export_credit(field: str, credit: str, tariffs: Tariffs) -> None:
    if credit not in (OWN_SCHEME, NO_CREDIT) and credit not in tariffs.buyback:
        raise ValueError(f"{field}: must be {OWN_SCHEME!r}, {NO_CREDIT!r} or a scheme of [tariffs.buyback] "
                         f"({', '.join(sorted(tariffs.buyback))}), got {credit!r}")


def _months(start: date, end: date) -> list[date]:
    out = []
    month = start.replace(day=1)
    while month <= end:
        out.append(month)
        month = (month.replace(year=month.year + 1, month=1) if month.month == 12
                 else month.replace(month=month.month + 1))
    return out
