"""The live service on the 15-minute euro market in the night of 25 October 2020 (Europe/Berlin).

The wall clock shows 02:15 twice that night: at 00:15 UTC (summer time, +02:00) and at
01:15 UTC (winter time, +01:00). Over HTTP, orders for each go into their own book, with
their own gate; ``/api/slots`` and ``/api/depth`` tell them apart.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from tests.service.conftest import key, now_of, order, register, run_server, service_settings

from p2penergy.ledger.signing import sign_action
from p2penergy.market import MarketSettings
from p2penergy.service.client import HttpMarketAccess
from p2penergy.service.models import OrderIn

EU = MarketSettings.from_toml(Path(__file__).parents[2] / "markets" / "eu-15min.toml")
FIRST = datetime.fromisoformat("2020-10-25T02:15:00+02:00")  # 00:15 UTC
SECOND = datetime.fromisoformat("2020-10-25T02:15:00+01:00")  # 01:15 UTC
# market time runs 4x from the first 02:20 (00:20 UTC): the first 02:15's gate closes 75 s (wall) later
START = datetime.fromisoformat("2020-10-25T02:20:00+02:00")


def depth(url: str, slot: str) -> dict:
    r = httpx.get(f"{url}/api/depth", params={"slot_start": slot})
    assert r.status_code == 200, r.text
    return r.json()


def held_slots(url: str) -> list[datetime]:
    """The tradable slots ``/api/slots`` lists whose books hold orders."""
    return [datetime.fromisoformat(x["slot_start"]) for x in httpx.get(f"{url}/api/slots").json() if x["has_orders"]]


def test_the_two_0215_slots_are_two_books_over_http(tmp_path):
    settings = service_settings(tmp_path, clock_start=START, speed=4.0)
    with run_server(settings, EU) as srv:
        register(srv.url, "seller", "buyer")
        s = HttpMarketAccess(srv.url, key("seller"))
        b = HttpMarketAccess(srv.url, key("buyer"))
        now = now_of(srv.url)
        assert s.submit(order("s1", "seller", "sell", 400, "0.1000", now, slot=FIRST)) == []
        # the second 02:15, written as the wall clock shows it (+01:00) in the signed request
        second = order("s2", "seller", "sell", 600, "0.2000", now, slot=SECOND)
        signed = sign_action(s.key, s.domain, second, s.next_nonce())
        body = {"order": {**OrderIn.of(second).model_dump(mode="json"), "slot_start": "2020-10-25T02:15:00+01:00"},
                "nonce": signed.nonce, "signature": "0x" + signed.signature.hex()}
        r = httpx.post(f"{srv.url}/api/orders", json=body)
        assert r.status_code == 201, r.text
        listed = held_slots(srv.url)
        assert listed == [datetime(2020, 10, 25, 0, 15, tzinfo=UTC), datetime(2020, 10, 25, 1, 15, tzinfo=UTC)]
        assert depth(srv.url, "2020-10-25T02:15:00+02:00")["sell"] == [{"price_per_kwh": "0.1000", "energy_wh": 400}]
        assert depth(srv.url, "2020-10-25T02:15:00+01:00")["sell"] == [{"price_per_kwh": "0.2000", "energy_wh": 600}]
        assert depth(srv.url, "2020-10-25T01:15:00Z")["sell"] == [{"price_per_kwh": "0.2000", "energy_wh": 600}]
        # a buy for the second 02:15 at 0.15 does not reach the first one's 0.10 offer
        assert b.submit(order("b2", "buyer", "buy", 300, "0.1500", now_of(srv.url), slot=SECOND)) == []
        trades = b.submit(order("b1", "buyer", "buy", 300, "0.1000", now_of(srv.url), slot=FIRST))
        assert [(t.energy_wh, str(t.price_per_kwh)) for t in trades] == [(300, "0.1000")]
        public = httpx.get(f"{srv.url}/api/trades").json()
        assert [datetime.fromisoformat(t["slot_start"]) for t in public] == [FIRST]
        # the first 02:15's gate closes at 00:25 UTC and its book is closed; the second stays open until 01:25 UTC
        deadline = time.monotonic() + 120
        while len(held_slots(srv.url)) != 1:
            assert time.monotonic() < deadline, "the first 02:15 never closed"
            time.sleep(0.2)
        assert held_slots(srv.url) == [SECOND]
        late = now_of(srv.url)
        assert late > EU.gate_close(FIRST)
        trades = b.submit(order("b3", "buyer", "buy", 200, "0.2000", late, slot=SECOND))
        assert [(t.energy_wh, str(t.price_per_kwh)) for t in trades] == [(200, "0.2000")]
        assert depth(srv.url, "2020-10-25T02:15:00+01:00")["sell"] == [{"price_per_kwh": "0.2000", "energy_wh": 400}]
        slots = {datetime.fromisoformat(t["slot_start"]) for t in httpx.get(f"{srv.url}/api/trades").json()}
        assert slots == {FIRST, SECOND} and len({t.isoformat() for t in slots}) == 2
