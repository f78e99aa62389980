"""Agents before an announced outage: a reserve target in the plan (agents/outage_plan.py)."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from p2penergy.agents.outage_plan import reserve_for_outages, reserve_setpoints, upcoming_outage_slot
from p2penergy.agents.plan_input import AgentInputError, Battery, Car, PlanInput
from p2penergy.agents.planner import plan
from p2penergy.outage import Outage

N = 48
T0 = datetime(2020, 8, 19, 15, 0, tzinfo=UTC)  # 00:00 JST
STARTS = tuple(T0 + timedelta(minutes=30 * k) for k in range(N))
OUTAGE = Outage(T0 + timedelta(hours=13), timedelta(hours=24), announced_hours=24)


def _input(battery=True, cars=()):
    hour = np.arange(N) / 2
    retail = np.where((hour >= 7) & (hour < 23), 32.0, 22.0)
    return PlanInput(
        slot_minutes=30, load_wh=np.full(N, 300.0), pv_wh=np.where((hour > 8) & (hour < 16), 600.0, 0.0),
        retail_price_per_kwh=retail, buyback_price_per_kwh=np.full(N, 8.0),
        p2p_buy_price_per_kwh=np.full(N, 30.0), p2p_sell_price_per_kwh=np.full(N, 9.0),
        battery=Battery(capacity_wh=7000, power_w=3000, soc_wh=2000, soc_min_wh=700, terminal_value_per_kwh=0.0)
        if battery else None, cars=cars,
    )


def test_upcoming_outage_slot():
    assert upcoming_outage_slot([OUTAGE], STARTS) == 26
    assert upcoming_outage_slot([], STARTS) is None
    assert upcoming_outage_slot([OUTAGE], STARTS[26:]) is None, "begun: nothing left to prepare"
    assert upcoming_outage_slot([Outage(T0 + timedelta(days=3), timedelta(hours=1))], STARTS) is None


def test_the_battery_is_full_when_the_outage_starts_and_the_plan_pays_for_it():
    inp = _input()
    assert reserve_for_outages(inp, [], STARTS) is inp
    ready = reserve_for_outages(inp, [OUTAGE], STARTS)
    before, after = plan(inp), plan(ready)
    assert before.soc_wh[25] < 6000
    assert after.soc_wh[25] == pytest.approx(7000, abs=1)
    assert after.cost > before.cost, "a reserve costs money: energy bought to be kept"
    points = reserve_setpoints(ready, after, STARTS)
    assert sum(c for c, _ in points.values()) > 0
    assert reserve_setpoints(inp, before, STARTS) == {}


def test_a_car_is_asked_for_what_it_can_reach():
    parked = np.ones(N, dtype=bool)
    car = Car(usable_wh=7000, charge_power_w=3000, discharge_power_w=3000, soc_wh=1000, parked=parked,
              drive_wh=np.zeros(N), soc_min_wh=0, fallback_cost_per_kwh=20.0)
    ready = reserve_for_outages(_input(battery=False, cars=(car,)), [OUTAGE], STARTS)
    assert ready.cars[0].soc_floor_wh[25] == 7000
    assert plan(ready).car_soc_wh[0][25] == pytest.approx(7000, abs=1)
    late = [Outage(T0 + timedelta(hours=1), timedelta(hours=2), 5)]
    floor = reserve_for_outages(_input(battery=False, cars=(car,)), late, STARTS).cars[0].soc_floor_wh
    assert floor[1] == pytest.approx(1000 + 0.9 * 0.92 * 3000 * 0.5 * 2)  # two slots of charging, with slack


def test_a_floor_above_the_store_is_refused_naming_the_field():
    with pytest.raises(AgentInputError, match=r"battery\.soc_floor_wh"):
        PlanInput(slot_minutes=30, load_wh=np.ones(2), pv_wh=np.zeros(2), retail_price_per_kwh=np.ones(2),
                  buyback_price_per_kwh=np.zeros(2), p2p_buy_price_per_kwh=np.ones(2),
                  p2p_sell_price_per_kwh=np.zeros(2),
                  battery=Battery(capacity_wh=1000, power_w=500, soc_wh=0, soc_floor_wh=np.array([0, 2000.0])))
