"""The tagged call auction's group LP against the LP it replaced (issue 16).

Before, the welfare LP had one column per (buyer, tag class) arc a buyer could use; now it has
one per order and one per (buyer group, tag class) (``call_auction._welfare_lp``) and splits the
group totals over the orders by the book's priority (``call_auction._split``). Both are optimal,
so their welfare must be equal to the unit; which of several equally good allocations is chosen
may differ. ``arc_lp_welfare`` is the old formulation, kept here as the reference (solved with
scipy's HiGHS, independent of the production code's model building).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.sparse import coo_matrix
from tests.market.helpers import SLOT, T0
from tests.market.test_properties import order_lists

from p2penergy.market import MarketSettings, Order, Requirement, Tag, clear_call
from p2penergy.market.call_auction import priority_order

S = MarketSettings.demonstration()
TICKS_PER_KWH = 100  # the demonstration's tick is 0.01 JPY/kWh


def ticks(price: Decimal) -> int:
    return S.price_to_ticks(price)


def arc_lp_welfare(orders: list[Order]) -> Decimal:
    """The optimum of the old LP: a column per usable (buyer, class) arc and per sell; a row per
    buyer (capacity) and per class (arcs out == sells in). Exact from its integral vertex."""
    buys = [o for o in orders if o.side == "buy"]
    sells = [o for o in orders if o.side == "sell"]
    tags = list(dict.fromkeys(s.tag for s in sells))
    min_ask = {t: min(ticks(s.price_per_kwh) for s in sells if s.tag == t) for t in tags}
    arcs = [(i, c, ticks(b.limit_for(t))) for i, b in enumerate(buys) for c, t in enumerate(tags)
            if b.limit_for(t) is not None and ticks(b.limit_for(t)) >= min_ask[t]]
    if not arcs:
        return Decimal(0)
    n_a, n_s = len(arcs), len(sells)
    cost = [-lim for _, _, lim in arcs] + [ticks(s.price_per_kwh) for s in sells]
    rows, cols, vals = [], [], []
    for k, (i, c, _) in enumerate(arcs):
        rows += [i, len(buys) + c]
        cols += [k, k]
        vals += [1.0, 1.0]
    for j, s in enumerate(sells):
        rows.append(len(buys) + tags.index(s.tag))
        cols.append(n_a + j)
        vals.append(-1.0)
    a = coo_matrix((vals, (rows, cols)), shape=(len(buys) + len(tags), n_a + n_s)).tocsr()
    a_ub, a_eq = a[: len(buys)], a[len(buys):]
    bounds = [(0, buys[i].energy_wh) for i, _, _ in arcs] + [(0, s.energy_wh) for s in sells]
    res = linprog(cost, A_ub=a_ub, b_ub=[b.energy_wh for b in buys], A_eq=a_eq, b_eq=np.zeros(len(tags)),
                  bounds=bounds, method="highs")
    assert res.status == 0
    x = np.rint(res.x).astype(np.int64)
    assert np.abs(res.x - x).max() < 1e-6, "the arc LP's vertex is integral (network matrix)"
    welfare_tick_wh = -int(np.dot(np.array(cost, dtype=np.int64), x))
    return S.price_tick_per_kwh * welfare_tick_wh / 1000


def check_same_welfare_and_rules(orders: list[Order], pricing: str) -> None:
    c = clear_call(orders, S, SLOT, pricing)
    assert c.summary.welfare == arc_lp_welfare(orders)
    by_id = {o.order_id: o for o in orders}
    for t in c.trades:
        b, s = by_id[t.buy_id], by_id[t.sell_id]
        assert t.buyer_limit_per_kwh == b.limit_for(s.tag), "the buyer's limit for the energy's tag"
        assert t.seller_limit_per_kwh == s.price_per_kwh
        assert s.price_per_kwh <= t.price_per_kwh <= t.buyer_limit_per_kwh
    # the documented split: within a buyer group (same requirements) fills go by base price, then
    # time; within a tag class sells by price, then time: no order is left (partly) unfilled while
    # one after it in that order gets energy
    ranked = priority_order(orders)
    rank = {o.order_id: k for k, o in enumerate(ranked)}
    groups: dict[object, list[Order]] = {}
    for o in ranked:
        key = ("buy", o.requirements) if o.side == "buy" else ("sell", o.tag)
        groups.setdefault(key, []).append(o)
    for (side, _), members in groups.items():
        sign = -1 if side == "buy" else 1
        members.sort(key=lambda o: (sign * o.price_per_kwh, rank[o.order_id]))
        fills = [c.filled_wh.get(o.order_id, 0) for o in members]
        for k in range(len(members) - 1):
            if fills[k + 1] > 0:
                assert fills[k] == members[k].energy_wh, (side, members[k].order_id, members[k + 1].order_id)
    # money exact: each trade's amount is Wh x price / 1000, and the sum balances to the unit
    assert sum(t.amount for t in c.trades) == sum(t.energy_wh * t.price_per_kwh for t in c.trades) / 1000
    assert clear_call(list(reversed(orders)), S, SLOT, pricing) == c, "deterministic, input order aside"


@settings(max_examples=120, deadline=None)
@given(order_lists(tagged=True, max_size=40), st.sampled_from(["pay-as-clear", "pay-as-bid"]))
def test_group_lp_has_the_arc_lps_welfare_on_random_books(orders, pricing):
    check_same_welfare_and_rules(orders, pricing)


PRODUCERS = [f"house-{i:02d}" for i in range(1, 9)] + ["office"]


def big_book(seed: int, n: int) -> list[Order]:
    """A book like the benchmark's: producers' tags, a third of the buyers with three-level
    requirements (a producer, then solar, then anything), prices on a coarse grid (ties)."""
    rng = np.random.default_rng(seed)
    tags = [Tag.of(source="solar" if k % 3 else "battery", producer=p) for k, p in enumerate(PRODUCERS)]
    reqs = [(Requirement.of({"producer": p}, "2"), Requirement.of({"source": "solar"}, "1"), Requirement.any())
            for p in PRODUCERS] + [(Requirement.of({"source": "solar"}, "0.5"),)]
    orders = []
    for i in range(n):
        is_buy = rng.random() < 0.5
        price = Decimal(int(rng.normal(1400 if is_buy else 1200, 300)) // 10 * 10 % 5000) / 100
        wh, at = int(rng.integers(1, 3000)), T0 + timedelta(seconds=int(rng.integers(0, 600)))
        if is_buy:
            r = reqs[int(rng.integers(0, len(reqs)))] if rng.random() < 0.5 else ()
            orders.append(Order(f"o{i}", f"p{i}", "buy", SLOT, wh, price, at, requirements=r))
        else:
            orders.append(Order(f"o{i}", f"p{i}", "sell", SLOT, wh, price, at, tags[int(rng.integers(0, len(tags)))]))
    return orders


@pytest.mark.parametrize(("seed", "n"), [(1, 200), (2, 1000), (3, 2000)])
@pytest.mark.parametrize("pricing", ["pay-as-clear", "pay-as-bid"])
def test_group_lp_has_the_arc_lps_welfare_on_large_books(seed, n, pricing):
    check_same_welfare_and_rules(big_book(seed, n), pricing)
