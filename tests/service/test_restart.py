"""kill -9 the service and restart it: every acknowledged order and trade is still there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
from tests.service.conftest import SLOT, START, TOKEN, free_port, key, now_of, order, register
from tests.service.test_api import depth, signed_body

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
    assert SLOT > START
