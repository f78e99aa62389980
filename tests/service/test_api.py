"""The HTTP API against a real uvicorn server: signed orders, refusals that change nothing, privacy."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from tests.service.conftest import SLOT, TOKEN, key, now_of, order, register

from p2penergy.ledger.signing import sign_action
from p2penergy.market import OrderRejected
from p2penergy.service.auth import read_headers
from p2penergy.service.client import HttpMarketAccess
from p2penergy.service.models import OrderIn


def signed_body(access: HttpMarketAccess, o, signer=None, nonce=None) -> dict:
    s = sign_action(signer or access.key, access.domain, o, nonce if nonce is not None else access.next_nonce())
    return {"order": OrderIn.of(o).model_dump(mode="json"), "nonce": s.nonce, "signature": "0x" + s.signature.hex()}


def depth(url: str) -> dict:
    return httpx.get(f"{url}/api/depth", params={"slot_start": SLOT.isoformat()}).json()


def test_registration_needs_the_admin_token(server):
    r = httpx.post(f"{server.url}/api/participants", json={"participant": "h1", "address": key("h1").address})
    assert r.status_code == 401 and r.json()["field"] == "authorization"
    r = httpx.post(f"{server.url}/api/participants", json={"participant": "h1", "address": key("h1").address},
                   headers={"Authorization": "Bearer wrong-token-123"})
    assert r.status_code == 401
    register(server.url, "h1")
    assert httpx.get(f"{server.url}/api/participants").json() == ["h1"]
    # h1's address cannot be registered again for another participant id (its signatures would pass as both)
    r = httpx.post(f"{server.url}/api/participants", json={"participant": "h2", "address": key("h1").address},
                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 409 and r.json()["field"] == "address"
    assert httpx.get(f"{server.url}/api/participants").json() == ["h1"]


def test_orders_match_and_trades_are_private_or_public(server):
    register(server.url, "seller", "buyer")
    s = HttpMarketAccess(server.url, key("seller"))
    b = HttpMarketAccess(server.url, key("buyer"))
    now = now_of(server.url)
    assert s.submit(order("s1", "seller", "sell", 800, "20.00", now)) == []
    trades = b.submit(order("b1", "buyer", "buy", 500, "22.00", now))
    # CDA: the incoming bid trades at the resting offer's price (price-time priority)
    assert [(t.energy_wh, t.price_per_kwh, t.tag.get("source")) for t in trades] == [(500, Decimal("20.00"), "solar")]
    assert {oid: oo.remaining_wh for oid, oo in s.open_orders().items()} == {"s1": 300}
    assert b.open_orders() == {}
    assert depth(server.url)["sell"] == [{"price_per_kwh": "20.00", "energy_wh": 300}]
    public = httpx.get(f"{server.url}/api/trades").json()
    assert len(public) == 1 and "buyer" not in public[0] and public[0]["order_id"] is None
    mine = b.my_trades()
    assert mine[0]["side"] == "buy" and mine[0]["order_id"] == "b1"
    bill = b.bill()  # 500 Wh at 20 JPY/kWh = 10 JPY
    assert (bill["bought_wh"], Decimal(bill["paid"])) == (500, Decimal(10))
    assert Decimal(s.bill()["received"]) == Decimal(10)
    cert = httpx.get(f"{server.url}/api/me/certificates",
                     headers=read_headers(key("buyer"), b.domain, "/api/me/certificates", b.now())).json()
    # the slot is not settled yet: what the seller declared, marked as not yet certified
    assert cert[0]["attributes"] == {"producer": "seller", "source": "solar"} and cert[0]["energy_wh"] == 500
    assert cert[0]["status"] == "pending" and cert[0]["cert_id"] is None
    prices = httpx.get(f"{server.url}/api/prices").json()
    assert prices[0]["vwap_per_kwh"] == "20.0000" and prices[0]["volume_wh"] == 500
    assert Decimal(httpx.get(f"{server.url}/api/reference-price").json()["price_per_kwh"]) == Decimal("20")


def test_invalid_orders_get_4xx_naming_the_problem_and_change_nothing(server):
    register(server.url, "a", "mallory")
    a = HttpMarketAccess(server.url, key("a"))
    now = now_of(server.url)
    a.submit(order("a1", "a", "sell", 100, "10.00", now))
    before = depth(server.url)
    cases = [
        # signed by someone else's key
        (signed_body(a, order("x1", "a", "sell", 100, "10", now), signer=key("mallory")), 401, "signature"),
        # outside the price band (0-50 JPY/kWh)
        (signed_body(a, order("x2", "a", "sell", 100, "50.01", now)), 422, "price_per_kwh"),
        # a slot whose gate has closed
        (signed_body(a, order("x3", "a", "sell", 100, "10", now, slot=SLOT - timedelta(hours=3))), 409,
         "submitted_at"),
        # not a slot start
        (signed_body(a, order("x4", "a", "sell", 100, "10", now, slot=SLOT + timedelta(minutes=7))), 422,
         "slot_start"),
    ]
    for body, status, field in cases:
        r = httpx.post(f"{server.url}/api/orders", json=body)
        assert (r.status_code, r.json()["field"]) == (status, field), r.text
        assert r.json()["message"]
    bad_tag = signed_body(a, order("x5", "a", "sell", 100, "10", now))
    bad_tag["order"]["attributes"] = {"colour": "green"}
    r = httpx.post(f"{server.url}/api/orders", json=bad_tag)
    assert r.status_code == 422 and r.json()["field"] == "attributes" and "source" in r.json()["message"]
    r = httpx.post(f"{server.url}/api/orders", content=b'{"order": {', headers={"content-type": "application/json"})
    assert r.status_code == 422
    altered = signed_body(a, order("x6", "a", "sell", 100, "10", now))
    altered["order"]["energy_wh"] = 10_000  # content changed after signing
    assert httpx.post(f"{server.url}/api/orders", json=altered).status_code == 401
    assert depth(server.url) == before
    # what the exchange refused is journalled with its reason and used up its nonce; what failed its
    # signature (or never parsed) is not journalled at all
    rejects = {json.loads(r.body)["action"]["order_id"]: json.loads(r.body)
               for r in server.app.state.live.journal.rows() if r.kind == "reject"}
    assert sorted(rejects) == ["x2", "x3", "x4"]
    assert rejects["x3"]["field"] == "submitted_at" and "gate" in rejects["x3"]["reason"]
    again = signed_body(a, order("a2", "a", "sell", 50, "11.00", now), nonce=rejects["x4"]["nonce"])
    r = httpx.post(f"{server.url}/api/orders", json=again)
    assert r.status_code == 409 and r.json()["field"] == "nonce"
    ok = signed_body(a, order("a2", "a", "sell", 50, "11.00", now))
    assert httpx.post(f"{server.url}/api/orders", json=ok).status_code == 201


def test_replayed_requests_are_refused(server):
    register(server.url, "a")
    a = HttpMarketAccess(server.url, key("a"))
    body = signed_body(a, order("r1", "a", "sell", 100, "10", now_of(server.url)))
    assert httpx.post(f"{server.url}/api/orders", json=body).status_code == 201
    r = httpx.post(f"{server.url}/api/orders", json=body)
    assert r.status_code == 409 and r.json()["field"] == "nonce"
    assert depth(server.url)["sell"] == [{"price_per_kwh": "10.00", "energy_wh": 100}]


def test_nobody_cancels_or_reads_another_participants_orders(server):
    register(server.url, "alice", "bob")
    alice = HttpMarketAccess(server.url, key("alice"))
    bob = HttpMarketAccess(server.url, key("bob"))
    now = now_of(server.url)
    alice.submit(order("al1", "alice", "sell", 400, "15", now))
    with pytest.raises(OrderRejected) as err:
        bob.cancel("al1", now)
    assert err.value.field == "order_id"  # as for an id that does not exist (test_guard)
    assert alice.open_orders()["al1"].remaining_wh == 400
    # bob signs headers claiming to be alice: refused
    forged = read_headers(key("bob"), bob.domain, "/api/me/orders", bob.now())
    forged["X-Participant"] = "alice"
    r = httpx.get(f"{server.url}/api/me/orders", headers=forged)
    assert r.status_code == 401 and r.json()["field"] == "X-Signature"
    assert httpx.get(f"{server.url}/api/me/orders").status_code == 401
    # a stale signed read is refused too
    stale = read_headers(key("alice"), alice.domain, "/api/me/orders", alice.now() - timedelta(hours=1))
    assert httpx.get(f"{server.url}/api/me/orders", headers=stale).json()["field"] == "X-Timestamp"
    assert bob.open_orders() == {}
    assert alice.cancel("al1", now_of(server.url)) == 400
    assert alice.open_orders() == {}


def test_body_size_and_rate_limits(tmp_path):
    from tests.service.conftest import run_server, service_settings

    with run_server(service_settings(tmp_path, burst=3, rate_per_s=0.01, max_body_bytes=2048)) as srv:
        register(srv.url, "a")
        a = HttpMarketAccess(srv.url, key("a"))
        now = now_of(srv.url)
        r = httpx.post(f"{srv.url}/api/orders", content=b"{" + b" " * 4096 + b"}",
                       headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["field"] == "body"
        codes = [httpx.post(f"{srv.url}/api/orders", json=signed_body(a, order(f"o{i}", "a", "sell", 10, "10", now)))
                 .status_code for i in range(5)]
        assert codes == [201, 201, 201, 429, 429]


def test_meter_readings_are_signed_and_counted(server):
    register(server.url, "h")
    h = HttpMarketAccess(server.url, key("h"))
    slot = SLOT - timedelta(hours=2)  # the clock's first slot: it has started
    h.upload_meter(slot, {"load_wh": 400, "pv_wh": 900, "grid_export_wh": 500})
    h.upload_meter(slot - timedelta(minutes=30), {"load_wh": 300})
    metered = h.bill()["metered"]
    assert (metered["load_wh"], metered["pv_wh"], metered["grid_export_wh"]) == (700, 900, 500)
    r = httpx.post(f"{server.url}/api/meter", json={"participant": "h", "slot_start": slot.isoformat(),
                                                     "values": {"load_wh": 1}, "nonce": 1, "signature": "0x" + "11" * 65})
    assert r.status_code == 401  # the signature is checked first: a forged request learns nothing of nonces
    with pytest.raises(Exception, match=r"values\.temp"):
        h.upload_meter(slot, {"temp": 3})


def test_stream_sends_trades_and_prices(server):
    register(server.url, "s", "b")
    s = HttpMarketAccess(server.url, key("s"))
    b = HttpMarketAccess(server.url, key("b"))
    now = now_of(server.url)
    s.submit(order("s1", "s", "sell", 300, "18", now))
    b.submit(order("b1", "b", "buy", 300, "25", now))
    events = []
    with httpx.stream("GET", f"{server.url}/api/stream") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
            if len(events) == 2:
                break
    assert events[0]["energy_wh"] == 300 and events[0]["price_per_kwh"] == "18.00"
    assert events[1]["vwap_per_kwh"] == "18.0000"


def test_only_the_owner_changes_an_order(server):
    register(server.url, "alice", "bob")
    alice = HttpMarketAccess(server.url, key("alice"))
    bob = HttpMarketAccess(server.url, key("bob"))
    now = now_of(server.url)
    alice.submit(order("al1", "alice", "sell", 400, "21.00", now))
    bob.submit(order("bo1", "bob", "buy", 300, "19.00", now))
    with pytest.raises(OrderRejected) as err:
        bob.modify("al1", 400, Decimal("1.00"), now_of(server.url))
    assert err.value.field == "order_id"  # someone else's order answers as a missing one
    with pytest.raises(OrderRejected) as err:
        alice.modify("al1", 400, Decimal("99.00"), now_of(server.url))
    assert err.value.field == "price_per_kwh"
    assert alice.modify("al1", 350, Decimal("21.00"), now_of(server.url)) == []  # less energy, same price
    assert depth(server.url)["sell"] == [{"price_per_kwh": "21.00", "energy_wh": 350}]
    # re-priced below the bid: it trades at once, at the resting bid's price
    trades = alice.modify("al1", 350, Decimal("18.50"), now_of(server.url))
    assert [(t.energy_wh, t.price_per_kwh) for t in trades] == [(300, Decimal("19.00"))]
    assert alice.open_orders()["al1"].remaining_wh == 50


def test_bill_adds_the_utility_bill_of_uploaded_readings(server):
    """house-01 of the shipped scenario: tiered retail tariff; the reference is the tariff code itself."""
    from p2penergy.scenario.load import load_scenario
    from p2penergy.tariffs.bills import home_bill

    register(server.url, "house-01", "house-02")
    h1, h2 = HttpMarketAccess(server.url, key("house-01")), HttpMarketAccess(server.url, key("house-02"))
    now = now_of(server.url)
    h2.submit(order("s1", "house-02", "sell", 1000, "20.00", now))
    h1.submit(order("b1", "house-01", "buy", 1000, "20.00", now))  # pays 20 JPY
    first = SLOT - timedelta(hours=2)
    readings = [(first - timedelta(minutes=30 * k), 700 + 10 * k, 100 * (k % 2)) for k in range(4)]
    for slot, imp, exp in readings:
        h1.upload_meter(slot, {"grid_import_wh": imp, "grid_export_wh": exp})
    h1.upload_meter(readings[0][0], {"grid_import_wh": readings[0][1], "grid_export_wh": readings[0][2]})  # again
    bill = h1.bill()
    spec = load_scenario(None)
    home = next(h for h in spec.homes if h.id == "house-01")
    expected = home_bill("house-01", SLOT.date().replace(day=1), [r[1] for r in readings], [r[2] for r in readings],
                         spec.tariffs.retail_tariff(), home.contract_a, spec.tariffs.buyback_scheme(home.buyback),
                         "JPY", spec.tariffs.rounding)
    assert bill["month"] == "2020-08" and bill["utility"]["total"] == str(expected.total)
    assert bill["metered"]["grid_import_wh"] == sum(r[1] for r in readings)  # a re-upload replaces, not adds
    assert Decimal(bill["total"]) == expected.total + Decimal(20)
    assert h2.bill()["utility"]["import_kwh"] == "0" and Decimal(h2.bill()["received"]) == 20


def test_a_chunked_body_over_the_limit_gets_413(tmp_path):
    import socket

    from tests.service.conftest import run_server, service_settings

    with (run_server(service_settings(tmp_path, max_body_bytes=1024)) as srv,
          socket.create_connection(("127.0.0.1", int(srv.url.rsplit(":", 1)[1]))) as s):
        s.sendall(b"POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            chunk = b" " * 600
            s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 413")


def test_a_self_trade_cancel_is_journalled_and_told_to_its_owner(server):
    register(server.url, "a", "b")
    a, b = HttpMarketAccess(server.url, key("a")), HttpMarketAccess(server.url, key("b"))
    now = now_of(server.url)
    a.submit(order("mine", "a", "sell", 300, "10.00", now))
    b.submit(order("theirs", "b", "sell", 200, "11.00", now))
    r = httpx.post(f"{server.url}/api/orders", json=signed_body(a, order("a-buy", "a", "buy", 200, "12.00", now)))
    assert r.status_code == 201, r.text
    ack = r.json()
    assert [t["energy_wh"] for t in ack["trades"]] == [200]
    assert ack["self_trade_cancels"] == [{"order_id": "mine", "cancelled_wh": 300, "by_order_id": "a-buy"}]
    mine = {o["order"]["order_id"]: o for o in httpx.get(
        f"{server.url}/api/me/orders", params={"status": "all"},
        headers=read_headers(key("a"), a.domain, "/api/me/orders", a.now(), "status=all")).json()}
    assert mine["mine"]["status"] == "cancelled" and mine["mine"]["cancelled_by"] == "a-buy"
    rows = [(r.kind, r.ref) for r in server.app.state.live.journal.rows() if r.kind in ("self_cancel", "trade")]
    assert ("self_cancel", "mine") in rows
