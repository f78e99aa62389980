"""Residential retail tariff: basic charge by contract amperage, monthly tiered energy charge,
a fuel-cost adjustment and a renewable-energy surcharge whose rates depend on the month
(e.g. TEPCO Meter-rate Lighting B). All prices in the market's currency, tax included.

The fuel-cost adjustment (TEPCO: 燃料費調整額) is a per-kWh amount set for each month from
past fuel import prices, added to (or, when negative, taken off) every kWh bought from the
utility; it is part of the energy charge and rounded with it. A month's value holds until
the next listed month (``RatePeriod``), so a scenario lists every month it bills."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Tier:
    """Energy up to ``up_to_kwh`` (cumulative within the month; ``None`` = no limit) costs ``price_per_kwh``."""

    up_to_kwh: Decimal | None
    price_per_kwh: Decimal


@dataclass(frozen=True, slots=True)
class RatePeriod:
    """A rate [currency/kWh] valid for months from ``valid_from`` on (until the next period)."""

    valid_from: date
    price_per_kwh: Decimal


@dataclass(frozen=True, slots=True)
class RetailTariff:
    """Tiered retail tariff.

    basic_charge_per_10a : monthly basic charge per 10 A of contract (TEPCO: 286.00 JPY)
    tiers : increasing ``up_to_kwh`` limits, the last one unlimited
    renewable_surcharge : periods sorted by ``valid_from``
    fuel_adjustment : fuel-cost adjustment [currency/kWh, may be negative], periods sorted by ``valid_from``
    """

    basic_charge_per_10a: Decimal
    tiers: tuple[Tier, ...]
    renewable_surcharge: tuple[RatePeriod, ...] = ()
    name: str = "retail"
    fuel_adjustment: tuple[RatePeriod, ...] = ()

    def __post_init__(self) -> None:
        if not self.tiers or self.tiers[-1].up_to_kwh is not None:
            raise ValueError("tiers: the last tier must have no up_to_kwh (unlimited)")
        limits = [t.up_to_kwh for t in self.tiers[:-1]]
        if any(x is None for x in limits) or limits != sorted(limits) or len(set(limits)) != len(limits):
            raise ValueError("tiers: up_to_kwh must increase strictly; only the last tier is unlimited")
        check_periods("renewable_surcharge", self.renewable_surcharge)
        check_periods("fuel_adjustment", self.fuel_adjustment)

    def basic_charge(self, amperage_a: int) -> Decimal:
        """Monthly basic charge for a contract of ``amperage_a`` amperes (pro rata per 10 A)."""
        if amperage_a <= 0:
            raise ValueError(f"contract_a: must be > 0, got {amperage_a}")
        return self.basic_charge_per_10a * Decimal(amperage_a) / Decimal(10)

    def energy_charge_lines(self, energy_kwh: Decimal) -> list[tuple[Tier, Decimal]]:
        """Split the month's energy over the tiers: ``[(tier, kwh in tier), ...]`` (non-empty tiers)."""
        if energy_kwh < 0:
            raise ValueError(f"energy_kwh: must be >= 0, got {energy_kwh}")
        out: list[tuple[Tier, Decimal]] = []
        lower = Decimal(0)
        for tier in self.tiers:
            upper = energy_kwh if tier.up_to_kwh is None else min(energy_kwh, tier.up_to_kwh)
            if upper > lower:
                out.append((tier, upper - lower))
            if tier.up_to_kwh is not None:
                lower = max(lower, tier.up_to_kwh)
            if lower >= energy_kwh:
                break
        return out

    def energy_charge(self, energy_kwh: Decimal) -> Decimal:
        """Unrounded tiered energy charge for a month's ``energy_kwh``."""
        return sum((t.price_per_kwh * kwh for t, kwh in self.energy_charge_lines(energy_kwh)), Decimal(0))

    def surcharge_rate(self, month: date) -> Decimal:
        """Renewable surcharge [currency/kWh] for the month containing ``month`` (0 if none applies)."""
        return rate_for(self.renewable_surcharge, month)

    def fuel_adjustment_rate(self, month: date) -> Decimal:
        """Fuel-cost adjustment [currency/kWh] for the month containing ``month`` (0 if none applies)."""
        return rate_for(self.fuel_adjustment, month)


def check_periods(name: str, periods: tuple[RatePeriod, ...]) -> None:
    """Periods must be sorted by ``valid_from``, each start listed once."""
    starts = [p.valid_from for p in periods]
    if starts != sorted(starts) or len(set(starts)) != len(starts):
        raise ValueError(f"{name}: periods must be sorted by valid_from, each start once")


def rate_for(periods: tuple[RatePeriod, ...], month: date) -> Decimal:
    """The rate of the last period starting on or before ``month``; 0 before the first."""
    rate = Decimal(0)
    for period in periods:
        if period.valid_from <= month:
            rate = period.price_per_kwh
    return rate
