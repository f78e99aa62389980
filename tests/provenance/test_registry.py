"""Hand-computed settlements of small slots; every number below follows from the rules in
the registry's module docstring (issue, transfer by tag, consume, charge, export)."""

from __future__ import annotations

from datetime import datetime

import pytest

from p2penergy.market import Tag
from p2penergy.provenance import DeviceOutput, ProvenanceError, Registry, SiteSlot, StorageFlow
from p2penergy.provenance.audit import audit
from p2penergy.provenance.metrics import renewable_driving_share

from .builders import T0, slot, trade

PV = DeviceOutput("h7-pv", "solar", "c-Si", 5000, 2000)


def kinds(events, kind):
    return [e for e in events if e["kind"] == kind]


def test_issue_event_carries_every_certificate_attribute():
    start, end = slot(0)
    result = Registry(issuer="tepco-registry").settle_slot(
        start, end, [SiteSlot("house-07", "site-07", (PV,), consumption_wh=2000)], [])
    (issue,) = kinds(result.events, "issue")
    assert issue["cert_id"] == "h7-pv@2020-08-01T10:00:00+09:00#0-1999"
    assert (issue["device"], issue["site"], issue["producer"], issue["source"], issue["technology"]) == (
        "h7-pv", "site-07", "house-07", "solar", "c-Si")
    assert issue["capacity_w"] == 5000
    assert issue["energy_wh"] == 2000
    assert issue["production_start"] == "2020-08-01T10:00:00+09:00"
    assert issue["production_end"] == "2020-08-01T10:30:00+09:00"
    assert issue["origin"] == "production"
    assert issue["issuer"] == "tepco-registry"
    assert issue["to_holder"] == "house-07"
    # self-consumed energy keeps its certificates: all 2,000 Wh cancelled by the producer
    (cancel,) = kinds(result.events, "cancel")
    assert (cancel["from_holder"], cancel["energy_wh"], cancel["purpose"]) == ("house-07", 2000, "consumption")
    assert result.devices == (("h7-pv", 2000, 2000),)
    assert result.balance.holds


def test_buyer_requiring_producer_x_holds_x_certificates():
    # house-07 makes 2,000 Wh, uses 500, sells 1,000 to house-01 (tag producer=house-07) and
    # exports the remaining 500. house-01 uses 1,500: 1,000 from the trade, 500 from the grid.
    start, end = slot(0)
    sites = [
        SiteSlot("house-07", "site-07", (PV,), consumption_wh=500, grid_export_wh=500),
        SiteSlot("house-01", "site-01", consumption_wh=1500, grid_import_wh=500),
    ]
    tag = Tag.of(source="solar", producer="house-07", device="h7-pv", site="site-07")
    result = Registry().settle_slot(start, end, sites, [trade("house-07", "house-01", 1000, tag)])
    (transfer,) = kinds(result.events, "transfer")
    assert (transfer["from_holder"], transfer["to_holder"], transfer["producer"]) == ("house-07", "house-01",
                                                                                      "house-07")
    assert transfer["energy_wh"] == 1000
    assert result.participants["house-01"].claimed_wh_by_source == {"solar": 1000}
    cancels = {e["from_holder"]: e for e in kinds(result.events, "cancel")}
    assert cancels["house-01"]["producer"] == "house-07"
    assert cancels["house-01"]["energy_wh"] == 1000
    assert cancels["house-07"]["energy_wh"] == 500
    (export,) = kinds(result.events, "export")
    assert (export["to_holder"], export["energy_wh"], export["purpose"]) == ("grid", 500, "surplus")
    assert result.trades[0].certified_wh == 1000 and result.trades[0].shortfall_wh == 0
    b = result.balance
    assert (b.issued_wh, b.claimed_wh, b.exported_wh, b.storage_change_wh, b.loss_wh) == (2000, 1500, 500, 0, 0)
    assert audit(result.events) == []


def test_seller_short_of_what_it_sold_passes_fewer_certificates():
    # house-07 sold 3,000 Wh but metered only 2,000: the other 1,000 came from its grid import.
    start, end = slot(0)
    sites = [
        SiteSlot("house-07", "site-07", (PV,), grid_import_wh=1000),
        SiteSlot("house-01", "site-01", consumption_wh=3000),
    ]
    result = Registry().settle_slot(start, end, sites, [trade("house-07", "house-01", 3000, Tag.of(source="solar"))])
    assert result.trades[0].certified_wh == 2000
    assert result.trades[0].shortfall_wh == 1000
    assert result.balance.shortfall_wh == 1000
    assert result.participants["house-01"].claimed_wh == 2000
    (record,) = kinds(result.events, "trade")
    assert (record["energy_wh"], record["certified_wh"]) == (3000, 2000)


def test_certificates_a_tagged_sale_could_not_take_go_to_the_grid():
    # Sold as battery energy, but the battery did not discharge: the solar certificates are
    # not the promised tag, the buyer gets none, and they leave as "unmatched" export.
    start, end = slot(0)
    sites = [
        SiteSlot("house-07", "site-07", (PV,), storage=(StorageFlow("h7-bat"),), grid_export_wh=0),
        SiteSlot("house-01", "site-01", consumption_wh=2000),
    ]
    result = Registry().settle_slot(start, end, sites, [trade("house-07", "house-01", 2000, Tag.of(source="battery"))])
    assert kinds(result.events, "transfer") == []
    (export,) = kinds(result.events, "export")
    assert (export["purpose"], export["energy_wh"]) == ("unmatched", 2000)
    assert result.balance.holds and result.balance.exported_wh == 2000


def test_battery_sale_releases_stored_certificates_with_their_original_source():
    reg = Registry()
    s0, e0 = slot(0)
    # slot 0: 2,000 Wh of solar, 1,500 into the battery, 500 consumed
    reg.settle_slot(s0, e0, [SiteSlot("house-07", "site-07", (PV,), consumption_wh=500,
                                      storage=(StorageFlow("h7-bat", charge_wh=1500),))], [])
    assert reg.storage_mix() == {"h7-bat": {"solar": 1500}}
    s1, e1 = slot(1)
    sites = [
        SiteSlot("house-07", "site-07", storage=(StorageFlow("h7-bat", discharge_wh=1000, loss_wh=20),)),
        SiteSlot("house-01", "site-01", consumption_wh=1000),
    ]
    tag = Tag.of(source="battery", device="h7-bat", producer="house-07")
    result = reg.settle_slot(s1, e1, sites, [trade("house-07", "house-01", 1000, tag, start=s1)])
    (transfer,) = kinds(result.events, "transfer")
    assert transfer["origin"] == "storage" and transfer["storage_id"] == "h7-bat"
    assert transfer["source"] == "solar" and transfer["production_start"] == s0.isoformat()
    assert transfer["cert_id"] == "h7-pv@2020-08-01T10:00:00+09:00#500-1499"  # FIFO: the first stored Wh
    assert result.participants["house-01"].claimed_wh_by_source == {"solar": 1000}
    (loss,) = kinds(result.events, "loss")
    assert loss["energy_wh"] == 20
    assert reg.storage_mix() == {"h7-bat": {"solar": 480}}
    b = result.balance
    assert (b.issued_wh, b.claimed_wh, b.storage_start_wh, b.storage_end_wh, b.loss_wh) == (0, 1000, 1500, 480, 20)
    assert b.holds
    # the claim of slot-0 production made in slot 1, for the on-chain check
    assert result.devices == (("h7-pv", 0, 1000),)
    assert [(c.device_id, c.production_start, c.claimed_wh) for c in result.device_claims] == [("h7-pv", s0, 1000)]


def test_car_charged_with_office_solar_and_driven_later_is_renewable_driving():
    reg = Registry()
    s0, e0 = slot(0)
    office_pv = DeviceOutput("office-pv", "solar", "c-Si", 50000, 10000)
    day = reg.settle_slot(s0, e0, [
        SiteSlot("office", "office", (office_pv,), consumption_wh=7000),
        SiteSlot("car-1", "office", storage=(StorageFlow("car-1-bat", charge_wh=3500, kind="phv"),),
                 grid_import_wh=500),
    ], [trade("office", "car-1", 3000, Tag.of(source="solar", producer="office"))])
    assert reg.storage_mix() == {"car-1-bat": {"grid": 500, "solar": 3000}}
    s1, e1 = slot(17)  # evening, at home
    evening = reg.settle_slot(s1, e1, [
        SiteSlot("car-1", "home-1", storage=(StorageFlow("car-1-bat", drive_wh=3200, kind="phv"),)),
    ], [])
    events = [*day.events, *evening.events]
    share = renewable_driving_share(events)
    # FIFO: the 3,000 solar Wh were stored first, then 500 grid Wh: 3,200 driven = 3,000 solar + 200 grid
    assert share.total.matched_wh == 3000 and share.total.use_wh == 3200
    assert share.participants["car-1"].value == pytest.approx(3000 / 3200)
    assert evening.participants["car-1"].drive_claimed_wh_by_source == {"solar": 3000}
    assert reg.storage_mix() == {"car-1-bat": {"grid": 300}}
    assert audit(events) == []


def test_grid_energy_into_storage_is_uncertified_and_discharge_beyond_the_pool_is_untracked():
    reg = Registry(initial_storage_wh={"h1-bat": 400})
    s0, e0 = slot(0)
    r = reg.settle_slot(s0, e0, [SiteSlot("house-01", "site-01", consumption_wh=1000,
                                          storage=(StorageFlow("h1-bat", discharge_wh=600),), grid_import_wh=400)], [])
    assert r.balance.untracked_wh == 200
    assert reg.pools["h1-bat"].held_wh == 0
    assert r.participants["house-01"].claimed_wh == 0


def test_settlement_does_not_depend_on_the_order_of_sites():
    start, end = slot(0)
    sites = [
        SiteSlot("house-07", "site-07", (PV,), consumption_wh=500, grid_export_wh=500),
        SiteSlot("house-01", "site-01", consumption_wh=1500, grid_import_wh=500),
    ]
    trades = [trade("house-07", "house-01", 1000)]
    a = Registry().settle_slot(start, end, sites, trades)
    b = Registry().settle_slot(start, end, list(reversed(sites)), trades)
    assert a.events == b.events


@pytest.mark.parametrize(("sites", "trades", "field"), [
    ([SiteSlot("h", "s", (PV,), consumption_wh=100)], [], "sites[h]"),
    ([SiteSlot("h", "s", consumption_wh=-1)], [], "sites[h].consumption_wh"),
    ([SiteSlot("h", "s"), SiteSlot("h", "s")], [], "sites"),
    ([SiteSlot("h", "s", (DeviceOutput("d", "coal", "x", 1, 0),))], [], "sites[h].generation[d].source"),
    ([SiteSlot("h", "s", storage=(StorageFlow("b", kind="flywheel"),))], [], "sites[h].storage[b].kind"),
    ([SiteSlot("h", "s", grid_export_wh=100)], [trade("h", "nobody", 100)], "trades[0].buyer"),
    ([SiteSlot("h", "s")], [trade("h", "h", 100, start=slot(3)[0])], "trades[0].slot_start"),
])
def test_bad_input_names_the_field(sites, trades, field):
    start, end = slot(0)
    with pytest.raises(ProvenanceError) as info:
        Registry().settle_slot(start, end, sites, trades)
    assert info.value.field == field


def test_naive_or_empty_slot_is_refused():
    with pytest.raises(ProvenanceError, match="slot_start"):
        Registry().settle_slot(datetime(2020, 8, 1, 10), datetime(2020, 8, 1, 10, 30), [], [])  # noqa: DTZ001
    with pytest.raises(ProvenanceError, match="slot_end"):
        Registry().settle_slot(T0, T0, [], [])


def test_a_slot_is_settled_once_and_in_order():
    reg = Registry()
    site = [SiteSlot("house-07", "site-07", (PV,), consumption_wh=2000)]
    reg.settle_slot(*slot(1), site, [])
    for earlier in (1, 0):
        with pytest.raises(ProvenanceError, match="settled once"):
            reg.settle_slot(*slot(earlier), site, [])
    assert reg.settle_slot(*slot(2), site, []).balance.issued_wh == 2000


def test_a_refused_slot_changes_nothing():
    reg = Registry()
    s0, e0 = slot(0)
    reg.settle_slot(s0, e0, [SiteSlot("h", "s", (PV,), storage=(StorageFlow("bat", charge_wh=2000),))], [])
    bad = [SiteSlot("h", "s", storage=(StorageFlow("bat", discharge_wh=500),), consumption_wh=1)]
    with pytest.raises(ProvenanceError):
        reg.settle_slot(*slot(1), bad, [])
    assert reg.storage_mix() == {"bat": {"solar": 2000}}
    assert reg.settle_slot(*slot(1), [SiteSlot("h", "s", storage=(StorageFlow("bat", discharge_wh=500),),
                                               consumption_wh=500)], []).balance.claimed_wh == 500
