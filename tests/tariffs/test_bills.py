"""Bills: hand-computed TEPCO Meter-rate Lighting B and high-voltage office bills."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2penergy.tariffs import (
    Buyback,
    OfficeTariff,
    RatePeriod,
    RetailTariff,
    Tier,
    home_bill,
    minor_unit,
    office_bill,
    peak_demand_kw,
    round_money,
)

D = Decimal
SURCHARGE = (RatePeriod(date(2019, 5, 1), D("2.95")), RatePeriod(date(2020, 5, 1), D("2.98")))
TEPCO_B = RetailTariff(D("286.00"), (Tier(D(120), D("19.88")), Tier(D(300), D("26.48")), Tier(None, D("30.57"))),
                       SURCHARGE)


def test_tepco_meter_rate_b_hand_computed():
    # 350 kWh in August 2020 at 40 A (TEPCO Meter-rate Lighting B, Oct 2019 prices):
    # basic 4 × 286 = 1,144; energy 120 × 19.88 + 180 × 26.48 + 50 × 30.57 = 2,385.6 + 4,766.4 + 1,528.5
    # = 8,680.5; charges 9,824.5 → 9,824 (fraction discarded); surcharge 350 × 2.98 = 1,043.
    imports = [350_000 // 700] * 700  # 700 slots of 500 Wh
    bill = home_bill("house-01", date(2020, 8, 15), imports, [0] * 700, TEPCO_B, 40, None, "JPY")
    assert bill.month == date(2020, 8, 1)
    assert bill.import_kwh == D(350)
    assert bill.charges == D(9824)
    assert bill.surcharge == D(1043)
    assert bill.total == D(10867)
    assert [x.name for x in bill.lines] == ["basic charge", "energy tier 1", "energy tier 2", "energy tier 3",
                                            "renewable surcharge"]
    assert sum(x.amount for x in bill.lines) == D("10867.5")


def test_surcharge_rate_follows_the_month_and_small_use_stays_in_tier_one():
    # 100.5 kWh in April 2020 (2.95): energy 100.5 × 19.88 = 1,997.94; basic 858 → 2,855.94 → 2,855;
    # surcharge 100.5 × 2.95 = 296.475 → 296
    bill = home_bill("h", date(2020, 4, 1), [100_500], [], TEPCO_B, 30, None, "JPY")
    assert (bill.charges, bill.surcharge, bill.total) == (D(2855), D(296), D(3151))
    assert TEPCO_B.surcharge_rate(date(2019, 4, 1)) == 0


def test_buyback_credit_rounded_down_and_net_income_possible():
    # 10 kWh imported, 300.3 kWh exported under FIT 24: credit 7,207.2 → 7,207
    bill = home_bill("h", date(2020, 8, 1), [10_000], [300_300], TEPCO_B, 30, Buyback("fit-fy2019", D(24)), "JPY")
    assert bill.credit == D(7207)
    # charges: 858 + 198.8 = 1,056.8 → 1,056; surcharge 29.8 → 29
    assert bill.total == D(1056) + D(29) - D(7207)
    assert bill.total < 0


def test_office_demand_charge_on_the_peak_slot():
    tariff = OfficeTariff(D("1716.00"), D("17.76"), D("16.60"), (7, 8, 9), 100, SURCHARGE)
    # peak slot 50,600 Wh in 30 min = 101.2 kW → 101 kW; demand 1,716 × 0.85 × 101 = 1,458.6 × 101 = 147,318.6
    imports = [20_000] * 99 + [50_600]
    # energy 2,030.6 kWh × 17.76 (August) = 36,063.456; charges 183,382.056 → 183,382
    # surcharge 2,030.6 × 2.98 = 6,051.188 → 6,051
    bill = office_bill("office", date(2020, 8, 1), imports, [0] * 100, tariff, 30, None, "JPY")
    assert bill.lines[0].quantity == D(101)
    assert bill.charges == D(183382)
    assert bill.surcharge == D(6051)
    # in June the other-season rate applies: 2,030.6 × 16.60 = 33,707.96;
    # 147,318.6 + 33,707.96 = 181,026.56 → 181,026
    june = office_bill("office", date(2020, 6, 1), imports, [0] * 100, tariff, 30, None, "JPY")
    assert june.charges == D(181026)
    # a ratchet from earlier months raises the billed demand
    ratchet = office_bill("office", date(2020, 8, 1), imports, [], tariff, 30, None, "JPY", ratchet_kw=D(120))
    assert ratchet.lines[0].quantity == D(120)


def test_peak_demand_depends_on_slot_length():
    assert peak_demand_kw([25_000], 30) == D(50)
    assert peak_demand_kw([12_500], 15) == D(50)
    assert peak_demand_kw([250], 30) == D(1)  # 0.5 kW rounds half up
    assert peak_demand_kw([], 30) == D(0)


def test_currency_minor_unit_from_the_caller():
    assert minor_unit("JPY") == D(1) and minor_unit("EUR") == D("0.01")
    assert round_money(D("12.349"), "EUR") == D("12.34")
    assert round_money(D("12.345"), "EUR", "half_up") == D("12.35")
    euro = RetailTariff(D("10"), (Tier(None, D("0.3015")),))
    bill = home_bill("h", date(2020, 8, 1), [333], [], euro, 10, None, "EUR")
    # 10 + 0.333 × 0.3015 = 10.1003995 → 10.10
    assert bill.total == D("10.10") and bill.currency == "EUR"


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: RetailTariff(D(1), (Tier(D(10), D(1)),)), "^tiers:"),
        (lambda: RetailTariff(D(1), (Tier(D(10), D(1)), Tier(D(5), D(1)), Tier(None, D(1))),), "^tiers:"),
        (lambda: TEPCO_B.basic_charge(0), "^contract_a:"),
        (lambda: home_bill("h", date(2020, 8, 1), [-1], [], TEPCO_B, 30, None, "JPY"), "^import_wh:"),
        (lambda: OfficeTariff(D(1), D(1), D(1), power_factor_pct=120), "^power_factor_pct:"),
        (lambda: round_money(D(1), "JPY", "up"), "^rounding:"),
    ],
)
def test_bad_inputs_name_the_field(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@given(st.lists(st.integers(0, 5000), max_size=60), st.integers(0, 5000), st.sampled_from([10, 30, 60]))
def test_bill_properties(imports, extra_wh, contract_a):
    """Tiers split the energy exactly; more import never lowers the bill; rounding loses < 1 yen per part."""
    month = date(2020, 8, 1)
    kwh = Decimal(sum(imports)) / 1000
    assert sum(k for _, k in TEPCO_B.energy_charge_lines(kwh)) == kwh
    bill = home_bill("h", month, imports, [], TEPCO_B, contract_a, None, "JPY")
    more = home_bill("h", month, [*imports, extra_wh], [], TEPCO_B, contract_a, None, "JPY")
    assert more.total >= bill.total
    exact = sum(x.amount for x in bill.lines)
    assert Decimal(0) <= exact - bill.total < Decimal(2)


# TEPCO's fuel-cost adjustment (燃料費調整単価), August 2020, tax included: low voltage −2.85,
# high voltage −2.76 JPY/kWh (values in the shipped scenario, with their sources).
FUEL_LV = (RatePeriod(date(2020, 7, 1), D("-2.44")), RatePeriod(date(2020, 8, 1), D("-2.85")))
FUEL_HV = (RatePeriod(date(2020, 8, 1), D("-2.76")),)


def test_fuel_adjustment_applies_to_every_imported_kwh_and_can_be_negative():
    tariff = RetailTariff(TEPCO_B.basic_charge_per_10a, TEPCO_B.tiers, SURCHARGE, fuel_adjustment=FUEL_LV)
    imports = [500] * 700  # 350 kWh, as in the hand-computed bill above
    bill = home_bill("house-01", date(2020, 8, 1), imports, [0] * 700, tariff, 40, None, "JPY")
    # charges 9,824.5 + 350 × (−2.85) = 9,824.5 − 997.5 = 8,827 (the adjustment is part of the
    # energy charge, rounded with it); the surcharge is unchanged
    assert bill.charges == D(8827)
    assert bill.surcharge == D(1043)
    fuel = next(x for x in bill.lines if x.name == "fuel-cost adjustment")
    assert (fuel.quantity, fuel.rate, fuel.amount) == (D(350), D("-2.85"), D("-997.5"))
    # the month's own value: July's is −2.44
    july = home_bill("house-01", date(2020, 7, 1), imports, [0] * 700, tariff, 40, None, "JPY")
    assert july.charges == D("9824.5") - D("854") - D("0.5")
    assert tariff.fuel_adjustment_rate(date(2020, 8, 1)) == D("-2.85")
    assert TEPCO_B.fuel_adjustment_rate(date(2020, 8, 1)) == 0  # a tariff without one


def test_office_bill_applies_its_own_fuel_adjustment():
    tariff = OfficeTariff(D("1716.00"), D("17.76"), D("16.60"), (7, 8, 9), 100, SURCHARGE, fuel_adjustment=FUEL_HV)
    imports = [20_000] * 99 + [50_600]
    bill = office_bill("office", date(2020, 8, 1), imports, [0] * 100, tariff, 30, None, "JPY")
    # 183,382.056 (test above) + 2,030.6 × (−2.76) = 183,382.056 − 5,604.456 = 177,777.6 → 177,777
    assert bill.charges == D(177777)
    assert bill.surcharge == D(6051)
    assert tariff.fuel_adjustment_rate(date(2020, 8, 1)) == D("-2.76")
