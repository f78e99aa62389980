"""Hand-computed call auctions (price rule: README, "Call auctions")."""

import gc
from decimal import Decimal

import numpy as np
import pytest
from tests.market.helpers import SLOT, at, buy, req, sell

from p2penergy.market import MarketSettings, Tag, clear_call, clear_uniform_arrays

S = MarketSettings.demonstration()


def book():
    return [
        buy("b20", 1000, "20", t=0), buy("b15", 1000, "15", t=1), buy("b10", 1000, "10", t=2),
        sell("s8", 1000, "8", t=3), sell("s12", 1000, "12", t=4), sell("s18", 1000, "18", t=5),
    ]


def test_uniform_price_is_midpoint_of_clearing_interval():
    c = clear_call(book(), S, SLOT, "pay-as-clear")
    # volume 2000 Wh: b20+b15 against s8+s12. Interval: lo = max(marginal ask 12, best unfilled
    # bid 10) = 12; hi = min(marginal bid 15, best unsold ask 18) = 15; midpoint 13.5.
    assert c.clearing_price_per_kwh == Decimal("13.50")
    assert sorted((t.buy_id, t.sell_id, t.energy_wh) for t in c.trades) == [("b15", "s12", 1000), ("b20", "s8", 1000)]
    assert all(t.price_per_kwh == Decimal("13.50") for t in c.trades)
    # welfare (20-8)*1 + (15-12)*1 = 15 JPY
    assert c.summary.welfare == Decimal(15)


def test_uniform_price_with_partly_filled_marginal_order():
    orders = [buy("b", 1500, "20"), sell("s1", 1000, "10", t=1), sell("s2", 1000, "12", t=2)]
    c = clear_call(orders, S, SLOT, "pay-as-clear")
    # s2 is partly sold, so hi = min(20, 12) = 12 and lo = 12: price 12
    assert c.clearing_price_per_kwh == Decimal(12)
    assert c.filled_wh == {"b": 1500, "s1": 1000, "s2": 500}


def test_pay_as_bid_prices_are_buyers_limits():
    c = clear_call(book(), S, SLOT, "pay-as-bid")
    assert sorted((t.buy_id, t.price_per_kwh) for t in c.trades) == [("b15", Decimal(15)), ("b20", Decimal(20))]
    assert c.clearing_prices == {}


def test_time_breaks_ties_among_equal_prices():
    orders = [sell("late", 500, "10", t=9), sell("early", 500, "10", t=1), buy("b", 500, "11", t=10)]
    c = clear_call(orders, S, SLOT, "pay-as-clear")
    assert [t.sell_id for t in c.trades] == ["early"]


def test_no_cross_no_trade():
    c = clear_call([buy("b", 500, "9"), sell("s", 500, "10")], S, SLOT)
    assert c.trades == () and c.clearing_prices == {}


def test_tagged_auction_honours_requirements_and_premiums():
    orders = [
        sell("x", 1000, "12", source="solar", producer="house-07"),
        sell("cheap", 1000, "5", source="battery", producer="house-15"),
        buy("wants_x", 600, "10", reqs=(req("3", producer="house-07"),)),
        buy("any", 1000, "8"),
    ]
    c = clear_call(orders, S, SLOT, "pay-as-clear")
    got = sorted((t.buy_id, t.sell_id, t.energy_wh) for t in c.trades)
    # wants_x only accepts house-07 at up to 13; any takes the battery energy
    assert got == [("any", "cheap", 1000), ("wants_x", "x", 600)]
    prices = c.clearing_prices
    # house-07 class: lo = 12 (accepted ask), hi = min(13 buyer limit, 12 unsold ask) = 12
    assert prices[Tag.of(source="solar", producer="house-07")] == Decimal(12)
    # battery class: lo = 5, hi = min(8, no unsold) = 8 -> 6.5
    assert prices[Tag.of(source="battery", producer="house-15")] == Decimal("6.50")
    x_trade = next(t for t in c.trades if t.sell_id == "x")
    assert x_trade.premium_per_kwh == Decimal(2)  # 12 paid over a base of 10


def test_array_path_matches_hand_example():
    r = clear_uniform_arrays(np.array([2000, 1500, 1000]), np.array([1000, 1000, 1000]),
                             np.array([800, 1200, 1800]), np.array([1000, 1000, 1000]))
    assert r.volume_wh == 2000 and r.price_ticks == 1350
    assert r.buy_filled_wh.tolist() == [1000, 1000, 0]
    assert r.sell_filled_wh.tolist() == [1000, 1000, 0]


def test_a_call_auction_ranks_ties_by_when_the_exchange_received_them():
    """A backdated ``submitted_at`` buys no priority: the exchange's ``now`` at receipt counts."""
    from p2penergy.market import make_exchange

    ex = make_exchange(S, "pay-as-bid")
    ex.submit(sell("honest", 500, "10", t=5), now=at(5))
    ex.submit(sell("backdated", 500, "10", t=0), now=at(6))  # claims to be older than it is
    ex.submit(buy("b", 500, "11", t=7), now=at(7))
    assert [t.sell_id for t in ex.close(SLOT).trades] == ["honest"]


def test_tagged_auction_splits_a_buyer_groups_energy_by_the_documented_rule():
    """Both allocations have welfare 17 JPY ((22-10) + (15-10) = (20-10) + (17-10)); the rule
    (docs/market.md, "Call auctions") gives the group's highest-priced buyer its most preferred
    class. Pay-as-clear: house-07 class [10, 22] -> 16; battery class [10, 15] -> 12.50."""
    wants = (req("2", producer="house-07"), req("0"))
    orders = [
        sell("x", 1000, "10", t=0, source="solar", producer="house-07"),
        sell("bat", 1000, "10", t=1, source="battery", producer="house-15"),
        buy("low", 1000, "15", t=2, reqs=wants),
        buy("high", 1000, "20", t=3, reqs=wants),
    ]
    c = clear_call(orders, S, SLOT, "pay-as-clear")
    assert sorted((t.buy_id, t.sell_id, t.energy_wh, t.price_per_kwh) for t in c.trades) == [
        ("high", "x", 1000, Decimal(16)), ("low", "bat", 1000, Decimal("12.50"))]
    assert c.summary.welfare == Decimal(17)


def test_a_buyer_groups_total_goes_to_its_buyers_by_price_then_time():
    """1500 Wh of solar for three buyers of one group: the 25 JPY buyer first, then of the two at
    18 the earlier one (the same welfare either way)."""
    solar = (req("1", source="solar"),)
    orders = [
        sell("s", 1500, "10", t=0, source="solar", producer="house-01"),
        buy("early18", 1000, "18", t=1, reqs=solar),
        buy("top25", 1000, "25", t=2, reqs=solar),
        buy("late18", 1000, "18", t=3, reqs=solar),
    ]
    c = clear_call(orders, S, SLOT, "pay-as-bid")
    assert c.filled_wh == {"top25": 1000, "s": 1500, "early18": 500}
    assert [(t.buy_id, t.price_per_kwh) for t in c.trades] == [("top25", Decimal(26)), ("early18", Decimal(19))]


def test_clearing_leaves_the_collector_as_it_was():
    """The cyclic collector, paused while the trades are built, is as before the clearing: enabled,
    disabled, or enabled again after an error while building them."""
    assert gc.isenabled()
    c = clear_call(book(), S, SLOT, "pay-as-clear")
    assert gc.isenabled() and [t.trade_id for t in c.trades] == ["t1", "t2"]
    gc.disable()
    try:
        clear_call(book(), S, SLOT, "pay-as-clear")
        assert not gc.isenabled()
    finally:
        gc.enable()

    def failing_id() -> str:
        raise RuntimeError("no more ids")

    with pytest.raises(RuntimeError, match="no more ids"):
        clear_call(book(), S, SLOT, "pay-as-clear", failing_id)
    assert gc.isenabled()


@pytest.mark.parametrize("seed", range(6))
def test_stable_argsort_is_numpys_stable_sort(seed: int) -> None:
    """The array path's ranking (composite keys, one unstable sort) is numpy's stable sort exactly:
    many equal prices (time priority among them), negative keys (buys rank by -price), and keys whose
    range times their count does not fit in int64 (the stable sort itself)."""
    from p2penergy.market.call_auction import stable_argsort

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 3_000))
    cases = [
        rng.integers(0, 40, n), -rng.integers(0, 5_000, n), rng.integers(-(2**62), 2**62, n),
        np.full(n, 7), np.arange(n)[::-1].copy(), rng.integers(-3, 3, min(n, 1)),
    ]
    for keys in cases:
        keys = np.asarray(keys, dtype=np.int64)
        assert np.array_equal(stable_argsort(keys), np.argsort(keys, kind="stable"))


@pytest.mark.parametrize("seed", range(40))
def test_array_path_volume_is_the_largest_crossing_volume(seed: int) -> None:
    """Against the definition, price by price: the cleared volume is the largest min(demand at or above
    p, supply at or below p) over every price p; each side's fills add up to it, best prices first
    and, among equal prices, earlier orders first."""
    rng = np.random.default_rng(seed)
    nb, ns, top = int(rng.integers(1, 80)), int(rng.integers(1, 80)), int(rng.integers(1, 300))
    bt, bw = rng.integers(0, top, nb), rng.integers(1, 50, nb)
    st, sw = rng.integers(0, top, ns), rng.integers(1, 50, ns)
    r = clear_uniform_arrays(bt, bw, st, sw)
    want = max(min(int(bw[bt >= p].sum()), int(sw[st <= p].sum())) for p in range(top))
    assert int(r.buy_filled_wh.sum()) == int(r.sell_filled_wh.sum()) == want
    for ticks, wh, filled, sign in ((bt, bw, r.buy_filled_wh, -1), (st, sw, r.sell_filled_wh, 1)):
        order = sorted(range(len(ticks)), key=lambda i: (sign * ticks[i], i))
        left = want
        for i in order:  # priority: each order is filled as far as the volume left allows
            assert filled[i] == min(wh[i], max(left, 0))
            left -= wh[i]
