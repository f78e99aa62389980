"""Clear a batch of orders (for example an order file) with a chosen mechanism."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from p2penergy.market.exchange import ContinuousMarket
from p2penergy.market.orders import Order, priority_order
from p2penergy.market.settings import MECHANISMS, PAY_AS_CLEAR, MarketSettings
from p2penergy.market.tags import Tag
from p2penergy.market.trades import Trade, TradeSummary


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Trades of every slot in execution order, and pay-as-clear prices per slot and tag."""

    mechanism: str
    trades: tuple[Trade, ...]
    clearing_prices: dict[datetime, dict[Tag, Decimal]]

    @property
    def summary(self) -> TradeSummary:
        return TradeSummary.of(self.trades)

    @property
    def clearing_price_per_kwh(self) -> Decimal | None:
        """The uniform price when one slot and one tag class traded, else ``None``."""
        prices = [p for per_slot in self.clearing_prices.values() for p in per_slot.values()]
        return prices[0] if len(prices) == 1 else None


def clear_batch(orders: Sequence[Order], settings: MarketSettings, mechanism: str = "cda") -> BatchResult:
    """CDA: submit in ``submitted_at`` order (ties keep input order), close every slot.
    Call auctions: one clearing per slot with all its orders.

    Raises the market's errors unchanged (a rejected order names its id and field).
    """
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism must be one of {MECHANISMS}, got {mechanism!r}")
    trades: list[Trade] = []
    prices: dict[datetime, dict[Tag, Decimal]] = {}
    if mechanism == "cda":
        market = ContinuousMarket(settings)
        for order in sorted(orders, key=lambda o: o.submitted_at):
            trades += market.submit(order)
        return BatchResult(mechanism, tuple(trades), prices)
    from p2penergy.market.call_auction import clear_call  # numpy and HiGHS only for call auctions

    by_slot: dict[datetime, list[Order]] = {}
    for order in priority_order(orders):
        by_slot.setdefault(order.slot_start, []).append(order)
    counter = iter(range(1, 1 << 62))
    for slot in sorted(by_slot):
        clearing = clear_call(by_slot[slot], settings, slot, mechanism, lambda: f"t{next(counter)}")
        trades += clearing.trades
        if mechanism == PAY_AS_CLEAR and clearing.clearing_prices:
            prices[slot] = clearing.clearing_prices
    return BatchResult(mechanism, tuple(trades), prices)
