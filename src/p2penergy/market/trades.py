"""Trades and their summary. Money is exact: ``energy_wh * price_per_kwh / 1000``."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from p2penergy.market.tags import Tag

WH_PER_KWH = Decimal(1000)


def trade_ids(prefix: str = "t") -> Callable[[], str]:
    """A counter of trade ids, ``t1``, ``t2``, ...: each call returns the next. All in C (``str`` of
    the count, then the prefix added): about half the cost of formatting each id (the CDA makes one
    per fill)."""
    return map(prefix.__add__, map(str, itertools.count(1))).__next__


class TickPrices(dict[int, Decimal]):
    """Exact prices by ticks, each built once (``tick * ticks``): trades share the Decimal."""

    def __init__(self, tick: Decimal) -> None:
        super().__init__()
        self.tick = tick

    def __missing__(self, ticks: int) -> Decimal:
        price = self[ticks] = self.tick * ticks
        return price


class Trade(NamedTuple):
    """Energy delivered in one slot from a seller to a buyer at one price (immutable).

    A ``NamedTuple`` rather than a frozen dataclass: the book makes one per fill and a
    frozen dataclass costs about three times as much to construct (benchmarks/).

    ``price_per_kwh`` is what the buyer pays and the seller receives per kWh.
    ``premium_per_kwh`` is the part of it above the buyer's base price — paid only
    because the energy met a requirement with a premium (0 <= premium <= that
    requirement's premium). ``buyer_limit_per_kwh`` / ``seller_limit_per_kwh`` are the
    two sides' limits for this energy; welfare is their difference times the energy.
    ``tag`` is the origin of the energy; ``preference_level`` is the index of the
    buyer's requirement it met (0 = most preferred).
    """

    trade_id: str
    slot_start: datetime
    buy_id: str
    sell_id: str
    buyer: str
    seller: str
    energy_wh: int
    price_per_kwh: Decimal
    premium_per_kwh: Decimal
    tag: Tag
    preference_level: int
    buyer_limit_per_kwh: Decimal
    seller_limit_per_kwh: Decimal

    @property
    def amount(self) -> Decimal:
        """Money the buyer pays the seller, exact, in the market's currency."""
        return self.energy_wh * self.price_per_kwh / WH_PER_KWH

    @property
    def welfare(self) -> Decimal:
        """Gains from trade: (buyer limit - seller limit) * energy, exact."""
        return self.energy_wh * (self.buyer_limit_per_kwh - self.seller_limit_per_kwh) / WH_PER_KWH

    def as_dict(self) -> dict[str, object]:
        return {
            "trade_id": self.trade_id,
            "slot_start": self.slot_start.isoformat(),
            "buy_id": self.buy_id,
            "sell_id": self.sell_id,
            "buyer": self.buyer,
            "seller": self.seller,
            "energy_wh": self.energy_wh,
            "price_per_kwh": str(self.price_per_kwh),
            "premium_per_kwh": str(self.premium_per_kwh),
            "attributes": self.tag.as_dict(),
            "preference_level": self.preference_level,
        }


@dataclass(frozen=True, slots=True)
class TradeSummary:
    """Volume (Wh), volume-weighted price, min/max price and welfare of some trades."""

    count: int
    volume_wh: int
    amount: Decimal
    vwap_per_kwh: Decimal | None
    min_price_per_kwh: Decimal | None
    max_price_per_kwh: Decimal | None
    welfare: Decimal

    @classmethod
    def of(cls, trades: Iterable[Trade]) -> TradeSummary:
        trades = list(trades)
        volume = sum(t.energy_wh for t in trades)
        amount = sum((t.amount for t in trades), Decimal(0))
        welfare = sum((t.welfare for t in trades), Decimal(0))
        prices = [t.price_per_kwh for t in trades]
        return cls(
            count=len(trades),
            volume_wh=volume,
            amount=amount,
            vwap_per_kwh=(amount * WH_PER_KWH / volume) if volume else None,
            min_price_per_kwh=min(prices) if prices else None,
            max_price_per_kwh=max(prices) if prices else None,
            welfare=welfare,
        )
