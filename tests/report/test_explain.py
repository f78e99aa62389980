"""A group's note is built from its numbers only, in the run's currency."""

from __future__ import annotations

from decimal import Decimal

from p2penergy.report.explain import GroupChange, describe
from p2penergy.report.figures import FigureStyle

YEN = FigureStyle("JPY", Decimal("0.01"))
EURO = FigureStyle("EUR", Decimal("0.0001"))


def test_buyers_see_what_they_paid_against_the_utility_price_they_displaced():
    change = GroupChange(bought_wh=23200, paid=Decimal("485.1"), bought_from_wh={"prosumer": 20000, "car": 3200},
                         utility_change=Decimal("-530"), import_change_wh=-23200)
    assert describe(change, YEN) == (
        "Bought 23.2 kWh P2P at 20.91 JPY/kWh on average (from prosumers 20.0 kWh, cars 3.2 kWh); "
        "utility bills -530 JPY (grid imports -23.2 kWh at 22.84 JPY/kWh).")


def test_sellers_see_their_price_against_what_the_utility_pays_their_exports():
    change = GroupChange(sold_wh=4300, received=Decimal("0.8656"), sold_to_wh={"consumer": 2000, "prosumer": 2300},
                         utility_change=Decimal("0.35"), import_change_wh=1100, export_change_wh=-4200,
                         fuel_change=Decimal("-1.234"), export_prices_per_kwh={Decimal("0.08"): 2, Decimal("0.12"): 1})
    assert describe(change, EURO) == (
        "Sold 4.3 kWh P2P at 0.2013 EUR/kWh on average (to prosumers 2.3 kWh, consumers 2.0 kWh); "
        "the utility pays their exports 0.0800 EUR/kWh (2 sites), 0.1200 EUR/kWh (1 site); "
        "utility bills +0.35 EUR (grid imports +1.1 kWh, exports -4.2 kWh); fuel -1.23 EUR.")


def test_nothing_changed_says_nothing():
    assert describe(GroupChange(), YEN) == ""


def test_many_export_prices_read_as_a_range_and_a_rounded_zero_is_left_out():
    prices = {Decimal("8.5"): 2, Decimal("24"): 1, Decimal("42"): 1, Decimal("48"): 1}
    change = GroupChange(sold_wh=1000, received=Decimal("20"), sold_to_wh={"car": 1000},
                         fuel_change=Decimal("0.4"), export_prices_per_kwh=prices)
    assert describe(change, YEN) == ("Sold 1.0 kWh P2P at 20.00 JPY/kWh on average (to cars 1.0 kWh); "
                                     "the utility pays their exports 8.50 to 48.00 JPY/kWh (5 sites, 4 prices).")


def test_the_value_of_energy_stores_end_without_is_named():
    change = GroupChange(utility_change=Decimal("-120"), stored_change=Decimal("95.4"), fuel_change=Decimal("-40"))
    assert describe(change, YEN) == ("Utility bills -120 JPY; energy left in batteries and cars at the end, valued "
                                     "at the price of putting it back +95 JPY; fuel -40 JPY.")
