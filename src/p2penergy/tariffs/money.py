"""Money helpers: a currency's minor unit and rounding to it."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

# ISO 4217 exponents that differ from 2 (the default). Extend as markets are added.
MINOR_UNIT_DIGITS: dict[str, int] = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "KWD": 3, "BHD": 3}

ROUNDING_MODES = {"down": ROUND_DOWN, "half_up": ROUND_HALF_UP}


def minor_unit(currency: str) -> Decimal:
    """Smallest amount of ``currency`` (JPY → 1, EUR → 0.01)."""
    return Decimal(1).scaleb(-MINOR_UNIT_DIGITS.get(currency, 2))


def round_money(amount: Decimal, currency: str, mode: str = "down") -> Decimal:
    """Round ``amount`` to the currency's minor unit; ``down`` truncates toward zero (TEPCO's rule
    for yen bills: fractions of a yen are discarded), ``half_up`` rounds half away from zero."""
    if mode not in ROUNDING_MODES:
        raise ValueError(f"rounding: must be one of {', '.join(ROUNDING_MODES)}, got {mode!r}")
    return amount.quantize(minor_unit(currency), rounding=ROUNDING_MODES[mode])
