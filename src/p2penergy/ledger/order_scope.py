"""Order ids scoped per participant: the engine's view of the market's exchange.

A participant names its own orders. Two participants may both name an order ``o-1``; a
cancel or modify names only the signer's own order; and no refusal depends on another
participant's ids (a duplicate id is one the signer itself used; a cancel of someone else's
id finds no order, exactly as a cancel of an id nobody used). So nobody can take an agent's
predictable next id first, nor probe which ids others use.

The market core (``market/exchange.py``) keys orders by one id per exchange. This layer hands
it the key ``order_id + NUL + participant`` and gives back every result — trades, self-trade
cancels, refusals, unfilled orders — with the participants' own ids, so nothing the engine
journals or reports carries a key. Why a suffix: keys sort as their ids do (NUL is the
smallest code point, and an id may not contain it), so where the market breaks ties by id (a
call auction's submission order at equal times) the scoped exchange decides exactly as one
id space would have, and the simulation's results do not change.

Journals of format 3 were written with one id space per exchange: the engine replays (and
continues) them with ``scoped=False``, where a key is the id itself.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from operator import attrgetter

from p2penergy.market.errors import OrderError, OrderRejected
from p2penergy.market.exchange import ClearingLimits, Exchange, SlotClose
from p2penergy.market.orders import Order
from p2penergy.market.settings import MarketSettings
from p2penergy.market.trades import Trade

SEP = "\x00"
DUPLICATE_ID = "already used by this participant (order ids are each participant's own)"
"""The refusal of an id the signer has used before on this exchange (what another participant
uses is never an obstacle, and so never told)."""


_ORDER_FIELDS = tuple(f.name for f in fields(Order))
assert _ORDER_FIELDS[0] == "order_id", "_with_id passes an order's other fields in order after its id"
_FIELDS_AFTER_ID = attrgetter(*_ORDER_FIELDS[1:])


def _own_id(key: str, participant: str) -> str:
    return key[: len(key) - len(participant) - 1]


def _with_id(order: Order, order_id: str) -> Order:
    """``dataclasses.replace(order, order_id=order_id)`` (the same order, validated the same way),
    built from its fields directly: half of ``replace``'s cost, which looks the fields up again and
    passes them by name, for every order the ledger's exchange receives."""
    return Order(order_id, *_FIELDS_AFTER_ID(order))


class ScopedExchange:
    """The market's exchange with order ids keyed by ``(participant, order_id)``.

    The same commands as :class:`~p2penergy.market.exchange.Exchange`, except that reading an
    order's open energy needs its owner (:meth:`remaining_wh`); :meth:`of` gives one
    participant's view, which is an ``Exchange`` (what an agent's market access holds).
    """

    def __init__(self, market: Exchange, scoped: bool = True) -> None:
        self.market = market
        self.settings: MarketSettings = market.settings
        self.scoped = scoped
        self.last_self_trade_cancels: tuple[tuple[str, int], ...] = ()

    def key(self, participant: str, order_id: str) -> str:
        """The market's id of ``participant``'s order ``order_id``."""
        return order_id + SEP + participant if self.scoped else order_id

    # -- commands ---------------------------------------------------------------------------
    def submit(self, order: Order, now: datetime | None = None) -> list[Trade]:
        market = self.market
        if not self.scoped:
            trades = market.submit(order, now)
            self.last_self_trade_cancels = market.last_self_trade_cancels
            return trades
        if SEP in order.order_id:
            raise OrderError("id", "a string without NUL characters")
        who = order.participant
        try:
            trades = market.submit(_with_id(order, order.order_id + SEP + who), now)
        except OrderRejected as exc:
            raise self._own_refusal(exc, order.order_id, DUPLICATE_ID) from None
        self.last_self_trade_cancels = self._own_cancels(market.last_self_trade_cancels, who)
        return self._own_trades(trades)

    def cancel(self, order_id: str, participant: str, now: datetime) -> int:
        try:
            return self.market.cancel(self.key(participant, order_id), participant, now)
        except OrderRejected as exc:
            raise self._own_refusal(exc, order_id) from None

    def modify(self, order_id: str, participant: str, energy_wh: int, price_per_kwh: Decimal,
               now: datetime) -> list[Trade]:
        market = self.market
        try:
            trades = market.modify(self.key(participant, order_id), participant, energy_wh, price_per_kwh, now)
        except OrderRejected as exc:
            raise self._own_refusal(exc, order_id) from None
        self.last_self_trade_cancels = self._own_cancels(market.last_self_trade_cancels, participant)
        return self._own_trades(trades)

    def close(self, slot_start: datetime, limits: ClearingLimits | None = None) -> SlotClose:
        """Close the slot's book; ``limits``: a call auction's network limits (``CallMarket.close``)."""
        closing = self.market.close(slot_start, limits)
        if not self.scoped:
            return closing
        unfilled = tuple((_with_id(o, _own_id(o.order_id, o.participant)), wh) for o, wh in closing.unfilled)
        return SlotClose(closing.slot_start, tuple(self._own_trades(list(closing.trades))), unfilled, closing.limits)

    # -- reads ------------------------------------------------------------------------------
    def remaining_wh(self, order_id: str, participant: str) -> int:
        """Open Wh of ``participant``'s order ``order_id`` (0 when it has none of that id open)."""
        return self.market.remaining_wh(self.key(participant, order_id))

    def best_bid(self, slot_start: datetime) -> Decimal | None:
        return self.market.best_bid(slot_start)

    def of(self, participant: str) -> ParticipantExchange:
        return ParticipantExchange(self, participant)

    # -- back to the participants' own ids ------------------------------------------------
    def _own_trades(self, trades: list[Trade]) -> list[Trade]:
        if not self.scoped or not trades:
            return trades
        return [t._replace(buy_id=_own_id(t.buy_id, t.buyer), sell_id=_own_id(t.sell_id, t.seller)) for t in trades]

    def _own_cancels(self, cancels: tuple[tuple[str, int], ...], owner: str) -> tuple[tuple[str, int], ...]:
        if not self.scoped or not cancels:
            return cancels
        return tuple((_own_id(key, owner), wh) for key, wh in cancels)

    def _own_refusal(self, exc: OrderRejected, order_id: str, duplicate: str | None = None) -> OrderRejected:
        if not self.scoped:
            return exc
        reason = duplicate if duplicate is not None and exc.field == "id" else exc.reason
        return OrderRejected(order_id, exc.field, reason)


class ParticipantExchange:
    """One participant's view of a :class:`ScopedExchange`: an ``Exchange`` whose ids are its own."""

    def __init__(self, scoped: ScopedExchange, participant: str) -> None:
        self._scoped = scoped
        self.participant = participant
        self.settings = scoped.settings

    @property
    def last_self_trade_cancels(self) -> tuple[tuple[str, int], ...]:
        return self._scoped.last_self_trade_cancels

    def submit(self, order: Order, now: datetime | None = None) -> list[Trade]:
        if order.participant != self.participant:
            raise OrderRejected(order.order_id, "participant", f"must be {self.participant!r}")
        return self._scoped.submit(order, now)

    def cancel(self, order_id: str, participant: str, now: datetime) -> int:
        return self._scoped.cancel(order_id, participant, now)

    def modify(self, order_id: str, participant: str, energy_wh: int, price_per_kwh: Decimal,
               now: datetime) -> list[Trade]:
        return self._scoped.modify(order_id, participant, energy_wh, price_per_kwh, now)

    def remaining_wh(self, order_id: str) -> int:
        return self._scoped.remaining_wh(order_id, self.participant)

    def close(self, slot_start: datetime) -> SlotClose:
        return self._scoped.close(slot_start)

    def best_bid(self, slot_start: datetime) -> Decimal | None:
        return self._scoped.best_bid(slot_start)


__all__ = ["DUPLICATE_ID", "ParticipantExchange", "ScopedExchange"]
