"""The dashboard in headless Chromium (Debian's package), driven over its DevTools protocol.

The page is loaded while participants trade; the numbers must appear, then update
without a reload as more trades arrive.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from contextlib import ExitStack
from itertools import count
from pathlib import Path

import httpx
import pytest
from tests.service.conftest import key, now_of, order, register
from websockets.sync.client import connect

from p2penergy.service.client import HttpMarketAccess

CHROMIUM = os.environ.get("P2PENERGY_CHROMIUM") or shutil.which("chromium") or "chromium"
# Wall seconds the page may take to show what the live agents traded: a bound against a hang only (each
# wait ends as soon as its condition holds), long enough for agents planning on a busy machine.
LIVE_WAIT_S = 180.0


class Page:
    """One Chromium tab over the DevTools protocol."""

    def __init__(self, profile: Path) -> None:
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not start")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        target = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page")
        self._stack = ExitStack()
        self.ws = self._stack.enter_context(connect(target["webSocketDebuggerUrl"], max_size=2**24))
        self._ids = count(1)

    def call(self, method: str, **params: object) -> dict:
        mid = next(self._ids)
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    def js(self, expression: str) -> object:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 20) -> object:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"page never satisfied {expression}; page text: {self.js('document.body.innerText')}")

    def close(self) -> None:
        self._stack.close()
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the page, not the journal: one database
def test_dashboard_shows_and_updates_live_numbers(server, tmp_path: Path):
    register(server.url, "house-01", "house-02")
    s, b = HttpMarketAccess(server.url, key("house-01")), HttpMarketAccess(server.url, key("house-02"))
    now = now_of(server.url)
    s.submit(order("s1", "house-01", "sell", 1500, "17.50", now))
    b.submit(order("b1", "house-02", "buy", 1000, "20.00", now))
    page = Page(tmp_path / "profile")
    try:
        page.call("Page.enable")
        page.call("Page.navigate", url=f"{server.url}/")
        assert page.wait_for("document.getElementById('trade-count').dataset.value === '1'")
        text = page.js("document.body.innerText")
        assert "17.50" in text  # last price
        assert page.js("document.getElementById('volume-total').textContent") == "1.00"  # 1000 Wh
        # depth of the open slot: 500 Wh left on the offer at 17.50
        assert page.wait_for("document.querySelector('#depth tbody tr td:nth-child(3)')?.textContent === '0.50'")
        assert "solar" in page.js("document.querySelector('#by-tag tbody').innerText")
        flows = page.js("document.querySelector('#flows tbody').innerText")
        assert "house-01" in flows and "house-02" not in flows  # the tag's producer; no buyer is named
        bills = page.js("document.querySelector('#bills tbody').innerText")
        assert "17.5" in bills and "house-0" not in bills  # 1 kWh at 17.50: the community's sum, nobody named
        # more trading while the page stays open: the numbers update without a reload
        b.submit(order("b2", "house-02", "buy", 500, "19.00", now_of(server.url)))
        assert page.wait_for("document.getElementById('trade-count').dataset.value === '2'")
        assert page.js("document.getElementById('volume-total').textContent") == "1.50"
        # the update counter is set at the end of a refresh, after the counts: wait for it too
        assert page.wait_for("Number(document.getElementById('updates').dataset.value) >= 2")
        assert page.wait_for("document.querySelector('#depth tbody').innerText.trim() === ''")  # offer used up
    finally:
        page.close()


def test_dashboard_follows_live_agents_trading(tmp_path: Path):
    """The page is open while the simulation's agents trade over HTTP on a 600x clock."""
    import threading
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from tests.service.agents_util import register_keys
    from tests.service.conftest import run_server, service_settings

    from p2penergy.ledger.keys import derive_keys
    from p2penergy.service.live_agents import fit_kit, make_runners, prepare_community, run

    start = datetime(2020, 8, 4, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    community = prepare_community(None, start, history_days=14)
    sites = [p.id for p in community.participants.values() if p.kind != "car"]
    chosen = [p for p in sites if community.participants[p].has_pv][:3] + \
        [p for p in sites if not community.participants[p].has_pv][:3]
    keys = derive_keys(community.seed, chosen)
    kit = fit_kit(community, chosen, start, "seven-day-mean")
    with run_server(service_settings(tmp_path, clock_start=start, speed=600.0), community.settings) as srv:
        register_keys(srv.url, keys)
        page = Page(tmp_path / "profile")
        stop = threading.Event()
        # the agents trade until the page has shown a count and then a higher one: bounded by what the page
        # showed, not by a number of slots (on a busy machine they could all be traded before the first refresh)
        agents = threading.Thread(target=run, args=(make_runners(srv.url, community, kit, keys, replan_slots=1),
                                                    stop))
        try:
            page.call("Page.navigate", url=f"{srv.url}/")
            page.wait_for("document.getElementById('clock').textContent !== '–'")
            agents.start()
            count = "Number(document.getElementById('trade-count').dataset.value)"
            first = int(page.wait_for(f"{count} || 0", timeout_s=LIVE_WAIT_S))
            later = int(page.wait_for(f"{count} > {first} && {count}", timeout_s=LIVE_WAIT_S))
            stop.set()
            agents.join(timeout=60)
            assert not agents.is_alive()
            assert later > first > 0
            # the update counter is set at the end of a refresh, after the counts: wait for it too
            assert page.wait_for("Number(document.getElementById('updates').dataset.value) >= 2",
                                 timeout_s=LIVE_WAIT_S)
            total = len(srv.app.state.live.trades)  # the agents stopped: no more trades
            assert page.wait_for(f"document.getElementById('trade-count').dataset.value === '{total}'",
                                 timeout_s=LIVE_WAIT_S)
            bills = page.js("document.querySelector('#bills tbody td').innerText")
            assert bills == str(len(chosen))  # the community's sum: no participant is named
            assert "solar" in page.js("document.querySelector('#by-tag tbody').innerText")
        finally:
            stop.set()
            page.close()
