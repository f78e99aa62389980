"""The simulated world behind a site's meter: the scenario's true series through the physics.

A :class:`ScenarioMeter` is the :class:`~p2penergy.agents.gateway.Meter` of one participant
in the simulation and in the live demonstration's agents: when a slot ends, it reads what
actually happened (the participant's load, PV, a car's location and driving) and runs the
devices' physics (:mod:`p2penergy.sim.physics`) with the slot's traded energy and the
agent's setpoints. The gateway never reads the series itself.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from p2penergy.agents.gateway import ExpectedReadings, SiteGateway, SlotGrid, SlotReading
from p2penergy.community import CAR_KIND, LOCATIONS, Community, Participant
from p2penergy.sim.physics import dispatch_car, dispatch_site


class ScenarioMeter:
    """One participant's meter and devices in the simulated world."""

    def __init__(self, participant: Participant, grid: SlotGrid) -> None:
        p = participant
        if p.kind == CAR_KIND and (p.car_store is None or p.phv is None or p.location is None or p.drive_wh is None):
            raise ValueError(f"participant: car {p.id} needs car_store, phv, location and drive_wh")
        self.participant = p
        self.grid = grid

    def read(self, slot_start: datetime, bought_wh: int, sold_wh: int, setpoint: tuple[int, int] | None,
             soc_wh: int) -> SlotReading:
        p = self.participant
        i = self.grid.position(slot_start)
        minutes = self.grid.slot_minutes
        if p.kind == CAR_KIND:
            assert p.car_store is not None and p.phv is not None and p.location is not None
            assert p.drive_wh is not None
            where = int(p.location[i])
            charge, _ = setpoint or (0, 0)  # a car discharges what it sold (physics), not a planned amount
            meter = dispatch_car(LOCATIONS[where], int(p.drive_wh[i]), bought_wh, sold_wh, charge,
                                 p.car_store, p.phv, soc_wh, minutes)
            return SlotReading(meter, where)
        # a site's setpoint is set only while its agent keeps a reserve for an outage (agents/outage_plan.py)
        return SlotReading(dispatch_site(int(p.load_wh[i]), int(p.pv_wh[i]), bought_wh, sold_wh, p.battery,
                                         soc_wh, minutes, setpoint, p.export_cap_wh))


def utility_only_charge_wh(car: Participant, i: int, slot_minutes: int) -> int:
    """What a car charges in slot ``i`` without a market: as fast as it can at home, never elsewhere."""
    assert car.phv is not None and car.location is not None
    return car.phv.charge_power_w * slot_minutes // 60 if LOCATIONS[car.location[i]] == "home" else 0


def catch_up(gateway: SiteGateway, meter: ScenarioMeter, until: int) -> None:
    """Read the slots before position ``until`` the gateway has not read, as the site ran before it
    joined the market: on the utility alone (no trades; a car charging at home as fast as it can,
    as in the baseline). A gateway that joins mid-month so knows the month's import, peak and
    stored energy so far."""
    p = meter.participant
    grid = gateway.grid
    while gateway.metered < until:
        i = gateway.metered
        if p.kind == CAR_KIND:
            gateway.meter(grid.starts[i], 0, 0, meter, setpoint=(utility_only_charge_wh(p, i, grid.slot_minutes), 0))
        else:  # a site's battery absorbs its imbalance (no plan yet)
            gateway.meter(grid.starts[i], 0, 0, meter)


def expected_readings(community: Community) -> ExpectedReadings:
    """What the sites' meters are expected to read before a report month's step outside outages:
    their own load and PV series (``dispatch_site`` reports them unless it curtails PV). The
    gateways' forecasts ahead start from these and are used only if the meters then read exactly
    them (:class:`~p2penergy.agents.gateway.SiteForecasts`): a wrong guess costs time, never a
    different forecast. ``None`` for a step past the month or readings across an outage."""
    month_stop = community.month.stop

    def expected(site: str, start: int, stop: int) -> np.ndarray | None:
        if stop >= month_stop or any(community.islanded(i) for i in range(start, stop)):
            return None
        p = community.participants[site]
        out = np.zeros((stop - start, 2), dtype=np.int64)
        for c, series in enumerate((p.load_wh, p.pv_wh)):
            if series is not None:
                out[:, c] = series[start:stop]
        return out

    return expected
