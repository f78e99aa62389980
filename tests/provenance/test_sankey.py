"""Sankey data: every Wh of use appears once, from its origin (or the grid) to its consumer."""

from __future__ import annotations

import pytest

from p2penergy.market import Tag
from p2penergy.provenance import DeviceOutput, Registry, SiteSlot, StorageFlow
from p2penergy.provenance.sankey import sankey_data, sankey_figure, sankey_links, sankey_views

from .builders import slot, trade


def events():
    reg = Registry()
    s0, e0 = slot(0)
    s1, e1 = slot(1)
    pv = DeviceOutput("office-pv", "solar", "c-Si", 50000, 5000)
    a = reg.settle_slot(s0, e0, [
        SiteSlot("office", "office", (pv,), 3000, grid_export_wh=1000),
        SiteSlot("car-1", "office", storage=(StorageFlow("car-1-bat", charge_wh=1000, kind="phv"),)),
    ], [trade("office", "car-1", 1000, Tag.of(source="solar"))])
    b = reg.settle_slot(s1, e1, [
        SiteSlot("car-1", "home", storage=(StorageFlow("car-1-bat", drive_wh=900, loss_wh=100, kind="phv"),)),
        SiteSlot("house-01", "h1", (), 500, grid_import_wh=500),
    ], [])
    return [*a.events, *b.events]


def test_links_follow_certificates_through_storage():
    data = sankey_data(events())
    assert data.links() == {
        ("solar · office", "office"): 3000,
        ("solar · office", "grid export"): 1000,
        ("solar · office", "storage"): 1000,
        ("grid", "house-01"): 500,
        ("storage", "car-1"): 900,
        ("storage", "storage losses"): 100,
    }
    assert sankey_data(events(), by="source").links()[("solar", "office")] == 3000


def test_figure_is_a_plotly_sankey():
    figure = sankey_figure(sankey_data(events()))
    assert figure.data[0].type == "sankey"
    assert list(figure.data[0].node.label) == list(sankey_data(events()).labels)


def test_links_aggregate_by_participant_type():
    """Producers and holders become their types; a link between two sites of a type adds up."""
    types = {"office": "office", "car-1": "car", "house-01": "consumer"}
    data = sankey_data(events(), group=types)
    assert data.links() == {
        ("solar · office", "office"): 3000,
        ("solar · office", "grid export"): 1000,
        ("solar · office", "storage"): 1000,
        ("grid", "consumer"): 500,
        ("storage", "car"): 900,
        ("storage", "storage losses"): 100,
    }
    merged = sankey_data(events(), group={"office": "site", "car-1": "site", "house-01": "site"})
    assert merged.links()[("grid", "site")] == 500
    assert merged.links()[("storage", "site")] == 900
    assert merged.links()[("solar · site", "site")] == 3000


def test_grouping_needs_a_type_for_every_participant():
    with pytest.raises(ValueError, match="house-01"):
        sankey_data(events(), group={"office": "office", "car-1": "car"})


def test_links_make_sankey_data_in_order_of_first_mention():
    data = sankey_links({("prosumer sells", "car buys"): 4000, ("car sells", "office buys"): 500})
    assert data.labels == ("prosumer sells", "car buys", "car sells", "office buys")
    assert data.links() == {("prosumer sells", "car buys"): 4000, ("car sells", "office buys"): 500}


def test_views_toggle_between_diagrams():
    by_type = sankey_data(events(), group={"office": "office", "car-1": "car", "house-01": "consumer"})
    figure = sankey_views({"by participant type": by_type, "per site": sankey_data(events())}, title="t")
    assert [trace.visible for trace in figure.data] == [True, False]
    buttons = figure.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["by participant type", "per site"]
    assert buttons[1].args[0]["visible"] == [False, True]
