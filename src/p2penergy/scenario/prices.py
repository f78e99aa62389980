"""Scenario tables of the utility's prices: retail tiers, renewable surcharge, fuel-cost
adjustment, buyback, office contract."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from p2penergy.scenario._base import Money
from p2penergy.scenario._base import Strict as _Model
from p2penergy.tariffs import Buyback, FitSchedule, OfficeTariff, RatePeriod, RetailTariff, Tier, buyback_for


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


class Tariffs(_Model):
    rounding: Literal["down", "half_up"] = "down"
    retail: RetailModel
    renewable_surcharge: list[RateModel] = Field(default_factory=list)
    fuel_adjustment: dict[str, list[SignedRateModel]] = Field(default_factory=dict)
    buyback: dict[str, Money]
    fit: FitModel | None = None
    office: OfficeTariffModel
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

    def office_tariff(self) -> OfficeTariff:
        o = self.office
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
