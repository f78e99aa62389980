"""Key figures: one rounding policy by the unit in a figure's name, for JSON and for people.

Prices keep the market's tick for people and two more digits for machines; money its currency's minor unit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from p2penergy.report.figures import FigureStyle

YEN = FigureStyle("JPY", Decimal("0.01"))
EURO = FigureStyle("EUR", Decimal("0.0001"))


@pytest.mark.parametrize(("name", "value", "style", "text"), [
    ("p2p_vwap_per_kwh", 21.226489190788918, YEN, "21.23 JPY/kWh"),
    ("p2p_vwap_per_kwh", 0.2123456, EURO, "0.2123 EUR/kWh"),
    ("p2p_energy_kwh", 2363.4561, YEN, "2,363.5 kWh"),
    ("office_peak_kw_p2p", 93.21599, YEN, "93.2 kW"),
    ("car_renewable_driving_share", 0.40486753707694256, YEN, "40.5 %"),
    ("self_sufficiency_p2p", 0.2921, YEN, "29.2 %"),
    ("co2_reduction_pct", -50.04, YEN, "-50.0 %"),
    ("co2_kg_p2p", 1234.56, YEN, "1,235 kg"),
    ("p2p_trades", 11123, YEN, "11,123"),
    ("car_co2_reduction_pct", None, YEN, "-"),
])
def test_figures_are_printed_with_their_unit_and_sensible_digits(name, value, style, text):
    assert style.text(name, value) == text


@pytest.mark.parametrize(("name", "value", "style", "rounded"), [
    ("p2p_vwap_per_kwh", 21.226489190788918, YEN, 21.2265),
    ("p2p_vwap_per_kwh", 0.212345678, EURO, 0.212346),
    ("car_renewable_driving_share", 0.40486753707694256, YEN, 0.4049),
    ("p2p_energy_kwh", 2363.4561, YEN, 2363.456),
    ("office_peak_kw_p2p", 93.2159999, YEN, 93.216),
    ("co2_kg_p2p", 1234.5678, YEN, 1234.6),
    ("p2p_trades", 11123, YEN, 11123),
    ("car_co2_reduction_pct", None, YEN, None),
])
def test_machine_figures_keep_numbers_but_lose_float_noise(name, value, style, rounded):
    assert style.number(name, value) == rounded


def test_money_keeps_the_currencys_minor_unit():
    assert YEN.money(Decimal("207426.6")) == "207,427 JPY"
    assert EURO.money(Decimal("-1234.567")) == "-1,234.57 EUR"
    assert EURO.money(Decimal("3"), unit=False) == "3.00"
