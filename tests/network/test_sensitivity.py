"""Linear sensitivities of the shipped feeder against the full power flow (changes that keep each site's
direction of flow: reactive power follows |P|, a kink at zero)."""

from __future__ import annotations

import numpy as np

from p2penergy.network.feeder import BAND_PRESETS, kerber_community_feeder
from p2penergy.network.powerflow import flows
from p2penergy.network.sensitivity import sensitivities

HOMES = [f"house-{i:02d}" for i in range(1, 21)]


def test_linear_prediction_tracks_the_power_flow():
    feeder = kerber_community_feeder(HOMES, "office", BAND_PRESETS["japan"])
    rng = np.random.default_rng(5)
    base = rng.uniform(-5000, 3000, len(HOMES))  # an afternoon: most homes exporting
    sens = sensitivities(feeder, HOMES, base)
    # drawing more lowers the voltage most at the site's own bus, the far end of feeder 2 (elsewhere the
    # effect can even change sign: an exporting home absorbs reactive power in proportion to |P|)
    far = feeder.bus_names.index("loadbus_2_8")
    k = HOMES.index("house-20")
    assert sens.dv_pu_per_w[:, k].argmin() == far and sens.dv_pu_per_w[far, k] < 0
    # every home changes its draw by up to 40 % without crossing zero (reactive power follows |P|, so
    # the linearisation has a kink where a site turns from exporting to importing): the linear voltages
    # within 1e-3 p.u. of the power flow's and within a tenth of the change
    dp = rng.uniform(-0.4, 0.4, len(HOMES)) * np.abs(base)
    exact = flows(feeder, HOMES, (base + dp)[None, :]).v_pu[0]
    assert np.abs(sens.predict_v_pu(dp) - exact).max() < 1e-3
    assert np.abs(sens.predict_v_pu(dp) - exact).max() < 0.1 * np.abs(exact - sens.v_pu).max()
    # the transformer's loading moves by the homes' total change over its rating, give or take losses and Q
    rated_w = 0.16e6
    assert abs(sens.dtrafo_pct_per_w[0, k] * rated_w / 100) > 0.5
