"""A real uvicorn server on a free loopback port, and signing participants."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from p2penergy.ledger.journal import GENESIS_PREV, Journal, JournalRow
from p2penergy.ledger.keys import Key
from p2penergy.market import MarketSettings, Order, Requirement, Tag
from p2penergy.service.app import create_app
from p2penergy.service.launch import ServiceThread
from p2penergy.service.settings import ServiceSettings

TOKEN = "test-admin-token"
TOKYO = ZoneInfo("Asia/Tokyo")
# the accelerated clock starts here, at speed 1: slot times are known, gates are real
START = datetime(2020, 8, 3, 9, 0, tzinfo=TOKYO)
SLOT = START + timedelta(hours=2)  # gate open (opened 24 h before), closes 10 min before its end


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    app: object
    settings: ServiceSettings

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


@contextmanager
def run_server(settings: ServiceSettings, market: MarketSettings | None = None) -> Iterator[Server]:
    app = create_app(settings, market or MarketSettings.demonstration())
    with ServiceThread(app, port=settings.port) as service:
        yield Server(service.url, app, settings)


def service_settings(tmp_path: Path, **kw: object) -> ServiceSettings:
    values: dict[str, object] = dict(db_url=f"sqlite:///{tmp_path / 'journal.sqlite'}", port=free_port(),
                                     clock="accelerated", speed=1.0, clock_start=START, admin_token=TOKEN)
    values.update(kw)
    return ServiceSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[Server]:
    """A service on a fresh journal: each test that takes it runs on SQLite and on PostgreSQL."""
    with run_server(service_settings(tmp_path, db_url=db_url)) as s:
        yield s


def key(pid: str) -> Key:
    return Key.derive(7, pid)


def register(url: str, *pids: str) -> None:
    with httpx.Client(base_url=url) as c:
        for pid in pids:
            r = c.post("/api/participants", json={"participant": pid, "address": key(pid).address},
                       headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 201, r.text


def now_of(url: str) -> datetime:
    return datetime.fromisoformat(httpx.get(f"{url}/api/market").json()["now"])


def order(oid: str, pid: str, side: str, energy_wh: int, price: str, now: datetime, slot: datetime = SLOT,
          source: str = "solar") -> Order:
    if side == "sell":
        return Order(oid, pid, side, slot, energy_wh, Decimal(price), now, tag=Tag.of(source=source, producer=pid))
    return Order(oid, pid, side, slot, energy_wh, Decimal(price), now,
                 requirements=(Requirement.of({"source": "solar"}), Requirement.any()))


def verified_rows(db: str) -> list[JournalRow]:
    """The journal's rows after checking its hash chain: contiguous seqs, each linked to and hashed over the
    previous one."""
    journal = Journal(db)
    try:
        rows = list(journal.rows())
    finally:
        journal.close()
    prev = GENESIS_PREV.hex()
    for n, row in enumerate(rows, start=1):
        assert row.seq == n, f"journal row {n} missing (next is {row.seq})"
        assert row.prev_hash == prev, f"journal row {row.seq} does not link to the row before"
        assert row.expected_hash() == row.hash, f"journal row {row.seq} does not match its hash"
        prev = row.hash
    return rows
