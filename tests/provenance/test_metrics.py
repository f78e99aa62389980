"""Metrics on hand-made events: matching scores (30-min and hourly), driving, tags, preferences."""

from __future__ import annotations

import pytest

from p2penergy.market import Tag
from p2penergy.provenance import DeviceOutput, Registry, SiteSlot
from p2penergy.provenance.metrics import (
    claimed_by_source,
    energy_per_tag,
    matching_scores,
    preferences_met,
    summarize,
)

from .builders import slot, trade


def two_half_hours():
    """house-07 (PV) and house-01 over 10:00-11:00.

    10:00: PV 3,000, house-07 uses 1,000, exports 2,000 surplus; house-01 uses 1,000 from the grid.
    10:30: PV 0, house-07 uses 1,000 from the grid; house-01 buys 0.
    """
    reg = Registry()
    s0, e0 = slot(0)
    s1, e1 = slot(1)
    pv = DeviceOutput("h7-pv", "solar", "c-Si", 5000, 3000)
    a = reg.settle_slot(s0, e0, [SiteSlot("house-07", "s7", (pv,), 1000, grid_export_wh=2000),
                                 SiteSlot("house-01", "s1", (), 1000, grid_import_wh=1000)], [])
    b = reg.settle_slot(s1, e1, [SiteSlot("house-07", "s7", (), 1000, grid_import_wh=1000)], [])
    return [*a.events, *b.events]


def test_matching_30_minute_vs_hourly():
    events = two_half_hours()
    slot_scores = matching_scores(events, "slot")
    hour_scores = matching_scores(events, "hour")
    # 30-min: house-07 covers 1,000 of 2,000 Wh; hourly: its 2,000 Wh surplus at 10:00 covers 10:30 too
    assert slot_scores.participants["house-07"].value == pytest.approx(0.5)
    assert hour_scores.participants["house-07"].value == pytest.approx(1.0)
    assert slot_scores.participants["house-01"].value == 0
    # community, 30-min: 10:00 min(2,000 use, 3,000 clean) + 10:30 min(1,000, 0) = 2,000 of 3,000
    assert (slot_scores.community.matched_wh, slot_scores.community.use_wh) == (2000, 3000)
    # community, hourly: min(3,000, 3,000) = 3,000 of 3,000
    assert hour_scores.community.value == pytest.approx(1.0)
    with pytest.raises(ValueError, match="window"):
        matching_scores(events, "day")


def test_use_by_source_counts_the_uncertified_rest_as_grid():
    assert claimed_by_source(two_half_hours()) == {"house-01": {"grid": 1000},
                                                   "house-07": {"grid": 1000, "solar": 1000}}


def test_energy_per_tag_and_preferences():
    s0, e0 = slot(0)
    pv = DeviceOutput("h7-pv", "solar", "c-Si", 5000, 1000)
    trades = [
        trade("house-07", "house-01", 600, Tag.of(producer="house-07"), trade_id="a"),
        trade("house-07", "house-02", 400, Tag.of(source="solar"), trade_id="b", preference_level=1),
        trade("house-07", "house-01", 500, Tag.of(producer="house-07"), trade_id="c"),
    ]
    sites = [SiteSlot("house-07", "s7", (pv,), grid_import_wh=500),
             SiteSlot("house-01", "s1", (), 1100), SiteSlot("house-02", "s2", (), 400)]
    events = Registry().settle_slot(s0, e0, sites, trades).events
    per_tag = energy_per_tag(events)
    # trades take certificates in execution order: a 600, b 400, c none (PV was 1,000)
    assert (per_tag["producer=house-07"].traded_wh, per_tag["producer=house-07"].certified_wh) == (1100, 600)
    assert per_tag["source=solar"].shortfall_wh == 0
    prefs = preferences_met(events)
    assert not prefs["house-01"].met and prefs["house-01"].first_choice_wh == 1100
    assert not prefs["house-02"].met and prefs["house-02"].first_choice_wh == 0
    assert summarize(events).preferences == prefs
