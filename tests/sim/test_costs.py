"""Bills of a run as billed: fuel-cost adjustment, FIT by connection year, how the baseline credits
exports, and the headline (the electricity-charge balance, fuel apart, n/a when the baseline ≤ 0).

A few days of the shipped scenario's utility-only baseline: cheap and real (generated data, the
baseline's physics, the bills of ``sim.costs``)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest

from p2penergy.community import CAR_KIND, HOME_KIND
from p2penergy.scenario import generate, load_scenario
from p2penergy.sim.build import build_community
from p2penergy.sim.costs import month_costs
from p2penergy.sim.loop import run_baseline
from p2penergy.sim.results import NOT_APPLICABLE, GroupResult, group_results
from p2penergy.tariffs import Buyback, ExportCredit

DAYS = 4


@pytest.fixture(scope="module")
def base():
    scenario = load_scenario()
    data = generate(scenario, date(2020, 7, 31), date(2020, 8, 1 + DAYS))
    community = build_community(scenario, data, report_days=DAYS)
    records = run_baseline(community)
    return scenario, community, records, month_costs(community, records)


def _line(cost, prefix):
    return [x for x in cost.bill.lines if x.name.startswith(prefix)]


def test_an_august_2020_bill_includes_the_fuel_cost_adjustment(base):
    costs = base[3]
    bill = costs["house-01"].bill
    (fuel,) = _line(costs["house-01"], "fuel-cost adjustment")
    assert fuel.rate == Decimal("-2.85") and fuel.quantity == bill.import_kwh > 0
    assert fuel.amount == Decimal("-2.85") * bill.import_kwh
    (office_fuel,) = _line(costs["office"], "fuel-cost adjustment")
    assert office_fuel.rate < 0


def test_a_fy2012_home_is_credited_42_and_a_fy2009_home_the_post_fit_price(base):
    scenario, _, _, costs = base
    assert scenario.home("house-13").pv_connected.year == 2012
    (credit,) = _line(costs["house-13"], "buyback")
    assert credit.name == "buyback (fit-fy2012)" and credit.rate == Decimal(42)
    (post,) = _line(costs["house-14"], "buyback")
    assert post.name == "buyback (post-fit)" and post.rate == Decimal("8.5")


def test_the_balance_is_what_was_paid_for_electricity_minus_sales_fuel_apart(base):
    _, community, _, costs = base
    driven_on_fuel = [c for c in costs.values() if c.fuel > 0]
    assert driven_on_fuel, "some car ran on its engine in the baseline"
    for cost in costs.values():
        exact = cost.utility + cost.p2p_paid - cost.p2p_received + cost.stored_energy
        assert cost.balance == exact.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    for cost in driven_on_fuel:
        assert community.participants[cost.participant].kind == CAR_KIND
        assert cost.total - cost.balance == cost.fuel.quantize(Decimal(1), rounding=ROUND_HALF_UP)


def test_the_baseline_setting_chooses_how_exports_are_credited(base):
    _, community, records, own = base
    none = month_costs(community, records, ExportCredit.none())
    post_fit = month_costs(community, records, ExportCredit.scheme(Buyback("post-fit", Decimal("8.5"))))
    pv_homes = [p.id for p in community.participants.values() if p.kind == HOME_KIND and p.has_pv]
    for pid in pv_homes:
        exported = own[pid].bill.export_kwh
        assert exported > 0
        assert not _line(none[pid], "buyback") and none[pid].bill.credit == 0
        assert none[pid].balance - own[pid].balance == own[pid].bill.credit
        (credit,) = _line(post_fit[pid], "buyback")
        assert credit.rate == Decimal("8.5")
    # the FIT home is credited less at the post-FIT price; homes without PV and the office are untouched
    assert post_fit["house-13"].balance > own["house-13"].balance
    for pid in ("house-01", "office"):
        assert none[pid].balance == own[pid].balance == post_fit[pid].balance
    assert ExportCredit.none().label and ExportCredit.own().label and ExportCredit.scheme(
        Buyback("post-fit", Decimal("8.5"))).label.startswith("post-fit")
    assert community.baseline_export_credit == ExportCredit.own()  # the shipped scenario's setting


def test_groups_sum_balances_and_fuel_separately(base):
    _, community, _, costs = base
    groups = group_results(community, costs, costs)
    phv = groups["phv"]
    assert phv.baseline_balance == sum(costs[m].balance for m in phv.members)
    assert phv.baseline_fuel == sum(costs[m].fuel for m in phv.members) > 0
    assert phv.improvement_pct == 0.0


@pytest.mark.parametrize(("baseline", "p2p", "pct", "text"), [
    (Decimal(1000), Decimal(900), 10.0, "10.0 %"),
    (Decimal(1000), Decimal(-76), 107.6, "107.6 %"),
    (Decimal(0), Decimal(-50), None, NOT_APPLICABLE),
    (Decimal(-200), Decimal(-400), None, NOT_APPLICABLE),
])
def test_improvement_is_not_applicable_when_the_baseline_balance_is_not_positive(baseline, p2p, pct, text):
    g = GroupResult(("h",), baseline, p2p, Decimal(0), Decimal(0))
    assert g.improvement_pct == pct
    assert g.improvement_text == text
    assert NOT_APPLICABLE == "n/a (baseline ≤ 0)"


def test_energy_a_store_ends_without_is_charged_at_the_price_of_putting_it_back(base):
    # The baseline's cars end full, as they started: nothing to value. Take 3,500 Wh out of one car's last
    # slot (as a short P2P run whose car has not recharged yet would end): its balance rises by 3.5 kWh at
    # its owner's next utility kWh (second or third tier, fuel-cost adjustment and surcharge) ÷ 0.92.
    import copy

    from p2penergy.agents.trader import marginal_retail_per_kwh

    _, community, records, costs = base
    car = community.participants["car-01"]
    assert costs["car-01"].stored_energy == 0
    drawn = copy.deepcopy(records)
    drawn.accounts["car-01"].columns["soc_wh"][-1] -= 3500
    after = month_costs(community, drawn)["car-01"]
    imported = sum(int(records.accounts[pid].columns["grid_import_wh"].sum()) for pid in ("car-01", car.owner))
    price = marginal_retail_per_kwh(car.retail, community.report_month, imported)
    assert price > 20
    assert after.stored_energy == Decimal("3.5") * price / Decimal("0.92")
    assert after.balance - costs["car-01"].balance == after.stored_energy.quantize(Decimal(1), ROUND_HALF_UP)
    # a store ending fuller than it started is credited alike
    fuller = copy.deepcopy(records)
    home = next(p for p in community.participants.values() if p.battery is not None)
    fuller.accounts[home.id].columns["soc_wh"][-1] = home.battery.initial_soc_wh + 1000
    assert month_costs(community, fuller)[home.id].stored_energy < 0
