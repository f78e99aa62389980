"""The call auction within the feeder's limits (issue 17, item 5): each slot's transformer, line and
voltage limits, linearised by the feeder's sensitivities, as constraints of the auction's clearing.

**Operating point.** Each slot is linearised at the sites' draws in the utility-only baseline of the
same slot (same devices and weather, no market: every surplus exported to the utility, every deficit
drawn from it) — the feeder as the operator expects it without the market, an idealised state
estimate (the simulation knows it exactly). A P2P trade is taken as a schedule on top of it: the
buyer draws its Wh more, the seller exports its Wh more. A limit the operating point already breaks
has no room (it may not get worse), so clearing nothing is always feasible.

**Rows** (:class:`SlotLimits`): per bus the voltage's upper and lower limit, per line and
transformer its loading at most 100 %, each as ``Σ_p coef[r, p] · (bought_wh − sold_wh)[p] ≤ slack[r]``
over the participants ``p`` (a car at the bus where it is parked; on the road, and a site on the
supply bus, it moves nothing). Only the rows the slot's orders could reach are kept
(:meth:`SlotLimits.for_orders`): what the auction cleared within is journalled with the slot's
``close`` row and the ledger's replay clears with exactly that.

**Clearing** (:meth:`SlotLimits.clear`). The auction clears as without the network
(:func:`~p2penergy.market.call_auction.clear_call`); when its trades keep every row, they stand
unchanged. Otherwise the allocation is the welfare-optimal one among the network-feasible ones at
the same prices, in whole Wh (an LP with HiGHS over buyer–seller pairs, its optimum rounded down to
whole Wh and repaired where the rounding passes a row: :func:`_repair`):

* **pay-as-clear**: every trade at its tag class's uniform price of the auction without the network
  (untagged books: the one price). The network decides who trades at that price, never the price:
  a pair may trade when the buyer's limit for the seller's tag is at least the price and the
  seller's price at most it — every trade is within both limits, as without the network. Per-node
  prices (from the LP's duals) would price congestion, but a trade between two nodes then has two
  prices and the difference (the congestion rent) must go to someone; a community market whose
  members are told "one price per class" keeps it, and a congested slot shows as unfilled orders.
* **pay-as-bid**: every trade at the buyer's limit for the seller's tag; a pair may trade when
  that limit is at least the seller's price.

Maximised: ``Σ (buyer's limit − seller's price) · Wh`` (premiums included), under each order's Wh
and the rows above. Whole Wh cost at most a Wh per pair the LP leaves fractional (a basic optimum has
at most one per order and row) against the LP's optimum — not a MIP's proven optimum, whose search
took minutes on some random books (tests/network/test_call_limits.py bounds the gap). Ties between
allocations of equal welfare go to HiGHS's optimum (deterministic: one thread, fixed seed). Trades
are listed buyer by buyer in priority order, each buyer's sellers in priority order.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np

from p2penergy.market.orders import BUY, Order, priority_order
from p2penergy.market.settings import PAY_AS_BID, PAY_AS_CLEAR, MarketSettings
from p2penergy.market.tags import Tag, preference_level
from p2penergy.market.trades import TickPrices, Trade

ADMIT_TOLERANCE = 1e-6
"""How far a row may be passed and still count as kept [the row's unit: p.u. or %]: 1e-6 p.u. is
0.1 mV at 100 V; HiGHS's own feasibility tolerance is 1e-7. Covers the solver, not the model."""

COEF_FLOOR_PER_W = 1e-12
"""Sensitivities below this [p.u. or % per W] are the power flow's numerical noise and taken as zero
(a 1 kW change: 1e-9 p.u.); e.g. the supply bus's voltage, held by the ideal upstream grid."""


@dataclass(frozen=True, slots=True, eq=False)
class SlotLimits:
    """One slot's linearised feeder limits over participants' net P2P purchases [Wh] (module
    docstring): ``coef[r, p] · net_wh[p]`` summed over ``participants`` must stay ``≤ slack[r]``
    for every row ``r`` (named in ``rows``)."""

    participants: tuple[str, ...]
    rows: tuple[str, ...]
    coef: np.ndarray
    slack: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the ``close`` row's ``network_limits``); floats round-trip exactly."""
        return {"participants": list(self.participants), "rows": list(self.rows),
                "coef_per_wh": [[float(c) for c in row] for row in self.coef],
                "slack": [float(s) for s in self.slack]}

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> SlotLimits:
        participants = tuple(str(p) for p in body["participants"])
        rows = tuple(str(r) for r in body["rows"])
        coef = np.array(body["coef_per_wh"], dtype=np.float64).reshape(len(rows), len(participants))
        slack = np.array(body["slack"], dtype=np.float64)
        if slack.shape != (len(rows),):
            raise ValueError(f"network_limits.slack: {len(rows)} values, one per row, got {slack.shape}")
        return cls(participants, rows, coef, slack)

    def for_orders(self, orders: Sequence[Order]) -> SlotLimits | None:
        """The rows these orders could reach (``Σ_p |coef[r, p]| · Wh of p's orders > slack[r]``) over
        the participants with orders; ``None`` when none could (the auction clears as without)."""
        order_wh: dict[str, int] = {}
        for o in orders:
            order_wh[o.participant] = order_wh.get(o.participant, 0) + o.energy_wh
        keep_cols = [k for k, p in enumerate(self.participants) if p in order_wh]
        if not keep_cols:
            return None
        coef = self.coef[:, keep_cols]
        reach = np.abs(coef) @ np.array([order_wh[self.participants[k]] for k in keep_cols], dtype=np.float64)
        keep_rows = np.flatnonzero(reach > self.slack + ADMIT_TOLERANCE)
        if keep_rows.size == 0:
            return None
        coef = coef[keep_rows]
        cols = [j for j in range(len(keep_cols)) if coef[:, j].any()]
        return SlotLimits(tuple(self.participants[keep_cols[j]] for j in cols),
                          tuple(self.rows[r] for r in keep_rows.tolist()), coef[:, cols], self.slack[keep_rows])

    def net_effect(self, net_wh: Mapping[str, int]) -> np.ndarray:
        """Each row's left-hand side for participants' net P2P purchases [Wh]."""
        x = np.array([net_wh.get(p, 0) for p in self.participants], dtype=np.float64)
        return self.coef @ x  # type: ignore[no-any-return]

    def admits(self, trades: Sequence[Trade]) -> bool:
        """Whether these trades keep every row (within :data:`ADMIT_TOLERANCE`)."""
        return bool((self.net_effect(net_purchases(trades)) <= self.slack + ADMIT_TOLERANCE).all())

    def clear(self, orders: Sequence[Order], settings: MarketSettings, slot_start: datetime, pricing: str,
              next_id: Callable[[], str]) -> Any:
        """The slot's call auction within these limits (module docstring); a
        :class:`~p2penergy.market.call_auction.Clearing`."""
        from p2penergy.market.call_auction import Clearing, clear_call

        scratch = map("n{}".format, itertools.count(1)).__next__
        free = clear_call(orders, settings, slot_start, pricing, scratch)
        if self.admits(free.trades):
            return Clearing(tuple(t._replace(trade_id=next_id()) for t in free.trades), free.clearing_prices,
                            free.filled_wh)
        return self._constrained(orders, settings, slot_start, pricing, next_id, free.clearing_prices)

    def _constrained(self, orders: Sequence[Order], settings: MarketSettings, slot_start: datetime, pricing: str,
                     next_id: Callable[[], str], free_prices: Mapping[Tag, Decimal]) -> Any:
        from p2penergy.market.call_auction import Clearing

        ranked = priority_order(orders)
        buys = [o for o in ranked if o.side == BUY]
        sells = [o for o in ranked if o.side != BUY]
        tagged = any(b.requirements for b in buys)
        single = next(iter(free_prices.values()), None) if not tagged else None
        tick = settings.price_tick_per_kwh
        pairs: list[tuple[int, int, Decimal, Decimal, int]] = []  # (buy, sell, price, buyer's limit, level)
        for i, b in enumerate(buys):
            for j, s in enumerate(sells):
                level = preference_level(b.requirements, s.tag)
                if level is None:
                    continue
                limit = b.price_per_kwh + (b.requirements[level].premium_per_kwh if b.requirements else 0)
                if pricing == PAY_AS_CLEAR:
                    price = free_prices.get(s.tag) if tagged else single
                    if price is None or limit < price or s.price_per_kwh > price:
                        continue
                elif pricing == PAY_AS_BID:
                    price = limit
                    if limit < s.price_per_kwh:
                        continue
                else:
                    raise ValueError(f"pricing must be one of {PAY_AS_CLEAR!r}, {PAY_AS_BID!r}, got {pricing!r}")
                pairs.append((i, j, price, limit, level))
        x = self._solve(buys, sells, pairs, tick)
        trades, filled = [], {}
        prices = TickPrices(tick)  # every price written as the auction without limits writes it (tick × ticks)
        for (i, j, price, limit, level), wh in zip(pairs, x.tolist(), strict=True):
            if wh <= 0:
                continue
            b, s = buys[i], sells[j]
            ticks = settings.price_to_ticks
            trades.append(Trade(next_id(), slot_start, b.order_id, s.order_id, b.participant, s.participant, wh,
                                prices[ticks(price)], prices[max(0, ticks(price - b.price_per_kwh))], s.tag, level,
                                prices[ticks(limit)], prices[ticks(s.price_per_kwh)]))
            filled[b.order_id] = filled.get(b.order_id, 0) + wh
            filled[s.order_id] = filled.get(s.order_id, 0) + wh
        class_prices = {t.tag: t.price_per_kwh for t in trades} if pricing == PAY_AS_CLEAR else {}
        return Clearing(tuple(trades), class_prices, filled)

    def _solve(self, buys: list[Order], sells: list[Order], pairs: list[tuple[int, int, Decimal, Decimal, int]],
               tick: Decimal) -> np.ndarray:
        """Wh of each pair: the welfare LP (module docstring) with HiGHS, in whole Wh."""
        import highspy

        from p2penergy.optim import new_highs

        n = len(pairs)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        bi = np.array([p[0] for p in pairs])
        si = np.array([p[1] for p in pairs])
        gain = np.array([int((p[3] - sells[p[1]].price_per_kwh) / tick) for p in pairs], dtype=np.float64)
        buy_wh = np.array([b.energy_wh for b in buys], dtype=np.float64)
        sell_wh = np.array([s.energy_wh for s in sells], dtype=np.float64)
        col = {p: k for k, p in enumerate(self.participants)}
        zero = np.zeros(len(self.rows))
        per_buyer = [self.coef[:, col[b.participant]] if b.participant in col else zero for b in buys]
        per_seller = [self.coef[:, col[s.participant]] if s.participant in col else zero for s in sells]
        network = np.stack([per_buyer[i] - per_seller[j] for i, j in zip(bi, si, strict=True)], axis=1)
        # each row in Wh of its largest coefficient: HiGHS's feasibility tolerance (1e-6) is then a
        # millionth of a Wh, not a millionth of a p.u. (which a whole Wh may not even move)
        scale = np.abs(network).max(axis=1)
        scale[scale == 0] = 1.0
        network = network / scale[:, None]
        orders_a = np.zeros((len(buys) + len(sells), n))
        orders_a[bi, np.arange(n)] = 1.0
        orders_a[len(buys) + si, np.arange(n)] = 1.0
        a = np.vstack([orders_a, network])
        upper = np.concatenate([buy_wh, sell_wh, self.slack / scale])
        h = new_highs()
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, a.shape[0]
        lp.col_cost_ = -gain
        lp.col_lower_ = np.zeros(n)
        lp.col_upper_ = np.minimum(buy_wh[bi], sell_wh[si])
        lp.row_lower_ = np.full(a.shape[0], -np.inf)
        lp.row_upper_ = upper
        nz_r, nz_c = np.nonzero(a.T)  # column-wise
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.searchsorted(nz_r, np.arange(n + 1)).astype(np.int32)
        lp.a_matrix_.index_ = nz_c.astype(np.int32)
        lp.a_matrix_.value_ = a.T[nz_r, nz_c]
        h.passModel(lp)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"call auction within the feeder's limits: {h.modelStatusToString(h.getModelStatus())}")
        x = np.floor(np.asarray(h.getSolution().col_value) + WHOLE_WH_TOLERANCE).astype(np.int64)
        return _repair(x, gain, network, self.slack / scale)


WHOLE_WH_TOLERANCE = 1e-6
"""An LP value this close below a whole Wh is that Wh (the simplex's own rounding) [Wh]."""


def _repair(x: np.ndarray, gain: np.ndarray, rows: np.ndarray, slack: np.ndarray) -> np.ndarray:
    """Whole-Wh fills that keep every row: the LP's optimum floored (fewer Wh on both sides of each
    pair) may pass a row another pair relieved; while one is passed (the most first), the pair that
    loads it at the least welfare per unit of it gives up the Wh needed (lowest index on ties).
    Each step takes Wh away, so it ends (at worst with nothing traded, which keeps every row)."""
    x = x.copy()
    while True:
        excess = rows @ x - slack
        r = int(np.argmax(excess))
        if excess[r] <= WHOLE_WH_TOLERANCE:
            return x
        loads = np.flatnonzero((rows[r] > 0) & (x > 0))
        k = int(loads[np.argmin(gain[loads] / rows[r, loads])])
        x[k] -= min(int(x[k]), int(np.ceil(excess[r] / rows[r, k] - WHOLE_WH_TOLERANCE)))


def net_purchases(trades: Sequence[Trade]) -> dict[str, int]:
    """Each participant's P2P Wh bought less sold in ``trades``."""
    net: dict[str, int] = {}
    for t in trades:
        net[t.buyer] = net.get(t.buyer, 0) + t.energy_wh
        net[t.seller] = net.get(t.seller, 0) - t.energy_wh
    return net


def slot_limits(participants: Sequence[str], rows: Sequence[str], grad_per_w: np.ndarray, slack: np.ndarray,
                slot_minutes: int) -> SlotLimits:
    """A slot's :class:`SlotLimits` from the rows' gradients per W of each participant's draw and
    their room at the operating point (a broken limit: none); noise below :data:`COEF_FLOOR_PER_W` is
    zero, and rows and participants that move nothing are left out."""
    grad = np.where(np.abs(grad_per_w) < COEF_FLOOR_PER_W, 0.0, grad_per_w) * (60.0 / slot_minutes)
    keep_rows = np.flatnonzero(np.abs(grad).sum(axis=1) > 0)
    keep_cols = np.flatnonzero(np.abs(grad).sum(axis=0) > 0)
    room = np.maximum(np.asarray(slack, dtype=np.float64)[keep_rows], 0.0)
    return SlotLimits(tuple(participants[c] for c in keep_cols.tolist()), tuple(rows[r] for r in keep_rows.tolist()),
                      grad[np.ix_(keep_rows, keep_cols)], room)
