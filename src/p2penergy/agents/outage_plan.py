"""Agents before an announced outage: batteries and cars full by the time the utility goes (issue 18).

An agent knows of an outage from its announcement (``Outage.known_at``; an unannounced one only
once it has begun, when there is nothing left to prepare). While an announced outage lies ahead
in its horizon, its plan gets a *reserve target*: the state of charge its battery and its car must
have at the end of the slot before the outage starts (``soc_floor_wh`` of the plan's stores). The
planner then finds the cheapest way there — PV surplus, night-rate utility energy, the market —
and the money this costs is the price of the reserve (README, "Resilience"). During the outage
the island's controller runs the devices (sim/island.py); this module only shapes the plan.
A site's battery otherwise only absorbs its imbalance (sim/physics.py); while a reserve target
is in its plan it follows the plan's charge and discharge (:func:`reserve_setpoints`), so the
utility energy the plan buys to fill it reaches it.

Kept apart from the trader's pricing: one call on the plan's input (:func:`reserve_for_outages`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np

from p2penergy.agents.plan_input import Plan, PlanInput
from p2penergy.outage import Outage

# Share of a store's window (soc_min..soc_max) to have stored when an announced outage starts:
# full. A typhoon or an earthquake warning gives no length of outage (Japan's 2019 typhoon
# Faxai left parts of Chiba without power for over a week), so every stored kWh may be needed.
OUTAGE_RESERVE_TARGET_FRACTION = 1.0
# Part of the largest charge the slots before the outage allow that the target may ask for:
# the planner's charge limits are exact, so a target at 100 % of them would leave the plan no
# slack for a slot its car turns out unplugged in or its import is capped in; 90 % keeps it
# feasible and still asks for a full store whenever there are hours to spare.
REACHABLE_SHARE = 0.9


def upcoming_outage_slot(outages: Sequence[Outage], slot_starts: Sequence[datetime]) -> int | None:
    """Position in ``slot_starts`` where the first known outage that has not begun starts
    (``None``: none in the horizon, or the first slot is already in one)."""
    if not outages or not slot_starts or any(o.covers(slot_starts[0]) for o in outages):
        return None
    for k, start in enumerate(slot_starts):
        if any(o.covers(start) for o in outages):
            return k
    return None


def reserve_for_outages(inp: PlanInput, outages: Sequence[Outage], slot_starts: Sequence[datetime]) -> PlanInput:
    """``inp`` with reserve targets for the stores when a known outage starts within the horizon."""
    k = upcoming_outage_slot(outages, slot_starts)
    if k is None or (inp.battery is None and not inp.cars):
        return inp
    hours = inp.slot_hours
    n = inp.n_slots
    changes: dict[str, object] = {}
    bat = inp.battery
    if bat is not None:
        assert bat.soc_max_wh is not None
        target = bat.soc_min_wh + OUTAGE_RESERVE_TARGET_FRACTION * (bat.soc_max_wh - bat.soc_min_wh)
        reach = bat.soc_wh + REACHABLE_SHARE * bat.charge_efficiency * bat.power_w * hours * k
        floor = np.zeros(n)
        floor[k - 1] = min(target, reach)
        changes["battery"] = replace(bat, soc_floor_wh=floor)
    cars = []
    for car in inp.cars:
        chargeable = car.parked[:k] & ((inp.p2p_buy_max_wh[:k] > 0) | np.isinf(inp.grid_import_max_wh[:k]))
        target = car.soc_min_wh + OUTAGE_RESERVE_TARGET_FRACTION * (car.usable_wh - car.soc_min_wh)
        reach = car.soc_wh + REACHABLE_SHARE * car.charge_efficiency * car.charge_power_w * hours * int(
            chargeable.sum()) - float(car.drive_wh[:k].sum())
        floor = np.zeros(n)
        floor[k - 1] = max(0.0, min(target, reach))
        cars.append(replace(car, soc_floor_wh=floor))
    if cars:
        changes["cars"] = tuple(cars)
    return replace(inp, **changes)  # type: ignore[arg-type]


def reserve_setpoints(inp: PlanInput, result: Plan,
                      slot_starts: Sequence[datetime]) -> dict[datetime, tuple[int, int]]:
    """A site battery's (charge, discharge) Wh per slot from ``result`` while ``inp`` holds a
    reserve target (none otherwise: the battery absorbs the site's imbalance as always)."""
    if inp.battery is None or inp.battery.soc_floor_wh is None or inp.cars:
        return {}
    charge = np.rint(result.battery_charge_wh).astype(np.int64)
    discharge = np.rint(result.battery_discharge_wh).astype(np.int64)
    return {s: (int(charge[k]), int(discharge[k])) for k, s in enumerate(slot_starts)}
