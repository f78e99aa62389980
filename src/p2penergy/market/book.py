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

Prices are held as integer ticks of the market's tick size; resting orders live in one
heap per tag class (sells) or per requirement list (buys), with lazy deletion.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from p2penergy.market.orders import BUY, Order
from p2penergy.market.settings import MarketSettings
from p2penergy.market.tags import Requirement, Tag, preference_level
from p2penergy.market.trades import Trade


@dataclass(slots=True)
class Resting:
    """A resting order: its remaining Wh, its price in ticks and its time-priority number."""

    order: Order
    remaining_wh: int
    ticks: int
    seq: int


Requirements = tuple[Requirement, ...]


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
    ) -> None:
        self.settings = settings
        self.slot_start = slot_start
        self._next_seq = next_seq
        self._next_trade_id = next_trade_id
        self._tick = settings.price_tick_per_kwh
        self._live: dict[str, Resting] = {}
        self._sells: dict[Tag, list[tuple[int, int, str]]] = {}
        self._buys: dict[Requirements, list[tuple[int, int, str]]] = {}
        # premium ticks per requirement list: levels -> premium ticks
        self._premium_ticks: dict[Requirements, tuple[int, ...]] = {}
        # (requirements, tag) -> level or None; filled lazily
        self._levels: dict[tuple[Requirements, Tag], int | None] = {}
        # matching plans, rebuilt only when a new tag class or requirement list appears
        self._buy_plans: dict[Requirements, list[tuple[int, int, list[list[tuple[int, int, str]]]]]] = {}
        self._sell_plans: dict[Tag, list[tuple[list[tuple[int, int, str]], int, int]]] = {}
        self._prices: dict[int, Decimal] = {}
        self.self_trade_cancels: list[tuple[str, int]] = []  # (order id, open Wh), in order

    # -- queries --------------------------------------------------------------------
    def __contains__(self, order_id: str) -> bool:
        return order_id in self._live

    def __len__(self) -> int:
        return len(self._live)

    def resting(self) -> Iterator[Resting]:
        """Live resting orders in submission order."""
        return iter(sorted(self._live.values(), key=lambda r: r.seq))

    def get(self, order_id: str) -> Resting | None:
        return self._live.get(order_id)

    def depth(self) -> dict[str, list[tuple[Decimal, int]]]:
        """Aggregated depth: per side, ``(price_per_kwh, energy_wh)`` best first.

        Buy prices are base prices (premiums not added); no participant data.
        """
        levels: dict[str, dict[int, int]] = {"buy": {}, "sell": {}}
        for r in self._live.values():
            book = levels[r.order.side]
            book[r.ticks] = book.get(r.ticks, 0) + r.remaining_wh
        return {
            "buy": [(self._price(t), e) for t, e in sorted(levels["buy"].items(), reverse=True)],
            "sell": [(self._price(t), e) for t, e in sorted(levels["sell"].items())],
        }

    def best_bid(self) -> Decimal | None:
        """The highest resting buy price (base price, premiums not added), or ``None``: public data."""
        tops = [r.ticks for r in (self._top(heap) for heap in self._buys.values()) if r is not None]
        return self._price(max(tops)) if tops else None

    # -- commands -------------------------------------------------------------------
    def submit(self, order: Order, ticks: int) -> list[Trade]:
        """Match ``order`` (already validated, price ``ticks``) and rest any remainder."""
        incoming = Resting(order, order.energy_wh, ticks, self._next_seq())
        trades = self._match_buy(incoming) if order.side == BUY else self._match_sell(incoming)
        if incoming.remaining_wh > 0:
            self._rest(incoming)
        return trades

    def cancel(self, order_id: str) -> Resting | None:
        """Remove a resting order; returns it (with what was left) or ``None``."""
        return self._live.pop(order_id, None)

    def reduce(self, order_id: str, remaining_wh: int) -> None:
        """Lower a resting order's remaining energy in place; it keeps time priority."""
        resting = self._live[order_id]
        if not 0 < remaining_wh <= resting.remaining_wh:
            raise ValueError("reduce needs 0 < remaining_wh <= current remaining")
        resting.remaining_wh = remaining_wh

    # -- internals ------------------------------------------------------------------
    def _price(self, ticks: int) -> Decimal:
        price = self._prices.get(ticks)
        if price is None:
            price = self._prices[ticks] = self._tick * ticks
        return price

    def _rest(self, r: Resting) -> None:
        self._live[r.order.order_id] = r
        if r.order.side == BUY:
            reqs = r.order.requirements
            heap = self._buys.get(reqs)
            if heap is None:
                heap = self._buys[reqs] = []
                self._premium_ticks[reqs] = self._premiums(reqs)
                self._sell_plans.clear()
            heapq.heappush(heap, (-r.ticks, r.seq, r.order.order_id))
        else:
            heap = self._sells.get(r.order.tag)
            if heap is None:
                heap = self._sells[r.order.tag] = []
                self._buy_plans.clear()
            heapq.heappush(heap, (r.ticks, r.seq, r.order.order_id))

    def _premiums(self, reqs: Requirements) -> tuple[int, ...]:
        return tuple(int(q.premium_per_kwh / self._tick) for q in reqs) or (0,)

    def _buy_plan(self, reqs: Requirements) -> list[tuple[int, int, list[list[tuple[int, int, str]]]]]:
        """For a buy with ``reqs``: ``(level, premium ticks, sell heaps)`` by preference."""
        plan = self._buy_plans.get(reqs)
        if plan is None:
            premiums = self._premiums(reqs)
            by_level: dict[int, list[list[tuple[int, int, str]]]] = {}
            for tag, heap in self._sells.items():
                level = self._level(reqs, tag)
                if level is not None:
                    by_level.setdefault(level, []).append(heap)
            plan = self._buy_plans[reqs] = [(lv, premiums[lv], by_level[lv]) for lv in sorted(by_level)]
        return plan

    def _sell_plan(self, tag: Tag) -> list[tuple[list[tuple[int, int, str]], int, int]]:
        """For a sell with ``tag``: ``(buy heap, level, premium ticks)`` of every accepting class."""
        plan = self._sell_plans.get(tag)
        if plan is None:
            plan = []
            for reqs, heap in self._buys.items():
                level = self._level(reqs, tag)
                if level is not None:
                    plan.append((heap, level, self._premium_ticks[reqs][level]))
            self._sell_plans[tag] = plan
        return plan

    def _level(self, reqs: Requirements, tag: Tag) -> int | None:
        key = (reqs, tag)
        try:
            return self._levels[key]
        except KeyError:
            level = self._levels[key] = preference_level(reqs, tag)
            return level

    def _top(self, heap: list[tuple[int, int, str]]) -> Resting | None:
        """The best live entry of ``heap``, dropping stale entries on the way."""
        live = self._live
        while heap:
            _, seq, oid = heap[0]
            r = live.get(oid)
            if r is not None and r.seq == seq:
                return r
            heapq.heappop(heap)
        return None

    def _fill(self, buy: Resting, sell: Resting, price_ticks: int, level: int, premium_ticks: int,
              buyer_limit_ticks: int) -> Trade:
        energy = min(buy.remaining_wh, sell.remaining_wh)
        buy.remaining_wh -= energy
        sell.remaining_wh -= energy
        for r in (buy, sell):
            if r.remaining_wh == 0 and r.order.order_id in self._live:
                del self._live[r.order.order_id]
        price = self._price
        return Trade(
            trade_id=self._next_trade_id(),
            slot_start=self.slot_start,
            buy_id=buy.order.order_id,
            sell_id=sell.order.order_id,
            buyer=buy.order.participant,
            seller=sell.order.participant,
            energy_wh=energy,
            price_per_kwh=price(price_ticks),
            premium_per_kwh=price(premium_ticks),
            tag=sell.order.tag,
            preference_level=level,
            buyer_limit_per_kwh=price(buyer_limit_ticks),
            seller_limit_per_kwh=price(sell.ticks),
        )

    def _prevent_self_trade(self, resting: Resting) -> None:
        """Self-trade prevention: a participant's incoming order cancels its own resting
        order that it would otherwise trade with (the older one goes)."""
        del self._live[resting.order.order_id]
        self.self_trade_cancels.append((resting.order.order_id, resting.remaining_wh))

    def _match_buy(self, buy: Resting) -> list[Trade]:
        trades: list[Trade] = []
        if not self._sells:
            return trades
        top_of = self._top
        for level, premium_ticks, heaps in self._buy_plan(buy.order.requirements):
            limit = buy.ticks + premium_ticks
            while buy.remaining_wh > 0:
                if len(heaps) == 1:
                    best = top_of(heaps[0])
                else:
                    best = None
                    for heap in heaps:
                        top = top_of(heap)
                        if top is not None and (best is None or (top.ticks, top.seq) < (best.ticks, best.seq)):
                            best = top
                if best is None or best.ticks > limit:
                    break
                if best.order.participant == buy.order.participant:
                    self._prevent_self_trade(best)
                    continue
                premium = best.ticks - buy.ticks if best.ticks > buy.ticks else 0
                trades.append(self._fill(buy, best, best.ticks, level, premium, limit))
            if buy.remaining_wh == 0:
                break
        return trades

    def _match_sell(self, sell: Resting) -> list[Trade]:
        trades: list[Trade] = []
        candidates = self._sell_plan(sell.order.tag)
        while sell.remaining_wh > 0:
            best: Resting | None = None
            best_key = (0, 0)
            best_level = best_premium = 0
            for heap, level, premium in candidates:
                top = self._top(heap)
                if top is None:
                    continue
                key = (-(top.ticks + premium), top.seq)
                if best is None or key < best_key:
                    best, best_key, best_level, best_premium = top, key, level, premium
            if best is None or best.ticks + best_premium < sell.ticks:
                break
            if best.order.participant == sell.order.participant:
                self._prevent_self_trade(best)
                continue
            limit = best.ticks + best_premium
            trades.append(self._fill(best, sell, limit, best_level, best_premium, limit))
        return trades


def modified(order: Order, energy_wh: int, price_per_kwh: Decimal, submitted_at: datetime) -> Order:
    """The order as re-submitted by a modify that loses time priority."""
    return replace(order, energy_wh=energy_wh, price_per_kwh=price_per_kwh, submitted_at=submitted_at)
