"""Bidding: linear concession to the reference price inside the reservation prices."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from p2penergy.agents.bidding import BiddingStrategy, net_of_fee
from p2penergy.market import MarketSettings

S = MarketSettings.demonstration()
SLOT = datetime(2020, 8, 3, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
STRATEGY = BiddingStrategy(spread_per_kwh=Decimal(3))


def test_concession_from_gate_open_to_close():
    opens, closes = S.gate_open(SLOT), S.gate_close(SLOT)
    ref = Decimal(20)
    # at the gate's opening (f = 1): ask = 20 + 3, bid = 20 - 3
    assert STRATEGY.sell_price(S, SLOT, opens, ref, Decimal(8), Decimal(50)) == Decimal(23)
    assert STRATEGY.buy_price(S, SLOT, opens, ref, Decimal(30), Decimal(0)) == Decimal(17)
    # half way (f = 0.5): both at the reference
    mid = opens + (closes - opens) / 2
    assert STRATEGY.sell_price(S, SLOT, mid, ref, Decimal(8), Decimal(50)) == Decimal(20)
    # just before closing (f ~ 0): ask ~ 17, bid ~ 23, so late orders cross
    late = closes - timedelta(minutes=1)
    assert STRATEGY.sell_price(S, SLOT, late, ref, Decimal(8), Decimal(50)) < STRATEGY.buy_price(
        S, SLOT, late, ref, Decimal(30), Decimal(0))


def test_reservation_prices_bound_the_limits():
    opens = S.gate_open(SLOT)
    assert STRATEGY.sell_price(S, SLOT, opens, Decimal(10), Decimal(21), Decimal(50)) == Decimal(21)
    assert STRATEGY.buy_price(S, SLOT, S.gate_close(SLOT), Decimal(28), Decimal("29.46"),
                              Decimal(0)) == Decimal("29.46")


def test_prices_on_tick_and_in_band():
    now = S.gate_open(SLOT) + timedelta(hours=7, minutes=13)
    for ref in (Decimal("0.003"), Decimal("13.337"), Decimal("49.999")):
        ask = STRATEGY.sell_price(S, SLOT, now, ref, Decimal(0), Decimal(50))
        bid = STRATEGY.buy_price(S, SLOT, now, ref, Decimal(50), Decimal(0))
        for price in (ask, bid):
            assert price % S.price_tick_per_kwh == 0
            assert S.price_min_per_kwh <= price <= S.price_max_per_kwh


def test_no_reference_uses_midpoint_of_reservations():
    mid = S.gate_open(SLOT) + (S.gate_close(SLOT) - S.gate_open(SLOT)) / 2
    assert STRATEGY.buy_price(S, SLOT, mid, None, Decimal(30), Decimal(10)) == Decimal(20)


def test_the_default_spread_is_a_share_of_the_markets_band_so_a_euro_market_trades():
    from pathlib import Path

    eu = MarketSettings.from_toml(Path(__file__).parents[2] / "markets" / "eu-15min.toml")
    default = BiddingStrategy()
    assert default.spread(S) == Decimal(3)  # 6 % of 0-50 JPY: the JPY market's prices as before
    assert default.spread(eu) == Decimal("0.03")  # 6 % of 0-0.50 EUR
    slot = datetime(2020, 8, 3, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    opens, closes = eu.gate_open(slot), eu.gate_close(slot)
    ref, buyback, retail = Decimal("0.19"), Decimal("0.08"), Decimal("0.30")
    # a day-ahead ask starts just above the reference, not at the band's cap
    assert default.sell_price(eu, slot, opens, ref, buyback, eu.price_max_per_kwh) == Decimal("0.22")
    # and before the last quarter of the gate window it already crosses a fresh bid
    late = opens + (closes - opens) * 3 / 4
    assert default.sell_price(eu, slot, late, ref, buyback, eu.price_max_per_kwh) <= default.buy_price(
        eu, slot, late, ref, retail, eu.price_min_per_kwh)


def test_net_of_fee_lowers_a_buyers_reservation_by_the_fee_never_below_the_floor():
    assert net_of_fee([Decimal(30), Decimal(2)], Decimal(4), Decimal(0)) == [Decimal(26), Decimal(0)]
    same = [Decimal("30.50")]
    assert net_of_fee(same, Decimal(0), Decimal(0)) is same  # without a fee: unchanged
