"""Grid fees on P2P trades by how far a trade's energy travels over the feeder (issue 17).

A P2P trade is a contract, but its energy uses the distribution network: a market may charge
the buyer a network fee per kWh by the trade's **distance class** — both parties on the
``same_bus``, on the ``same_feeder`` (connected without passing a transformer), or
``through_transformer`` (anything else, and every trade when the scenario has no feeder).
The fees are market settings (``[market.grid_fees]``, docs/market.md), zero by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from p2penergy.market.errors import MarketConfigError

DISTANCES = ("same_bus", "same_feeder", "through_transformer")
"""Distance classes of a trade, nearest first."""


@dataclass(frozen=True, slots=True)
class GridFees:
    """Network fee per kWh of P2P energy, by distance class [currency/kWh], paid by the buyer."""

    same_bus_per_kwh: Decimal = Decimal(0)
    same_feeder_per_kwh: Decimal = Decimal(0)
    through_transformer_per_kwh: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        for name in self.keys():
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise MarketConfigError(f"grid_fees.{name}", f"a decimal of zero or more, got {value!r}")

    @staticmethod
    def keys() -> tuple[str, ...]:
        return tuple(f"{d}_per_kwh" for d in DISTANCES)

    @property
    def charged(self) -> bool:
        """Whether any fee is above zero."""
        return any(getattr(self, k) > 0 for k in self.keys())

    @property
    def worst_per_kwh(self) -> Decimal:
        """The highest fee of any distance class: what a buyer who does not know its seller may owe."""
        return max(getattr(self, k) for k in self.keys())

    def per_kwh(self, distance: str) -> Decimal:
        if distance not in DISTANCES:
            raise ValueError(f"distance: one of {', '.join(DISTANCES)}, got {distance!r}")
        return getattr(self, f"{distance}_per_kwh")  # type: ignore[no-any-return]

    def fee(self, distance: str, energy_wh: int) -> Decimal:
        """The fee of ``energy_wh`` travelling ``distance`` (exact)."""
        return self.per_kwh(distance) * energy_wh / 1000

    @classmethod
    def from_mapping(cls, data: Any) -> GridFees:
        if not isinstance(data, dict):
            raise MarketConfigError("grid_fees", f"a table with {', '.join(cls.keys())}")
        unknown = sorted(set(data) - set(cls.keys()))
        if unknown:
            raise MarketConfigError(f"grid_fees.{unknown[0]}", f"one of {', '.join(cls.keys())} (it is not one)")
        values = {}
        for key, value in data.items():
            try:
                values[key] = Decimal(str(value)) if isinstance(value, (str, int)) else None
            except ArithmeticError:
                values[key] = None
            if values[key] is None or not values[key].is_finite():  # type: ignore[union-attr]
                raise MarketConfigError(f"grid_fees.{key}", f"a decimal as a string such as \"1.50\", got {value!r}")
        return cls(**values)

    def to_mapping(self) -> dict[str, str]:
        return {k: str(getattr(self, k)) for k in self.keys()}
