"""Load on the live exchange service: N concurrent agents submitting signed orders over loopback.

Run: ``python benchmarks/bench_service.py [--agents 32] [--orders 100] [--db URL]``.

The service runs as its own process (``p2penergy serve``, SQLite journal by default,
accelerated clock at speed 1); the load generator is another process. Orders are signed
before the clock starts (signing is the agent's cost, not the exchange's); then ``--agents``
concurrent clients each send ``--orders`` orders one after another over keep-alive
connections (buys and sells at crossing prices, so about half the orders trade). Reported:
acknowledged orders per second, and p50 / p99 latency (request sent → 201 received, each
order journaled and committed before its acknowledgement).

Same-run baseline: the same clients call the no-op ``GET /health`` the same number of times
— the HTTP stack's own ceiling on this machine.
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
from datetime import datetime
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


def start_server(db: str, port: int) -> subprocess.Popen:
    env = dict(os.environ, P2PENERGY_RATE_PER_S="1000000", P2PENERGY_BURST="1000000")
    proc = subprocess.Popen([sys.executable, "-m", "p2penergy", "serve", "--db", db, "--port", str(port),
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


def signed_orders(url: str, agents: int, per_agent: int) -> list[list[bytes]]:
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
            pid = f"agent-{a:03d}"
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


def report(name: str, elapsed: float, lat: np.ndarray) -> None:
    print(f"{name:<28} {len(lat):>7} req  {len(lat) / elapsed:>8.0f} req/s   p50 {np.percentile(lat, 50) * 1e3:6.2f} ms"
          f"   p99 {np.percentile(lat, 99) * 1e3:6.2f} ms   max {lat.max() * 1e3:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=32)
    parser.add_argument("--orders", type=int, default=100, help="orders per agent")
    parser.add_argument("--db", default=None, help="journal URL (default: a new SQLite file)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-service-"))
    db = args.db or f"sqlite:///{folder / 'journal.sqlite'}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(db, port)
    try:
        work = signed_orders(url, args.agents, args.orders)
        print(f"service: {db.split(':')[0]} journal, {args.agents} concurrent agents x {args.orders} orders, "
              f"{os.cpu_count()} cores")
        asyncio.run(_drive(port, None, args.agents, 10))  # warm up
        report("baseline GET /health", *asyncio.run(_drive(port, None, args.agents, args.orders)))
        elapsed, lat = asyncio.run(_drive(port, work, args.agents, args.orders))
        report("POST /api/orders (signed)", elapsed, lat)
        trades = len(httpx.get(f"{url}/api/trades", params={"limit": 1000}).json())
        print(f"trades made (first page, at most 1000): {trades}")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


if __name__ == "__main__":
    main()
