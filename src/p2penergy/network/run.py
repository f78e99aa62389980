"""A run's power flows: each site's net draw per slot from the run's meters, the flows, and the
figures ``results.json`` reports (``network.baseline`` and ``network.p2p``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from p2penergy.community import CAR_KIND, LOCATION_CODES, OFFICE_KIND, Community
from p2penergy.network.feeder import Feeder
from p2penergy.network.powerflow import FlowSeries, flows
from p2penergy.sim.records import RunRecords

FIGURES = ("v_min_pu", "v_max_pu", "hours_outside_limits", "peak_transformer_loading_pct", "peak_line_loading_pct",
           "losses_kwh")
"""The keys of each run's network figures in ``results.json``."""


@dataclass(frozen=True, slots=True)
class NetworkRuns:
    """The feeder and both runs' flows (``baseline``, ``p2p``)."""

    feeder: Feeder
    baseline: FlowSeries
    p2p: FlowSeries
    slot_minutes: int

    def figures(self) -> dict[str, dict[str, float]]:
        return {"baseline": summary(self.baseline, self.feeder, self.slot_minutes),
                "p2p": summary(self.p2p, self.feeder, self.slot_minutes)}


def site_power_w(community: Community, records: RunRecords) -> tuple[list[str], np.ndarray]:
    """(sites, ``p_w[slot, site]``): each home's and the office's net draw from the network [W],
    mean over the slot; a car counts at its owner's home while there and at the office while parked
    there. A meter's net draw is what it takes in (utility and P2P) less what it puts out: P2P
    trades are contracts, their energy flows over the same wires."""
    month = community.month
    n = month.stop - month.start
    to_w = 60 / community.settings.slot_minutes
    offices = [p.id for p in community.participants.values() if p.kind == OFFICE_KIND]
    sites = [p.id for p in community.participants.values() if p.kind != CAR_KIND]
    col = {s: i for i, s in enumerate(sites)}
    p_w = np.zeros((n, len(sites)))
    for p in community.participants.values():
        c = records.accounts[p.id].columns
        net_wh = (c["grid_import_wh"] + c["p2p_buy_wh"] - c["grid_export_wh"] - c["p2p_sell_wh"]).astype(np.float64)
        if p.kind != CAR_KIND:
            p_w[:, col[p.id]] += net_wh * to_w
            continue
        assert p.location is not None
        where = p.location[month]
        if p.owner is not None:
            p_w[:, col[p.owner]] += np.where(where == LOCATION_CODES["home"], net_wh, 0.0) * to_w
        if offices:
            p_w[:, col[offices[0]]] += np.where(where == LOCATION_CODES["office"], net_wh, 0.0) * to_w
    return sites, p_w


def run_flows(feeder: Feeder, community: Community, records: RunRecords) -> FlowSeries:
    """The power flow of every slot of a run (power-grid-model batch)."""
    sites, p_w = site_power_w(community, records)
    return flows(feeder, sites, p_w)


def network_runs(feeder: Feeder, community: Community, baseline: RunRecords, p2p: RunRecords) -> NetworkRuns:
    return NetworkRuns(feeder, run_flows(feeder, community, baseline), run_flows(feeder, community, p2p),
                       community.settings.slot_minutes)


def outside_band(series: FlowSeries, feeder: Feeder) -> np.ndarray:
    """Per slot, whether any bus's voltage is outside the feeder's band."""
    band = feeder.band
    return ((series.v_pu < band.min_pu) | (series.v_pu > band.max_pu)).any(axis=1)


def summary(series: FlowSeries, feeder: Feeder, slot_minutes: int) -> dict[str, float]:
    """The run's network figures (keys: :data:`FIGURES`): lowest and highest bus voltage [p.u.],
    hours with any bus outside the band, peak loading of the transformer(s) and of the most
    loaded line [%], and energy lost in lines and transformers [kWh]."""
    hours = slot_minutes / 60
    v = series.v_pu
    return {
        "v_min_pu": round(float(v.min()), 4) if v.size else 1.0,
        "v_max_pu": round(float(v.max()), 4) if v.size else 1.0,
        "hours_outside_limits": round(float(outside_band(series, feeder).sum()) * hours, 2),
        "peak_transformer_loading_pct": round(float(series.trafo_loading_pct.max()), 1)
        if series.trafo_loading_pct.size else 0.0,
        "peak_line_loading_pct": round(float(series.line_loading_pct.max()), 1)
        if series.line_loading_pct.size else 0.0,
        "losses_kwh": round(float(series.losses_w.sum()) * hours / 1000, 3),
    }
