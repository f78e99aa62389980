"""The exchange: one book per delivery slot, gate times, and the choice of mechanism.

:class:`ContinuousMarket` runs the continuous double auction (the demonstration's
rules); :class:`CallMarket` collects orders until the gate closes and clears them in
one call auction. Both satisfy :class:`Exchange`, so agents and the simulation use
either unchanged. The exchange has no clock: every command carries its time ``now``
(an order's own ``submitted_at`` unless the caller — the engine, with the exchange's
clock — passes ``now``), and nothing changes when a command is rejected.

Books, gates and closed slots are keyed by the slot's UTC start (:func:`to_utc`): a slot
given in any zone or offset names the same book as its instant does.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from p2penergy.market.book import Resting, SiteLimitMap, SlotBook, modified
from p2penergy.market.errors import OrderError, OrderRejected
from p2penergy.market.orders import BUY, Order, check_against, check_slot, checked_ticks, price_ticks, priority_order
from p2penergy.market.settings import PAY_AS_BID, PAY_AS_CLEAR, MarketSettings, to_utc
from p2penergy.market.tags import Requirement
from p2penergy.market.trades import Trade, trade_ids


@dataclass(frozen=True, slots=True)
class SlotClose:
    """What closing a slot's book produced: trades made at close, and unfilled orders."""

    slot_start: datetime
    trades: tuple[Trade, ...]
    unfilled: tuple[tuple[Order, int], ...]
    limits: ClearingLimits | None = None
    """The network limits a call auction cleared within (what its orders could reach), else ``None``."""


class ClearingLimits(Protocol):
    """Constraints a call auction clears within (the feeder's: ``network/auction.py`` ``SlotLimits``)."""

    def for_orders(self, orders: Sequence[Order]) -> ClearingLimits | None:
        """The part these orders could reach; ``None``: none (the auction clears as without)."""
        ...

    def clear(self, orders: Sequence[Order], settings: MarketSettings, slot_start: datetime, pricing: str,
              next_id: Callable[[], str]) -> Any:
        """The auction's :class:`~p2penergy.market.call_auction.Clearing` within the limits."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


class Exchange(Protocol):
    """What agents and the simulation need from a market, whatever its mechanism."""

    settings: MarketSettings

    last_self_trade_cancels: tuple[tuple[str, int], ...]
    """``(order_id, open Wh)`` of resting orders that the last submit or modify cancelled by
    self-trade prevention (their owner is the one who submitted)."""

    def submit(self, order: Order, now: datetime | None = None) -> list[Trade]: ...

    def cancel(self, order_id: str, participant: str, now: datetime) -> int: ...

    def modify(self, order_id: str, participant: str, energy_wh: int, price_per_kwh: Decimal,
               now: datetime) -> list[Trade]: ...

    def remaining_wh(self, order_id: str) -> int: ...

    def close(self, slot_start: datetime, limits: ClearingLimits | None = None) -> SlotClose:
        """Close the slot's book; ``limits``: network limits a call auction clears within (a CDA takes
        its per-site limits when it is made, and none here)."""
        ...

    def best_bid(self, slot_start: datetime) -> Decimal | None:
        """The slot's highest open buy price, where the mechanism makes it public (else ``None``)."""
        ...


class _Gates:
    """Shared bookkeeping: gate checks, id uniqueness and ownership."""

    def __init__(self, settings: MarketSettings) -> None:
        self.settings = settings
        self._slot_of: dict[str, datetime] = {}  # every id this exchange accepted, and its slot
        self._closed: set[datetime] = set()
        self._windows: dict[datetime, tuple[datetime, datetime]] = {}
        # checks already passed, cached: a price (keyed by its text: hashing a new Decimal costs
        # several times as much) in ticks, and a requirement list's highest premium in ticks
        self._price_ticks: dict[str, int] = {}
        self._top_premium_ticks: dict[tuple[Requirement, ...], int] = {}
        # C-level counters: time priority numbers and trade ids ("t1", "t2", ...)
        self._next_seq = itertools.count(1).__next__
        self._next_trade_id = trade_ids()
        self.last_self_trade_cancels: tuple[tuple[str, int], ...] = ()

    def _admit(self, order: Order, now: datetime | None) -> int:
        """Validate ``order`` for this market and its gate at ``now`` (default: the order's
        ``submitted_at``); return its price in ticks.

        The checks of :func:`check_against`, each done once: prices of plain orders and
        slots (with their gate windows) already checked are cached.
        """
        ticks = self._ticks(order)
        window = self._windows.get(order.slot_start)
        if window is None:
            check_slot(order.slot_start, self.settings)
            s = self.settings
            window = self._windows[order.slot_start] = (s.gate_open(order.slot_start), s.gate_close(order.slot_start))
        if order.order_id in self._slot_of:
            raise OrderRejected(order.order_id, "id", "already used on this exchange")
        at = order.submitted_at if now is None else now
        if not window[0] <= at < window[1] or order.slot_start in self._closed:
            self._check_gate(order.order_id, order.slot_start, at)
        return ticks

    def _ticks(self, order: Order) -> int:
        """The order's price in ticks after :func:`price_ticks`' checks, from cached parts: the
        price's (tick grid, band) once per price, the premiums' (tick grid) once per requirement
        list, then price + highest premium within the band. A failing order is checked again by
        :func:`price_ticks` itself, so the error is exactly the one it gives."""
        ticks = self._price_ticks.get(str(order.price_per_kwh))
        if ticks is None:
            ticks = self._price_ticks[str(order.price_per_kwh)] = checked_ticks(order.price_per_kwh, self.settings)
        reqs = order.requirements
        if reqs:
            top = self._top_premium_ticks.get(reqs)
            if top is None:
                premiums = [self.settings.ticks_on_grid(r.premium_per_kwh) for r in reqs]
                top = -1 if None in premiums else max(premiums)  # type: ignore[type-var]
                if top >= 0:
                    self._top_premium_ticks[reqs] = top
            if top < 0 or ticks + top > self.settings.band_ticks[1]:
                price_ticks(order, self.settings)  # raises the error naming the premium
                raise AssertionError("price_ticks accepted what its cached parts refused")
        return ticks

    def _check_gate(self, order_id: str, slot_start: datetime, now: datetime) -> None:
        s = self.settings
        if now.tzinfo is None:
            raise OrderError("submitted_at", "a timezone-aware datetime")
        if slot_start in self._closed or not s.gate_is_open(slot_start, now):
            raise OrderRejected(
                order_id, "submitted_at",
                f"the gate for slot {slot_start.isoformat()} is open from "
                f"{s.gate_open(slot_start).isoformat()} until {s.gate_close(slot_start).isoformat()}; "
                f"got {now.isoformat()}",
            )

    def _owned(self, order_id: str, participant: str, order: Order | None) -> Order:
        if order is None:
            raise OrderRejected(order_id, "id", "no open order with this id")
        if order.participant != participant:
            raise OrderRejected(order_id, "participant", "only the order's owner may change it")
        return order


class ContinuousMarket(_Gates):
    """Continuous double auction with price-time priority, per slot."""

    def __init__(self, settings: MarketSettings, limits: SiteLimitMap | None = None) -> None:
        """``limits``: participants' P2P import/export limits per slot (:class:`SiteLimitsWh`, the
        feeder's hosting capacity), checked at matching; None or empty: no limits."""
        super().__init__(settings)
        self.limits = dict(limits) if limits else None
        self._books: dict[datetime, SlotBook] = {}
        self._last_book: SlotBook | None = None  # the book of the last order accepted

    def book(self, slot_start: datetime) -> SlotBook:
        """The book of a slot (an empty one, not kept, if no order for it was accepted)."""
        slot_start = to_utc(slot_start, "slot_start")
        book = self._books.get(slot_start)
        return self._new_book(slot_start) if book is None else book

    def _new_book(self, slot_start: datetime) -> SlotBook:
        s = self.settings
        return SlotBook(s, slot_start, self._next_seq, self._next_trade_id,
                        gate=(s.gate_open(slot_start), s.gate_close(slot_start)), limits=self.limits)

    def submit(self, order: Order, now: datetime | None = None) -> list[Trade]:
        """Validate, match at once against resting orders, rest any remainder.

        An order for a slot that already has a book needs no slot check (the book exists only
        after :func:`check_slot` passed for it, and its slot is not closed): the price checks
        (cached), then as in ``_admit`` the id and the gate.
        """
        slot = order.slot_start
        book = self._last_book
        if book is None or slot != book.slot_start:  # comparing datetimes is cheaper than hashing a new one
            book = self._books.get(slot)
        if book is None:  # the full checks
            ticks = self._admit(order, now)
            book = self._books[slot] = self._new_book(slot)
        else:
            ticks = None if order.requirements else self._price_ticks.get(str(order.price_per_kwh))
            if ticks is None:
                ticks = self._ticks(order)
            if order.order_id in self._slot_of:
                raise OrderRejected(order.order_id, "id", "already used on this exchange")
            at = order.submitted_at if now is None else now
            if not book.gate_open <= at < book.gate_close:
                self._check_gate(order.order_id, slot, at)
        self._slot_of[order.order_id] = slot
        self._last_book = book
        cancels = book.self_trade_cancels
        before = len(cancels)
        trades = book.buy(order, ticks) if order.side == BUY else book.sell(order, ticks)
        self.last_self_trade_cancels = tuple(cancels[before:]) if len(cancels) > before else ()
        return trades

    def _find(self, order_id: str) -> tuple[SlotBook | None, Resting | None]:
        slot = self._slot_of.get(order_id)
        book = self._books.get(slot) if slot is not None else None
        return book, (book.get(order_id) if book is not None else None)

    def cancel(self, order_id: str, participant: str, now: datetime) -> int:
        """Cancel a resting order; returns the Wh that were still open."""
        book, resting = self._find(order_id)
        order = self._owned(order_id, participant, resting.order if resting else None)
        self._check_gate(order_id, order.slot_start, now)
        assert book is not None and resting is not None
        book.cancel(order_id)
        return resting.remaining_wh

    def modify(self, order_id: str, participant: str, energy_wh: int, price_per_kwh: Decimal,
               now: datetime) -> list[Trade]:
        """Set a resting order's open energy and price.

        Lowering only the energy keeps time priority; raising it or changing the price
        re-submits the order (same id) at the back of the queue, and it may trade at once.
        """
        book, resting = self._find(order_id)
        order = self._owned(order_id, participant, resting.order if resting else None)
        self._check_gate(order_id, order.slot_start, now)
        assert book is not None and resting is not None
        new = modified(order, energy_wh, price_per_kwh, now)  # validates energy and price type
        ticks = check_against(new, self.settings)
        self.last_self_trade_cancels = ()
        if price_per_kwh == order.price_per_kwh and energy_wh <= resting.remaining_wh:
            book.reduce(order_id, energy_wh)
            return []
        book.cancel(order_id)
        before = len(book.self_trade_cancels)
        trades = book.submit(new, ticks)
        if len(book.self_trade_cancels) > before:
            self.last_self_trade_cancels = tuple(book.self_trade_cancels[before:])
        return trades

    def remaining_wh(self, order_id: str) -> int:
        _, resting = self._find(order_id)
        return resting.remaining_wh if resting else 0

    def best_bid(self, slot_start: datetime) -> Decimal | None:
        """The highest resting buy price of the slot's book (public depth), or ``None``."""
        book = self._books.get(slot_start)
        return book.best_bid() if book is not None else None

    def close(self, slot_start: datetime, limits: ClearingLimits | None = None) -> SlotClose:
        """Close the slot's book: nothing more trades; unfilled orders are returned. ``limits`` must be
        ``None``: the CDA matched within its per-site limits (given when it was made) as orders came."""
        if limits is not None:
            raise ValueError("limits: a continuous double auction clears nothing at close; its per-site "
                             "limits are given when it is made (make_exchange(..., limits=...))")
        slot_start = to_utc(slot_start, "slot_start")
        self._closed.add(slot_start)
        book = self._books.pop(slot_start, None)
        if book is self._last_book:
            self._last_book = None
        unfilled = tuple((r.order, r.remaining_wh) for r in book.resting()) if book else ()
        return SlotClose(slot_start, (), unfilled)


class CallMarket(_Gates):
    """Periodic call auction: orders are collected per slot and cleared at gate close."""

    def __init__(self, settings: MarketSettings, pricing: str = PAY_AS_CLEAR) -> None:
        super().__init__(settings)
        if pricing not in (PAY_AS_CLEAR, PAY_AS_BID):
            raise ValueError(f"pricing must be {PAY_AS_CLEAR!r} or {PAY_AS_BID!r}")
        self.pricing = pricing
        self._orders: dict[datetime, dict[str, Order]] = {}

    def submit(self, order: Order, now: datetime | None = None) -> list[Trade]:
        """Collect ``order`` for its slot's auction. Ties in price are broken by the time the
        exchange received it (``now``), never by the ``submitted_at`` its sender wrote."""
        self._admit(order, now)
        self._slot_of[order.order_id] = order.slot_start
        if now is not None and now != order.submitted_at:
            order = replace(order, submitted_at=now)
        self._orders.setdefault(order.slot_start, {})[order.order_id] = order
        return []

    def _open(self, order_id: str) -> Order | None:
        slot = self._slot_of.get(order_id)
        return self._orders.get(slot, {}).get(order_id) if slot is not None else None

    def cancel(self, order_id: str, participant: str, now: datetime) -> int:
        order = self._owned(order_id, participant, self._open(order_id))
        self._check_gate(order_id, order.slot_start, now)
        del self._orders[order.slot_start][order_id]
        return order.energy_wh

    def modify(self, order_id: str, participant: str, energy_wh: int, price_per_kwh: Decimal,
               now: datetime) -> list[Trade]:
        order = self._owned(order_id, participant, self._open(order_id))
        self._check_gate(order_id, order.slot_start, now)
        new = modified(order, energy_wh, price_per_kwh, now)
        check_against(new, self.settings)
        keep_time = price_per_kwh == order.price_per_kwh and energy_wh <= order.energy_wh
        book = self._orders[order.slot_start]
        del book[order_id]
        book[order_id] = modified(order, energy_wh, price_per_kwh, order.submitted_at if keep_time else now)
        return []

    def remaining_wh(self, order_id: str) -> int:
        order = self._open(order_id)
        return order.energy_wh if order else 0

    def best_bid(self, slot_start: datetime) -> Decimal | None:
        """``None``: a call auction's orders are sealed until it clears."""
        return None

    def close(self, slot_start: datetime, limits: ClearingLimits | None = None) -> SlotClose:
        """Run the slot's call auction; within ``limits`` (the feeder's) where its orders reach them."""
        from p2penergy.market.call_auction import clear_call  # numpy and HiGHS only when a call auction runs
        slot_start = to_utc(slot_start, "slot_start")
        self._closed.add(slot_start)
        orders = list(self._orders.pop(slot_start, {}).values())
        if not orders:
            return SlotClose(slot_start, (), ())
        limits = limits.for_orders(orders) if limits is not None else None
        clear = limits.clear if limits is not None else clear_call
        clearing = clear(orders, self.settings, slot_start, self.pricing, self._next_trade_id)
        unfilled = tuple(
            (o, o.energy_wh - clearing.filled_wh.get(o.order_id, 0))
            for o in priority_order(orders)
            if clearing.filled_wh.get(o.order_id, 0) < o.energy_wh
        )
        return SlotClose(slot_start, clearing.trades, unfilled, limits)


def make_exchange(settings: MarketSettings, mechanism: str | None = None,
                  limits: SiteLimitMap | None = None) -> Exchange:
    """The exchange for ``mechanism`` (``cda``, ``pay-as-clear`` or ``pay-as-bid``); ``limits``: the
    CDA's per-site import/export limits per slot (:class:`ContinuousMarket`)."""
    mechanism = mechanism or settings.mechanism
    if mechanism == "cda":
        return ContinuousMarket(settings, limits)
    if limits:
        raise OrderError("limits", f"per-site limits apply to the cda only; got mechanism {mechanism!r}")
    if mechanism in (PAY_AS_CLEAR, PAY_AS_BID):
        return CallMarket(settings, mechanism)
    raise OrderError("mechanism", f"one of cda, pay-as-clear, pay-as-bid; got {mechanism!r}")
