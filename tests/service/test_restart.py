"""kill -9 the service and restart it: every acknowledged order and trade is still there.

Both tests run on SQLite and on PostgreSQL (``db_url``). The second kills the service while
several clients send signed orders at once, so it dies in the middle of group commits.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from tests.service.conftest import SLOT, START, TOKEN, free_port, key, now_of, order, register, verified_rows
from tests.service.test_api import depth, signed_body
from typer.testing import CliRunner

from p2penergy.cli import app
from p2penergy.ledger.actions import Cancel, action_from_dict
from p2penergy.ledger.signing import sign_action
from p2penergy.market import Order
from p2penergy.service.auth import read_headers
from p2penergy.service.client import HttpMarketAccess

# A signed action's time may be this far (wall seconds) from the service's clock: more than a restart takes
# on a busy machine, so a request signed before the kill is judged on its nonce after it, not on its age.
MAX_SKEW_S = "600"


def start(db: str, port: int, log_path: Path) -> subprocess.Popen:
    """``p2penergy serve`` in its own process (and session) on ``port``, once it answers /health.

    Its stderr goes to ``log_path`` (appended: a restart adds to it), never to an unread pipe that could fill
    up and block it."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "p2penergy", "serve", "--db", db, "--port", str(port), "--clock", "accelerated",
             "--speed", "1", "--clock-start", START.isoformat(), "--admin-token", TOKEN],
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
            env={**os.environ, "P2PENERGY_MAX_SKEW_S": MAX_SKEW_S})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
    kill9(proc)
    raise RuntimeError(f"server did not answer: {log_path.read_text()}")


def kill9(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_kill_9_and_restart_keeps_every_acknowledged_order_and_trade(db_url: str, tmp_path: Path):
    db = db_url
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = start(db, port, log)
    try:
        register(url, "s", "b")
        s, b = HttpMarketAccess(url, key("s")), HttpMarketAccess(url, key("b"))
        now = now_of(url)
        for i in range(5):
            s.submit(order(f"s{i}", "s", "sell", 200, f"{10 + i}.00", now))
        b.submit(order("b0", "b", "buy", 500, "12.00", now))  # takes s0, s1 and 100 Wh of s2
        s.modify("s4", 150, Decimal("14.50"), now_of(url))
        replayable = signed_body(b, order("b1", "b", "buy", 50, "1.00", now))
        assert httpx.post(f"{url}/api/orders", json=replayable).status_code == 201
        trades_before = httpx.get(f"{url}/api/trades").json()
        depth_before = depth(url)
        open_before = {oid: oo.remaining_wh for oid, oo in s.open_orders().items()}
        clock_before = now_of(url)
    finally:
        kill9(proc)
    assert [t["energy_wh"] for t in trades_before] == [200, 200, 100]
    proc = start(db, port, log)
    try:
        assert httpx.get(f"{url}/api/trades").json() == trades_before
        assert depth(url) == depth_before
        assert {oid: oo.remaining_wh for oid, oo in s.open_orders().items()} == open_before == {
            "s2": 100, "s3": 200, "s4": 150}
        assert now_of(url) >= clock_before  # the accelerated clock resumed, not restarted
        assert httpx.get(f"{url}/api/participants").json() == ["b", "s"]
        # nonces survived: the old request cannot be replayed
        r = httpx.post(f"{url}/api/orders", json=replayable)
        assert r.status_code == 409 and r.json()["field"] == "nonce"
        # the rebuilt book trades: the rest of s2 then s3 at their prices
        trades = b.submit(order("b2", "b", "buy", 250, "20.00", now_of(url)))
        assert [(t.energy_wh, str(t.price_per_kwh)) for t in trades] == [(100, "12.00"), (150, "13.00")]
        assert b.bill()["bought_wh"] == 750
    finally:
        kill9(proc)
    assert_audit_passes(db)
    assert SLOT > START


# -- kill -9 during group commits under load ----------------------------------------------------------------

SELLERS = ("s0", "s1", "s2", "s3")
BUYERS = ("b0", "b1", "b2", "b3")
KILL_AFTER_ACKS = 200  # acknowledged orders (all clients) before the kill: enough for many group commits
LOAD_TIMEOUT_S = 120.0  # the load must reach that many acknowledgements within this (wall seconds)
CANCEL_EVERY = 5  # a seller's every 5th action cancels its latest acknowledged order still open


@dataclass
class LoadClient:
    """One participant's view of the load: what it sent and what the service acknowledged."""

    pid: str
    sent: dict[str, Order] = field(default_factory=dict)
    acked: dict[str, dict] = field(default_factory=dict)  # order id -> the 201 body (status, remaining, trades)
    cancels_acked: dict[str, int] = field(default_factory=dict)  # order id -> Wh the cancel took off the book
    refused: list[tuple[str, int, str]] = field(default_factory=list)  # (what, HTTP status, body)
    in_flight: str | None = None  # the request the kill cut (sent, never answered)


def run_load(url: str, client: LoadClient, stop: threading.Event) -> None:
    """Signed orders (and a seller's cancels) back to back over HTTP until the service dies or ``stop``."""
    access = HttpMarketAccess(url, key(client.pid))
    http = httpx.Client(base_url=url, timeout=60)
    rng = random.Random(client.pid)  # deterministic inputs; the interleaving of the clients is not
    side = "sell" if client.pid in SELLERS else "buy"
    try:
        i = 0
        while not stop.is_set():
            i += 1
            open_acked = [oid for oid, ack in client.acked.items()
                          if ack["remaining_wh"] > 0 and oid not in client.cancels_acked]
            try:
                if side == "sell" and i % CANCEL_EVERY == 0 and open_acked:
                    oid = open_acked[-1]
                    now = access.now()
                    signed = sign_action(access.key, access.domain, Cancel(oid, client.pid, now), access.next_nonce())
                    client.in_flight = f"cancel {oid}"
                    r = http.post(f"/api/orders/{oid}/cancel", json={
                        "participant": client.pid, "cancelled_at": now.isoformat(), "nonce": signed.nonce,
                        "signature": "0x" + signed.signature.hex()})
                    client.in_flight = None
                    if r.status_code == 200:
                        client.cancels_acked[oid] = r.json()["cancelled_wh"]
                    else:  # it filled meanwhile: nothing open to cancel
                        client.refused.append((f"cancel {oid}", r.status_code, r.text))
                    continue
                cents = rng.randrange(1000, 1400) if side == "sell" else rng.randrange(1100, 1500)
                o = order(f"{client.pid}-{i}", client.pid, side, rng.randrange(50, 400), f"{cents / 100:.2f}",
                          access.now())
                body = signed_body(access, o)
                client.sent[o.order_id] = o
                client.in_flight = o.order_id
                r = http.post("/api/orders", json=body)
                client.in_flight = None
                if r.status_code == 201:
                    client.acked[o.order_id] = r.json()
                else:
                    client.refused.append((o.order_id, r.status_code, r.text))
            except httpx.ConnectError:  # the service is gone: this request never reached it
                client.in_flight = None
                return
            except httpx.TransportError:  # cut while the service had it: acknowledged never, maybe journaled
                return
    finally:
        http.close()
        access.close()


def group_commits_with_orders_of_several_clients(db: str) -> int:
    """PostgreSQL only: transactions (rows sharing ``xmin``) that committed orders of two or more clients."""
    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM (SELECT xmin::text FROM journal WHERE kind = 'order' GROUP BY 1 "
                "HAVING count(DISTINCT split_part(ref, '-', 1)) > 1) AS g")).scalar_one())
    finally:
        engine.dispose()


def all_public_trades(url: str) -> list[dict]:
    out: list[dict] = []
    while True:
        page = httpx.get(f"{url}/api/trades", params={"after": len(out), "limit": 1000}).json()
        if not page:
            return out
        out += page


def test_kill_9_during_group_commits_under_load_loses_duplicates_and_over_fills_nothing(db_url: str,
                                                                                        tmp_path: Path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = start(db_url, port, log)
    clients = [LoadClient(pid) for pid in SELLERS + BUYERS]
    stop = threading.Event()
    try:
        register(url, *SELLERS, *BUYERS, "sweeper")
        threads = [threading.Thread(target=run_load, args=(url, c, stop), daemon=True) for c in clients]
        for t in threads:
            t.start()
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while sum(len(c.acked) for c in clients) < KILL_AFTER_ACKS:
            assert time.monotonic() < deadline, f"only {sum(len(c.acked) for c in clients)} orders acknowledged"
            assert all(t.is_alive() for t in threads), [c.refused[:3] for c in clients]
            time.sleep(0.02)
    finally:
        kill9(proc)  # SIGKILL while every client has a request on its way
        stop.set()
    for t in threads:
        t.join(timeout=60)
    cut = [c.in_flight for c in clients if c.in_flight is not None]
    assert cut, "the kill should cut requests in flight (it came under load)"
    # the only refusals: cancels of orders that had filled meanwhile (no order refused, nothing answered 5xx)
    assert [r for c in clients for r in c.refused if not (r[0].startswith("cancel") and r[1] < 500)] == []

    rows = verified_rows(db_url)  # the hash chain verifies after the kill
    order_rows = [r for r in rows if r.kind == "order"]
    journal_orders = {r.ref: action_from_dict("order", json.loads(r.body)["action"]) for r in order_rows}
    assert len(journal_orders) == len(order_rows), "an order was journaled twice"
    sent = {oid: o for c in clients for oid, o in c.sent.items()}
    acked = {oid: ack for c in clients for oid, ack in c.acked.items()}
    assert set(acked) <= set(journal_orders), "an acknowledged order was lost"
    assert set(journal_orders) <= set(sent), "the journal holds an order nobody sent"
    for oid, o in journal_orders.items():
        assert (o.side, o.energy_wh, o.price_per_kwh) == (sent[oid].side, sent[oid].energy_wh,
                                                          sent[oid].price_per_kwh)
    cancels = {r.ref: r for r in rows if r.kind == "cancel"}
    assert len(cancels) == sum(1 for r in rows if r.kind == "cancel"), "a cancel was journaled twice"
    cancels_acked = {oid: wh for c in clients for oid, wh in c.cancels_acked.items()}
    assert set(cancels_acked) <= set(cancels), "an acknowledged cancel was lost"

    trade_rows = [r for r in rows if r.kind == "trade"]
    trades = {r.ref: json.loads(r.body) for r in trade_rows}
    assert len(trades) == len(trade_rows), "a trade was journaled twice"
    for ack in acked.values():
        for t in ack["trades"]:
            assert trades[t["trade_id"]]["energy_wh"] == t["energy_wh"], "an acknowledged trade changed"
            assert trades[t["trade_id"]]["price_per_kwh"] == t["price_per_kwh"]
    filled: dict[str, int] = defaultdict(int)
    for t in trades.values():
        buy, sell = journal_orders[t["buy_id"]], journal_orders[t["sell_id"]]
        assert (buy.side, sell.side, buy.participant, sell.participant) == ("buy", "sell", t["buyer"], t["seller"])
        assert sell.price_per_kwh <= Decimal(t["price_per_kwh"]) <= buy.price_per_kwh
        filled[t["buy_id"]] += t["energy_wh"]
        filled[t["sell_id"]] += t["energy_wh"]
    for oid, o in journal_orders.items():
        assert filled[oid] <= o.energy_wh, f"order {oid} over-filled: {filled[oid]} Wh of {o.energy_wh}"
        if oid in acked:  # what the acknowledgement said had traded at once is there, and never more than it
            assert filled[oid] >= o.energy_wh - acked[oid]["remaining_wh"]
        if oid in cancels_acked:
            assert filled[oid] + cancels_acked[oid] == o.energy_wh, f"order {oid} traded after its cancel"
    assert sum(t["energy_wh"] for t in trades.values()) > 0
    if db_url.startswith("postgresql"):  # the load was served by group commits, several clients per transaction
        assert group_commits_with_orders_of_several_clients(db_url) > 0

    proc = start(db_url, port, log)
    try:
        # the restarted service holds exactly the journal: every trade, every order's fill and status
        public = all_public_trades(url)
        assert {t["trade_id"]: t["energy_wh"] for t in public} == {k: t["energy_wh"] for k, t in trades.items()}
        for c in clients:
            access = HttpMarketAccess(url, key(c.pid))
            mine = httpx.get(f"{url}/api/me/orders", params={"status": "all"},
                             headers=read_headers(key(c.pid), access.domain, "/api/me/orders", access.now(),
                                                  "status=all")).json()
            for row in mine:
                oid = row["order"]["order_id"]
                left = journal_orders[oid].energy_wh - filled[oid]
                if oid in cancels:
                    assert row["status"] == "cancelled"
                else:
                    assert (row["status"], row["remaining_wh"]) == (("open", left) if left else ("filled", 0))
            assert {row["order"]["order_id"] for row in mine} == {
                oid for oid, o in journal_orders.items() if o.participant == c.pid}
        # the rebuilt book trades on: a buyer at the top of the band takes every offer left, none over-filled
        open_sell_wh = sum(level["energy_wh"] for level in depth(url)["sell"])
        sweep = HttpMarketAccess(url, key("sweeper")).submit(order("sweep", "sweeper", "buy", open_sell_wh + 1,
                                                                   "50.00", now_of(url)))
        assert sum(t.energy_wh for t in sweep) == open_sell_wh and depth(url)["sell"] == []
        bills = {b["participant"]: b for b in httpx.get(f"{url}/api/operator/bills",
                                                         headers={"Authorization": f"Bearer {TOKEN}"}).json()}
        assert sum(b["sold_wh"] for b in bills.values()) == sum(b["bought_wh"] for b in bills.values())
        for s in SELLERS:  # so every offer not cancelled is sold in full, a cancelled one up to its cancel
            assert bills[s]["sold_wh"] == sum(filled[oid] if oid in cancels else o.energy_wh
                                              for oid, o in journal_orders.items() if o.participant == s)
    finally:
        kill9(proc)
    assert verified_rows(db_url)[-1].seq > rows[-1].seq  # the chain went on from where the kill left it
    assert_audit_passes(db_url)


def assert_audit_passes(db: str) -> None:
    """``p2penergy audit --db`` on the journal the kills left: signatures, nonces, roots and replay check out."""
    result = CliRunner().invoke(app, ["audit", "--db", db])
    assert result.exit_code == 0, result.output
    assert "audit passed" in result.output
