"""The ideal operator of an islanded community: every device pooled, perfect foresight (issue 18, item 4).

The third way of running the same outage, beside each site alone (the baseline) and the P2P
island (sim/island.py): one operator who knows every site's load, PV and every car's trips for
the whole outage and runs every battery and parked car as one. It is an upper bound, not a
rule anyone could follow: the LP maximises, summed over sites, each site's served share of its
demand by priority (:data:`PRIORITY_WEIGHTS`) over the outage, with the energy stored when the outage starts
taken from the P2P run (the same starting point as the island's). The islands are those of
sim/island.py (the homes' feeder; the office on its own), each one bus (no line limits).
"""

from __future__ import annotations

import numpy as np

from p2penergy.community import CAR_KIND, LOCATIONS, OFFICE_KIND, Community
from p2penergy.optim import LpBuilder, new_highs, solve_optimal
from p2penergy.sim.island import FEEDER_ISLAND, island_of
from p2penergy.sim.physics import OFFICE, ROAD

# Value of serving a site's whole demand of a priority (critical, essential, deferrable) over the
# outage in the operator's objective, which sums over sites the served *share* of each priority
# times its weight: every site counts the same (summing Wh instead, the office's 2 MW load would
# take every kWh the homes have), and a factor of 10 between tiers makes a site's critical load
# come before its essential one (a site's tier demands differ by less than 10x).
PRIORITY_WEIGHTS = (100.0, 10.0, 1.0)


def ideal_island_shed(community: Community, positions: np.ndarray, soc_wh: dict[str, int],
                      demand: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Shed Wh ``(3, len(positions))`` per site when the ideal operator runs the contiguous month
    positions ``positions`` (one outage) from the stores' ``soc_wh`` at its start; ``demand``:
    each site's demand by priority over the same positions (sim/resilience.py)."""
    c = community
    idx = c.month.start + positions
    n = len(positions)
    minutes = c.settings.slot_minutes
    b = LpBuilder()
    keys = sorted({island_of(c.participants[pid]) for pid in demand} | {FEEDER_ISLAND})
    rows = {key: b.rows(n, 0.0, 0.0) for key in keys}  # each island's bus balances in every slot
    served: dict[str, list[np.ndarray]] = {}
    for pid in sorted(demand):
        p = c.participants[pid]
        balance = rows[island_of(p)]
        cols = []
        for tier in range(3):
            total = float(demand[pid][tier].sum())
            value = PRIORITY_WEIGHTS[tier] / total if total > 0 else 0.0  # per Wh: a share of the site's demand
            col = b.cols(n, -value, upper=demand[pid][tier].astype(np.float64))
            b.add(balance, col, -1.0)
            cols.append(col)
        served[pid] = cols
        pv = b.cols(n, 0.0, upper=p.pv_wh[idx].astype(np.float64))
        b.add(balance, pv, 1.0)
    office = next((island_of(p) for p in c.participants.values() if p.kind == OFFICE_KIND), None)
    for pid in sorted(c.participants):
        p = c.participants[pid]
        spec = p.car_store if p.kind == CAR_KIND else p.battery
        if spec is None:
            continue
        if p.kind == CAR_KIND:
            assert p.phv is not None and p.location is not None and p.drive_wh is not None
            where = [LOCATIONS[int(x)] for x in p.location[idx]]
            parked = np.array([w != ROAD for w in where], dtype=np.float64)
            ch_max = parked * min(p.phv.charge_power_w * minutes // 60, spec.max_power_wh(minutes))
            dis_max = parked * min(p.phv.discharge_power_w * minutes // 60, spec.max_power_wh(minutes))
            drive = p.drive_wh[idx].astype(np.float64)
            # the island of the site it is parked at, slot by slot (on the road its flows are zero)
            at = [office if w == OFFICE and office is not None else FEEDER_ISLAND for w in where]
            balance = np.array([rows[key][t] for t, key in enumerate(at)])
        else:
            ch_max = dis_max = np.full(n, float(spec.max_power_wh(minutes)))
            drive = np.zeros(n)
            balance = rows[island_of(p)]
        ch = b.cols(n, 0.0, upper=ch_max)
        dis = b.cols(n, 0.0, upper=dis_max)
        draw = b.cols(n, 0.0, upper=drive)  # a PHV's engine covers what the battery does not
        soc = b.cols(n, 0.0, lower=float(spec.soc_min_wh), upper=float(spec.soc_max_wh))  # type: ignore[arg-type]
        b.add(balance, ch, -1.0)
        b.add(balance, dis, 1.0)
        rhs = np.zeros(n)
        rhs[0] = soc_wh[pid]
        dyn = b.rows(n, rhs, rhs)
        b.add(dyn, soc, 1.0)
        b.add(dyn[1:], soc[:-1], -1.0)
        b.add(dyn, ch, -spec.charge_efficiency)
        b.add(dyn, dis, 1.0 / spec.discharge_efficiency)
        b.add(dyn, draw, 1.0)
    h = new_highs()
    b.pass_to(h)
    x = solve_optimal(h)
    return {pid: np.array([np.rint(demand[pid][t] - x[served[pid][t]]) for t in range(3)], dtype=np.int64)
            for pid in demand}
