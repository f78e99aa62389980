"""Schemathesis against the service's own OpenAPI spec: no input makes it answer 5xx.

Also: many threads submitting at once never over-fill an order (the lock makes each
submission atomic; every trade's Wh is accounted for on both sides).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from tests.service.conftest import TOKEN, Server, key, now_of, order, register, run_server, service_settings

from p2penergy.service.client import HttpMarketAccess


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(service_settings(tmp_path_factory.mktemp("schema"))) as s:
        yield s


@pytest.fixture(scope="module")
def api_schema(module_server: Server):
    register(module_server.url, "house-01", "house-02")
    schema = schemathesis.openapi.from_url(f"{module_server.url}/openapi.json")
    return schema.exclude(path="/api/stream")  # an endless event stream, tested in test_api


def test_no_input_makes_the_service_fail(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    tried = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case) -> None:
            case.call_and_validate(checks=[not_a_server_error])
            tried.append(case.operation.label)

        call()
    assert len(set(tried)) == len(operations)


def test_concurrent_submissions_never_over_fill(tmp_path: Path, db_url: str):
    with run_server(service_settings(tmp_path, rate_per_s=10_000, burst=10_000, db_url=db_url)) as srv:
        buyers = [f"b{i}" for i in range(8)]
        register(srv.url, "seller", *buyers)
        now = now_of(srv.url)
        HttpMarketAccess(srv.url, key("seller")).submit(order("offer", "seller", "sell", 1000, "10.00", now))
        filled: list[int] = []
        lock = threading.Lock()

        def buy(pid: str) -> None:
            access = HttpMarketAccess(srv.url, key(pid))
            for j in range(5):
                trades = access.submit(order(f"{pid}-{j}", pid, "buy", 60, "12.00", now))
                with lock:
                    filled.extend(t.energy_wh for t in trades)

        threads = [threading.Thread(target=buy, args=(p,)) for p in buyers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # 8 x 5 x 60 Wh = 2400 Wh of bids against a 1000 Wh offer: exactly 1000 Wh trade
        assert sum(filled) == 1000
        public = httpx.get(f"{srv.url}/api/trades", params={"limit": 1000}).json()
        assert sum(t["energy_wh"] for t in public) == 1000
        bills = {b["participant"]: b for b in httpx.get(f"{srv.url}/api/operator/bills",
                                                         headers={"Authorization": f"Bearer {TOKEN}"}).json()}
        assert bills["seller"]["sold_wh"] == 1000
        assert Decimal(bills["seller"]["received"]) == Decimal(10)  # 1 kWh at 10.00
        assert sum(bills[p]["bought_wh"] for p in buyers) == 1000
        depth = httpx.get(f"{srv.url}/api/depth", params={"slot_start": order("x", "s", "sell", 1, "1", now)
                                                         .slot_start.isoformat()}).json()
        assert depth["sell"] == [] and sum(level["energy_wh"] for level in depth["buy"]) == 2400 - 1000
