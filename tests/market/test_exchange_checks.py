"""The exchange's cached checks refuse what the full checks refuse (issue 16: prices are checked once
per price text and requirement list, and the last order's book is reused while orders keep coming
for its slot)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.market.helpers import SLOT, at, buy, req, sell

from p2penergy.market import ContinuousMarket, MarketSettings, OrderRejected, check_against
from p2penergy.market.errors import MarketError

S = MarketSettings.demonstration()
LATER = SLOT + timedelta(minutes=30)


def refusal(market: ContinuousMarket, order) -> tuple[str, str]:
    with pytest.raises(MarketError) as err:
        market.submit(order)
    return type(err.value).__name__, str(err.value)


def test_a_premium_over_the_band_is_refused_after_its_list_was_accepted():
    m = ContinuousMarket(S)
    reqs = (req("3", producer="house-07"), req("30", source="solar"))
    m.submit(buy("ok", 100, "10", reqs=reqs))  # 10 + 30 <= 50: the list's premiums are cached
    bad = buy("bad", 100, "25", reqs=reqs)  # 25 + 30 > 50
    with pytest.raises(MarketError) as full:
        check_against(bad, S)
    assert full.value.field == "requirements.premium_per_kwh"
    assert refusal(m, bad) == (type(full.value).__name__, str(full.value))
    assert m.remaining_wh("bad") == 0 and m.remaining_wh("ok") == 100


@pytest.mark.parametrize("price", ["10.001", "50.01", "-1"])
def test_a_bad_price_is_refused_as_the_full_check_does_whatever_was_cached(price):
    m = ContinuousMarket(S)
    m.submit(sell("s", 100, "10"))
    for order in (sell("x", 100, price), buy("y", 100, price, reqs=(req("1", source="solar"),))):
        with pytest.raises(MarketError) as full:
            check_against(order, S)
        assert refusal(m, order) == (type(full.value).__name__, str(full.value))


def test_a_premium_off_the_tick_grid_is_refused_on_every_order_with_it():
    m = ContinuousMarket(S)
    reqs = (req("1", source="solar"), req("0.005"))
    for k in range(2):
        _, text = refusal(m, buy(f"b{k}", 100, "10", reqs=reqs))
        assert "requirements.premium_per_kwh" in text


def test_orders_alternating_between_slots_use_each_slot_book_and_its_gate():
    m = ContinuousMarket(S)
    m.submit(sell("a1", 100, "10"))
    m.submit(sell("b1", 100, "10", slot=LATER))
    assert [t.sell_id for t in m.submit(buy("a2", 100, "10"))] == ["a1"]
    assert [t.sell_id for t in m.submit(buy("b2", 50, "10", slot=LATER))] == ["b1"]
    m.close(SLOT)
    with pytest.raises(OrderRejected) as err:
        m.submit(sell("a3", 100, "10", t=1))
    assert err.value.field == "submitted_at"
    assert [t.sell_id for t in m.submit(buy("b3", 50, "10", slot=LATER, t=2))] == ["b1"]
    # a late order for the open slot is refused by its own gate
    late = sell("b4", 100, "10", slot=LATER)
    with pytest.raises(OrderRejected):
        m.submit(late, now=at(0) + timedelta(hours=3))
