"""Network-constrained clearing against an independent LP (scipy's HiGHS interface, the constraint
matrix built order by order), on the shipped feeder with a far-end home whose export the feeder
cannot carry in full."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from p2penergy.network.clearing import BUY, SELL, NetworkLimits, SiteOrder, clear_with_limits
from p2penergy.network.feeder import BAND_PRESETS, kerber_community_feeder
from p2penergy.network.powerflow import flows
from p2penergy.network.sensitivity import sensitivities

HOMES = [f"house-{i:02d}" for i in range(1, 21)]
SITES = ["office", *HOMES]
SLOT_H = 0.5


@pytest.fixture(scope="module")
def setting():
    feeder = kerber_community_feeder(HOMES, "office", BAND_PRESETS["japan"])
    rng = np.random.default_rng(11)
    p0 = np.concatenate([[1.5e6], rng.uniform(-4000, 1000, len(HOMES))])
    p0[SITES.index("house-20")] = -80_000  # a large PV plant behind the last house: its cable near its rating
    sens = sensitivities(feeder, SITES, p0)
    orders = [SiteOrder("house-20", SELL, 20_000, 12.0), SiteOrder("house-13", SELL, 3_000, 20.0),
              SiteOrder("house-05", SELL, 2_000, 25.0), SiteOrder("office", BUY, 15_000, 30.0),
              SiteOrder("house-01", BUY, 2_500, 28.0), SiteOrder("house-07", BUY, 1_500, 14.0)]
    limits = NetworkLimits(sens, feeder.band.min_pu, feeder.band.max_pu)
    return feeder, p0, orders, limits


def independent_lp(orders, sens, v_min, v_max, max_pct, slot_h):
    """The same problem written out directly: one column per order, one row per limit."""
    n = len(orders)
    c = np.array([-o.price_per_kwh if o.side == BUY else o.price_per_kwh for o in orders])
    a_eq = np.array([[1.0 if o.side == BUY else -1.0 for o in orders]])
    a_ub, b_ub = [], []
    col = {s: k for k, s in enumerate(sens.sites)}

    def effect(grad_row):
        return [grad_row[col[o.site]] * (1 if o.side == BUY else -1) * 1000 / slot_h for o in orders]

    for bus in range(len(sens.v_pu)):
        a_ub.append(effect(sens.dv_pu_per_w[bus]))
        b_ub.append(max(v_max - sens.v_pu[bus], 0))
        a_ub.append([-x for x in effect(sens.dv_pu_per_w[bus])])
        b_ub.append(max(sens.v_pu[bus] - v_min, 0))
    for grad, base in ((sens.dline_pct_per_w, sens.line_pct), (sens.dtrafo_pct_per_w, sens.trafo_pct)):
        for k in range(len(base)):
            a_ub.append(effect(grad[k]))
            b_ub.append(max(max_pct - base[k], 0))
    bounds = [(0, o.energy_wh / 1000) for o in orders]
    res = linprog(c, A_ub=np.array(a_ub), b_ub=np.array(b_ub), A_eq=a_eq, b_eq=[0], bounds=bounds,
                  method="highs")
    assert res.status == 0
    assert n == len(res.x)
    return -res.fun, res.x


def test_constrained_clearing_matches_an_independent_lp(setting):
    feeder, p0, orders, limits = setting
    free = clear_with_limits(orders, None, SLOT_H)
    bound = clear_with_limits(orders, limits, SLOT_H)
    welfare, x = independent_lp(orders, limits.sensitivities, limits.v_min_pu, limits.v_max_pu, 100.0, SLOT_H)
    assert bound.welfare == pytest.approx(welfare, rel=1e-7, abs=1e-6)
    assert np.allclose(bound.filled_kwh, x, atol=1e-6)
    # the limit binds: the far-end plant sells less, the market loses welfare to keep the feeder safe
    assert free.filled_kwh[0] == pytest.approx(19.0)  # every bid above 12 (19 kWh) from the cheapest offer
    assert bound.filled_kwh[0] < 10.0
    assert bound.welfare < free.welfare - 1
    # and it holds in the full power flow too, not only in the linearisation (within 0.5 % of rating)
    def after(fills):
        p = p0.copy()
        for o, kwh in zip(orders, fills, strict=True):
            p[SITES.index(o.site)] += (1 if o.side == BUY else -1) * kwh * 1000 / SLOT_H
        return flows(feeder, SITES, p[None, :])

    assert after(free.filled_kwh).line_loading_pct.max() > 100 and after(free.filled_kwh).v_pu.max() > 1.08
    assert after(bound.filled_kwh).line_loading_pct.max() <= 100.5
    assert after(bound.filled_kwh).v_pu.max() <= limits.v_max_pu + 1e-3


def test_unconstrained_is_the_plain_welfare_lp():
    orders = [SiteOrder("a", SELL, 1000, 10.0), SiteOrder("b", BUY, 600, 20.0), SiteOrder("c", BUY, 800, 5.0)]
    out = clear_with_limits(orders, None, SLOT_H)
    assert np.allclose(out.filled_kwh, [0.6, 0.6, 0.0])
    assert out.welfare == pytest.approx(0.6 * (20 - 10))
