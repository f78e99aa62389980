"""A client generated from ``/openapi.json`` works (issue 12, deliverable 5).

At test time, offline, the installed generator (``openapi-python-client``, the ``test`` extra)
generates a Python client from the running service's spec; the test imports it and, through
its functions and models only, reads every public endpoint, registers two participants (admin
token), sends signed orders that trade, cancels, uploads a meter reading and makes signed reads.
Signing is eth-account's ``encode_typed_data`` over the domain and types ``GET /api/market``
serves, with the canonical forms of docs/service.md (the generator knows nothing of EIP-712).
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from tests.service.conftest import TOKEN, Server, run_server, service_settings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PACKAGE = "p2penergy_generated_client"
SELLER_KEY = "0x" + "3c" * 32
BUYER_KEY = "0x" + "4d" * 32


def generator() -> list[str]:
    """The command of the installed generator: beside this Python first (the project's venv), else on PATH."""
    beside = Path(sys.executable).parent / "openapi-python-client"
    found = str(beside) if beside.exists() else shutil.which("openapi-python-client")
    assert found, "openapi-python-client is not installed: it is in the test extra (pip install -e '.[test]')"
    return [found]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, ModuleType]]:
    """The service, and the client package generated from its spec (imported as ``PACKAGE``)."""
    with run_server(service_settings(tmp_path_factory.mktemp("generated"))) as server:
        work = tmp_path_factory.mktemp("client")
        (work / "openapi.json").write_text(httpx.get(f"{server.url}/openapi.json").text, encoding="utf-8")
        (work / "config.yaml").write_text("post_hooks: []\n", encoding="utf-8")  # no formatter run: offline, fast
        done = subprocess.run([*generator(), "generate", "--path", str(work / "openapi.json"), "--meta", "none",
                               "--output-path", str(work / PACKAGE), "--config", str(work / "config.yaml")],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        # the generator warns (and leaves out) any part of the spec it cannot turn into code
        assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
        sys.path.insert(0, str(work))
        try:
            yield server, importlib.import_module(PACKAGE)
        finally:
            sys.path.remove(str(work))
            for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
                del sys.modules[name]


def api(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def models() -> Any:
    return importlib.import_module(f"{PACKAGE}.models")


class Signer:
    """One participant's key, the exchange's domain and types (from the generated ``market`` call)."""

    def __init__(self, participant: str, private_key: str, info: Any) -> None:
        self.participant = participant
        self.account = Account.from_key(private_key)
        self.domain = info.domain.to_dict()
        self.types = info.eip712_types.to_dict()  # {primary: {struct: [{name, type}, ...]}}
        self.nonce = 0

    def next_nonce(self) -> int:
        self.nonce = max(self.nonce + 1, time.time_ns() // 1000)
        return self.nonce

    def sign(self, primary: str, message: dict[str, Any]) -> str:
        typed = {"types": self.types[primary], "primaryType": primary, "domain": self.domain, "message": message}
        signed = Account.sign_message(encode_typed_data(full_message=typed), self.account.key)
        return "0x" + signed.signature.hex().removeprefix("0x")

    def read_headers(self, path: str, query: str, now: datetime) -> dict[str, str]:
        ts = micros(now)
        sig = self.sign("Read", {"participant": self.account.address, "path": path, "query": query,
                                 "timestampUs": ts})
        return {"X-Participant": self.participant, "X-Timestamp": str(ts), "X-Signature": sig}


def micros(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1)


def price_micros(price: str) -> int:
    return int(Decimal(price) * 1_000_000)


def signed_order(m: Any, signer: Signer, order_id: str, side: str, slot: datetime, energy_wh: int, price: str,
                 now: datetime) -> Any:
    """A ``SignedOrderIn`` of the generated models, signed as the EIP-712 ``Order`` (canonical forms)."""
    nonce = signer.next_nonce()
    attributes = {"source": "solar", "producer": signer.participant} if side == "sell" else {}
    message = {"orderId": order_id, "participant": signer.account.address, "side": 0 if side == "buy" else 1,
               "slotStart": micros(slot) // 1_000_000, "energyWh": energy_wh, "priceMicros": price_micros(price),
               "submittedAtUs": micros(now), "attributes": [{"key": k, "value": v} for k, v in sorted(attributes.items())],
               "requirements": [], "nonce": nonce}
    order = m.OrderIn(order_id=order_id, participant=signer.participant, side=m.OrderInSide(side), slot_start=slot,
                      energy_wh=energy_wh, price_per_kwh=price, submitted_at=now,
                      attributes=m.OrderInAttributes.from_dict(attributes))
    return m.SignedOrderIn(order=order, nonce=nonce, signature=signer.sign("Order", message))


def test_a_generated_client_reads_registers_trades_cancels_meters_and_reads_privately(generated):
    server, package = generated
    m = models()
    client = package.Client(base_url=server.url, raise_on_unexpected_status=True)
    admin = package.AuthenticatedClient(base_url=server.url, token=TOKEN)

    # public reads
    info = api("market.market").sync(client=client)
    assert isinstance(info, m.MarketInfo) and info.domain.name == "p2penergy"
    assert api("market.health").sync(client=client).additional_properties["status"] == "ok"
    slots = api("market.tradable_slots").sync(client=client)
    assert len(slots) >= 48 and all(isinstance(s, m.SlotOut) for s in slots)
    now = info.now
    slot = next(s.slot_start for s in slots if s.gate_closes_at > now + timedelta(hours=1))

    # registration (admin token, the adminToken bearer scheme)
    for pid, private in (("gen-seller", SELLER_KEY), ("gen-buyer", BUYER_KEY)):
        body = m.ParticipantIn(participant=pid, address=Account.from_key(private).address)
        assert api("participants.register").sync_detailed(client=admin, body=body).status_code == 201
    assert {"gen-seller", "gen-buyer"} <= set(api("participants.participants").sync(client=client))
    seller, buyer = Signer("gen-seller", SELLER_KEY, info), Signer("gen-buyer", BUYER_KEY, info)

    # signed actions: a sell rests, a buy trades with it, the sell's rest is cancelled
    submit = api("orders.submit_order")
    ack = submit.sync(client=client, body=signed_order(m, seller, "g-s1", "sell", slot, 900, "21.5", now))
    assert isinstance(ack, m.OrderAck) and ack.status == "open", ack
    ack = submit.sync(client=client, body=signed_order(m, buyer, "g-b1", "buy", slot, 300, "22", now))
    assert isinstance(ack, m.OrderAck), ack
    assert [(t.energy_wh, Decimal(t.price_per_kwh), t.order_id) for t in ack.trades] == [(300, Decimal("21.5"),
                                                                                          "g-b1")]
    refused = submit.sync_detailed(client=client, body=signed_order(m, buyer, "g-b1", "buy", slot, 5, "22", now))
    assert refused.status_code == 409 and isinstance(refused.parsed, m.Problem) and refused.parsed.field == "id"
    nonce = seller.next_nonce()
    cancel = m.CancelIn(participant="gen-seller", cancelled_at=now, nonce=nonce, signature=seller.sign(
        "Cancel", {"orderId": "g-s1", "participant": seller.account.address, "cancelledAtUs": micros(now),
                   "nonce": nonce}))
    done = api("orders.cancel_order").sync(client=client, order_id="g-s1", body=cancel)
    assert isinstance(done, m.CancelAck) and done.cancelled_wh == 600

    # a meter reading of the slot that has started
    current = slots[0].slot_start
    nonce = buyer.next_nonce()
    values = {"load_wh": 500, "grid_import_wh": 200}
    reading = m.MeterIn(participant="gen-buyer", slot_start=current, values=m.MeterInValues.from_dict(values),
                        nonce=nonce, signature=buyer.sign("MeterReading", {
                            "participant": buyer.account.address, "slotStart": micros(current) // 1_000_000,
                            "loadWh": 500, "pvWh": 0, "gridImportWh": 200, "gridExportWh": 0, "socWh": 0,
                            "nonce": nonce}))
    assert api("participants.upload_meter").sync_detailed(client=client, body=reading).status_code == 201

    # public market data after the trade
    assert [(t.energy_wh, t.order_id) for t in api("market.trades").sync(client=client)] == [(300, None)]
    depth = api("market.depth").sync(client=client, slot_start=slot)
    assert isinstance(depth, m.Depth) and depth.buy == [] and depth.sell == []
    assert api("market.prices").sync(client=client)[0].trades == 1
    assert isinstance(api("market.reference_price").sync(client=client), m.ReferencePrice)
    assert api("market.bills").sync(client=client).participants == 2
    assert isinstance(api("market.provenance").sync(client=client), list)

    # signed reads: X-Participant and X-Timestamp are the operation's parameters, X-Signature the
    # signedRead scheme's header; the signature covers the query string the client sends
    def reader(signer: Signer, path: str, query: str) -> tuple[Any, dict[str, str]]:
        headers = signer.read_headers(path, query, info.now)
        return client.with_headers({"X-Signature": headers["X-Signature"]}), headers

    c, h = reader(seller, "/api/me/orders", "status=all")
    mine = api("orders.my_orders").sync(client=c, status=m.MyOrdersStatus.ALL, x_participant=h["X-Participant"],
                                        x_timestamp=h["X-Timestamp"])
    assert [(o.order.order_id, o.status, o.remaining_wh) for o in mine] == [("g-s1", "cancelled", 0)]
    c, h = reader(buyer, "/api/me/trades", "")
    trades = api("orders.my_trades").sync(client=c, x_participant=h["X-Participant"], x_timestamp=h["X-Timestamp"])
    assert [(t.order_id, t.energy_wh) for t in trades] == [("g-b1", 300)]
    month = current.astimezone(UTC).strftime("%Y-%m")
    c, h = reader(buyer, "/api/me/bill", f"month={month}")
    bill = api("participants.my_bill").sync(client=c, month=month, x_participant=h["X-Participant"],
                                            x_timestamp=h["X-Timestamp"])
    assert isinstance(bill, m.Bill) and bill.metered.additional_properties["load_wh"] == 500
    assert Decimal(bill.paid) == Decimal("6.45")  # 300 Wh at 21.5 per kWh
