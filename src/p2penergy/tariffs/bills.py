"""A month's utility bill from per-slot import/export energy.

Money is exact (``Decimal``). Each line's amount is exact; the charges (basic, energy,
demand, fuel-cost adjustment) are summed and rounded once to the currency's minor unit, the
renewable surcharge is rounded on its own, and the buyback credit is rounded on its own — all with the tariff's
rounding mode (``down`` by default: TEPCO discards fractions of a yen on each of these
amounts). Energy in integer Wh per slot, converted to kWh exactly (Wh / 1000).
The currency comes from the caller (the market settings), never from this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from p2penergy.tariffs.buyback import Buyback
from p2penergy.tariffs.money import round_money
from p2penergy.tariffs.office import OfficeTariff, peak_demand_kw
from p2penergy.tariffs.retail import RetailTariff
from p2penergy.tariffs.tou import TimeOfUseTariff


@dataclass(frozen=True, slots=True)
class LineItem:
    """``quantity`` [``unit``] × ``rate`` = ``amount`` (exact, unrounded; credits negative)."""

    name: str
    quantity: Decimal
    unit: str
    rate: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Bill:
    """A month's bill. ``total = charges + surcharge - credit``, each rounded (see module doc)."""

    site_id: str
    month: date
    currency: str
    lines: tuple[LineItem, ...]
    charges: Decimal
    surcharge: Decimal
    credit: Decimal
    import_kwh: Decimal
    export_kwh: Decimal

    @property
    def total(self) -> Decimal:
        """Net amount due (negative when the credit exceeds the charges)."""
        return self.charges + self.surcharge - self.credit


def _kwh(series: Sequence[int], name: str) -> Decimal:
    total = 0
    for x in series:
        value = int(x)
        if value < 0:
            raise ValueError(f"{name}: energies must be >= 0 Wh, got {value}")
        total += value
    return Decimal(total) / Decimal(1000)


def _finish(site_id: str, month: date, currency: str, lines: list[LineItem], export_kwh: Decimal,
            import_kwh: Decimal, buyback: Buyback | None, rounding: str) -> Bill:
    charge_lines = [x for x in lines if x.name not in ("renewable surcharge",)]
    surcharge_lines = [x for x in lines if x.name == "renewable surcharge"]
    charges = round_money(sum((x.amount for x in charge_lines), Decimal(0)), currency, rounding)
    surcharge = round_money(sum((x.amount for x in surcharge_lines), Decimal(0)), currency, rounding)
    credit = Decimal(0)
    if buyback is not None and export_kwh > 0:
        raw = buyback.credit(export_kwh)
        lines.append(LineItem(f"buyback ({buyback.scheme})", export_kwh, "kWh", buyback.price_per_kwh, -raw))
        credit = round_money(raw, currency, rounding)
    return Bill(site_id, month.replace(day=1), currency, tuple(lines), charges, surcharge, credit,
                import_kwh, export_kwh)


def fuel_adjustment_line(rate: Decimal, import_kwh: Decimal) -> list[LineItem]:
    """The fuel-cost adjustment on every imported kWh (none when the rate or the energy is 0).
    Every contract's bill adds it with its own rate (low voltage, high voltage, ...)."""
    if not rate or not import_kwh:
        return []
    return [LineItem("fuel-cost adjustment", import_kwh, "kWh", rate, rate * import_kwh)]


def home_bill(site_id: str, month: date, import_wh: Sequence[int], export_wh: Sequence[int],
              tariff: RetailTariff, contract_a: int, buyback: Buyback | None, currency: str,
              rounding: str = "down") -> Bill:
    """Bill of a home on a tiered retail tariff for one month's slots (the caller slices the month)."""
    import_kwh = _kwh(import_wh, "import_wh")
    export_kwh = _kwh(export_wh, "export_wh")
    basic = tariff.basic_charge(contract_a)
    lines = [LineItem("basic charge", Decimal(contract_a), "A", tariff.basic_charge_per_10a / 10, basic)]
    for i, (tier, kwh) in enumerate(tariff.energy_charge_lines(import_kwh), start=1):
        lines.append(LineItem(f"energy tier {i}", kwh, "kWh", tier.price_per_kwh, tier.price_per_kwh * kwh))
    lines += fuel_adjustment_line(tariff.fuel_adjustment_rate(month), import_kwh)
    rate = tariff.surcharge_rate(month)
    if rate and import_kwh:
        lines.append(LineItem("renewable surcharge", import_kwh, "kWh", rate, rate * import_kwh))
    return _finish(site_id, month, currency, lines, export_kwh, import_kwh, buyback, rounding)


def office_bill(site_id: str, month: date, import_wh: Sequence[int], export_wh: Sequence[int],
                tariff: OfficeTariff | TimeOfUseTariff, slot_minutes: int, buyback: Buyback | None, currency: str,
                ratchet_kw: Decimal | None = None, rounding: str = "down",
                slot_starts: Sequence[datetime] | None = None) -> Bill:
    """Bill of the office: demand charge on the month's peak slot (or ``ratchet_kw`` if higher)
    plus energy charge (seasonal, or per time band of a time-of-use contract: then ``slot_starts``,
    local, one per slot, are required), fuel-cost adjustment and surcharge."""
    import_kwh = _kwh(import_wh, "import_wh")
    export_kwh = _kwh(export_wh, "export_wh")
    peak_kw = peak_demand_kw(list(import_wh), slot_minutes)
    if ratchet_kw is not None:
        peak_kw = max(peak_kw, ratchet_kw)
    demand_rate = tariff.demand_charge_per_kw * tariff.demand_factor()
    lines = [LineItem("demand charge", peak_kw, "kW", demand_rate, demand_rate * peak_kw)]
    lines += _energy_lines(tariff, month, import_wh, import_kwh, slot_starts)
    lines += fuel_adjustment_line(tariff.fuel_adjustment_rate(month), import_kwh)
    surcharge = tariff.surcharge_rate(month)
    if surcharge and import_kwh:
        lines.append(LineItem("renewable surcharge", import_kwh, "kWh", surcharge, surcharge * import_kwh))
    return _finish(site_id, month, currency, lines, export_kwh, import_kwh, buyback, rounding)


def _energy_lines(tariff: OfficeTariff | TimeOfUseTariff, month: date, import_wh: Sequence[int],
                  import_kwh: Decimal, slot_starts: Sequence[datetime] | None) -> list[LineItem]:
    """One energy line at the month's rate, or one per time band of a time-of-use contract."""
    if isinstance(tariff, TimeOfUseTariff):
        if slot_starts is None:
            raise ValueError("slot_starts: required for a time-of-use contract (one local start per slot)")
        lines = []
        for band, wh in tariff.energy_by_band(import_wh, slot_starts).items():
            kwh, price = Decimal(wh) / Decimal(1000), tariff.band_price(band)
            if kwh:
                lines.append(LineItem(f"energy charge ({tariff.band_name(band)})", kwh, "kWh", price, price * kwh))
        return lines
    rate = tariff.energy_rate(month)
    return [LineItem("energy charge", import_kwh, "kWh", rate, rate * import_kwh)]
