"""The CDA's per-site import/export limits (issue 17): a fill is cut to what both parties have left
in the slot; an order whose participant has nothing left stays open but trades no more."""

from decimal import Decimal

import numpy as np
import pytest
from tests.market.helpers import SLOT, buy, sell

from p2penergy.market import ContinuousMarket, MarketSettings, OrderError, make_exchange
from p2penergy.market.book import SiteLimitsWh, site_limits_from_dict, site_limits_to_dict

S = MarketSettings.demonstration()


def test_incoming_buy_is_cut_to_the_sellers_export_limit_and_moves_on():
    m = ContinuousMarket(S, {"pv": SiteLimitsWh(import_wh=0, export_wh=700)})
    m.submit(sell("cheap", 1000, "10", t=0, who="pv"))
    m.submit(sell("dear", 1000, "12", t=1, who="other"))
    trades = m.submit(buy("b", 1500, "15", t=2))
    # 700 Wh from the limited site at its price, the rest from the next seller
    assert [(t.sell_id, t.energy_wh, t.price_per_kwh) for t in trades] == [("cheap", 700, Decimal(10)),
                                                                         ("dear", 800, Decimal(12))]
    # the limited seller's rest stays open (its owner sees it) and is unfilled at close
    assert m.remaining_wh("cheap") == 300
    assert m.submit(buy("b2", 500, "15", t=3))[0].sell_id == "dear"
    closed = m.close(SLOT)
    assert ("cheap", 300) in [(o.order_id, wh) for o, wh in closed.unfilled]


def test_incoming_sell_is_cut_to_the_buyers_import_limit():
    m = ContinuousMarket(S, {"home": SiteLimitsWh(import_wh=400, export_wh=0)})
    m.submit(buy("b-home", 1000, "20", t=0, who="home"))
    m.submit(buy("b-other", 1000, "18", t=1))
    trades = m.submit(sell("s", 1500, "10", t=2))
    assert [(t.buy_id, t.energy_wh, t.price_per_kwh) for t in trades] == [("b-home", 400, Decimal(20)),
                                                                        ("b-other", 1000, Decimal(18))]
    assert m.remaining_wh("b-home") == 600
    assert m.remaining_wh("s") == 100


def test_limits_count_every_order_of_the_site_in_the_slot():
    m = ContinuousMarket(S, {"home": SiteLimitsWh(import_wh=1000, export_wh=0)})
    m.submit(sell("s", 5000, "10", t=0))
    assert sum(t.energy_wh for t in m.submit(buy("b1", 600, "15", t=1, who="home"))) == 600
    assert sum(t.energy_wh for t in m.submit(buy("b2", 600, "15", t=2, who="home"))) == 400
    assert m.remaining_wh("b2") == 200  # rests, trades no more
    assert m.submit(buy("b3", 600, "15", t=3, who="home")) == []
    # another buyer is not held back by the home's limit
    assert sum(t.energy_wh for t in m.submit(buy("x", 600, "15", t=4))) == 600


def test_limits_are_per_slot():
    later = SLOT.replace(hour=13)
    m = ContinuousMarket(S, {"pv": SiteLimitsWh(import_wh=0, export_wh=500)})
    m.submit(sell("a", 1000, "10", t=0, who="pv"))
    m.submit(sell("b", 1000, "10", t=0, who="pv", slot=later))
    assert sum(t.energy_wh for t in m.submit(buy("x", 1000, "15", t=1))) == 500
    assert sum(t.energy_wh for t in m.submit(buy("y", 1000, "15", t=1, slot=later))) == 500


def test_random_books_never_exceed_a_limit_and_equal_the_unlimited_market_when_slack():
    rng = np.random.default_rng(17)
    sites = [f"s{i}" for i in range(6)]
    orders = []
    for i in range(400):
        side = sell if rng.random() < 0.5 else buy
        price = f"{rng.normal(12, 2):.2f}"
        orders.append(side(f"o{i}", int(rng.integers(100, 2000)), price, t=i // 10, who=sites[rng.integers(6)]))
    limits = {s: SiteLimitsWh(int(rng.integers(0, 20_000)), int(rng.integers(0, 20_000))) for s in sites[:4]}
    m = ContinuousMarket(S, limits)
    trades = [t for o in orders for t in m.submit(o)]
    for s, lim in limits.items():
        assert sum(t.energy_wh for t in trades if t.buyer == s) <= lim.import_wh
        assert sum(t.energy_wh for t in trades if t.seller == s) <= lim.export_wh
    assert any(sum(t.energy_wh for t in trades if t.seller == s) == lim.export_wh for s, lim in limits.items())
    # limits nobody reaches change nothing: the same trades as the market without limits
    slack = {s: SiteLimitsWh(10**9, 10**9) for s in sites}
    a, b = ContinuousMarket(S, slack), ContinuousMarket(S)
    assert [t for o in orders for t in a.submit(o)] == [t for o in orders for t in b.submit(o)]


def test_bad_limits_name_the_field():
    with pytest.raises(ValueError, match="export_wh"):
        SiteLimitsWh(import_wh=10, export_wh=-1)
    with pytest.raises(OrderError, match="limits"):
        make_exchange(S, "pay-as-clear", {"a": SiteLimitsWh(1, 1)})


def test_limits_round_trip_through_the_journals_form_and_bad_entries_name_the_site():
    limits = {"b": SiteLimitsWh(5, 0), "a": SiteLimitsWh(0, 700)}
    data = site_limits_to_dict(limits)
    assert list(data) == ["a", "b"] and data["a"] == {"import_wh": 0, "export_wh": 700}
    assert site_limits_from_dict(data) == limits
    with pytest.raises(ValueError, match=r"site_limits\.a\.export_wh"):
        site_limits_from_dict({"a": {"import_wh": 1, "export_wh": -3}})
    with pytest.raises(ValueError, match=r"site_limits\.a: exactly import_wh and export_wh"):
        site_limits_from_dict({"a": {"import_wh": 1}})
    with pytest.raises(ValueError, match="site_limits: a non-empty mapping"):
        site_limits_from_dict([])


def test_a_cda_takes_its_limits_when_made_and_refuses_them_at_close():
    """``close(slot, limits)`` is the exchanges' one signature; a call auction clears within limits
    there, a CDA matched within its own as orders came, so limits at close are a caller's mistake."""
    m = ContinuousMarket(S, {"pv": SiteLimitsWh(import_wh=0, export_wh=700)})
    m.submit(sell("s", 1000, "10", t=0, who="pv"))
    with pytest.raises(ValueError, match="limits: a continuous double auction clears nothing at close"):
        m.close(SLOT, object())  # type: ignore[arg-type]
    assert [(o.order_id, wh) for o, wh in m.close(SLOT, None).unfilled] == [("s", 1000)]
