"""The continuous double auction's order book for one delivery slot.

Matching rules (documented in the README, "Matching rules"):

* An incoming **buy** walks its requirements in order of preference. At level ``i`` it
  may trade with resting sells whose tag meets requirement ``i`` and no earlier one,
  at prices up to ``price + premium_i``; among those, lowest price first, then earliest
  (time priority). Only when level ``i`` has nothing left that crosses does it move to
  level ``i + 1``. Preference therefore beats price: a buyer who prefers producer X
  buys X's energy first even if other energy is cheaper, within its limit for X.
* An incoming **sell** with tag ``t`` may trade with every resting buy that accepts
  ``t``; each such buy's limit for it is ``price + premium`` of the first requirement
  ``t`` meets. Highest limit first, then earliest.
* A crossing order executes at once at the **resting** order's price (for a resting buy,
  its limit for the incoming tag), partially if quantities differ; any rest rests.
* Self-trade prevention: an order never trades with its own participant's resting order;
  that resting order is cancelled instead (listed in ``self_trade_cancels`` with the Wh
  it still had open).
* Site limits (optional, issue 17: the feeder's hosting capacity): a participant with
  :class:`SiteLimitsWh` may buy at most ``import_wh`` and sell at most ``export_wh`` P2P in
  the slot, counted gross (its buys and its sells each on their own). A fill is cut to what
  both parties have left; an order whose participant has nothing left on its side trades no
  more: it stays open (its owner sees it, cancels or modifies it; it is unfilled at close)
  but leaves the matching heaps, and matching moves on to the next order. Participants
  without limits, and books without any, match as before.

Prices are held as integer ticks of the market's tick size; resting orders live in one
heap per tag class (sells) or per requirement list (buys), with lazy deletion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from heapq import heapify, heappop, heappush

from p2penergy.market.orders import BUY, Order
from p2penergy.market.settings import MarketSettings
from p2penergy.market.tags import Requirement, Tag, preference_level
from p2penergy.market.trades import TickPrices, Trade


@dataclass(frozen=True, slots=True)
class SiteLimitsWh:
    """A site's P2P limits in one slot [Wh]: what it may buy (``import_wh``) and sell (``export_wh``)."""

    import_wh: int
    export_wh: int

    def __post_init__(self) -> None:
        for name in ("import_wh", "export_wh"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: a whole number of Wh >= 0, got {value!r}")


SiteLimitMap = dict[str, SiteLimitsWh]
"""Participant id -> its limits per slot; a participant not in it has none."""


def site_limits_to_dict(limits: SiteLimitMap) -> dict[str, dict[str, int]]:
    """``{participant: {"import_wh", "export_wh"}}`` in participant order (as the ledger journals them)."""
    return {pid: {"import_wh": lim.import_wh, "export_wh": lim.export_wh} for pid, lim in sorted(limits.items())}


def site_limits_from_dict(data: object, name: str = "site_limits") -> SiteLimitMap:
    """The inverse of :func:`site_limits_to_dict`; a bad entry raises ``ValueError`` naming it."""
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{name}: a non-empty mapping of participant -> {{import_wh, export_wh}}")
    out: SiteLimitMap = {}
    for pid, entry in data.items():
        if not isinstance(entry, dict) or set(entry) != {"import_wh", "export_wh"}:
            raise ValueError(f"{name}.{pid}: exactly import_wh and export_wh, got {entry!r}")
        try:
            out[str(pid)] = SiteLimitsWh(entry["import_wh"], entry["export_wh"])
        except ValueError as exc:
            raise ValueError(f"{name}.{pid}.{exc}") from exc
    return out


@dataclass(frozen=True, slots=True)
class Resting:
    """A resting order as its book holds it now: remaining Wh, price in ticks, time priority."""

    order: Order
    remaining_wh: int
    ticks: int
    seq: int


Requirements = tuple[Requirement, ...]
TagItems = tuple[tuple[str, str], ...]
Entry = list  # [price key in ticks, seq, open Wh, order]
"""A resting order in its book: ``[key, seq, open Wh, order]``, one list shared by every heap
that holds it. The key is the price in ticks for sells and minus it for buys, so a heap's top
is its best order; ``seq`` (time priority) is unique, so entries never compare further.
An entry whose open Wh is 0 was filled or cancelled: it stays in its heaps until it reaches
a top (lazy deletion)."""
Heap = list[Entry]
_new_trade = tuple.__new__  # Trade(*fields) without its keyword-parsing ``__new__``: one per fill


def _view(entry: Entry) -> Resting:
    key, seq, open_wh, order = entry
    return Resting(order, open_wh, key if order.side != BUY else -key, seq)


class SlotBook:
    """Continuous double auction for one slot. Pure: no clock, no I/O.

    ``next_seq`` and ``next_trade_id`` are supplied by the owner so that time priority
    and trade ids are consistent across slots.
    """

    def __init__(
        self,
        settings: MarketSettings,
        slot_start: datetime,
        next_seq: Callable[[], int],
        next_trade_id: Callable[[], str],
        gate: tuple[datetime, datetime] | None = None,
        limits: SiteLimitMap | None = None,
    ) -> None:
        self.settings = settings
        # what each limited participant may still buy / sell in this slot [Wh] (None: no limits)
        self._left: dict[str, list[int]] | None = (
            {pid: [lim.import_wh, lim.export_wh] for pid, lim in limits.items()} if limits else None)
        self.slot_start = slot_start
        # the slot's gate window (UTC), kept here for the exchange's per-order gate check
        self.gate_open, self.gate_close = gate or (settings.gate_open(slot_start), settings.gate_close(slot_start))
        self._next_seq = next_seq
        self._next_trade_id = next_trade_id
        self._tick = settings.price_tick_per_kwh
        self._live: dict[str, Entry] = {}
        # sells by tag class, keyed by the tag's items: hashed and compared in C (an order's Tag is
        # often a new object equal to the class's — the service, an order file, a journal replay —
        # and Tag's __eq__ is a Python call)
        self._sells: dict[TagItems, Heap] = {}
        self._tags: dict[TagItems, Tag] = {}
        self._buys: dict[Requirements, Heap] = {}
        # every resting sell in one heap, built once some buy accepts every tag class at one level
        self._all_sells: Heap | None = None
        # premium ticks per requirement list: levels -> premium ticks
        self._premium_ticks: dict[Requirements, tuple[int, ...]] = {}
        # (requirements, tag) -> level or None; filled lazily
        self._levels: dict[tuple[Requirements, Tag], int | None] = {}
        # matching plans, rebuilt only when a new tag class or requirement list appears
        self._buy_plans: dict[Requirements, list[tuple[int, int, list[Heap]]]] = {}
        self._sell_plans: dict[TagItems, list[tuple[Heap, int, int]]] = {}
        self._prices = TickPrices(self._tick)
        self.self_trade_cancels: list[tuple[str, int]] = []  # (order id, open Wh), in order

    # -- queries --------------------------------------------------------------------
    def __contains__(self, order_id: str) -> bool:
        return order_id in self._live

    def __len__(self) -> int:
        return len(self._live)

    def resting(self) -> Iterator[Resting]:
        """Live resting orders in submission order."""
        return iter(sorted((_view(e) for e in self._live.values()), key=lambda r: r.seq))

    def get(self, order_id: str) -> Resting | None:
        entry = self._live.get(order_id)
        return None if entry is None else _view(entry)

    def depth(self) -> dict[str, list[tuple[Decimal, int]]]:
        """Aggregated depth: per side, ``(price_per_kwh, energy_wh)`` best first.

        Buy prices are base prices (premiums not added); no participant data.
        """
        levels: dict[str, dict[int, int]] = {"buy": {}, "sell": {}}
        for r in map(_view, self._live.values()):
            book = levels[r.order.side]
            book[r.ticks] = book.get(r.ticks, 0) + r.remaining_wh
        return {
            "buy": [(self._prices[t], e) for t, e in sorted(levels["buy"].items(), reverse=True)],
            "sell": [(self._prices[t], e) for t, e in sorted(levels["sell"].items())],
        }

    def best_bid(self) -> Decimal | None:
        """The highest resting buy price (base price, premiums not added), or ``None``: public data."""
        tops = [-heap[0][0] for heap in self._buys.values() if _drop_stale(heap)]
        return self._prices[max(tops)] if tops else None

    # -- commands -------------------------------------------------------------------
    def submit(self, order: Order, ticks: int) -> list[Trade]:
        """Match ``order`` (already validated, price ``ticks``) and rest any remainder."""
        return self.buy(order, ticks) if order.side == BUY else self.sell(order, ticks)

    def cancel(self, order_id: str) -> Resting | None:
        """Remove a resting order; returns it (with what was left) or ``None``."""
        entry = self._live.pop(order_id, None)
        if entry is None:
            return None
        resting = _view(entry)
        entry[2] = 0
        return resting

    def reduce(self, order_id: str, remaining_wh: int) -> None:
        """Lower a resting order's remaining energy in place; it keeps time priority."""
        entry = self._live[order_id]
        if not 0 < remaining_wh <= entry[2]:
            raise ValueError("reduce needs 0 < remaining_wh <= current remaining")
        entry[2] = remaining_wh

    # -- internals ------------------------------------------------------------------
    def _new_buy_class(self, reqs: Requirements) -> Heap:
        heap = self._buys[reqs] = []
        self._premium_ticks[reqs] = self._premiums(reqs)
        self._sell_plans.clear()
        return heap

    def _premiums(self, reqs: Requirements) -> tuple[int, ...]:
        return tuple(int(q.premium_per_kwh / self._tick) for q in reqs) or (0,)

    def _buy_plan(self, reqs: Requirements) -> list[tuple[int, int, list[Heap]]]:
        """For a buy with ``reqs``: ``(level, premium ticks, sell heaps)`` by preference.

        A level that accepts every tag class searches the one heap of all sells instead of
        the top of every class's heap (the same orders, so the same best one).
        """
        premiums = self._premiums(reqs)
        by_level: dict[int, list[Heap]] = {}
        for items, heap in self._sells.items():
            level = self._level(reqs, self._tags[items])
            if level is not None:
                by_level.setdefault(level, []).append(heap)
        plan = self._buy_plans[reqs] = []
        for lv in sorted(by_level):
            heaps = by_level[lv]
            if len(heaps) > 1 and len(heaps) == len(self._sells):
                heaps = [self._every_sell()]
            plan.append((lv, premiums[lv], heaps))
        return plan

    def _every_sell(self) -> Heap:
        if self._all_sells is None:
            self._all_sells = [entry for heap in self._sells.values() for entry in heap if entry[2]]
            heapify(self._all_sells)
        return self._all_sells

    def _sell_plan(self, tag: Tag) -> list[tuple[Heap, int, int]]:
        """For a sell with ``tag``: ``(buy heap, level, premium ticks)`` of every accepting class."""
        plan = self._sell_plans[tag.items] = []
        for reqs, heap in self._buys.items():
            level = self._level(reqs, tag)
            if level is not None:
                plan.append((heap, level, self._premium_ticks[reqs][level]))
        return plan

    def _level(self, reqs: Requirements, tag: Tag) -> int | None:
        key = (reqs, tag)
        try:
            return self._levels[key]
        except KeyError:
            level = self._levels[key] = preference_level(reqs, tag)
            return level

    def _prevent_self_trade(self, entry: Entry) -> None:
        """Self-trade prevention: a participant's incoming order cancels its own resting
        order that it would otherwise trade with (the older one goes)."""
        order_id = entry[3].order_id
        del self._live[order_id]
        self.self_trade_cancels.append((order_id, entry[2]))
        entry[2] = 0

    def _left_of(self, participant: str, side: int) -> int | None:
        """What ``participant`` may still buy (``side`` 0) or sell (1) in this slot [Wh]; None: no limit."""
        assert self._left is not None
        room = self._left.get(participant)
        return None if room is None else room[side]

    def _room(self, buyer: str, seller: str, buy_wh: int, sell_wh: int) -> int:
        """The fill of a crossing pair within both parties' limits [Wh], taken off what they have left
        (the caller makes the trade of exactly this energy; 0: no trade, nothing taken)."""
        assert self._left is not None
        energy = min(buy_wh, sell_wh)
        b, s = self._left.get(buyer), self._left.get(seller)
        if b is not None:
            energy = min(energy, b[0])
        if s is not None:
            energy = min(energy, s[1])
        if energy > 0:
            if b is not None:
                b[0] -= energy
            if s is not None:
                s[1] -= energy
        return energy

    def buy(self, order: Order, ticks: int) -> list[Trade]:
        """:meth:`submit` for a buy order (the exchange calls it directly: one call less per order).

        Fill an incoming buy level by level, then rest what is left. Each trade is at the
        resting sell's price; the premium is what that price exceeds the buy's base price."""
        seq = self._next_seq()
        trades: list[Trade] = []
        remaining = order.energy_wh
        buyer, buy_id, slot = order.participant, order.order_id, self.slot_start
        live, prices, next_id, left = self._live, self._prices, self._next_trade_id, self._left
        plan = self._buy_plans.get(order.requirements)
        if plan is None:
            plan = self._buy_plan(order.requirements)
        for level, premium_ticks, heaps in plan:
            limit = ticks + premium_ticks
            while True:
                if len(heaps) == 1:
                    heap = heaps[0]
                    while heap and not heap[0][2]:
                        heappop(heap)
                    if not heap:
                        break
                    top = heap[0]
                else:  # the best top; a filled or cancelled one is dropped only if it wins
                    top = None
                    for h in heaps:
                        if h and (top is None or h[0] < top):
                            top, heap = h[0], h
                    if top is None:
                        break
                    if not top[2]:
                        heappop(heap)
                        continue
                price_ticks, _, open_wh, sell_order = top
                if price_ticks > limit:
                    break
                if sell_order.participant == buyer:
                    self._prevent_self_trade(top)
                    heappop(heap)
                    continue
                if left is not None:  # within both parties' site limits (a cut fill leaves both open)
                    energy = self._room(buyer, sell_order.participant, remaining, open_wh)
                    if energy == 0:
                        if self._left_of(buyer, 0) == 0:
                            break  # the buyer may buy no more: the rest rests
                        heappop(heap)  # the seller may sell no more: its order stays open, unmatched
                        continue
                else:
                    energy = remaining if remaining < open_wh else open_wh
                if energy < open_wh:
                    top[2] = open_wh - energy
                else:
                    top[2] = 0
                    del live[sell_order.order_id]
                    heappop(heap)
                remaining -= energy
                price = prices[price_ticks]
                trades.append(_new_trade(Trade, (
                    next_id(), slot, buy_id, sell_order.order_id, buyer, sell_order.participant, energy,
                    price, prices[price_ticks - ticks if price_ticks > ticks else 0], sell_order.tag, level,
                    prices[limit], price,
                )))
                if remaining == 0:
                    return trades
        entry = live[buy_id] = [-ticks, seq, remaining, order]
        heap = self._buys.get(order.requirements)
        if heap is None:
            heap = self._new_buy_class(order.requirements)
        heappush(heap, entry)
        return trades

    def sell(self, order: Order, ticks: int) -> list[Trade]:
        """:meth:`submit` for a sell order. Fill an incoming sell from the accepting buys, highest
        limit first, then rest what is left. Each trade is at the resting buy's limit for this tag,
        premium included."""
        seq = self._next_seq()
        trades: list[Trade] = []
        remaining = order.energy_wh
        seller, sell_id, tag, slot = order.participant, order.order_id, order.tag, self.slot_start
        live, prices, next_id, left = self._live, self._prices, self._next_trade_id, self._left
        items = tag.items
        candidates = self._sell_plans.get(items)
        if candidates is None:
            candidates = self._sell_plan(tag)
        seller_price = prices[ticks]
        single = candidates[0] if len(candidates) == 1 else None
        while True:
            if single is not None:
                heap, level, premium = single
                while heap and not heap[0][2]:
                    heappop(heap)
                if not heap:
                    break
                top = heap[0]
                key = top[0] - premium
            else:  # the best top; a filled or cancelled one is dropped only if it wins
                top = None
                for h, lv, pr in candidates:
                    if h:
                        entry = h[0]
                        k = entry[0] - pr
                        if top is None or k < key or (k == key and entry[1] < top[1]):
                            top, key, heap, level, premium = entry, k, h, lv, pr
                if top is None:
                    break
                if not top[2]:
                    heappop(heap)
                    continue
            limit = -key  # the buy's price plus its premium for this tag
            if limit < ticks:
                break
            buy_order = top[3]
            if buy_order.participant == seller:
                self._prevent_self_trade(top)
                heappop(heap)
                continue
            # the fill as in buy, written out: this loop runs once per trade and a helper call
            # would add a tenth of the bare CDA's whole cost per order (bench_market.py)
            open_wh = top[2]
            if left is not None:  # within both parties' site limits (a cut fill leaves both open)
                energy = self._room(buy_order.participant, seller, open_wh, remaining)
                if energy == 0:
                    if self._left_of(seller, 1) == 0:
                        break  # the seller may sell no more: the rest rests
                    heappop(heap)  # the buyer may buy no more: its order stays open, unmatched
                    continue
            else:
                energy = remaining if remaining < open_wh else open_wh
            if energy < open_wh:
                top[2] = open_wh - energy
            else:
                top[2] = 0
                del live[buy_order.order_id]
                heappop(heap)
            remaining -= energy
            price = prices[limit]
            trades.append(_new_trade(Trade, (
                next_id(), slot, buy_order.order_id, sell_id, buy_order.participant, seller, energy,
                price, prices[premium], tag, level, price, seller_price,
            )))
            if remaining == 0:
                return trades
        entry = live[sell_id] = [ticks, seq, remaining, order]
        heap = self._sells.get(items)
        if heap is None:
            heap = self._sells[items] = []
            self._tags[items] = tag
            self._buy_plans.clear()
        heappush(heap, entry)
        if self._all_sells is not None:
            heappush(self._all_sells, entry)
        return trades


def _drop_stale(heap: Heap) -> bool:
    """Pop entries of orders no longer resting off the top of ``heap``; true if one is left."""
    while heap and not heap[0][2]:
        heappop(heap)
    return bool(heap)


def modified(order: Order, energy_wh: int, price_per_kwh: Decimal, submitted_at: datetime) -> Order:
    """The order as re-submitted by a modify that loses time priority."""
    return replace(order, energy_wh=energy_wh, price_per_kwh=price_per_kwh, submitted_at=submitted_at)
