"""Hand-computed examples for every CDA rule (rules: README, "Matching rules")."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from tests.market.helpers import SLOT, at, buy, req, sell

from p2penergy.market import ContinuousMarket, MarketSettings, OrderError, OrderRejected

S = MarketSettings.demonstration()


def market():
    return ContinuousMarket(S)


def test_price_priority_then_resting_price():
    m = market()
    assert m.submit(sell("s1", 1000, "12", t=0)) == []
    assert m.submit(sell("s2", 1000, "10", t=1)) == []
    trades = m.submit(buy("b", 1500, "15", t=2))
    # cheapest first (10 for 1000 Wh), then 12 for the rest; each at the resting price
    assert [(t.sell_id, t.energy_wh, t.price_per_kwh) for t in trades] == [("s2", 1000, Decimal(10)), ("s1", 500, Decimal(12))]
    assert m.remaining_wh("s1") == 500
    assert m.remaining_wh("b") == 0


def test_time_priority_at_equal_price_is_arrival_order():
    m = market()
    m.submit(sell("first", 500, "10", t=5))
    m.submit(sell("second", 500, "10", t=1))  # a client clock saying earlier does not jump the queue
    trades = m.submit(buy("b", 500, "10", t=6))
    assert [t.sell_id for t in trades] == ["first"]


def test_incoming_sell_trades_at_resting_buy_price():
    m = market()
    m.submit(buy("b1", 800, "20", t=0))
    m.submit(buy("b2", 800, "22", t=1))
    trades = m.submit(sell("s", 1000, "15", t=2))
    assert [(t.buy_id, t.energy_wh, t.price_per_kwh) for t in trades] == [("b2", 800, Decimal(22)), ("b1", 200, Decimal(20))]
    assert m.remaining_wh("b1") == 600


def test_non_crossing_orders_rest_and_partial_remainder_rests():
    m = market()
    m.submit(sell("s", 300, "18"))
    assert m.submit(buy("b", 1000, "17", t=1)) == []
    trades = m.submit(buy("b2", 1000, "18", t=2))
    assert [(t.energy_wh, t.price_per_kwh) for t in trades] == [(300, Decimal(18))]
    assert m.remaining_wh("b2") == 700
    depth = m.book(SLOT).depth()
    assert depth["buy"] == [(Decimal("18.00"), 700), (Decimal("17.00"), 1000)]
    assert depth["sell"] == []


def test_money_is_exact():
    m = market()
    m.submit(sell("s", 333, "12.34"))
    (t,) = m.submit(buy("b", 333, "12.34", t=1))
    assert t.amount == Decimal("4.10922")  # 333 Wh * 12.34 JPY/kWh / 1000, exact


def test_preference_beats_price():
    m = market()
    m.submit(sell("cheap", 1000, "8", source="solar", producer="office"))
    m.submit(sell("x", 400, "11", source="solar", producer="house-07", t=1))
    trades = m.submit(buy("b", 1000, "11", t=2, reqs=(req(producer="house-07"), req(source="solar"))))
    # level 0 (house-07) first although dearer, then level 1 (any solar) at 8
    assert [(t.sell_id, t.energy_wh, t.preference_level) for t in trades] == [("x", 400, 0), ("cheap", 600, 1)]


def test_premium_raises_limit_and_premium_paid_is_recorded():
    m = market()
    m.submit(sell("solar", 1000, "12", source="solar"))
    m.submit(sell("grid", 1000, "9", source="grid", t=1))
    trades = m.submit(buy("b", 1500, "10", t=2, reqs=(req("3", source="solar"), req())))
    # solar: limit 10 + 3 = 13 >= 12 -> trades at 12 with 2 above the base price;
    # then anything at limit 10: the grid-sourced offer at 9
    assert [(t.sell_id, t.energy_wh, t.price_per_kwh, t.premium_per_kwh) for t in trades] == [
        ("solar", 1000, Decimal(12), Decimal(2)),
        ("grid", 500, Decimal(9), Decimal(0)),
    ]


def test_incoming_sell_meets_best_limit_for_its_tag():
    m = market()
    m.submit(buy("plain", 500, "12", t=0))
    m.submit(buy("green", 500, "10", t=1, reqs=(req("4", source="solar"),)))
    solar = m.submit(sell("s", 700, "9", t=2, source="solar"))
    # green's limit for solar is 14 > 12: it trades first, at 14, premium 4
    assert [(t.buy_id, t.energy_wh, t.price_per_kwh, t.premium_per_kwh) for t in solar] == [
        ("green", 500, Decimal(14), Decimal(4)),
        ("plain", 200, Decimal(12), Decimal(0)),
    ]
    m.submit(buy("green2", 500, "30", t=3, reqs=(req(source="solar"),)))
    battery = m.submit(sell("bat", 600, "9", t=4, source="battery"))
    # green2 does not accept battery energy whatever it pays
    assert [(t.buy_id, t.energy_wh) for t in battery] == [("plain", 300)]
    assert m.remaining_wh("bat") == 300


def test_requirements_without_any_do_not_take_untagged_energy():
    m = market()
    m.submit(sell("u", 500, "1"))
    assert m.submit(buy("b", 500, "50", t=1, reqs=(req(source="solar"),))) == []


def test_cancel_and_ownership():
    m = market()
    m.submit(sell("s", 500, "10", who="house-01"))
    with pytest.raises(OrderRejected) as info:
        m.cancel("s", "house-02", at(1))
    assert info.value.field == "participant"
    assert m.cancel("s", "house-01", at(1)) == 500
    assert m.submit(buy("b", 500, "20", t=2)) == []
    with pytest.raises(OrderRejected):
        m.cancel("s", "house-01", at(3))


def test_modify_down_keeps_priority_and_up_loses_it():
    m = market()
    m.submit(sell("a", 1000, "10", who="A"))
    m.submit(sell("b", 1000, "10", who="B", t=1))
    m.modify("a", "A", 600, Decimal(10), at(2))  # reduce only: keeps priority
    assert [t.sell_id for t in m.submit(buy("x", 600, "10", t=3))] == ["a"]
    m2 = market()
    m2.submit(sell("a", 1000, "10", who="A"))
    m2.submit(sell("b", 1000, "10", who="B", t=1))
    m2.modify("a", "A", 1200, Decimal(10), at(2))  # raise: back of the queue
    assert [t.sell_id for t in m2.submit(buy("x", 600, "10", t=3))] == ["b"]


def test_modify_price_may_trade_at_once():
    m = market()
    m.submit(buy("b", 500, "10", who="B"))
    m.submit(sell("s", 500, "12", who="S", t=1))
    trades = m.modify("s", "S", 500, Decimal(10), at(2))
    assert [(t.buy_id, t.price_per_kwh) for t in trades] == [("b", Decimal(10))]


def test_gate_and_duplicates_change_nothing():
    m = market()
    early = replace(sell("early", 100, "10"), submitted_at=SLOT - timedelta(hours=24, seconds=1))
    with pytest.raises(OrderRejected) as info:
        m.submit(early)
    assert info.value.field == "submitted_at"
    late = replace(buy("late", 100, "10"), submitted_at=SLOT + timedelta(minutes=20))
    with pytest.raises(OrderRejected):
        m.submit(late)
    m.submit(sell("s", 100, "10"))
    with pytest.raises(OrderRejected) as info:
        m.submit(sell("s", 100, "10", t=1))
    assert info.value.field == "id"
    with pytest.raises(OrderError):
        m.submit(sell("bad", 100, "99", t=2))
    assert len(m.book(SLOT)) == 1


def test_close_returns_unfilled_and_blocks_further_orders():
    m = market()
    m.submit(sell("s", 100, "10"))
    m.submit(buy("b", 300, "9", t=1))
    closed = m.close(SLOT)
    assert sorted((o.order_id, wh) for o, wh in closed.unfilled) == [("b", 300), ("s", 100)]
    with pytest.raises(OrderRejected):
        m.submit(buy("c", 100, "20", t=2))


def test_self_trade_prevention_cancels_the_resting_order():
    m = market()
    m.submit(sell("mine", 500, "10", who="house-01"))
    m.submit(sell("theirs", 500, "11", who="house-02", t=1))
    trades = m.submit(buy("b", 500, "12", who="house-01", t=2))
    assert [(t.sell_id, t.seller) for t in trades] == [("theirs", "house-02")]
    assert m.remaining_wh("mine") == 0 and m.book(SLOT).self_trade_cancels == [("mine", 500)]
    assert m.last_self_trade_cancels == (("mine", 500),)


def test_equal_tags_given_as_distinct_objects_form_one_class():
    """Sells whose tags are equal but distinct objects rest in one tag class: price, then time."""
    m = ContinuousMarket(S)
    m.submit(sell("s1", 500, "12", t=0, source="solar", producer="house-07"))
    m.submit(sell("s2", 500, "11", t=1, source="solar", producer="house-07"))
    m.submit(sell("s3", 500, "11", t=2, source="solar", producer="house-07"))
    trades = m.submit(buy("b", 1200, "12", t=3))
    assert [(t.sell_id, t.energy_wh) for t in trades] == [("s2", 500), ("s3", 500), ("s1", 200)]
    assert [t.trade_id for t in trades] == ["t1", "t2", "t3"]
    assert len(m.book(SLOT)._sells) == 1  # one heap for the three (keyed by the tag's items)
