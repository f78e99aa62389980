"""Hosting capacity of the shipped feeder's sites, checked against pandapower's Newton–Raphson: at a
site's limit nothing is violated, one step above something is."""

from __future__ import annotations

import numpy as np

from p2penergy.network.feeder import BAND_PRESETS, kerber_community_feeder
from p2penergy.network.hosting import (
    MAX_W,
    SHARED_STEP_W,
    STEP_W,
    hosting_capacity,
    market_limits,
    shared_capacity,
    violated,
)
from p2penergy.network.powerflow import pandapower_flows

HOMES = [f"house-{i:02d}" for i in range(1, 21)]


def test_limits_hold_at_the_limit_and_break_one_step_above():
    feeder = kerber_community_feeder(HOMES, "office", BAND_PRESETS["japan"])
    limits = hosting_capacity(feeder, ["office", *HOMES])
    near, far = limits["house-01"], limits["house-20"]
    # the far end of the long feeder hosts less than the first house by the transformer
    assert far.export_w < near.export_w and far.import_w <= near.import_w
    assert 5_000 < far.export_w < MAX_W
    # the office on the MV supply bus: nothing on this feeder limits it
    assert limits["office"].export_w == limits["office"].import_w == MAX_W
    for site in ("house-01", "house-13", "house-20"):
        lim = limits[site]
        col = HOMES.index(site)
        p = np.zeros((4, len(HOMES)))
        p[0, col], p[1, col] = -lim.export_w, -(lim.export_w + STEP_W)
        p[2, col], p[3, col] = lim.import_w, lim.import_w + STEP_W
        bad = violated(pandapower_flows(feeder, HOMES, p), feeder)
        expected = [False, lim.export_w < MAX_W, False, lim.import_w < MAX_W]
        assert list(bad) == expected, site


def test_market_limits_are_hosting_capacity_per_slot_and_leave_the_supply_bus_free():
    feeder = kerber_community_feeder(HOMES, "office", BAND_PRESETS["japan"])
    caps = hosting_capacity(feeder, HOMES)
    share = shared_capacity(feeder, HOMES)
    limits = market_limits(feeder, ["office", *HOMES], slot_minutes=30)
    assert "office" not in limits  # on the MV supply bus: its draw changes no flow on the feeder
    assert sorted(limits) == sorted(HOMES)
    # on this feeder every home's equal share (all at once) is below what it may do alone
    assert share.export_w < min(c.export_w for c in caps.values())
    for site in HOMES:
        assert limits[site].export_wh == min(caps[site].export_w, share.export_w) // 2
        assert limits[site].import_wh == min(caps[site].import_w, share.import_w) // 2


def test_the_equal_share_holds_with_every_site_at_it_and_breaks_one_step_above():
    feeder = kerber_community_feeder(HOMES, "office", BAND_PRESETS["japan"])
    share = shared_capacity(feeder, HOMES)
    assert 1_000 < share.export_w < MAX_W and 1_000 < share.import_w < MAX_W
    levels = [-share.export_w, -(share.export_w + SHARED_STEP_W), share.import_w, share.import_w + SHARED_STEP_W]
    p = np.repeat(np.array(levels, dtype=float)[:, None], len(HOMES), axis=1)
    assert list(violated(pandapower_flows(feeder, HOMES, p), feeder)) == [False, True, False, True]


def test_a_weak_feeders_search_passes_levels_where_the_power_flow_diverges():
    # examples/weak_feeder.json: 50 kVA and 800 m of thin overhead line; 100 kW at its far end has
    # no power-flow solution, which the search counts as a violation instead of failing
    from pathlib import Path

    from p2penergy.network.feeder import feeder_from_file

    path = Path(__file__).parents[2] / "examples" / "weak_feeder.json"
    sites = {h: f"h{i + 1:02d}" for i, h in enumerate(HOMES)}
    feeder = feeder_from_file(path, sites, BAND_PRESETS["japan"], 0.95)
    caps = hosting_capacity(feeder, HOMES)
    assert all(0 < c.export_w < MAX_W and 0 < c.import_w < MAX_W for c in caps.values())
    share = shared_capacity(feeder, HOMES)
    assert share.export_w < min(c.export_w for c in caps.values()) / 10  # the 50 kVA shared by 20 homes
