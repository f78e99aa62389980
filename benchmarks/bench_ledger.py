"""Ledger throughput: signing, verification, journal, chain commits, and a month projection.

Run: ``python benchmarks/bench_ledger.py [--slots 96] [--agents 30] [--anvil PATH]``.
Every figure comes with a baseline measured in the same run on the same machine:

- signing / verifying: eth-account's own ``sign_message(encode_typed_data(...))`` / ``recover_message``
  on the same Order typed data;
- journal: a plain ``sqlite3`` executemany of the same row count with no hashing or JSON;
- chain: a plain 21,000-gas ether transfer signed and sent the same way on the same node.

Then the engine runs ``--slots`` slots of ``--agents`` agents (each step: 3 orders signed as one
batch, one revision) through a real exchange, journal and chain, and the month (1,488 slots)
is projected from it, with the chain's share of the time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import numpy as np
from eth_account import Account
from eth_account.messages import encode_typed_data

from p2penergy.ledger import Wallets, create_run_engine
from p2penergy.ledger.actions import Modify
from p2penergy.ledger.chain import Chain
from p2penergy.ledger.journal import Journal, sqlite_url
from p2penergy.ledger.keys import OPERATOR_ID, Key
from p2penergy.ledger.signing import (
    Domain,
    Verifier,
    sign_action,
    sign_batch,
    struct_hash,
    typed_data_types,
    typed_message,
)
from p2penergy.market import MarketError, MarketSettings, Order, Requirement, Tag, make_exchange

SETTINGS = MarketSettings.demonstration()
TZ = ZoneInfo(SETTINGS.timezone)
START = datetime(2020, 8, 1, tzinfo=TZ)
DOMAIN = Domain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
MONTH_SLOTS = 1488


def rate(n: int, fn) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def orders(n: int, pid: str = "alice") -> list[Order]:
    slot = START + timedelta(hours=10)
    return [Order(f"o{i}", pid, "sell", slot, 100 + i % 900, Decimal(1000 + i % 2000) / 100,
                  slot - timedelta(hours=2), tag=Tag.of(source="solar", producer=pid)) for i in range(n)]


def bench_signing(n: int) -> list[tuple[str, float, float]]:
    key = Key.derive(1, "alice")
    os_ = orders(n)
    signed = []
    r_single = rate(n, lambda: signed.extend(sign_action(key, DOMAIN, o, i) for i, o in enumerate(os_)))
    v = Verifier(DOMAIN, {"alice": key.address})
    struct_hash.cache_clear()  # measure verification from scratch, as a separate verifier would do it
    r_verify = rate(n, lambda: [v.verify(s) for s in signed])
    batches = []
    r_batch = rate(n, lambda: batches.extend(sign_batch(key, DOMAIN, [(o, n + 10 * i + j) for j, o in
                                                                      enumerate(os_[i:i + 10])])
                                             for i in range(0, n, 10)))
    struct_hash.cache_clear()
    r_vbatch = rate(n, lambda: [v.verify_batch(b) for b in batches])
    # baseline: eth-account's typed-data path on the same Order struct
    m = max(200, n // 10)
    acct = Account.from_key(key.private_key)
    types = typed_data_types("Order")

    def msg(o: Order, i: int) -> dict:
        primary, message = typed_message(o, i, key.address)
        return {"types": types, "primaryType": primary, "domain": DOMAIN.as_typed_data_domain(), "message": message}
    sigs = []
    b_sign = rate(m, lambda: sigs.extend(acct.sign_message(encode_typed_data(full_message=msg(o, i))).signature
                                         for i, o in enumerate(os_[:m])))
    b_verify = rate(m, lambda: [Account.recover_message(encode_typed_data(full_message=msg(o, i)), signature=s)
                                for i, (o, s) in enumerate(zip(os_[:m], sigs, strict=True))])
    return [("sign, one EIP-712 signature per order", r_single, b_sign),
            ("verify, per-order signature", r_verify, b_verify),
            ("sign, batches of 10 orders (per order)", r_batch, b_sign),
            ("verify, batches of 10 orders (per order)", r_vbatch, b_verify)]


def bench_journal(n: int, folder: Path) -> tuple[float, float]:
    j = Journal(sqlite_url(folder / "bench-journal.sqlite"))
    body = {"action": {"order_id": "o1", "participant": "house-01", "side": "sell", "energy_wh": 500,
                       "price_per_kwh": "12.34"}, "nonce": 1, "batch": 7}

    def journal_rows() -> None:
        for i in range(n):
            j.append("order", dict(body, nonce=i), 1596240000, f"o{i}")
        j.flush()
    r = rate(n, journal_rows)
    j.close()
    con = sqlite3.connect(folder / "bench-plain.sqlite")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, kind TEXT, slot INTEGER, ref TEXT, body TEXT)")
    text = str(body)

    def plain() -> None:
        with con:
            con.executemany("INSERT INTO t VALUES (?,?,?,?,?)", ((i, "order", 1, f"o{i}", text) for i in range(n)))
    b = rate(n, plain)
    con.close()
    return r, b


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_chain(chain: Chain, n: int) -> tuple[float, float, float]:
    """(commits/s, baseline transfers/s, MB RSS per 1,000 blocks)."""
    chain.deploy()
    rss0 = rss_mb()
    roots = (b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32)
    tags = {f"source=solar,producer=house-{i:02d}": 300 for i in range(10)}
    devices = [(f"pv-house-{i:02d}", 900, 300) for i in range(10)]
    r = rate(n, lambda: [chain.commit_slot(10_000 + 1800 * s, *roots, s, tags, devices) for s in range(n)])
    rss = (rss_mb() - rss0) * 1000 / n
    to = Key.derive(2, "sink").address
    b = rate(n, lambda: [chain._transact("0x", 21_000, "transfer", to) for _ in range(n)])
    return r, b, rss


class _ExchangeOnly:
    """The same workload with no ledger: the baseline the ledger's overhead is measured against."""

    chain_seconds = 0.0

    def __init__(self) -> None:
        self.exchange = make_exchange(SETTINGS)

    def add(self, pids: list[str]) -> list[str]:
        return pids

    def register(self, pids: list[str]) -> None:
        pass

    def sign(self, pid: str, actions: list) -> list:
        return actions

    def apply(self, actions: list, now: datetime) -> SimpleNamespace:
        trades = []
        ex = self.exchange
        for a in actions:
            try:
                if isinstance(a, Order):
                    trades += ex.submit(a, now)
                else:
                    trades += ex.modify(a.order_id, a.participant, a.energy_wh, a.price_per_kwh, now)
            except MarketError:
                pass
        return SimpleNamespace(trades=trades)

    def close_slot(self, slot):
        return self.exchange.close(slot)

    def record_meter(self, *args) -> None:
        pass

    def record_certificates(self, *args) -> None:
        pass

    def commit_slot(self, *args) -> None:
        pass

    def close(self) -> None:
        pass


def bench_month(slots: int, agents: int, folder: Path, chain_url: str | None, ledger: bool = True,
                pipelined: bool = False) -> dict[str, float]:
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    if ledger:
        # a throwaway anvil: a fixed key stands for the operator's own (an external chain refuses derived keys)
        operator = Key.from_hex(OPERATOR_ID, "0x" + "b1" * 32, "given") if chain_url else None
        eng = create_run_engine(SETTINGS, run_dir=folder, chain_url=chain_url, seed=1, pipelined=pipelined,
                                operator=operator)
        wallets = Wallets(eng.domain, 1)
    else:
        eng = wallets = _ExchangeOnly()
    pids = [f"agent-{i:02d}" for i in range(agents)]
    eng.register(wallets.add(pids))
    n_orders = 0
    t_start = time.perf_counter()
    for k in range(slots):
        slot = START + k * SETTINGS.slot_length
        at = slot - timedelta(hours=3)
        for a, pid in enumerate(pids):
            step = []
            for j in range(3):
                price = Decimal(int(rng.integers(1000, 2600))) / 100
                energy = int(rng.integers(50, 800))
                if a % 2:
                    step.append(Order(f"{k}-{pid}-{j}", pid, "sell", slot, energy, price, at,
                                      tag=Tag.of(source="solar", producer=pid)))
                else:
                    step.append(Order(f"{k}-{pid}-{j}", pid, "buy", slot, energy, price, at,
                                      requirements=(Requirement.of({"source": "solar"}, "1"),)))
            eng.apply(wallets.sign(pid, step), at)
            revise = Modify(f"{k}-{pid}-0", pid, 40, Decimal("20.00"), at + timedelta(minutes=5))
            eng.apply(wallets.sign(pid, [revise]), at + timedelta(minutes=5))
            n_orders += 4
        eng.close_slot(slot)
        for pid in pids:
            eng.record_meter(pid, slot, {"load_wh": 500, "pv_wh": 200})
        eng.record_certificates(slot, [], [(f"pv-{pid}", 5000 if k == 0 else 0, 0) for pid in pids[1::2]])
        eng.commit_slot(slot)
    eng.close()  # waits for pipelined commits: their time counts
    total = time.perf_counter() - t_start
    return {"setup_s": t_start - t0, "total_s": total, "chain_s": eng.chain_seconds, "orders": n_orders,
            "slots": slots}


def start_anvil(binary: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port), "--prune-history", "--silent"],
                            stdout=subprocess.DEVNULL, start_new_session=True)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--slots", type=int, default=96)
    parser.add_argument("--agents", type=int, default=30)
    tools = Path(__file__).resolve().parents[1] / ".tools/anvil/node_modules"
    found = sorted(tools.glob("@foundry-rs/anvil-*/bin/anvil"))
    default_anvil = found[0] if found else "anvil"
    parser.add_argument("--anvil", default=os.environ.get("P2PENERGY_ANVIL") or str(default_anvil))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    lines = []
    try:
        for what, ours, base in bench_signing(args.orders):
            lines.append((what, f"{ours:,.0f} /s", f"{base:,.0f} /s (eth-account typed data)", ours / base))
        r, b = bench_journal(args.rows, folder)
        lines.append((f"journal, {args.rows:,} hash-chained rows, one transaction", f"{r:,.0f} rows/s",
                      f"{b:,.0f} rows/s (plain sqlite3)", r / b))
        anvil = None
        chains = [("in-process (eth-tester/py-evm)", lambda: Chain.in_process(Key.derive(1, OPERATOR_ID)))]
        if Path(args.anvil).exists():
            anvil = start_anvil(args.anvil)
            chains.append(("anvil --prune-history", lambda: Chain.connect(anvil[1], Key.derive(1, OPERATOR_ID))))
        for name, make in chains:
            c, b, mb = bench_chain(make(), args.commits)
            lines.append((f"chain {name}, slot commits", f"{c:,.1f} tx/s", f"{b:,.1f} tx/s (ether transfer)",
                          c / b))
            if "in-process" in name:
                lines.append(("  in-process memory growth", f"{mb:,.1f} MB / 1,000 blocks", "", None))
        base = bench_month(args.slots, args.agents, folder / "month-base", None, ledger=False)
        runs = [("embedded, same process (default)", None, False), ("embedded, worker process", None, True)]
        runs += [("anvil", anvil[1], False)] if anvil else []
        for name, url, pipelined in runs:
            m = bench_month(args.slots, args.agents, folder / f"month-{len(lines)}", url, pipelined=pipelined)
            scale = MONTH_SLOTS / m["slots"]
            lines.append((f"exchange + ledger, {m['slots']} slots x {args.agents} agents ({m['orders']:,} actions), "
                          f"{name}", f"{m['total_s']:.1f} s",
                          f"{base['total_s']:.2f} s exchange alone; chain {m['chain_s'] / m['total_s']:.0%}"
                          + (" (waiting)" if pipelined else ""),
                          m["total_s"] / base["total_s"]))
            lines.append((f"  projected month ({MONTH_SLOTS} slots, {m['orders'] * scale:,.0f} orders), {name}",
                          f"{m['total_s'] * scale:.0f} s", f"chain {m['chain_s'] * scale:.0f} s", None))
        if anvil:
            os.killpg(anvil[0].pid, signal.SIGTERM)
            anvil[0].wait(timeout=10)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    width = max(len(x[0]) for x in lines)
    print(f"{'measure':<{width}}  {'ours':>22}  {'baseline (same run)':<40} ratio")
    for what, ours, base, ratio in lines:
        print(f"{what:<{width}}  {ours:>22}  {base:<40} {'' if ratio is None else f'{ratio:.2f}x'}")


if __name__ == "__main__":
    main()
