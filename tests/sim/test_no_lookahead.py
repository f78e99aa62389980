"""No look-ahead: changing what happens after time t (load, PV, the cars' trips and driving energy)
changes no order placed before t."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from p2penergy.community import CAR_KIND, LOCATION_CODES
from p2penergy.scenario.generate import generate
from p2penergy.scenario.load import load_scenario
from p2penergy.sim.build import build_community
from p2penergy.sim.loop import LoopConfig, run_p2p
from p2penergy.sim.simulate import fit_forecasters


class Orders:
    def __init__(self):
        self.placed = []

    def on_order(self, order):
        self.placed.append(order)

    def on_cancel(self, order_id, participant, now):
        self.placed.append(("cancel", order_id, participant, now))

    def on_slot(self, slot_start, trades, meters):
        return None


@pytest.fixture(scope="module")
def community_and_kit():
    scenario = load_scenario()
    month = scenario.period.report_month
    data = generate(scenario, month - timedelta(days=21), month + timedelta(days=3))
    community = build_community(scenario, data, report_days=2)
    return community, fit_forecasters(community, 1)


def test_orders_before_t_ignore_the_future(community_and_kit):
    community, kit = community_and_kit
    cut = community.month.start + 48 + 22  # 11:00 on the second day (the cars have traded by then)
    t = community.slot(cut)
    people = dict(community.participants)
    for pid, p in people.items():
        load = p.load_wh.copy()
        load[cut:] = load[cut:] * 3 + 500  # a wildly different future
        pv = p.pv_wh.copy()
        pv[cut:] = 0
        people[pid] = replace(p, load_wh=load, pv_wh=pv)
        if p.kind == CAR_KIND:  # and other trips: every car on the road from t to the next morning
            assert p.location is not None and p.drive_wh is not None
            location, drive = p.location.copy(), p.drive_wh.copy()
            location[cut:cut + 36] = LOCATION_CODES["road"]
            drive[cut:cut + 36] = 900
            people[pid] = replace(people[pid], location=location, drive_wh=drive)
    changed = replace(community, participants=people)
    runs = []
    for c in (community, changed):
        hook = Orders()
        run_p2p(c, kit, LoopConfig(), [hook])
        runs.append(hook.placed)

    def before(placed):
        return [o for o in placed if (o[3] if isinstance(o, tuple) else o.submitted_at) < t]

    assert before(runs[0]) and before(runs[0]) == before(runs[1])
    after = [o for o in runs[0] if not isinstance(o, tuple) and o.submitted_at >= t]
    after_changed = [o for o in runs[1] if not isinstance(o, tuple) and o.submitted_at >= t]
    assert after != after_changed, "the perturbation must matter once it is in the past"
    cars = {p.id for p in community.of_kind(CAR_KIND)}
    car_orders = [[o for o in placed if not isinstance(o, tuple) and o.participant in cars] for placed in runs]
    assert before(car_orders[0]), "cars traded before t"
    assert [o for o in car_orders[0] if o.submitted_at >= t] != [o for o in car_orders[1] if o.submitted_at >= t], \
        "the cars' changed trips must matter once they are in the past"
    assert not np.array_equal(changed.participants["house-01"].load_wh, community.participants["house-01"].load_wh)
