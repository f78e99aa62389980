"""The live service on a scenario with ``[network] market_limits = true``: its CDA matches within each
home's P2P limits per slot (the same limits ``p2penergy simulate`` uses, ``network/from_scenario.py``),
journalled in the genesis row, so a restart — even on a scenario without the setting — keeps them."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
from tests.service.conftest import SLOT, key, now_of, order, register, run_server, service_settings, verified_rows

from p2penergy.market import MarketSettings
from p2penergy.network.from_scenario import scenario_feeder
from p2penergy.network.hosting import market_limits
from p2penergy.scenario.load import load_scenario, shipped_path
from p2penergy.service.client import HttpMarketAccess

SHIPPED_NETWORK = 'voltage_band = "japan"\n'


def _sold_wh(seller: HttpMarketAccess) -> int:
    return sum(t["energy_wh"] for t in seller.my_trades() if t["side"] == "sell")


def test_the_service_trades_within_the_feeders_limits_and_keeps_them_after_a_restart(tmp_path):
    text = shipped_path().read_text(encoding="utf-8")
    assert text.count(SHIPPED_NETWORK) == 1
    path = tmp_path / "limited.toml"
    path.write_text(text.replace(SHIPPED_NETWORK, SHIPPED_NETWORK + "market_limits = true\n"), encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.network is not None and scenario.network.market_limits
    home, other, office = scenario.homes[0].id, scenario.homes[1].id, scenario.office.id
    sites = [h.id for h in scenario.homes] + [office]
    limits = market_limits(scenario_feeder(scenario), sites, MarketSettings.demonstration().slot_minutes)
    cap = limits[home].export_wh
    assert office not in limits and 0 < cap < 10_000  # the office on the MV bus buys without a limit

    settings = service_settings(tmp_path, scenario=str(path))
    with run_server(settings) as s:
        register(s.url, home, other, office)
        buyer = HttpMarketAccess(s.url, key(office))
        seller = HttpMarketAccess(s.url, key(home))
        now = now_of(s.url)
        assert buyer.submit(order("b1", office, "buy", 50_000, "30.00", now)) == []
        trades = seller.submit(order("s1", home, "sell", cap + 1_000, "20.00", now))
        assert [t.energy_wh for t in trades] == [cap]  # cut to the export limit; 1,000 Wh stay open
        assert {oid: o.remaining_wh for oid, o in seller.open_orders().items()} == {"s1": 1_000}
        assert seller.submit(order("s2", home, "sell", 500, "19.00", now)) == []  # nothing left in the slot
        assert _sold_wh(seller) == cap
    genesis = json.loads(verified_rows(settings.db_url)[0].body)
    assert genesis["site_limits"][home] == {"import_wh": limits[home].import_wh, "export_wh": cap}

    # restarted on the same journal with the shipped scenario (no market_limits): the genesis limits hold
    with run_server(service_settings(tmp_path)) as s:
        seller = HttpMarketAccess(s.url, key(home))
        now = now_of(s.url)
        assert seller.submit(order("s3", home, "sell", 300, "18.00", now)) == []
        assert _sold_wh(seller) == cap
        trades = HttpMarketAccess(s.url, key(other)).submit(order("o1", other, "sell", 300, "18.00", now))
        assert [t.energy_wh for t in trades] == [300]  # the bid is still open: another home sells to it
        assert {datetime.fromisoformat(t["slot_start"]) for t in httpx.get(f"{s.url}/api/trades").json()} == {SLOT}


def test_a_scenario_without_market_limits_journals_none(tmp_path):
    settings = service_settings(tmp_path)
    with run_server(settings):
        pass
    assert "site_limits" not in json.loads(verified_rows(settings.db_url)[0].body)
