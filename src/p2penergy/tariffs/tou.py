"""Time-of-use contract with a demand charge (e.g. TEPCO's extra-high-voltage
"特別高圧季節別時間帯別電力A"): a demand charge per kW of the month's peak slot plus an
energy charge whose unit price depends on the slot's time band, the fuel-cost adjustment of
the contract's voltage class and the renewable surcharge.

Time bands are a list of :class:`TouPeriod` (local hours ``[from_hour, to_hour)``, optionally
only in some months); a slot takes the price of the **first** period that contains its start,
or the contract's ``base`` price (TEPCO: "night") when none does. Whole days off — weekdays in
``off_weekdays`` (Sunday = 6) and the dates in ``off_days`` (public holidays and the contract's
own dates) — are at the base price all day. Slot starts must be local (the market's timezone).

Demand is as in :mod:`p2penergy.tariffs.office` (the month's largest slot, rounded half up to
whole kW; power-factor factor ``(185 − pf) / 100``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from p2penergy.tariffs.retail import RatePeriod, check_periods, rate_for


@dataclass(frozen=True, slots=True)
class TouPeriod:
    """A time band: ``price_per_kwh`` for slots starting in ``[from_hour, to_hour)`` local time,
    in ``months`` (empty: every month)."""

    name: str
    price_per_kwh: Decimal
    from_hour: float
    to_hour: float
    months: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.from_hour < self.to_hour <= 24:
            raise ValueError(f"periods.{self.name}: need 0 <= from_hour < to_hour <= 24, "
                             f"got {self.from_hour}..{self.to_hour}")
        if any(not 1 <= m <= 12 for m in self.months):
            raise ValueError(f"periods.{self.name}.months: must be month numbers 1–12")
        if self.price_per_kwh < 0:
            raise ValueError(f"periods.{self.name}.price_per_kwh: must be >= 0")

    def contains(self, local: datetime) -> bool:
        hour = local.hour + local.minute / 60
        return self.from_hour <= hour < self.to_hour and (not self.months or local.month in self.months)


@dataclass(frozen=True, slots=True)
class TimeOfUseTariff:
    """Demand charge per kW·month plus an energy charge per time band (see the module doc)."""

    demand_charge_per_kw: Decimal
    periods: tuple[TouPeriod, ...]
    base_per_kwh: Decimal
    base_name: str = "night"
    off_weekdays: tuple[int, ...] = (6,)
    off_days: frozenset[date] = frozenset()
    power_factor_pct: int = 100
    renewable_surcharge: tuple[RatePeriod, ...] = ()
    fuel_adjustment: tuple[RatePeriod, ...] = ()
    name: str = "time-of-use"

    def __post_init__(self) -> None:
        if not 50 <= self.power_factor_pct <= 100:
            raise ValueError(f"power_factor_pct: must be in [50, 100], got {self.power_factor_pct}")
        if self.demand_charge_per_kw < 0 or self.base_per_kwh < 0:
            raise ValueError("demand_charge_per_kw, base_per_kwh: must be >= 0")
        if any(not 0 <= d <= 6 for d in self.off_weekdays):
            raise ValueError("off_weekdays: must be weekday numbers 0 (Monday) – 6 (Sunday)")
        names = [p.name for p in self.periods] + [self.base_name]
        if len(set(names)) != len(names):
            raise ValueError("periods: names must differ from each other and from base_name")
        check_periods("renewable_surcharge", self.renewable_surcharge)
        check_periods("fuel_adjustment", self.fuel_adjustment)

    # -- the same interface as OfficeTariff ---------------------------------------------------
    def demand_factor(self) -> Decimal:
        return Decimal(185 - self.power_factor_pct) / Decimal(100)

    def surcharge_rate(self, month: date) -> Decimal:
        return rate_for(self.renewable_surcharge, month)

    def fuel_adjustment_rate(self, month: date) -> Decimal:
        return rate_for(self.fuel_adjustment, month)

    # -- time bands -----------------------------------------------------------------------------
    def is_off_day(self, day: date) -> bool:
        return day.weekday() in self.off_weekdays or day in self.off_days

    def band_of(self, local: datetime) -> int:
        """Index into ``periods`` of the slot starting at ``local``; -1 for the base band."""
        if local.tzinfo is None:
            raise ValueError("slot_starts: must be timezone-aware (local time of the market)")
        if self.is_off_day(local.date()):
            return -1
        for i, period in enumerate(self.periods):
            if period.contains(local):
                return i
        return -1

    def band_name(self, band: int) -> str:
        return self.base_name if band < 0 else self.periods[band].name

    def band_price(self, band: int) -> Decimal:
        return self.base_per_kwh if band < 0 else self.periods[band].price_per_kwh

    def unit_prices(self, slot_starts: Sequence[datetime]) -> list[Decimal]:
        """Energy-charge unit price [currency/kWh] of each slot (fuel adjustment and surcharge not included)."""
        return [self.band_price(self.band_of(s)) for s in slot_starts]

    def energy_by_band(self, import_wh: Sequence[int], slot_starts: Sequence[datetime]) -> dict[int, int]:
        """Imported Wh per band (keys as :meth:`band_of`), in band order."""
        if len(import_wh) != len(slot_starts):
            raise ValueError(f"slot_starts: one per slot of import_wh ({len(import_wh)}), got {len(slot_starts)}")
        out: dict[int, int] = {}
        for wh, start in zip(import_wh, slot_starts, strict=True):
            band = self.band_of(start)
            out[band] = out.get(band, 0) + int(wh)
        return dict(sorted(out.items(), key=lambda kv: (kv[0] < 0, kv[0])))
