"""Issue 12: the exchange against outsiders, over real HTTP.

The exchange's clock decides every gate; rate limits are charged after the signature is
verified; order ids are the participant's own; refusals tell nothing about others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tests.service.conftest import (
    SLOT,
    START,
    TOKEN,
    Server,
    key,
    now_of,
    order,
    register,
    run_server,
    service_settings,
)

from p2penergy.ledger.signing import SignatureError, sign_action
from p2penergy.market import Order
from p2penergy.service.auth import read_headers, signed_reading
from p2penergy.service.limits import RateLimiter
from p2penergy.service.live import ServiceError
from p2penergy.service.models import OrderIn


def signed_order(o: Order, nonce: int, signer: str | None = None) -> dict:
    s = sign_action(key(signer or o.participant), _domain(), o, nonce)
    return {"order": OrderIn.of(o).model_dump(mode="json"), "nonce": nonce, "signature": "0x" + s.signature.hex()}


def _domain():
    from p2penergy.ledger.signing import Domain

    return Domain(31337, "0x" + "00" * 20)  # the domain of a service without a chain


@pytest.fixture(scope="module")
def lax(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A service that accepts signed times up to two market hours from its clock: only the gate,
    decided by the exchange's own clock, stands between a backdated order and the book."""
    settings = service_settings(tmp_path_factory.mktemp("lax"), max_skew_s=7200.0)
    with run_server(settings) as s:
        register(s.url, "seller", "buyer")
        yield s


def test_a_backdated_order_for_a_closed_slot_is_refused(lax: Server):
    """The attack of the issue: a sell and a buy for a slot whose delivery has ended, both signed
    with a ``submitted_at`` at which the gate was open. The exchange's clock says the gate is closed."""
    now = now_of(lax.url)
    ended = START - timedelta(hours=1)  # delivered 08:00-08:30; its gate closed at 08:20
    assert ended + timedelta(minutes=30) < now
    backdated = ended - timedelta(minutes=30)  # the gate was open then, and it is within the allowed skew
    sell = order("late-s", "seller", "sell", 500, "10.00", backdated, slot=ended)
    buy = order("late-b", "buyer", "buy", 500, "30.00", backdated, slot=ended)
    with lax.client() as c:
        for o in (sell, buy):
            r = c.post("/api/orders", json=signed_order(o, 1))
            assert r.status_code == 409, r.text
            assert r.json()["field"] == "submitted_at" and "gate" in r.json()["message"]
            assert now.isoformat()[:16] in r.json()["message"]  # the exchange's time, not the signed one
        assert c.get("/api/trades").json() == []
        assert c.get("/api/depth", params={"slot_start": ended.isoformat()}).json()["sell"] == []
    # journalled as refused at the exchange's clock, not at the order's time
    rejects = [json.loads(r.body) for r in lax.app.state.live.journal.rows() if r.kind == "reject"]
    late = [b for b in rejects if b["action"]["order_id"].startswith("late-")]
    assert len(late) == 2
    for body in late:
        assert datetime.fromisoformat(body["at"]) >= now > ended + timedelta(minutes=30)
        assert datetime.fromisoformat(body["action"]["submitted_at"]) == backdated


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A service with small budgets: 3 signed requests per participant, 6 public reads per address."""
    settings = service_settings(tmp_path_factory.mktemp("tight"), burst=3, rate_per_s=0.01, read_burst=6,
                                read_rate_per_s=0.01)
    with run_server(settings) as s:
        register(s.url, "agent", "mallory")
        yield s


def test_an_outsider_cannot_spend_a_participants_rate_limit(tight: Server):
    """The issue's attack: requests that claim a participant but are signed by someone else are refused
    as unsigned (401) and charge nothing; the participant's own three orders then all go through."""
    now = START + timedelta(seconds=1)
    with tight.client() as c:
        for i in range(8):
            forged = signed_order(order(f"m{i}", "agent", "sell", 10, "10", now), 10 + i, signer="mallory")
            r = c.post("/api/orders", json=forged)
            assert (r.status_code, r.json()["field"]) == (401, "signature"), r.text
        codes = [c.post("/api/orders", json=signed_order(order(f"a{i}", "agent", "sell", 10, "10", now), 100 + i))
                 .status_code for i in range(4)]
        assert codes == [201, 201, 201, 429]


def test_public_reads_are_limited_per_client_address(tight: Server):
    with tight.client() as c:
        codes = [c.get("/api/trades").status_code for _ in range(8)]
        assert codes[:6] == [200] * 6 and codes[6:] == [429, 429]
        r = c.get("/api/prices")
        assert r.status_code == 429 and r.json()["field"] == "client address" and "retry in" in r.json()["message"]
        assert c.get("/health").status_code == 200  # the liveness probe is not a read of market data


def test_refusals_tell_nothing_about_other_participants(lax: Server):
    from p2penergy.ledger.actions import Cancel

    now = now_of(lax.url)
    with lax.client() as c:
        assert c.post("/api/orders", json=signed_order(order("own-1", "seller", "sell", 100, "10", now), 50)
                      ).status_code == 201
        # a replay, and a forged request with a low nonce: neither tells the seller's last nonce
        r = c.post("/api/orders", json=signed_order(order("own-1", "seller", "sell", 100, "10", now), 50))
        assert r.status_code == 409 and r.json()["field"] == "nonce" and "50" not in r.json()["message"]
        forged = signed_order(order("own-2", "seller", "sell", 100, "10", now), 3, signer="buyer")
        assert c.post("/api/orders", json=forged).status_code == 401

        def cancel(order_id: str, nonce: int) -> httpx.Response:
            s = sign_action(key("buyer"), _domain(), Cancel(order_id, "buyer", now), nonce)
            return c.post(f"/api/orders/{order_id}/cancel", json={
                "participant": "buyer", "cancelled_at": now.isoformat(), "nonce": nonce,
                "signature": "0x" + s.signature.hex()})

        theirs, missing = cancel("own-1", 60), cancel("no-such-order", 61)
        assert (theirs.status_code, theirs.json()) == (missing.status_code, missing.json())
        assert theirs.status_code == 404 and theirs.json()["field"] == "order_id"
        # both used up their nonce alike (each a journalled refusal): no side effect tells them apart
        assert cancel("no-such-order-2", 61).json()["field"] == "nonce"
        assert c.get("/api/depth", params={"slot_start": SLOT.isoformat()}).json()["sell"] == [
            {"price_per_kwh": "10.00", "energy_wh": 100}]


def test_order_ids_are_each_participants_own(tmp_path: Path):
    """Issue 12's attack: mallory sends the victim's next predictable order id first. The victim's order
    is still accepted; mallory's answer is what any fresh id gets (it learns nothing); a cancel
    addresses the caller's own order only; and a restart replays both orders under their ids."""
    from p2penergy.ledger.actions import Cancel

    with run_server(service_settings(tmp_path)) as srv:
        register(srv.url, "victim", "mallory")
        now = now_of(srv.url)
        with srv.client() as c:
            def post(o: Order, nonce: int) -> httpx.Response:
                return c.post("/api/orders", json=signed_order(o, nonce))

            def cancel(pid: str, order_id: str, nonce: int) -> httpx.Response:
                s = sign_action(key(pid), _domain(), Cancel(order_id, pid, now), nonce)
                return c.post(f"/api/orders/{order_id}/cancel", json={
                    "participant": pid, "cancelled_at": now.isoformat(), "nonce": nonce,
                    "signature": "0x" + s.signature.hex()})

            def mine(pid: str) -> dict[str, tuple[str, int]]:
                r = c.get("/api/me/orders", params={"status": "all"},
                          headers=read_headers(key(pid), _domain(), "/api/me/orders", now, "status=all"))
                return {o["order"]["order_id"]: (o["status"], o["remaining_wh"]) for o in r.json()}

            taken = post(order("victim-0007", "mallory", "buy", 10, "5", now), 1000)
            fresh = post(order("mallory-0007", "mallory", "buy", 10, "5", now), 1001)
            assert taken.status_code == fresh.status_code == 201
            assert {**taken.json(), "order_id": "-"} == {**fresh.json(), "order_id": "-"}
            own = post(order("victim-0007", "victim", "sell", 100, "29", now), 1000)
            assert own.status_code == 201 and own.json()["status"] == "open", own.text
            # mallory's cancel of that id takes its own order, never the victim's
            assert cancel("mallory", "victim-0007", 1002).json()["cancelled_wh"] == 10
            gone, missing = cancel("mallory", "victim-0007", 1003), cancel("mallory", "never-used", 1004)
            assert gone.status_code == missing.status_code == 404 and gone.json() == missing.json()
            assert mine("victim")["victim-0007"] == ("open", 100)
            assert mine("mallory")["victim-0007"] == ("cancelled", 0)
            # an id the signer itself used is refused as such (409), telling nothing about others
            again = post(order("victim-0007", "victim", "sell", 5, "29", now), 1001)
            assert again.status_code == 409 and again.json()["field"] == "id"
            assert "this participant" in again.json()["message"]
        live = srv.app.state.live
        with live.lock:
            live._rebuild()  # memory rebuilt from the journal: the same orders under the same ids
            assert live.status_of("victim", "victim-0007") == ("open", 100)
            assert live.status_of("mallory", "victim-0007") == ("cancelled", 0)


def test_limiter_state_is_bounded():
    """Buckets that have refilled are forgotten (no change in behaviour); at most ``max_keys`` are kept."""
    t = [0.0]
    limiter = RateLimiter(rate_per_s=10.0, burst=5, field="client address", max_keys=100, clock=lambda: t[0])
    for i in range(1000):
        limiter.take(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100  # a flood of distinct addresses keeps the newest 100
    for _ in range(5):
        limiter.take("10.9.9.9")
    with pytest.raises(ServiceError) as err:
        limiter.take("10.9.9.9")
    assert err.value.status == 429
    t[0] += 0.5  # refill time: burst / rate
    limiter.take("192.168.0.1")
    assert len(limiter) == 1  # every other bucket had refilled: forgotten
    for _ in range(5):
        limiter.take("10.9.9.9")  # a forgotten bucket is a full one, as before


def _meter(c: httpx.Client, pid: str, slot: datetime, values: dict, nonce: int,
           signer: str | None = None) -> httpx.Response:
    try:
        body = signed_reading(key(signer or pid), _domain(), slot, values, nonce) | {"participant": pid}
    except SignatureError:  # a value no signature can encode (over 2**64, below 0): sent with a dummy one
        body = {"participant": pid, "slot_start": slot.isoformat(), "values": values, "nonce": nonce,
                "signature": "0x" + "11" * 65}
    return c.post("/api/meter", json=body)


def test_out_of_range_input_gets_4xx_naming_the_field_and_changes_nothing(tmp_path: Path):
    """Readings above what the connection carries, slots outside the calendar: 422 naming the field,
    nothing journalled, nothing rebuilt; bills answer, also after a restart on the same journal."""
    settings = service_settings(tmp_path, max_skew_s=1e9)
    ended = START - timedelta(hours=1)
    utc = UTC
    with run_server(settings) as s, s.client() as c:
        register(s.url, "house-01")  # the shipped scenario's house-01: 30 A contract, no PV, no battery
        live = s.app.state.live
        rows, generation = live.journal.head[0], live.generation
        cases = [  # (reading, field): 30 A x 100 V for 30 minutes = 1500 Wh
            ({"grid_import_wh": 10**40}, "values.grid_import_wh"),
            ({"load_wh": 1501}, "values.load_wh"),
            ({"soc_wh": 1}, "values.soc_wh"),  # no storage
            ({"pv_wh": -1}, "values.pv_wh"),
        ]
        for n, (values, field) in enumerate(cases):
            r = _meter(c, "house-01", ended, values, 10 + n)
            assert (r.status_code, r.json()["field"]) == (422, field), r.text
        # the bound is told only to the meter's owner: a reading signed by someone else learns nothing of it
        register(s.url, "house-02")
        r = _meter(c, "house-01", ended, {"load_wh": 1501}, 15, signer="house-02")
        assert r.status_code == 401 and "30 A" not in r.text
        rows = live.journal.head[0]
        for n, slot in enumerate([datetime(1960, 1, 1, tzinfo=utc), datetime(9999, 12, 31, 23, 30, tzinfo=utc),
                                  ended + timedelta(minutes=7)]):
            r = _meter(c, "house-01", slot, {"load_wh": 1}, 20 + n)
            assert r.status_code == 422 and r.json()["field"] == "slot_start", r.text
        odd = [(datetime(1960, 1, 1, tzinfo=utc), now_of(s.url), "order.slot_start"),
               (datetime(9999, 12, 31, 23, 30, tzinfo=utc), now_of(s.url), "order.slot_start"),
               (datetime(2199, 12, 31, 23, 30, tzinfo=utc), now_of(s.url), "submitted_at"),  # in the calendar: gate
               (SLOT, datetime(1969, 12, 31, 23, 59, tzinfo=utc), "order.submitted_at")]
        for n, (slot, at, field) in enumerate(odd):
            body = {"order": {**OrderIn.of(order(f"x{n}", "house-01", "sell", 10, "10", START, slot=SLOT))
                              .model_dump(mode="json"), "slot_start": slot.isoformat(), "submitted_at": at.isoformat()},
                    "nonce": 30 + n, "signature": "0x" + "11" * 65}
            if field == "submitted_at":  # a real signature: the exchange decides (its gate is far from open)
                body = signed_order(order(f"x{n}", "house-01", "sell", 10, "10", at, slot=slot), 30 + n)
            r = c.post("/api/orders", json=body)
            assert r.status_code in (409, 422) and r.json()["field"] == field, r.text
        for slot in ("9999-12-31T23:30:00+00:00", "0001-01-01T00:00:00+00:00"):
            r = c.get("/api/depth", params={"slot_start": slot})
            assert (r.status_code, r.json()["field"]) == (422, "slot_start"), r.text
        assert live.generation == generation  # nothing made the service rebuild its memory
        assert [row.kind for row in live.journal.rows() if row.seq > rows] == ["reject"]  # the gate's refusal
        assert _meter(c, "house-01", ended, {"load_wh": 1500, "grid_import_wh": 1500}, 40).status_code == 201
        # a reading written before readings were bounded (straight into the journal): journalled, not counted
        with live.lock:
            live.engine.record_meter("house-01", ended - timedelta(minutes=30), {"grid_import_wh": 10**40})
            live.flush()
        bills = c.get("/api/bills")
        assert bills.status_code == 200, bills.text
    with run_server(settings) as s, s.client() as c:  # the same journal, replayed
        r = c.get("/api/bills")
        assert r.status_code == 200, r.text
        assert json.dumps(r.json()) == json.dumps(bills.json())


def test_readings_and_bills_are_private(lax: Server):
    """The public view sums; a participant reads its own (signed read); the operator reads every one."""
    ended = START - timedelta(hours=1)
    with lax.client() as c:
        assert _meter(c, "seller", ended, {"load_wh": 321, "pv_wh": 1234}, 70).status_code == 201
        public = c.get("/api/bills")
        assert public.status_code == 200
        assert "seller" not in public.text and "buyer" not in public.text
        assert public.json()["participants"] == 2 and public.json()["metered"]["pv_wh"] == 1234
        assert c.get("/api/operator/bills").status_code == 401
        every = c.get("/api/operator/bills", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert {b["participant"]: b["metered"]["load_wh"] for b in every} == {"buyer": 0, "seller": 321}
        now = now_of(lax.url)
        mine = c.get("/api/me/bill", headers=read_headers(key("seller"), _domain(), "/api/me/bill", now))
        assert mine.json()["metered"]["pv_wh"] == 1234
        # the buyer's signature over a read that claims to be the seller's reads nothing
        forged = read_headers(key("buyer"), _domain(), "/api/me/bill", now) | {"X-Participant": "seller"}
        assert c.get("/api/me/bill", headers=forged).status_code == 401


def test_provenance_is_public_only_as_sums(lax: Server):
    """Who bought from whom is the parties' and the operator's: the public flows sum over buyers and name
    only the producer the seller's tag declared (as every public trade shows it)."""
    now = now_of(lax.url)
    with lax.client() as c:
        r = c.post("/api/orders", json=signed_order(order("prov-b", "buyer", "buy", 40, "12", now), 90))
        assert r.status_code == 201 and r.json()["trades"], r.text
        public = c.get("/api/provenance")
        assert public.status_code == 200 and "buyer" not in public.text
        assert public.json() == [{"source": "solar", "producer": "seller", "energy_wh": 40, "trades": 1}]

        def mine(pid: str) -> list[dict]:
            path = "/api/me/provenance"
            return c.get(path, headers=read_headers(key(pid), _domain(), path, now)).json()

        assert mine("buyer") == [{"side": "buy", "source": "solar", "producer": "seller", "energy_wh": 40}]
        assert mine("seller") == [{"side": "sell", "source": "solar", "producer": "seller", "energy_wh": 40}]
        assert c.get("/api/operator/provenance").status_code == 401
        every = c.get("/api/operator/provenance", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert every == [{"source": "solar", "producer": "seller", "buyer": "buyer", "energy_wh": 40}]


def test_the_order_fast_path_answers_only_what_the_route_would_accept(lax: Server):
    """``POST /api/orders`` skips the router only for a body FastAPI itself reads as JSON and the model
    accepts: a body sent as text, or not JSON at all, gets FastAPI's own 422 and uses no nonce."""
    now = now_of(lax.url)
    body = signed_order(order("fp-1", "seller", "sell", 10, "10", now), 95)
    with lax.client() as c:
        as_text = c.post("/api/orders", content=json.dumps(body), headers={"Content-Type": "text/plain"})
        assert as_text.status_code == 422 and set(as_text.json()) == {"field", "message"}
        broken = c.post("/api/orders", content=b"{not json", headers={"Content-Type": "application/json"})
        assert broken.status_code == 422 and set(broken.json()) == {"field", "message"}
        assert c.post("/api/orders", json=body).status_code == 201  # its nonce was still unused


def test_a_fault_of_the_service_is_a_500_not_a_journal_outage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]):
    """An unexpected exception while applying an action (here: a view that fails on one order) is the
    service's own fault: 500 ``internal`` with the traceback in the operator's log, not 503 ``journal``;
    memory is rebuilt from the journal, so nothing of that order stays, and the exchange goes on."""
    with run_server(service_settings(tmp_path)) as srv:
        register(srv.url, "s")
        live = srv.app.state.live
        real = live.on_action

        def on_action(action, now):
            if action.order_id == "bug-1":
                raise KeyError("a bug in a view")
            real(action, now)

        monkeypatch.setattr(live, "on_action", on_action)
        now = now_of(srv.url)
        with srv.client() as c:
            r = c.post("/api/orders", json=signed_order(order("bug-1", "s", "sell", 100, "10", now), 1))
            assert (r.status_code, r.json()["field"]) == (500, "internal") and "journal" not in r.json()["message"]
            assert c.post("/api/orders", json=signed_order(order("ok-1", "s", "sell", 70, "10", now), 2)
                          ).status_code == 201
            assert c.get("/api/depth", params={"slot_start": SLOT.isoformat()}).json()["sell"] == [
                {"price_per_kwh": "10.00", "energy_wh": 70}]
    assert "a bug in a view" in capsys.readouterr().err


def test_an_agent_over_http_waits_out_a_429(tmp_path: Path):
    """``HttpMarketAccess`` honours the 429's ``Retry-After`` and sends the request again (a 429 uses no
    nonce): an agent whose burst is spent is slowed, not refused."""
    from p2penergy.service.client import HttpMarketAccess

    with run_server(service_settings(tmp_path, burst=2, rate_per_s=1.0)) as srv:
        register(srv.url, "s")
        now = now_of(srv.url)
        statuses: list[int] = []
        http = httpx.Client(base_url=srv.url, timeout=10,
                            event_hooks={"response": [lambda r: statuses.append(r.status_code)]})
        agent = HttpMarketAccess(srv.url, key("s"), client=http)
        try:
            for i in range(3):
                assert agent.submit(order(f"x-{i}", "s", "sell", 10, "10", now)) == []
        finally:
            agent.close()
        assert statuses.count(429) >= 1 and statuses[-1] == 201  # the third order waited for its token
        with srv.client() as c:
            assert c.get("/api/depth", params={"slot_start": SLOT.isoformat()}).json()["sell"] == [
                {"price_per_kwh": "10.00", "energy_wh": 30}]
            spent = c.post("/api/orders", json=signed_order(order("x-9", "s", "sell", 10, "10", now), 2**62))
            assert spent.status_code == 429 and spent.headers["Retry-After"] == "1"
