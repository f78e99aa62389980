"""Periodic call auctions for one slot: uniform price (pay-as-clear) and pay-as-bid.

Allocation maximises welfare, Σ (buyer's limit for the energy's tag − seller's price) ×
energy, premiums included.

* **Untagged** books (no buy order has requirements) use the exact merit order: buys by
  price descending, sells ascending, ties by submission time (then id). The volume is
  the largest at which the marginal buy's price is at least the marginal sell's.
* **Tagged** books solve the welfare problem as a linear programme with HiGHS over
  buyer × tag-class flows (sells with equal tags are one class). Its constraint matrix
  is a network matrix, so the optimum is integral in Wh. Within a tag class, flows are
  paired buyer-by-buyer in priority order.

Prices:

* **pay-as-clear**: one price per tag class (untagged books: one price). It is the
  midpoint, rounded down to the tick, of the class's clearing interval
  ``[lo, hi]``: ``lo`` = the highest of the accepted sells' prices and of the limits of
  buyers left (partly) unfilled who accept the class; ``hi`` = the lowest of the
  accepted buyers' limits for the class and of the prices of sells left (partly)
  unsold. Welfare optimality guarantees ``lo <= hi``.
* **pay-as-bid**: each trade is at the buyer's limit for the energy's tag.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import highspy
import numpy as np

from p2penergy.market.orders import BUY, SELL, Order, check_against
from p2penergy.market.settings import MarketSettings
from p2penergy.market.tags import Tag, preference_level
from p2penergy.market.trades import Trade, TradeSummary
from p2penergy.optim import new_highs

PAY_AS_CLEAR = "pay-as-clear"
PAY_AS_BID = "pay-as-bid"
PRICING = (PAY_AS_CLEAR, PAY_AS_BID)


@dataclass(frozen=True, slots=True)
class Clearing:
    """Result of one call auction: trades, per-class prices (pay-as-clear) and fills."""

    trades: tuple[Trade, ...]
    clearing_prices: dict[Tag, Decimal]
    filled_wh: dict[str, int]

    @property
    def summary(self) -> TradeSummary:
        return TradeSummary.of(self.trades)

    @property
    def clearing_price_per_kwh(self) -> Decimal | None:
        """The single clearing price when exactly one tag class traded."""
        if len(self.clearing_prices) == 1:
            return next(iter(self.clearing_prices.values()))
        return None


@dataclass(frozen=True, slots=True)
class UniformArrays:
    """Merit-order clearing on arrays: fills per order and the price interval in ticks."""

    buy_filled_wh: np.ndarray
    sell_filled_wh: np.ndarray
    volume_wh: int
    price_ticks: int | None
    lo_ticks: int | None
    hi_ticks: int | None


def clear_uniform_arrays(
    buy_ticks: np.ndarray, buy_wh: np.ndarray, sell_ticks: np.ndarray, sell_wh: np.ndarray
) -> UniformArrays:
    """Merit-order call auction on integer arrays, in submission order.

    Buys are ranked by price descending, sells ascending; equal prices keep the input
    order (time priority). Returns the fills per input position and the clearing price
    in ticks (the floor of the midpoint of the clearing interval), or ``None`` without
    a trade. Runs in O(n log n): two sorts and a few cumulative sums.
    """
    buy_ticks = np.asarray(buy_ticks, dtype=np.int64)
    sell_ticks = np.asarray(sell_ticks, dtype=np.int64)
    buy_wh = np.asarray(buy_wh, dtype=np.int64)
    sell_wh = np.asarray(sell_wh, dtype=np.int64)
    nb, ns = len(buy_ticks), len(sell_ticks)
    buy_filled = np.zeros(nb, dtype=np.int64)
    sell_filled = np.zeros(ns, dtype=np.int64)
    if nb == 0 or ns == 0:
        return UniformArrays(buy_filled, sell_filled, 0, None, None, None)
    # stable sorts keep input (time) order among equal prices
    b_order = np.argsort(-buy_ticks, kind="stable")
    s_order = np.argsort(sell_ticks, kind="stable")
    b_px, s_px = buy_ticks[b_order], sell_ticks[s_order]
    b_cum = np.cumsum(buy_wh[b_order])
    s_cum = np.cumsum(sell_wh[s_order])
    # demand at each ask price: all buys priced >= that ask
    n_buys_at = np.searchsorted(-b_px, -s_px, side="right")
    demand_at = np.where(n_buys_at > 0, b_cum[np.maximum(n_buys_at - 1, 0)], 0)
    supply_at = s_cum[np.searchsorted(s_px, s_px, side="right") - 1]
    volume = int(np.max(np.minimum(demand_at, supply_at)))
    if volume <= 0:
        return UniformArrays(buy_filled, sell_filled, 0, None, None, None)
    b_fill_sorted = np.clip(volume - (b_cum - buy_wh[b_order]), 0, buy_wh[b_order])
    s_fill_sorted = np.clip(volume - (s_cum - sell_wh[s_order]), 0, sell_wh[s_order])
    buy_filled[b_order] = b_fill_sorted
    sell_filled[s_order] = s_fill_sorted
    kb = int(np.searchsorted(b_cum, volume))  # marginal buy (sorted position)
    ks = int(np.searchsorted(s_cum, volume))  # marginal sell
    lo = int(s_px[ks])
    hi = int(b_px[kb])
    first_unfilled_b = kb if b_cum[kb] > volume else kb + 1
    if first_unfilled_b < nb:
        lo = max(lo, int(b_px[first_unfilled_b]))
    first_unsold_s = ks if s_cum[ks] > volume else ks + 1
    if first_unsold_s < ns:
        hi = min(hi, int(s_px[first_unsold_s]))
    price = (lo + hi) // 2
    return UniformArrays(buy_filled, sell_filled, volume, price, lo, hi)


def priority_order(orders: Sequence[Order]) -> list[Order]:
    """Submission order: by ``submitted_at``, then ``order_id``."""
    return sorted(orders, key=lambda o: (o.submitted_at, o.order_id))


def clear_call(
    orders: Sequence[Order],
    settings: MarketSettings,
    slot_start: datetime,
    pricing: str = PAY_AS_CLEAR,
    trade_ids: Callable[[], str] | None = None,
) -> Clearing:
    """Clear all ``orders`` of one slot at once. Orders are validated against ``settings``."""
    if pricing not in PRICING:
        raise ValueError(f"pricing must be one of {PRICING}, got {pricing!r}")
    counter = iter(range(1, 1 << 62))
    next_id = trade_ids or (lambda: f"t{next(counter)}")
    ranked = priority_order(orders)
    ticks = {o.order_id: check_against(o, settings) for o in ranked}
    buys = [o for o in ranked if o.side == BUY]
    sells = [o for o in ranked if o.side == SELL]
    single_price: int | None = None
    if any(o.requirements for o in buys):
        flows = _tagged_flows(buys, sells, ticks, settings)
    else:
        flows, single_price = _untagged_flows(buys, sells, ticks)
    return _price_flows(flows, buys, sells, ticks, settings, slot_start, pricing, next_id, single_price)


# A flow: (buy, sell, energy_wh, level, buyer_limit_ticks)
Flow = tuple[Order, Order, int, int, int]


def _untagged_flows(
    buys: list[Order], sells: list[Order], ticks: dict[str, int]
) -> tuple[list[Flow], int | None]:
    """Merit-order flows and the single clearing price (every buyer accepts any tag)."""
    result = clear_uniform_arrays(
        np.array([ticks[o.order_id] for o in buys], dtype=np.int64),
        np.array([o.energy_wh for o in buys], dtype=np.int64),
        np.array([ticks[o.order_id] for o in sells], dtype=np.int64),
        np.array([o.energy_wh for o in sells], dtype=np.int64),
    )
    b_rank = sorted(range(len(buys)), key=lambda i: (-ticks[buys[i].order_id], i))
    s_rank = sorted(range(len(sells)), key=lambda i: (ticks[sells[i].order_id], i))
    b_left = [
        (buys[i], int(result.buy_filled_wh[i]), 0, ticks[buys[i].order_id])
        for i in b_rank if result.buy_filled_wh[i] > 0
    ]
    s_left = [(sells[i], int(result.sell_filled_wh[i])) for i in s_rank if result.sell_filled_wh[i] > 0]
    return _pair(b_left, s_left), result.price_ticks


def _pair(buys: list[tuple[Order, int, int, int]], sells: list[tuple[Order, int]]) -> list[Flow]:
    """Pair filled buys ``(order, energy_wh, level, limit_ticks)`` with filled sells
    ``(order, energy_wh)``, both already in priority order (two pointers)."""
    flows: list[Flow] = []
    i = j = 0
    b_rem = buys[0][1] if buys else 0
    s_rem = sells[0][1] if sells else 0
    while i < len(buys) and j < len(sells):
        energy = min(b_rem, s_rem)
        buy, _, level, limit = buys[i]
        flows.append((buy, sells[j][0], energy, level, limit))
        b_rem -= energy
        s_rem -= energy
        if b_rem == 0:
            i += 1
            b_rem = buys[i][1] if i < len(buys) else 0
        if s_rem == 0:
            j += 1
            s_rem = sells[j][1] if j < len(sells) else 0
    return flows


def _tagged_flows(
    buys: list[Order], sells: list[Order], ticks: dict[str, int], settings: MarketSettings
) -> list[Flow]:
    tick = settings.price_tick_per_kwh
    classes: dict[Tag, list[int]] = {}
    for j, s in enumerate(sells):
        classes.setdefault(s.tag, []).append(j)
    tags = list(classes)
    min_ask = {t: min(ticks[sells[j].order_id] for j in classes[t]) for t in tags}
    # buyer-class arcs worth having: accepted and able to cross the cheapest sell
    arcs: list[tuple[int, int, int, int]] = []  # (buy idx, class idx, level, limit ticks)
    for i, b in enumerate(buys):
        for c, t in enumerate(tags):
            level = preference_level(b.requirements, t)
            if level is None:
                continue
            premium = b.requirements[level].premium_per_kwh if b.requirements else Decimal(0)
            lim = ticks[b.order_id] + int(premium / tick)
            if lim >= min_ask[t]:
                arcs.append((i, c, level, lim))
    if not arcs:
        return []
    h = new_highs()
    n_arcs, n_sells = len(arcs), len(sells)
    # columns: arcs then sells; maximise welfare == minimise its negative
    costs = [-float(a[3]) for a in arcs] + [float(ticks[s.order_id]) for s in sells]
    uppers = [float(buys[a[0]].energy_wh) for a in arcs] + [float(s.energy_wh) for s in sells]
    h.addVars(n_arcs + n_sells, np.zeros(n_arcs + n_sells), np.array(uppers))
    h.changeColsCost(n_arcs + n_sells, np.arange(n_arcs + n_sells, dtype=np.int32), np.array(costs))
    by_buy: dict[int, list[int]] = {}
    by_class: dict[int, list[int]] = {}
    for k, (i, c, _, _) in enumerate(arcs):
        by_buy.setdefault(i, []).append(k)
        by_class.setdefault(c, []).append(k)
    for i, ks in by_buy.items():  # buyer capacity
        h.addRow(0.0, float(buys[i].energy_wh), len(ks), np.array(ks, dtype=np.int32), np.ones(len(ks)))
    for c, t in enumerate(tags):  # class balance: flows out == sells in
        ks = by_class.get(c, [])
        cols = ks + [n_arcs + j for j in classes[t]]
        vals = [1.0] * len(ks) + [-1.0] * len(classes[t])
        h.addRow(0.0, 0.0, len(cols), np.array(cols, dtype=np.int32), np.array(vals))
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"call auction LP not optimal: {h.modelStatusToString(h.getModelStatus())}")
    values = np.rint(np.asarray(h.getSolution().col_value)).astype(np.int64)
    flows: list[Flow] = []
    for c, t in enumerate(tags):
        class_arcs = sorted(
            (k for k in by_class.get(c, []) if values[k] > 0),
            key=lambda k: (-arcs[k][3], arcs[k][0]),
        )
        class_sells = [j for j in classes[t] if values[n_arcs + j] > 0]  # already in rank order
        class_sells.sort(key=lambda j: (ticks[sells[j].order_id], j))
        flows += _pair(
            [(buys[arcs[k][0]], int(values[k]), arcs[k][2], arcs[k][3]) for k in class_arcs],
            [(sells[j], int(values[n_arcs + j])) for j in class_sells],
        )
    return flows


def _price_flows(
    flows: list[Flow],
    buys: list[Order],
    sells: list[Order],
    ticks: dict[str, int],
    settings: MarketSettings,
    slot_start: datetime,
    pricing: str,
    next_id: Callable[[], str],
    single_price: int | None,
) -> Clearing:
    tick = settings.price_tick_per_kwh
    filled: dict[str, int] = {}
    for b, s, e, _, _ in flows:
        filled[b.order_id] = filled.get(b.order_id, 0) + e
        filled[s.order_id] = filled.get(s.order_id, 0) + e
    class_price: dict[Tag, int] = {}
    if pricing == PAY_AS_CLEAR:
        for tag in dict.fromkeys(s.tag for _, s, _, _, _ in flows):
            class_price[tag] = (
                single_price if single_price is not None
                else _class_price(tag, flows, buys, sells, ticks, filled, tick)
            )
    trades = []
    for b, s, energy, level, limit in flows:
        price = class_price[s.tag] if pricing == PAY_AS_CLEAR else limit
        trades.append(Trade(
            trade_id=next_id(), slot_start=slot_start, buy_id=b.order_id, sell_id=s.order_id,
            buyer=b.participant, seller=s.participant, energy_wh=energy,
            price_per_kwh=tick * price, premium_per_kwh=tick * max(0, price - ticks[b.order_id]),
            tag=s.tag, preference_level=level, buyer_limit_per_kwh=tick * limit,
            seller_limit_per_kwh=tick * ticks[s.order_id],
        ))
    return Clearing(
        trades=tuple(trades),
        clearing_prices={t: tick * p for t, p in class_price.items()},
        filled_wh=filled,
    )


def _class_price(
    tag: Tag, flows: list[Flow], buys: list[Order], sells: list[Order],
    ticks: dict[str, int], filled: dict[str, int], tick: Decimal,
) -> int:
    """Floor of the midpoint of the class's clearing interval, in ticks."""
    in_class = [f for f in flows if f[1].tag == tag]
    lo = max(ticks[s.order_id] for _, s, _, _, _ in in_class)
    hi = min(limit for _, _, _, _, limit in in_class)
    for b in buys:
        if filled.get(b.order_id, 0) < b.energy_wh:
            level = preference_level(b.requirements, tag)
            if level is not None:
                premium = b.requirements[level].premium_per_kwh if b.requirements else Decimal(0)
                lo = max(lo, ticks[b.order_id] + int(premium / tick))
    for s in sells:
        if s.tag == tag and filled.get(s.order_id, 0) < s.energy_wh:
            hi = min(hi, ticks[s.order_id])
    if lo > hi:  # cannot happen at a welfare optimum; guard against solver tolerance
        raise RuntimeError(f"empty clearing interval for {tag}: [{lo}, {hi}] ticks")
    return (lo + hi) // 2
