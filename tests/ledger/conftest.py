"""A small deterministic market run through the ledger, shared by the ledger tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from p2penergy.ledger import Cancel, Engine, Modify, Wallets
from p2penergy.market import MarketSettings, Order, Requirement, Tag

SETTINGS = MarketSettings.demonstration()
START = datetime(2020, 8, 1, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
SELLERS = ["house-01", "house-02", "office"]
BUYERS = ["house-03", "house-04", "car-01"]


def chainless_engine(url: str) -> tuple[Engine, Wallets]:
    """An engine without a chain on a new journal at ``url``, with participants ``a`` and ``b`` registered."""
    from p2penergy.ledger.journal import Journal

    engine = Engine.create(SETTINGS, Journal(url), None, chain="none", chain_id=1, contract="0x" + "00" * 20,
                           operator="0x" + "00" * 20)
    wallets = Wallets(engine.domain, 3)
    engine.register(wallets.add(["a", "b"]))
    return engine, wallets


def run_market(engine: Engine, slots: int = 3, seed: int = 7, key_seed: int = 11) -> dict[str, object]:
    """Register six participants (keys from ``key_seed``), trade ``slots`` slots through the
    engine, meter, certify and commit each slot.

    Returns the trades the live run saw, the commits' transaction hashes and the wallets.
    """
    rng = np.random.default_rng(seed)
    wallets = Wallets(engine.domain, key_seed)
    engine.register(wallets.add(SELLERS + BUYERS))
    trades = []
    tx_hashes = []
    n = 0
    for k in range(slots):
        slot = START + k * SETTINGS.slot_length
        at = slot - timedelta(hours=1)
        for pid in SELLERS + BUYERS:
            actions: list[Order | Cancel | Modify] = []
            for _ in range(2):
                n += 1
                price = Decimal(int(rng.integers(1000, 2500))) / 100
                energy = int(rng.integers(100, 900))
                if pid in SELLERS:
                    order = Order(f"o{n}", pid, "sell", slot, energy, price, at,
                                  tag=Tag.of(source="solar", producer=pid, device=f"pv-{pid}"))
                else:
                    order = Order(f"o{n}", pid, "buy", slot, energy, price, at,
                                  requirements=(Requirement.of({"source": "solar"}, "1"), Requirement.any()))
                actions.append(order)
            trades += engine.apply(wallets.sign(pid, actions), at).trades
            at += timedelta(seconds=30)
        # a revision step: one buyer raises a price, one seller cancels (may be filled: then refused)
        mod = Modify(f"o{n}", BUYERS[-1], 300, Decimal("24.50"), at + timedelta(minutes=1))
        trades += engine.apply(wallets.sign(BUYERS[-1], [mod]), at + timedelta(minutes=1)).trades
        cancel = Cancel(f"o{n - 11}", SELLERS[0], at + timedelta(minutes=2))
        trades += engine.apply(wallets.sign(SELLERS[0], [cancel]), at + timedelta(minutes=2)).trades
        trades += engine.close_slot(slot).trades
        tag_wh: dict[str, int] = defaultdict(int)
        for t in trades:
            if t.slot_start == slot:
                tag_wh[str(t.tag)] += t.energy_wh
        for pid in SELLERS + BUYERS:
            engine.record_meter(pid, slot, {"load_wh": int(rng.integers(200, 800)), "pv_wh": 0})
        devices, events = [], []
        for pid in SELLERS:
            issued = int(rng.integers(500, 1500))
            claimed = min(issued, tag_wh.get(str(Tag.of(source="solar", producer=pid, device=f"pv-{pid}")), 0))
            events.append({"event": "issue", "cert_id": f"c-{k}-{pid}", "device": f"pv-{pid}", "energy_wh": issued})
            events.append({"event": "claim", "cert_id": f"c-{k}-{pid}", "device": f"pv-{pid}", "energy_wh": claimed})
            devices.append((f"pv-{pid}", issued, claimed))
        engine.record_certificates(slot, events, devices)
        tx_hashes.append(engine.commit_slot(slot))
    return {"trades": trades, "tx_hashes": tx_hashes, "wallets": wallets}


@pytest.fixture(scope="session")
def anvil_url() -> str:
    """A real anvil node on 127.0.0.1 (npm @foundry-rs/anvil, installed by scripts/setup.sh)."""
    root = Path(__file__).resolve().parents[2]
    found = sorted(root.glob(".tools/anvil/node_modules/@foundry-rs/anvil-*/bin/anvil"))
    binary = os.environ.get("P2PENERGY_ANVIL") or (str(found[0]) if found else shutil.which("anvil") or "anvil")
    if not Path(binary).exists():
        pytest.fail(f"anvil not found at {binary}: run scripts/setup.sh (installs @foundry-rs/anvil into .tools/)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port), "--prune-history",
                             "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"anvil did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.05)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)  # its own session: nothing it started outlives it
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
