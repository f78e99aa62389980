"""The signing rules of docs/service.md, checked from the document itself.

The test vectors block of ``docs/service.md`` (after "### Test vectors") holds requests as a
third party sends them, the EIP-712 message each maps to, its digest and signature. Each
vector is checked twice: with eth-account's independent ``encode_typed_data`` (the message,
types and domain as the document writes them give the digest; the key gives the signature),
and with the service's own parsing (the request body gives the same digest), so the canonical
forms the document states are the ones the exchange applies. Run this file as a script to
print the block afresh after a format change.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from p2penergy.ledger.actions import Cancel, Modify
from p2penergy.ledger.keys import Key
from p2penergy.ledger.signing import (
    Domain,
    meter_digest,
    micros,
    read_digest,
    sign_digest,
    struct_hash,
    typed_data_types,
    typed_message,
)
from p2penergy.service.models import CancelIn, MeterIn, ModifyIn, SignedOrderIn

DOC = Path(__file__).resolve().parents[2] / "docs" / "service.md"
KEY = Key.derive(7, "alice")
DOMAIN = Domain(31337, "0x" + "00" * 20)  # what a service without a chain announces
PRIMARY = ("Order", "Cancel", "Modify", "MeterReading", "Read")


def doc_block() -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"### Test vectors\n.*?```json\n(.*?)\n```", text, re.S)
    assert found, "docs/service.md has no '### Test vectors' section with a json block"
    return json.loads(found.group(1))  # type: ignore[no-any-return]


def server_digest(vector: dict[str, Any], domain: Domain) -> bytes:
    """The digest the exchange computes from the request as sent (its own parsing, not the vector's message)."""
    req = vector["request"]
    address = KEY.address
    if req["path"] == "/api/orders":
        body = SignedOrderIn.model_validate(req["body"])
        return domain.digest(struct_hash(body.order.to_order(), body.nonce, address))
    if req["path"].endswith("/cancel"):
        c = CancelIn.model_validate(req["body"])
        oid = req["path"].split("/")[3]
        return domain.digest(struct_hash(Cancel(oid, c.participant, c.cancelled_at), c.nonce, address))
    if req["path"].endswith("/modify"):
        m = ModifyIn.model_validate(req["body"])
        oid = req["path"].split("/")[3]
        action = Modify(oid, m.participant, m.energy_wh, m.price_per_kwh, m.modified_at)
        return domain.digest(struct_hash(action, m.nonce, address))
    if req["path"] == "/api/meter":
        r = MeterIn.model_validate(req["body"])
        return meter_digest(domain, address, r.slot_start, r.values, r.nonce)
    return read_digest(domain, address, req["path"], req["query"], int(req["headers"]["X-Timestamp"]))


def test_every_documented_vector_signs_as_eth_account_and_the_exchange_compute_it():
    block = doc_block()
    domain = Domain(block["domain"]["chainId"], block["domain"]["verifyingContract"], block["domain"]["name"],
                    block["domain"]["version"])
    assert domain == DOMAIN and block["address"] == KEY.address
    assert {v["primaryType"] for v in block["vectors"]} == set(PRIMARY)
    for primary in PRIMARY:  # the types the document lists are the exchange's (also served by /api/market)
        assert block["types"][primary] == typed_data_types(primary), primary
    for vector in block["vectors"]:
        typed = {"types": block["types"][vector["primaryType"]], "primaryType": vector["primaryType"],
                 "domain": block["domain"], "message": vector["message"]}
        encoded = encode_typed_data(full_message=typed)
        signed = Account.sign_message(encoded, block["private_key"])
        assert "0x" + signed.message_hash.hex().removeprefix("0x") == vector["digest"], vector["name"]
        assert "0x" + signed.signature.hex().removeprefix("0x") == vector["signature"], vector["name"]
        assert "0x" + server_digest(vector, domain).hex() == vector["digest"], vector["name"]
        sent = vector["request"].get("body", {}).get("signature") or vector["request"]["headers"]["X-Signature"]
        assert sent == vector["signature"], vector["name"]


def make_block() -> dict[str, Any]:
    """The document's block, from the exchange's own code (what to paste after a format change)."""
    order_body = {"order": {
        "order_id": "sell-0001", "participant": "alice", "side": "sell", "slot_start": "2020-08-03T11:00:00+09:00",
        "energy_wh": 1500, "price_per_kwh": "24.5", "submitted_at": "2020-08-03T09:00:00.25+09:00",
        "attributes": {"source": "solar", "producer": "alice"}}, "nonce": 1}
    buy_body = {"order": {
        "order_id": "buy-0001", "participant": "alice", "side": "buy", "slot_start": "2020-08-03T02:00:00Z",
        "energy_wh": 800, "price_per_kwh": "26", "submitted_at": "2020-08-03T00:00:01Z",
        "requirements": [{"match": {"source": ["wind", "solar", "solar"], "site": "higashi-fuji"},
                          "premium_per_kwh": "1.50"}, {"match": {}}]}, "nonce": 2}
    cancel_body = {"participant": "alice", "cancelled_at": "2020-08-03T09:05:00+09:00", "nonce": 3}
    modify_body = {"participant": "alice", "energy_wh": 600, "price_per_kwh": "25.75",
                   "modified_at": "2020-08-03T09:06:00+09:00", "nonce": 4}
    meter_body = {"participant": "alice", "slot_start": "2020-08-03T09:00:00+09:00",
                  "values": {"load_wh": 420, "pv_wh": 1310, "grid_export_wh": 890}, "nonce": 5}
    for body in (order_body, buy_body, cancel_body, modify_body, meter_body):
        body["signature"] = "0x" + "00" * 65  # replaced by the real one below
    read_ts = micros(datetime.fromisoformat("2020-08-03T09:10:00+09:00"))
    vectors: list[dict[str, Any]] = []

    def add(name: str, primary: str, message: dict[str, Any], request: dict[str, Any]) -> None:
        vector = {"name": name, "primaryType": primary, "message": message, "request": request}
        digest = server_digest(vector, DOMAIN)
        vector["digest"] = "0x" + digest.hex()
        vector["signature"] = "0x" + sign_digest(KEY.private_key, digest).hex()
        if "body" in request:
            request["body"]["signature"] = vector["signature"]
        else:
            request["headers"]["X-Signature"] = vector["signature"]
        vectors.append(vector)

    for name, body in (("sell order", order_body), ("buy order with requirements", buy_body)):
        order = SignedOrderIn.model_validate(body).order.to_order()
        add(name, *typed_message(order, body["nonce"], KEY.address),
            request={"method": "POST", "path": "/api/orders", "body": body})
    c = CancelIn.model_validate(cancel_body)
    add("cancel", *typed_message(Cancel("sell-0001", "alice", c.cancelled_at), 3, KEY.address),
        request={"method": "POST", "path": "/api/orders/sell-0001/cancel", "body": cancel_body})
    m = ModifyIn.model_validate(modify_body)
    add("modify", *typed_message(Modify("buy-0001", "alice", 600, m.price_per_kwh, m.modified_at), 4, KEY.address),
        request={"method": "POST", "path": "/api/orders/buy-0001/modify", "body": modify_body})
    slot = datetime.fromisoformat(meter_body["slot_start"])  # type: ignore[arg-type]
    add("meter reading", "MeterReading",
        {"participant": KEY.address, "slotStart": int(slot.timestamp()), "loadWh": 420, "pvWh": 1310,
         "gridImportWh": 0, "gridExportWh": 890, "socWh": 0, "nonce": 5},
        request={"method": "POST", "path": "/api/meter", "body": meter_body})
    add("signed read", "Read",
        {"participant": KEY.address, "path": "/api/me/bill", "query": "month=2020-08", "timestampUs": read_ts},
        request={"method": "GET", "path": "/api/me/bill", "query": "month=2020-08",
                 "headers": {"X-Participant": "alice", "X-Timestamp": str(read_ts)}})
    return {"private_key": "0x" + KEY.private_key.hex(), "address": KEY.address,
            "domain": DOMAIN.as_typed_data_domain(), "types": {p: typed_data_types(p) for p in PRIMARY},
            "vectors": vectors}



ATTRIBUTE_VALUES = {"source": ["solar", "wind", "battery", "phv"], "producer": ["h-1", "h-2", "Ö-3"],
                    "site": ["s1", "s2"], "device": ["pv", "bat"]}


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_any_json_form_of_a_buy_signs_as_the_documented_canonical_form(data):
    """Requirements written in any JSON form (keys in any order, single strings or lists, repeated
    values, premium with trailing zeros or omitted) sign as the docs' canonical form says."""
    requirements, typed = [], []
    for _ in range(data.draw(st.integers(0, 3))):
        keys = data.draw(st.lists(st.sampled_from(sorted(ATTRIBUTE_VALUES)), unique=True, max_size=3))
        match: dict[str, Any] = {}
        for k in keys:
            values = data.draw(st.lists(st.sampled_from(ATTRIBUTE_VALUES[k]), min_size=1, max_size=4))
            match[k] = values[0] if len(values) == 1 and data.draw(st.booleans()) else values
        cents = data.draw(st.integers(0, 999))
        requirement: dict[str, Any] = {"match": match}
        if cents or data.draw(st.booleans()):
            requirement["premium_per_kwh"] = data.draw(st.sampled_from([f"{cents / 100:.2f}", f"{cents / 100:.4f}"]))
        requirements.append(requirement)
        # the canonical form, from the document's table alone
        typed.append({"match": [{"key": k, "values": sorted(set([v] if isinstance(v, str) else v))}
                                for k, v in sorted(match.items())], "premiumMicros": cents * 10_000})
    body = {"order": {"order_id": "b", "participant": "alice", "side": "buy", "slot_start": "2020-08-03T11:00:00+09:00",
                      "energy_wh": 100, "price_per_kwh": "20", "submitted_at": "2020-08-03T09:00:00+09:00",
                      "requirements": requirements}, "nonce": 1, "signature": "0x" + "00" * 65}
    message = {"orderId": "b", "participant": KEY.address, "side": 0, "slotStart": 1596420000, "energyWh": 100,
               "priceMicros": 20_000_000, "submittedAtUs": 1596412800 * 10**6, "attributes": [],
               "requirements": typed, "nonce": 1}
    encoded = encode_typed_data(full_message={"types": typed_data_types("Order"), "primaryType": "Order",
                                              "domain": DOMAIN.as_typed_data_domain(), "message": message})
    signed = Account.sign_message(encoded, KEY.private_key)
    vector = {"request": {"path": "/api/orders", "body": body}}
    assert server_digest(vector, DOMAIN) == bytes(signed.message_hash)


if __name__ == "__main__":
    print(json.dumps(make_block(), indent=1))
