"""Property tests: the CDA against a brute-force reference of the documented rules, and the
call auctions against an independently formulated welfare LP (scipy.optimize.linprog)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from tests.market.helpers import SLOT, buy, req, sell

from p2penergy.market import ContinuousMarket, MarketSettings, Order, clear_call
from p2penergy.market.tags import preference_level

S = MarketSettings.demonstration()
PRODUCERS = ["house-01", "house-02", "office"]
SOURCES = ["solar", "battery"]
WHO = ["alice", "bob", "carol", "dave", "erin", "frank"]


@st.composite
def order_lists(draw, tagged: bool = True, max_size: int = 25):
    n = draw(st.integers(1, max_size))
    orders: list[Order] = []
    for i in range(n):
        wh = draw(st.integers(1, 2000))
        price = str(Decimal(draw(st.integers(0, 40))) / 2)  # 0.0 .. 20.0 in 0.5 steps
        if draw(st.booleans()):
            attrs = {}
            if tagged and draw(st.booleans()):
                attrs = {"source": draw(st.sampled_from(SOURCES)), "producer": draw(st.sampled_from(PRODUCERS))}
            orders.append(sell(f"o{i}", wh, price, t=i, who=draw(st.sampled_from(WHO)), **attrs))
        else:
            reqs = ()
            if tagged and draw(st.booleans()):
                chosen = draw(st.lists(st.sampled_from(["p0", "p1", "p2", "solar", "battery", "any"]), min_size=1,
                                       max_size=3, unique=True))
                reqs = tuple(
                    req(str(draw(st.integers(0, 6))), **({"producer": PRODUCERS[int(c[1])]} if c[0] == "p" and len(c) == 2
                                                       else {} if c == "any" else {"source": c}))
                    for c in chosen
                )
            orders.append(buy(f"o{i}", wh, price, t=i, who=draw(st.sampled_from(WHO)), reqs=reqs))
    return orders


def reference_cda(orders: list[Order]):
    """O(n^2) straight reading of the README's CDA rules: every field of every trade, in order,
    and the self-trade cancellations ``(order id, open Wh)``."""
    resting: list[list] = []  # [order, remaining, seq]
    trades, cancels = [], []
    for seq, o in enumerate(orders):
        rem = o.energy_wh
        while rem > 0:
            best = None
            for r in resting:
                other, other_rem, other_seq = r
                if other.side == o.side or other_rem == 0:
                    continue
                if o.side == "buy":
                    level = preference_level(o.requirements, other.tag)
                    if level is None or other.price_per_kwh > o.limit_for(other.tag):
                        continue
                    key = (level, other.price_per_kwh, other_seq)
                else:
                    lim = other.limit_for(o.tag)
                    if lim is None or lim < o.price_per_kwh:
                        continue
                    key = (-lim, other_seq)
                if best is None or key < best[0]:
                    best = (key, r)
            if best is None:
                break
            r = best[1]
            if r[0].participant == o.participant:  # self-trade prevention cancels the resting order
                cancels.append((r[0].order_id, r[1]))
                r[1] = 0
                continue
            energy = min(rem, r[1])
            b, s = (o, r[0]) if o.side == "buy" else (r[0], o)
            level = preference_level(b.requirements, s.tag)
            limit = b.limit_for(s.tag)
            # the resting order's price; an incoming buy pays a premium only above its base price,
            # an incoming sell is paid the resting buy's limit, all of its requirement's premium
            price = r[0].price_per_kwh if o.side == "buy" else limit
            premium = max(price - b.price_per_kwh, Decimal(0)) if o.side == "buy" else limit - b.price_per_kwh
            trades.append((f"t{len(trades) + 1}", b.order_id, s.order_id, b.participant, s.participant, energy,
                           price, premium, s.tag, level, limit, s.price_per_kwh))
            rem -= energy
            r[1] -= energy
        resting.append([o, rem, seq])
    return trades, cancels


@settings(max_examples=150, deadline=None)
@given(order_lists())
def test_cda_matches_reference_and_invariants(orders):
    m = ContinuousMarket(S)
    trades = [t for o in orders for t in m.submit(o)]
    expected_trades, expected_cancels = reference_cda(orders)
    assert [(t.trade_id, t.buy_id, t.sell_id, t.buyer, t.seller, t.energy_wh, t.price_per_kwh, t.premium_per_kwh,
             t.tag, t.preference_level, t.buyer_limit_per_kwh, t.seller_limit_per_kwh) for t in trades] == expected_trades
    assert m.book(SLOT).self_trade_cancels == expected_cancels
    by_id = {o.order_id: o for o in orders}
    filled: dict[str, int] = {}
    for t in trades:
        b, s = by_id[t.buy_id], by_id[t.sell_id]
        filled[t.buy_id] = filled.get(t.buy_id, 0) + t.energy_wh
        filled[t.sell_id] = filled.get(t.sell_id, 0) + t.energy_wh
        assert b.limit_for(s.tag) is not None, "requirements violated"
        assert s.price_per_kwh <= t.price_per_kwh <= b.limit_for(s.tag), "trade outside a limit"
        assert t.preference_level == (preference_level(b.requirements, s.tag) or 0)
        assert 0 <= t.premium_per_kwh <= t.price_per_kwh
    cancelled = {oid for oid, _ in m.book(SLOT).self_trade_cancels}
    for oid, wh in filled.items():
        assert wh + m.remaining_wh(oid) <= by_id[oid].energy_wh, "over-filled"
        if oid not in cancelled:
            assert wh + m.remaining_wh(oid) == by_id[oid].energy_wh
    assert all(t.buyer != t.seller for t in trades), "self-trade"
    # the book is never left crossed
    book = m.book(SLOT)
    rest = list(book.resting())
    for rb in (r for r in rest if r.order.side == "buy"):
        for rs in (r for r in rest if r.order.side == "sell"):
            lim = rb.order.limit_for(rs.order.tag)
            assert lim is None or lim < rs.order.price_per_kwh
    # determinism
    m2 = ContinuousMarket(S)
    assert [t for o in orders for t in m2.submit(o)] == trades


def optimum_welfare(orders: list[Order]) -> float:
    """Max welfare by an LP over every buy x sell pair (independent of the production code)."""
    buys = [o for o in orders if o.side == "buy"]
    sells = [o for o in orders if o.side == "sell"]
    pairs = [(i, j, float(b.limit_for(s.tag) - s.price_per_kwh))
             for i, b in enumerate(buys) for j, s in enumerate(sells)
             if b.limit_for(s.tag) is not None and b.limit_for(s.tag) >= s.price_per_kwh]
    if not pairs:
        return 0.0
    c = np.array([-g / 1000 for _, _, g in pairs])
    a = np.zeros((len(buys) + len(sells), len(pairs)))
    for k, (i, j, _) in enumerate(pairs):
        a[i, k] = 1
        a[len(buys) + j, k] = 1
    cap = [b.energy_wh for b in buys] + [s.energy_wh for s in sells]
    res = linprog(c, A_ub=a, b_ub=cap, bounds=(0, None), method="highs")
    assert res.status == 0
    return -res.fun


@settings(max_examples=100, deadline=None)
@given(order_lists(tagged=False), st.sampled_from(["pay-as-clear", "pay-as-bid"]))
def test_untagged_call_auction_welfare_is_optimal(orders, pricing):
    check_call_auction(orders, pricing)


@settings(max_examples=100, deadline=None)
@given(order_lists(tagged=True, max_size=16), st.sampled_from(["pay-as-clear", "pay-as-bid"]))
def test_tagged_call_auction_welfare_is_optimal(orders, pricing):
    check_call_auction(orders, pricing)


def check_call_auction(orders, pricing):
    c = clear_call(orders, S, SLOT, pricing)
    assert abs(float(c.summary.welfare) - optimum_welfare(orders)) < 1e-6
    by_id = {o.order_id: o for o in orders}
    for oid, wh in c.filled_wh.items():
        assert wh <= by_id[oid].energy_wh
    for t in c.trades:
        b, s = by_id[t.buy_id], by_id[t.sell_id]
        assert s.price_per_kwh <= t.price_per_kwh <= b.limit_for(s.tag)
        if pricing == "pay-as-clear":
            assert t.price_per_kwh == c.clearing_prices[s.tag]
    # money balances to the unit and the same input gives the same output
    assert sum(t.amount for t in c.trades) == sum(t.energy_wh * t.price_per_kwh for t in c.trades) / 1000
    assert clear_call(list(reversed(orders)), S, SLOT, pricing) == c
