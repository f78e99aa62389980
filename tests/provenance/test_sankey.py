"""Sankey data: every Wh of use appears once, from its origin (or the grid) to its consumer."""

from __future__ import annotations

from p2penergy.market import Tag
from p2penergy.provenance import DeviceOutput, Registry, SiteSlot, StorageFlow
from p2penergy.provenance.sankey import sankey_data, sankey_figure

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
