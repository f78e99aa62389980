"""Each slot's linearised feeder limits for the call auction (:mod:`p2penergy.network.auction`),
at the utility-only baseline's draws of the same slot: the operating point.

The sensitivities of every slot (:func:`~p2penergy.network.sensitivity.sensitivities`' finite
differences: the operating point and one step of ``DELTA_W`` per site) are solved in one
power-grid-model batch for the whole run (sites + 1 flows a slot).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from p2penergy.community import CAR_KIND, LOCATION_CODES, OFFICE_KIND, Community
from p2penergy.network.auction import SlotLimits, slot_limits
from p2penergy.network.clearing import NetworkLimits, site_rows
from p2penergy.network.feeder import Feeder
from p2penergy.network.powerflow import flows
from p2penergy.network.run import site_power_w
from p2penergy.network.sensitivity import DELTA_W, Sensitivities
from p2penergy.sim.records import RunRecords

MAX_LOADING_PCT = 100.0
"""A line's or transformer's limit [% of rating]: its rating, as the hosting capacity's."""


def baseline_slot_limits(feeder: Feeder, community: Community, baseline: RunRecords,
                         ) -> Callable[[int], SlotLimits]:
    """``limits(k)``: the :class:`SlotLimits` of the report month's ``k``-th slot, linearised at the
    baseline's draws of that slot; a car's column is the site where it is parked (none on the road)."""
    sites, p0 = site_power_w(community, baseline)
    n, m = p0.shape
    batch = np.repeat(p0[:, None, :], m + 1, axis=1)
    batch[:, 1:, :] += np.eye(m)[None, :, :] * DELTA_W
    out = flows(feeder, sites, batch.reshape(n * (m + 1), m))

    def per_slot(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = a.reshape(n, m + 1, a.shape[1])
        return a[:, 0, :], np.transpose((a[:, 1:, :] - a[:, :1, :]) / DELTA_W, (0, 2, 1))  # value, [slot, row, site]

    v0, dv = per_slot(out.v_pu)
    l0, dl = per_slot(out.line_loading_pct)
    t0, dt = per_slot(out.trafo_loading_pct)
    band = feeder.band
    names = ([f"v_max {b}" for b in out.bus_names] + [f"v_min {b}" for b in out.bus_names]
             + ([f"line {x}" for x in out.line_names] if dl.size else [])
             + ([f"trafo {x}" for x in out.trafo_names] if dt.size else []))
    col = {s: i for i, s in enumerate(sites)}
    offices = [p.id for p in community.participants.values() if p.kind == OFFICE_KIND]
    participants = list(community.participants.values())
    month = community.month
    slot_minutes = community.settings.slot_minutes

    def limits(k: int) -> SlotLimits:
        where = np.zeros((len(sites), len(participants)))
        for j, p in enumerate(participants):
            if p.kind != CAR_KIND:
                where[col[p.id], j] = 1.0
                continue
            assert p.location is not None
            loc = int(p.location[month.start + k])
            if loc == LOCATION_CODES["home"] and p.owner is not None:
                where[col[p.owner], j] = 1.0
            elif loc == LOCATION_CODES["office"] and offices:
                where[col[offices[0]], j] = 1.0
        sens = Sensitivities(tuple(sites), v0[k], l0[k], t0[k], dv[k], dl[k], dt[k])
        grad, slack = site_rows(NetworkLimits(sens, band.min_pu, band.max_pu, MAX_LOADING_PCT))
        return slot_limits([p.id for p in participants], names, grad @ where, slack, slot_minutes)

    return limits
