"""High-voltage business contract: demand charge per kW of the month's peak demand plus
seasonal energy charges, the fuel-cost adjustment of its voltage class (per kWh, may be
negative; see ``retail``) and the renewable surcharge.

Demand is the largest import of one slot expressed as average power (Wh per slot × 60 /
slot minutes / 1000), rounded half up to whole kW as Japanese utilities round contract
demand. A power factor above 85 % discounts the demand charge 1 % per point (below: a
surcharge), so the charge is ``rate × kW × (185 − pf) / 100``. Real contracts below 500 kW
take the highest demand of the last 12 months ("実量制"); pass ``ratchet_kw`` for that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from p2penergy.tariffs.retail import RatePeriod, check_periods, rate_for
from p2penergy.tariffs.tou import TimeOfUseTariff


@dataclass(frozen=True, slots=True)
class OfficeTariff:
    demand_charge_per_kw: Decimal
    energy_summer_per_kwh: Decimal
    energy_other_per_kwh: Decimal
    summer_months: tuple[int, ...] = (7, 8, 9)
    power_factor_pct: int = 100
    renewable_surcharge: tuple[RatePeriod, ...] = ()
    name: str = "office"
    fuel_adjustment: tuple[RatePeriod, ...] = ()

    def __post_init__(self) -> None:
        if not 50 <= self.power_factor_pct <= 100:
            raise ValueError(f"power_factor_pct: must be in [50, 100], got {self.power_factor_pct}")
        if any(not 1 <= m <= 12 for m in self.summer_months):
            raise ValueError("summer_months: must be month numbers 1–12")
        check_periods("renewable_surcharge", self.renewable_surcharge)
        check_periods("fuel_adjustment", self.fuel_adjustment)

    def demand_factor(self) -> Decimal:
        return Decimal(185 - self.power_factor_pct) / Decimal(100)

    def energy_rate(self, month: date) -> Decimal:
        return self.energy_summer_per_kwh if month.month in self.summer_months else self.energy_other_per_kwh

    def surcharge_rate(self, month: date) -> Decimal:
        return rate_for(self.renewable_surcharge, month)

    def fuel_adjustment_rate(self, month: date) -> Decimal:
        return rate_for(self.fuel_adjustment, month)

    def unit_prices(self, slot_starts: Sequence[datetime]) -> list[Decimal]:
        """Energy-charge unit price [currency/kWh] of each slot (the season of its month)."""
        return [self.energy_rate(s.date()) for s in slot_starts]


# A contract with a demand charge: the seasonal one above or a time-of-use one.
DemandTariff = OfficeTariff | TimeOfUseTariff


def peak_demand_kw(import_wh: list[int] | tuple[int, ...], slot_minutes: int) -> Decimal:
    """Largest slot's average power [kW], rounded half up to whole kW (0 for an empty series)."""
    if not import_wh:
        return Decimal(0)
    peak = Decimal(max(int(x) for x in import_wh)) * Decimal(60) / Decimal(slot_minutes) / Decimal(1000)
    return peak.quantize(Decimal(1), rounding=ROUND_HALF_UP)
