"""Forecasts made ahead in another process (sim/forecast_ahead.py) are the ones the agents would
have computed themselves: the same forecasts, orders, trades and bills to the yen; a guess the
meters contradict is dropped and the step computed as without it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import numpy as np
import pytest

from p2penergy.community import CAR_KIND
from p2penergy.scenario.generate import generate
from p2penergy.scenario.load import load_scenario
from p2penergy.sim.build import build_community
from p2penergy.sim.costs import month_costs
from p2penergy.sim.forecast_ahead import ForecastAhead, spare_core
from p2penergy.sim.loop import LoopConfig, run_p2p
from p2penergy.sim.simulate import fit_forecasters

DAYS = 1


@pytest.fixture(scope="module")
def community_and_kit():
    scenario = load_scenario()
    first = scenario.period.report_month
    community = build_community(scenario, generate(scenario, first - timedelta(days=14), first + timedelta(days=2)),
                                report_days=DAYS)
    return community, fit_forecasters(community, 1)


def _run(community, kit, runner=None):
    """(orders and cancels placed, trades, bills, forecasts logged) of a run."""
    placed = []
    hook = SimpleNamespace(on_order=placed.append, on_cancel=lambda *cancel: placed.append(cancel),
                           on_slot=lambda *slot: None)
    records = run_p2p(community, kit, LoopConfig(), [hook], forecast_runner=runner)
    return placed, records.trades, month_costs(community, records), records.forecasts


def _assert_same(a, b):
    placed, trades, costs, forecasts = a
    assert placed and trades
    assert placed == b[0]
    assert trades == b[1]
    assert costs == b[2]
    for target in forecasts:
        assert forecasts[target].keys() == b[3][target].keys()
        for pid, values in forecasts[target].items():
            assert np.array_equal(values, b[3][target][pid])


def test_forecasts_made_ahead_give_the_same_run(community_and_kit):
    community, kit = community_and_kit
    plain = _run(community, kit)
    config = LoopConfig()
    with ForecastAhead(kit, community, config.replan_slots) as ahead:
        fast = _run(community, kit, ahead)
    _assert_same(plain, fast)
    steps = -(-(community.month.stop - community.month.start) // config.replan_slots)
    assert (ahead.hits, ahead.misses) == (steps - 1, 0), "every step after the first takes the forecasts made ahead"


def test_a_guess_the_meters_contradict_is_dropped(community_and_kit):
    community, kit = community_and_kit
    cut = community.month.start + 30  # 15:00 on the first day
    people = dict(community.participants)
    for pid, p in people.items():
        if p.kind != CAR_KIND:
            load = p.load_wh.copy()
            load[cut:] = load[cut:] + 100
            people[pid] = replace(p, load_wh=load)
    changed = replace(community, participants=people)
    plain = _run(changed, kit)
    # guesses from the unchanged series: right before the cut, wrong once the meters read past it
    with ForecastAhead(kit, community, LoopConfig().replan_slots) as ahead:
        fast = _run(changed, kit, ahead)
    _assert_same(plain, fast)
    assert ahead.hits > 0 and ahead.misses > 0


def test_replan_slots_must_be_positive(community_and_kit):
    community, kit = community_and_kit
    with pytest.raises(ValueError, match="replan_slots"):
        ForecastAhead(kit, community, 0)


@pytest.mark.parametrize(("load", "cores", "spare"), [(1.0, 2, True), (1.6, 2, False), (5.0, 2, False),
                                                      (0.0, 1, False), (2.9, 4, True)])
def test_a_core_is_spare_only_when_the_load_leaves_one_free(load, cores, spare):
    # idle, the simulation alone makes a load of about 1; on 2 cores anything more fills the second
    assert spare_core(load, cores) is spare
