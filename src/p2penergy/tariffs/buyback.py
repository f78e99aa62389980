"""Buyback of exported energy by the utility: feed-in tariff (FIT) or post-FIT price."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Buyback:
    """Price [currency/kWh] the utility pays for exported energy under scheme ``scheme``."""

    scheme: str
    price_per_kwh: Decimal

    def __post_init__(self) -> None:
        if self.price_per_kwh < 0:
            raise ValueError(f"buyback.{self.scheme}: price must be >= 0, got {self.price_per_kwh}")

    def credit(self, energy_kwh: Decimal) -> Decimal:
        """Unrounded payment for ``energy_kwh`` exported."""
        if energy_kwh < 0:
            raise ValueError(f"energy_kwh: must be >= 0, got {energy_kwh}")
        return self.price_per_kwh * energy_kwh


def buyback_for(scheme: str, schemes: Mapping[str, Decimal]) -> Buyback:
    """Look a scheme up by name (e.g. ``fit-fy2019``, ``post-fit``); the error lists known names."""
    if scheme not in schemes:
        raise ValueError(f"buyback: unknown scheme {scheme!r}; known: {', '.join(sorted(schemes))}")
    return Buyback(scheme, schemes[scheme])
