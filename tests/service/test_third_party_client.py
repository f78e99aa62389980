"""A third party's client, written from docs/service.md ("API for third parties") and /openapi.json alone.

Nothing of the package is imported for the client: only httpx, eth-account and the standard
library (the server is started with the test suite's helper; the client talks to it over a
real socket). It signs every request as EIP-712 typed data with eth-account's
``encode_typed_data`` from the types and domain ``/api/market`` serves, then trades, cancels,
uploads a meter reading and reads its own bill.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from tests.service.conftest import TOKEN, Server, run_server, service_settings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ThirdPartyClient:
    """One participant's client: its own key, the exchange's domain, types and clock."""

    def __init__(self, url: str, participant: str, private_key: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)
        self.participant = participant
        self.account = Account.from_key(private_key)
        info = self.http.get("/api/market").json()
        self.domain, self.types, self.clock = info["domain"], info["eip712_types"], info["clock"]
        self.offset = datetime.fromisoformat(info["now"]) - self._clock_now()
        self.nonce = 0

    # the clock rule: market time = start + speed x (wall time - wall_origin), or wall time
    def _clock_now(self) -> datetime:
        if self.clock["kind"] != "accelerated":
            return datetime.now(UTC)
        wall = time.time() - float(self.clock["wall_origin"])
        return datetime.fromisoformat(self.clock["start"]) + timedelta(seconds=wall * float(self.clock["speed"]))

    def now(self) -> datetime:
        return self._clock_now() + self.offset

    # the nonce rule: one increasing sequence for orders, cancels, modifies and meter readings
    def next_nonce(self) -> int:
        self.nonce = max(self.nonce + 1, time.time_ns() // 1000)
        return self.nonce

    def sign(self, primary: str, message: dict[str, Any]) -> str:
        typed = {"types": self.types[primary], "primaryType": primary, "domain": self.domain, "message": message}
        signed = Account.sign_message(encode_typed_data(full_message=typed), self.account.key)
        return "0x" + signed.signature.hex().removeprefix("0x")

    # canonical forms
    @staticmethod
    def micros(when: datetime) -> int:
        return (when - EPOCH) // timedelta(microseconds=1)

    @staticmethod
    def seconds(when: datetime) -> int:
        return (when - EPOCH) // timedelta(seconds=1)

    @staticmethod
    def price_micros(price: str) -> int:
        scaled = Decimal(price) * 1_000_000
        assert scaled == scaled.to_integral_value()
        return int(scaled)

    def order(self, order_id: str, side: str, slot_start: datetime, energy_wh: int, price: str,
              attributes: dict[str, str] | None = None,
              requirements: list[dict[str, Any]] | None = None) -> httpx.Response:
        submitted = self.now()
        nonce = self.next_nonce()
        body: dict[str, Any] = {"order_id": order_id, "participant": self.participant, "side": side,
                                "slot_start": slot_start.isoformat(), "energy_wh": energy_wh, "price_per_kwh": price,
                                "submitted_at": submitted.isoformat()}
        typed_requirements = []
        for r in requirements or []:
            match = []
            for key in sorted(r["match"]):
                values = r["match"][key]
                match.append({"key": key, "values": sorted(set([values] if isinstance(values, str) else values))})
            typed_requirements.append({"match": match,
                                       "premiumMicros": self.price_micros(r.get("premium_per_kwh", "0"))})
        message = {"orderId": order_id, "participant": self.account.address, "side": 0 if side == "buy" else 1,
                   "slotStart": self.seconds(slot_start), "energyWh": energy_wh,
                   "priceMicros": self.price_micros(price), "submittedAtUs": self.micros(submitted),
                   "attributes": [{"key": k, "value": v} for k, v in sorted((attributes or {}).items())],
                   "requirements": typed_requirements, "nonce": nonce}
        if attributes:
            body["attributes"] = attributes
        if requirements:
            body["requirements"] = requirements
        return self.http.post("/api/orders", json={"order": body, "nonce": nonce,
                                                   "signature": self.sign("Order", message)})

    def cancel(self, order_id: str) -> httpx.Response:
        at, nonce = self.now(), self.next_nonce()
        sig = self.sign("Cancel", {"orderId": order_id, "participant": self.account.address,
                                   "cancelledAtUs": self.micros(at), "nonce": nonce})
        return self.http.post(f"/api/orders/{order_id}/cancel", json={
            "participant": self.participant, "cancelled_at": at.isoformat(), "nonce": nonce, "signature": sig})

    def meter(self, slot_start: datetime, values: dict[str, int]) -> httpx.Response:
        nonce = self.next_nonce()
        message = {"participant": self.account.address, "slotStart": self.seconds(slot_start),
                   "loadWh": values.get("load_wh", 0), "pvWh": values.get("pv_wh", 0),
                   "gridImportWh": values.get("grid_import_wh", 0), "gridExportWh": values.get("grid_export_wh", 0),
                   "socWh": values.get("soc_wh", 0), "nonce": nonce}
        return self.http.post("/api/meter", json={"participant": self.participant, "slot_start": slot_start.isoformat(),
                                                  "values": values, "nonce": nonce,
                                                  "signature": self.sign("MeterReading", message)})

    def read(self, path: str, query: str = "") -> httpx.Response:
        ts = self.micros(self.now())
        sig = self.sign("Read", {"participant": self.account.address, "path": path, "query": query,
                                 "timestampUs": ts})
        headers = {"X-Participant": self.participant, "X-Timestamp": str(ts), "X-Signature": sig}
        return self.http.get(f"{path}?{query}" if query else path, headers=headers)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(service_settings(tmp_path_factory.mktemp("third-party"))) as s:
        yield s


SELLER_KEY = "0x" + "5e" * 32
BUYER_KEY = "0x" + "b0" * 32


def test_the_openapi_spec_declares_what_a_client_needs(server: Server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["signedRead"] == {**schemes["signedRead"], "type": "apiKey", "in": "header", "name": "X-Signature"}
    assert schemes["adminToken"]["scheme"].lower() == "bearer"
    assert spec["paths"]["/api/me/bill"]["get"]["security"] == [{"signedRead": []}]
    assert spec["paths"]["/api/participants"]["post"]["security"] == [{"adminToken": []}]
    domain = spec["components"]["schemas"]["Eip712Domain"]
    assert set(domain["required"]) == {"name", "version", "chainId", "verifyingContract"}
    for path, primary in (("/api/orders", "Order"), ("/api/meter", "MeterReading")):
        assert spec["paths"][path]["post"]["x-eip712-primary-type"] == primary
    # every error is a Problem, as the service answers them (FastAPI's own validation body is not used)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert "429" in spec["paths"]["/api/trades"]["get"]["responses"]  # public reads are limited per client address
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Problem", (method, path, status)


def test_a_client_of_httpx_and_eth_account_trades_cancels_meters_and_reads_its_bill(server: Server):
    admin = {"Authorization": f"Bearer {TOKEN}"}
    for pid, private in (("solar-co", SELLER_KEY), ("flat-9", BUYER_KEY)):
        r = httpx.post(f"{server.url}/api/participants", headers=admin,
                       json={"participant": pid, "address": Account.from_key(private).address})
        assert r.status_code == 201, r.text
    seller = ThirdPartyClient(server.url, "solar-co", SELLER_KEY)
    buyer = ThirdPartyClient(server.url, "flat-9", BUYER_KEY)
    slots = httpx.get(f"{server.url}/api/slots").json()
    assert len(slots) >= 48  # the calendar: every slot whose gate is open, not only those holding orders
    now = seller.now()
    slot = next(datetime.fromisoformat(s["slot_start"]) for s in slots
                if datetime.fromisoformat(s["gate_closes_at"]) > now + timedelta(hours=1))

    r = seller.order("s-1", "sell", slot, 1000, "20.5", attributes={"source": "solar", "producer": "solar-co"})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "open"
    r = buyer.order("b-1", "buy", slot, 400, "21", requirements=[
        {"match": {"source": ["wind", "solar"], "producer": "solar-co"}, "premium_per_kwh": "0.50"}, {"match": {}}])
    assert r.status_code == 201, r.text
    traded = r.json()["trades"]
    assert [(t["energy_wh"], Decimal(t["price_per_kwh"])) for t in traded] == [(400, Decimal("20.5"))]

    # a signature over anything but the canonical form is refused with a Problem naming the field
    forged = seller.http.post("/api/orders", json={"order": {
        "order_id": "s-2", "participant": "solar-co", "side": "sell", "slot_start": slot.isoformat(),
        "energy_wh": 10, "price_per_kwh": "20", "submitted_at": seller.now().isoformat()},
        "nonce": seller.next_nonce(), "signature": "0x" + "11" * 65})
    assert forged.status_code == 401 and set(forged.json()) == {"field", "message"}

    r = seller.cancel("s-1")
    assert r.status_code == 200, r.text
    assert r.json()["cancelled_wh"] == 600

    current = datetime.fromisoformat(slots[0]["slot_start"])
    assert current <= buyer.now()  # a reading is of a slot that has started
    r = buyer.meter(current, {"load_wh": 700, "grid_import_wh": 300})
    assert r.status_code == 201, r.text

    month = current.astimezone(UTC).strftime("%Y-%m")
    r = buyer.read("/api/me/bill", f"month={month}")
    assert r.status_code == 200, r.text
    bill = r.json()
    assert (bill["participant"], bill["bought_wh"]) == ("flat-9", 400)
    assert Decimal(bill["paid"]) == Decimal("8.2")  # 0.4 kWh at 20.5
    assert bill["metered"]["grid_import_wh"] == 300
    # the query string is signed: the same signature cannot read another month
    ts = ThirdPartyClient.micros(buyer.now())
    sig = buyer.sign("Read", {"participant": buyer.account.address, "path": "/api/me/bill",
                              "query": f"month={month}", "timestampUs": ts})
    r = buyer.http.get("/api/me/bill?month=2019-01",
                       headers={"X-Participant": "flat-9", "X-Timestamp": str(ts), "X-Signature": sig})
    assert r.status_code == 401 and r.json()["field"] == "X-Signature"
    r = seller.read("/api/me/orders", "status=all")
    assert [(o["order"]["order_id"], o["status"]) for o in r.json()] == [("s-1", "cancelled")]
