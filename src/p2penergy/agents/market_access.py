"""What an agent can do on an exchange — the same whether in-process or over HTTP.

An agent only ever sees a :class:`MarketAccess`: the simulation hands it an
:class:`InProcessAccess` around the exchange object; the live service's client
(``p2penergy agent --url``) implements the same protocol over HTTP. The agent cannot
tell which it is talking to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from p2penergy.market import Exchange, MarketSettings, Order, OrderRejected, Trade


@dataclass(slots=True)
class OpenOrder:
    """One of my orders still open on the exchange."""

    order: Order
    remaining_wh: int


class MarketAccess(Protocol):
    """An agent's view of the exchange: its own orders and public prices only."""

    settings: MarketSettings

    def submit(self, order: Order) -> list[Trade]: ...

    def cancel(self, order_id: str, now: datetime) -> int: ...

    def open_orders(self) -> dict[str, OpenOrder]: ...

    def position(self, slot_start: datetime) -> tuple[int, int]:
        """Wh I have bought and sold so far for the slot (my trades)."""
        ...

    def reference_price(self) -> Decimal | None:
        """Volume-weighted price of recent public trades, or ``None`` before any."""
        ...

    def best_bid(self, slot_start: datetime) -> Decimal | None:
        """The slot's highest open buy price (public depth), or ``None`` (none, or sealed bids)."""
        ...


class InProcessAccess:
    """:class:`MarketAccess` on an in-process :class:`Exchange` for one participant.

    ``on_order`` / ``on_cancel`` let the owner (the simulation) journal and sign what the
    agent does; ``prices`` is the shared public price tape.
    """

    def __init__(
        self,
        exchange: Exchange,
        participant: str,
        prices: PriceTape,
        on_order: Callable[[Order], None] | None = None,
        on_cancel: Callable[[str, str, datetime], None] | None = None,
        fills: Fills | None = None,
    ) -> None:
        self.settings = exchange.settings
        self._fills = fills if fills is not None else Fills()
        self._exchange = exchange
        self.participant = participant
        self._prices = prices
        self._mine: dict[str, Order] = {}
        self._on_order = on_order
        self._on_cancel = on_cancel

    def submit(self, order: Order) -> list[Trade]:
        if order.participant != self.participant:
            raise OrderRejected(order.order_id, "participant", f"must be {self.participant!r}")
        trades = self._exchange.submit(order)
        if self._on_order is not None:
            self._on_order(order)
        self._mine[order.order_id] = order
        self._prices.record(trades)
        self._fills.record(trades)
        return trades

    def cancel(self, order_id: str, now: datetime) -> int:
        left = self._exchange.cancel(order_id, self.participant, now)
        self._mine.pop(order_id, None)
        if self._on_cancel is not None:
            self._on_cancel(order_id, self.participant, now)
        return left

    def open_orders(self) -> dict[str, OpenOrder]:
        result = {}
        for oid, order in list(self._mine.items()):
            left = self._exchange.remaining_wh(oid)
            if left > 0:
                result[oid] = OpenOrder(order, left)
            else:
                del self._mine[oid]
        return result

    def position(self, slot_start: datetime) -> tuple[int, int]:
        return self._fills.of(self.participant, slot_start)

    def reference_price(self) -> Decimal | None:
        return self._prices.reference_price()

    def best_bid(self, slot_start: datetime) -> Decimal | None:
        return self._exchange.best_bid(slot_start)


class Fills:
    """Wh bought and sold per participant and slot, from every trade the exchange reports."""

    def __init__(self) -> None:
        self._wh: dict[tuple[str, datetime], list[int]] = {}

    def record(self, trades: list[Trade]) -> None:
        for t in trades:
            self._wh.setdefault((t.buyer, t.slot_start), [0, 0])[0] += t.energy_wh
            self._wh.setdefault((t.seller, t.slot_start), [0, 0])[1] += t.energy_wh

    def of(self, participant: str, slot_start: datetime) -> tuple[int, int]:
        bought, sold = self._wh.get((participant, slot_start), (0, 0))
        return bought, sold


class PriceTape:
    """Public trade prices: an exponentially weighted volume-weighted price.

    ``half_life_wh`` sets how fast old trades fade: after that much newer volume, a
    trade's weight has halved. ``opening_price`` is the public reference before the first
    trade (the simulation uses the midpoint of the utility's retail and buyback prices).
    """

    def __init__(self, half_life_wh: int = 50_000, opening_price: Decimal | None = None) -> None:
        self._opening = opening_price
        self._decay = 0.5 ** (1 / half_life_wh)
        self._weighted = 0.0
        self._volume = 0.0

    def record(self, trades: list[Trade]) -> None:
        for t in trades:
            fade = self._decay ** t.energy_wh
            self._weighted = self._weighted * fade + float(t.price_per_kwh) * t.energy_wh
            self._volume = self._volume * fade + t.energy_wh

    def reference_price(self) -> Decimal | None:
        """The faded volume-weighted price; before any trade, the opening price (if given)."""
        if self._volume <= 0:
            return self._opening
        return Decimal(str(round(self._weighted / self._volume, 4)))
