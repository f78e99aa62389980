"""Scenario tables of the utility's prices: retail tiers, renewable surcharge, fuel-cost
adjustment, buyback, office contract."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from p2penergy.scenario._base import Money
from p2penergy.scenario._base import Strict as _Model
from p2penergy.tariffs import (
    Buyback,
    DemandTariff,
    FitSchedule,
    OfficeTariff,
    RatePeriod,
    RetailTariff,
    Tier,
    TimeOfUseTariff,
    TouPeriod,
    buyback_for,
)


class TierModel(_Model):
    up_to_kwh: Money | None = None
    price_per_kwh: Money


class RateModel(_Model):
    valid_from: date
    price_per_kwh: Money


class SignedRateModel(_Model):
    """A month's per-kWh amount that may be negative (the fuel-cost adjustment)."""

    valid_from: date
    price_per_kwh: Decimal


class RetailModel(_Model):
    name: str = "retail"
    basic_charge_per_10a: Money
    tiers: list[TierModel] = Field(min_length=1)
    fuel_adjustment: str | None = None


class OfficeTariffModel(_Model):
    """Demand charge plus one energy price per season (``type = "seasonal"``, the default)."""

    type: Literal["seasonal"] = "seasonal"
    name: str = "office"
    demand_charge_per_kw: Money
    energy_summer_per_kwh: Money
    energy_other_per_kwh: Money
    summer_months: list[int] = Field(default_factory=lambda: [7, 8, 9])
    power_factor_pct: int = Field(default=100, ge=50, le=100)
    buyback: str | None = None
    fuel_adjustment: str | None = None


class FitModel(_Model):
    """Feed-in tariff by fiscal year of connection (see :class:`FitSchedule`)."""

    price_per_kwh_by_fiscal_year: dict[int, Money] = Field(min_length=1)
    term_years: int = Field(default=10, gt=0, le=50)
    after_term: str
    fiscal_year_start_month: int = Field(default=4, ge=1, le=12)


class TouPeriodModel(_Model):
    name: str
    price_per_kwh: Money
    from_hour: float = Field(ge=0, le=24)
    to_hour: float = Field(ge=0, le=24)
    months: list[int] = Field(default_factory=list)


class TouTariffModel(_Model):
    """Demand charge plus an energy price per time band (``type = "time-of-use"``): the first of
    ``periods`` containing a slot's local start sets its price, else ``base_per_kwh``; Sundays
    (``off_weekdays``), public holidays (``off_public_holidays``) and ``off_dates`` ("MM-DD", every
    year) are at the base price all day."""

    type: Literal["time-of-use"]
    name: str = "time-of-use"
    demand_charge_per_kw: Money
    power_factor_pct: int = Field(default=100, ge=50, le=100)
    base_name: str = "night"
    base_per_kwh: Money
    periods: list[TouPeriodModel] = Field(min_length=1)
    off_weekdays: list[int] = Field(default_factory=lambda: [6])
    off_public_holidays: bool = True
    off_dates: list[Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]] = Field(
        default_factory=list)
    buyback: str | None = None
    fuel_adjustment: str | None = None


def _contract_type(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "seasonal"))
    return str(getattr(value, "type", "seasonal"))


OfficeContract = Annotated[
    Annotated[OfficeTariffModel, Tag("seasonal")] | Annotated[TouTariffModel, Tag("time-of-use")],
    Discriminator(_contract_type),
]


class Tariffs(_Model):
    rounding: Literal["down", "half_up"] = "down"
    retail: RetailModel
    renewable_surcharge: list[RateModel] = Field(default_factory=list)
    fuel_adjustment: dict[str, list[SignedRateModel]] = Field(default_factory=dict)
    buyback: dict[str, Money]
    fit: FitModel | None = None
    office: OfficeContract
    fuel_price_per_l: Money

    def retail_tariff(self) -> RetailTariff:
        return RetailTariff(
            basic_charge_per_10a=self.retail.basic_charge_per_10a,
            tiers=tuple(Tier(t.up_to_kwh, t.price_per_kwh) for t in self.retail.tiers),
            renewable_surcharge=self.surcharge(), name=self.retail.name,
            fuel_adjustment=self.fuel_adjustment_rates(self.retail.fuel_adjustment),
        )

    def surcharge(self) -> tuple[RatePeriod, ...]:
        return tuple(RatePeriod(r.valid_from, r.price_per_kwh)
                     for r in sorted(self.renewable_surcharge, key=lambda r: r.valid_from))

    def fuel_adjustment_rates(self, schedule: str | None) -> tuple[RatePeriod, ...]:
        """The monthly fuel-cost adjustment of ``schedule`` (a name in ``[tariffs.fuel_adjustment]``)."""
        if schedule is None:
            return ()
        if schedule not in self.fuel_adjustment:
            raise ValueError(f"fuel_adjustment: unknown schedule {schedule!r}; known: "
                             f"{', '.join(sorted(self.fuel_adjustment)) or 'none'}")
        return tuple(RatePeriod(r.valid_from, r.price_per_kwh)
                     for r in sorted(self.fuel_adjustment[schedule], key=lambda r: r.valid_from))

    def office_tariff(self, years: Iterable[int] = (), holidays: Iterable[date] = ()) -> DemandTariff:
        """The office's contract; a time-of-use one takes its days off from ``holidays`` (public
        holidays, when it follows them) and its ``off_dates`` in each of ``years``."""
        o = self.office
        if isinstance(o, TouTariffModel):
            off = set(holidays) if o.off_public_holidays else set()
            off |= {date(y, int(md[:2]), int(md[3:])) for y in years for md in o.off_dates}
            return TimeOfUseTariff(
                demand_charge_per_kw=o.demand_charge_per_kw,
                periods=tuple(TouPeriod(p.name, p.price_per_kwh, p.from_hour, p.to_hour, tuple(p.months))
                              for p in o.periods),
                base_per_kwh=o.base_per_kwh, base_name=o.base_name, off_weekdays=tuple(o.off_weekdays),
                off_days=frozenset(off), power_factor_pct=o.power_factor_pct,
                renewable_surcharge=self.surcharge(), name=o.name,
                fuel_adjustment=self.fuel_adjustment_rates(o.fuel_adjustment),
            )
        return OfficeTariff(o.demand_charge_per_kw, o.energy_summer_per_kwh, o.energy_other_per_kwh,
                            tuple(o.summer_months), o.power_factor_pct, self.surcharge(), o.name,
                            fuel_adjustment=self.fuel_adjustment_rates(o.fuel_adjustment))

    def buyback_scheme(self, scheme: str | None) -> Buyback | None:
        return None if scheme is None else buyback_for(scheme, self.buyback)

    def fit_schedule(self) -> FitSchedule:
        """The FIT by fiscal year of connection (``[tariffs.fit]``)."""
        if self.fit is None:
            raise ValueError("fit: no [tariffs.fit] table (needed by homes with pv_connected)")
        f = self.fit
        return FitSchedule(tuple(sorted(f.price_per_kwh_by_fiscal_year.items())), f.term_years,
                           buyback_for(f.after_term, self.buyback), f.fiscal_year_start_month)

    def pv_buyback(self, scheme: str | None, connected: date | None, month: date) -> Buyback | None:
        """What a site's exports are credited in ``month``: its named ``scheme``, or the FIT of the
        fiscal year its PV was ``connected`` (the post-FIT price after the term), or nothing."""
        if connected is not None:
            return self.fit_schedule().buyback(connected, month)
        return self.buyback_scheme(scheme)

    @model_validator(mode="after")
    def _check(self) -> Tariffs:
        for name, build in (("retail", self.retail_tariff), ("office", self.office_tariff)):
            try:
                build()
            except ValueError as exc:
                raise ValueError(f"{name}.{exc}") from exc
        if self.fit is not None and self.fit.after_term not in self.buyback:
            raise ValueError(f"fit.after_term: unknown scheme {self.fit.after_term!r}; known: "
                             f"{', '.join(sorted(self.buyback))}")
        if self.office.buyback is not None and self.office.buyback not in self.buyback:
            raise ValueError(f"office.buyback: unknown scheme {self.office.buyback!r}; known: "
                             f"{', '.join(sorted(self.buyback))}")
        return self
