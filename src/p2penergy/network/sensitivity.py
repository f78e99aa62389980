"""Linear sensitivities of the feeder around an operating point: how each bus's voltage and each
line's and transformer's loading change per watt a site draws. The linearisation the call auction's
LP needs for transformer and line limits (issue 17, item 5; not wired into clearing yet).

Computed by finite differences of the full power flow: the operating point and one scenario per site
with ``DELTA_W`` more draw, all in one power-grid-model batch. Loading is not linear near zero
(it is an absolute value), so the sensitivities hold for changes that keep each branch's flow
direction; tests/network/test_sensitivity.py bounds the error on the shipped feeder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from p2penergy.network.feeder import Feeder
from p2penergy.network.powerflow import flows

DELTA_W = 1000.0
"""Step of the finite differences [W]: 1 kW, a fifth of a home's PV; large against the solver's
tolerance (1e-10 p.u.), small against the feeder's ratings (second-order error below 1e-5 p.u./kW here)."""


@dataclass(frozen=True, slots=True)
class Sensitivities:
    """At operating point ``p_w[site]``: ``v_pu[bus]``, ``line_pct[line]``, ``trafo_pct[trafo]`` and their
    changes per W of each site's draw: ``dv_pu_per_w[bus, site]``, ``dline_pct_per_w[line, site]``,
    ``dtrafo_pct_per_w[trafo, site]`` (sites in ``sites`` order)."""

    sites: tuple[str, ...]
    v_pu: np.ndarray
    line_pct: np.ndarray
    trafo_pct: np.ndarray
    dv_pu_per_w: np.ndarray
    dline_pct_per_w: np.ndarray
    dtrafo_pct_per_w: np.ndarray

    def predict_v_pu(self, dp_w: np.ndarray) -> np.ndarray:
        """Bus voltages after each site draws ``dp_w[site]`` more (linear)."""
        return self.v_pu + self.dv_pu_per_w @ dp_w


def sensitivities(feeder: Feeder, sites: Sequence[str], p_w: np.ndarray) -> Sensitivities:
    """Sensitivities of the feeder's voltages and loadings to each site's draw at ``p_w`` [W]."""
    n = len(sites)
    batch = np.repeat(np.asarray(p_w, dtype=np.float64)[None, :], n + 1, axis=0)
    batch[1:] += np.eye(n) * DELTA_W
    out = flows(feeder, sites, batch)
    return Sensitivities(
        tuple(sites), out.v_pu[0], out.line_loading_pct[0], out.trafo_loading_pct[0],
        ((out.v_pu[1:] - out.v_pu[0]) / DELTA_W).T,
        ((out.line_loading_pct[1:] - out.line_loading_pct[0]) / DELTA_W).T,
        ((out.trafo_loading_pct[1:] - out.trafo_loading_pct[0]) / DELTA_W).T)
