"""Load on the live exchange service: 8, 16 and 32 concurrent agents submitting signed orders over loopback.

Run: ``python benchmarks/bench_service.py [--levels 8,16,32] [--orders 100] [--db URL] [--profile FILE]``.

The service runs as its own process (``p2penergy serve``, SQLite journal by default,
accelerated clock at speed 1); the load generator is another process. For each level of
concurrency N, one after another against the same service:

* baseline: N clients call the no-op ``GET /health`` ``--orders`` times each — the HTTP
  stack's own ceiling on this machine, measured in the same run;
* N new participants are registered and their orders signed (signing is the agent's cost,
  not the exchange's, so it happens before the clock starts); then the N clients each send
  ``--orders`` signed orders one after another over keep-alive connections (buys and sells
  at crossing prices, so about half the orders trade).

Reported per level: requests per second, p50 / p99 latency (request sent → answer
received; an order is answered 201 only once journaled and committed), the service
process's CPU time per request, and the ratio of signed orders/s to ``/health`` requests/s.
The table heads with the date, the machine (cores, memory) and its load average before and
after: the machine may be shared, and requests/s move with its load (the ratio less, the
CPU per request hardly). ``--profile FILE`` runs the service under
cProfile and writes its statistics to FILE (the numbers are then slower).

Target (issue 12): at 32 agents, at least 1,000 signed orders/s with p99 below 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np

from p2penergy.ledger.keys import Key
from p2penergy.ledger.signing import Domain, sign_action
from p2penergy.market import MarketSettings, Order, Requirement, Tag
from p2penergy.service.models import OrderIn

TOKEN = "bench-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: str, port: int, profile: str | None = None) -> subprocess.Popen:
    # limits out of the way: the load is the point (rate limits still run, charging every order);
    # orders are signed before their level starts, so their signed time may trail the clock
    env = dict(os.environ, P2PENERGY_RATE_PER_S="1000000", P2PENERGY_BURST="1000000",
               P2PENERGY_MAX_SKEW_S="3600")
    python = [sys.executable, *(["-m", "cProfile", "-o", profile] if profile else [])]
    proc = subprocess.Popen([*python, "-m", "p2penergy", "serve", "--db", db, "--port", str(port),
                             "--clock", "accelerated", "--speed", "1", "--clock-start", "2020-08-03T09:00:00+09:00",
                             "--admin-token", TOKEN], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("service did not start")


def signed_orders(url: str, agents: int, per_agent: int, prefix: str) -> list[list[bytes]]:
    """``per_agent`` signed order requests for each of ``agents`` new participants ``{prefix}-NNN``,
    timed at the exchange's clock now (it refuses times far from its own)."""
    info = httpx.get(f"{url}/api/market").json()
    settings = MarketSettings.from_mapping(info["market"])
    d = info["domain"]
    domain = Domain(int(d["chainId"]), d["verifyingContract"], d["name"], d["version"])
    now = datetime.fromisoformat(info["now"])
    first = settings.slot_start_of(now) + settings.slot_length
    slots = [first + k * settings.slot_length for k in range(8)]
    out = []
    with httpx.Client(base_url=url) as c:
        for a in range(agents):
            pid = f"{prefix}-{a:03d}"
            key = Key.derive(1, pid)
            c.post("/api/participants", json={"participant": pid, "address": key.address},
                   headers={"Authorization": f"Bearer {TOKEN}"}).raise_for_status()
            bodies = []
            for j in range(per_agent):
                slot = slots[j % len(slots)]
                if (a + j) % 2:
                    o = Order(f"{pid}-{j}", pid, "sell", slot, 100 + j % 7 * 10, Decimal(15 + j % 5), now,
                              tag=Tag.of(source="solar", producer=pid))
                else:
                    o = Order(f"{pid}-{j}", pid, "buy", slot, 100 + j % 5 * 10, Decimal(16 + j % 4), now,
                              requirements=(Requirement.of({"source": "solar"}), Requirement.any()))
                s = sign_action(key, domain, o, j + 1)
                bodies.append(as_request({"order": OrderIn.of(o).model_dump(mode="json"), "nonce": s.nonce,
                                          "signature": "0x" + s.signature.hex()}))
            out.append(bodies)
    return out


async def _drive(port: int, work: list[list[bytes]] | None, agents: int, per_agent: int) -> tuple[float, np.ndarray]:
    """Each agent: one keep-alive HTTP/1.1 connection, requests one after another.

    A minimal client on asyncio streams, so the load generator costs far less than the
    service and the numbers are the service's (httpx costs more per request than the service).
    """
    latencies: list[float] = []
    health = b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n"

    async def agent(a: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for j in range(per_agent):
                request = health if work is None else work[a][j]
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                if status >= 300:
                    raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(agent(a) for a in range(agents)))
    return time.perf_counter() - start, np.array(latencies)


def as_request(body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST /api/orders HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)


def stats(elapsed: float, lat: np.ndarray) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms)."""
    return len(lat) / elapsed, float(np.percentile(lat, 50) * 1e3), float(np.percentile(lat, 99) * 1e3)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far (Linux ``/proc``; 0 elsewhere).

    The service's CPU per request does not depend on how busy the machine is, unlike its
    requests per second: it is the number to compare between runs on a shared machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, port: int, work: list[list[bytes]] | None, agents: int,
             per_agent: int) -> tuple[float, float, float, float]:
    """(requests/s, p50 ms, p99 ms, service CPU ms per request) of one drive."""
    before = cpu_s(pid)
    elapsed, lat = asyncio.run(_drive(port, work, agents, per_agent))
    return (*stats(elapsed, lat), (cpu_s(pid) - before) * 1e3 / len(lat))


def machine() -> str:
    try:
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:"))
        memory = f", {mem_kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = ""
    return f"{os.cpu_count()} cores{memory}"


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="8,16,32", help="concurrent agents, comma-separated")
    parser.add_argument("--orders", type=int, default=100, help="orders per agent (and /health calls per client)")
    parser.add_argument("--db", default=None, help="journal URL (default: a new SQLite file)")
    parser.add_argument("--profile", default=None, metavar="FILE", help="run the service under cProfile into FILE")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="bench-service-"))
    db = args.db or f"sqlite:///{folder / 'journal.sqlite'}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(db, port, args.profile)
    load_before = load()
    rows = []
    try:
        asyncio.run(_drive(port, None, max(levels), 10))  # warm up
        for n in levels:
            health = measured(proc.pid, port, None, n, args.orders)
            work = signed_orders(url, n, args.orders, f"agent{n}")
            orders = measured(proc.pid, port, work, n, args.orders)
            rows.append((n, health, orders))
        trades = len(httpx.get(f"{url}/api/trades", params={"limit": 1000}).json())
    finally:
        os.killpg(proc.pid, signal.SIGINT if args.profile else signal.SIGKILL)  # SIGINT: cProfile writes
        proc.wait()
    print(f"service benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}, "
          f"load average (1/5/15 min) {load_before} before, {load()} after; "
          f"{db.split(':')[0]} journal, {args.orders} requests per agent"
          + (" (under cProfile)" if args.profile else ""))
    print()
    print("| agents | GET /health req/s | p99 | service CPU | signed orders/s | p50 | p99 | service CPU "
          "| orders / health |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, (h_rate, _, h_p99, h_cpu), (o_rate, o_p50, o_p99, o_cpu) in rows:
        print(f"| {n} | {h_rate:,.0f} | {h_p99:.1f} ms | {h_cpu:.2f} ms | {o_rate:,.0f} | {o_p50:.1f} ms "
              f"| {o_p99:.1f} ms | {o_cpu:.2f} ms | {o_rate / h_rate:.2f} |")
    n, _, (o_rate, _, o_p99, _) = rows[-1]
    print(f"\ntarget at 32 agents: >= 1,000 signed orders/s and p99 < 100 ms; at {n} agents: "
          f"{o_rate:,.0f} orders/s, p99 {o_p99:.1f} ms -> {'met' if o_rate >= 1000 and o_p99 < 100 else 'NOT met'}")
    print(f"trades made (first page, at most 1000): {trades}")


if __name__ == "__main__":
    main()
