from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from p2penergy.ledger.actions import Cancel, Modify
from p2penergy.ledger.keys import Key
from p2penergy.ledger.signing import (
    Domain,
    ReplayError,
    SignatureError,
    Verifier,
    batch_hash,
    meter_digest,
    read_digest,
    sign_action,
    sign_batch,
    sign_digest,
    struct_hash,
    typed_message,
)
from p2penergy.market import Order, Requirement, Tag

TZ = ZoneInfo("Asia/Tokyo")
SLOT = datetime(2020, 8, 3, 10, 0, tzinfo=TZ)
DOMAIN = Domain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
ALICE = Key.derive(1, "alice")
BOB = Key.derive(1, "bob")


def sell(order_id="o1", energy=500, price="12.34"):
    return Order(order_id, "alice", "sell", SLOT, energy, Decimal(price), SLOT - timedelta(hours=2),
                 tag=Tag.of(source="solar", producer="alice"))


def verifier():
    return Verifier(DOMAIN, {"alice": ALICE.address, "bob": BOB.address})


def typed(primary, fields, message, **structs):
    """An eth_signTypedData_v4 request written out by hand (not from our TYPES): an independent check."""
    types = {
        "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                         {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
        primary: [{"name": n, "type": t} for n, t in fields],
    }
    types.update({name: [{"name": n, "type": t} for n, t in f] for name, f in structs.items()})
    return {"types": types, "primaryType": primary, "domain": DOMAIN.as_typed_data_domain(), "message": message}


ORDER_FIELDS = [("orderId", "string"), ("participant", "address"), ("side", "uint8"), ("slotStart", "uint64"),
                ("energyWh", "uint64"), ("priceMicros", "uint256"), ("submittedAtUs", "uint64"),
                ("attributes", "Attribute[]"), ("requirements", "Requirement[]"), ("nonce", "uint64")]
NESTED = {"Attribute": [("key", "string"), ("value", "string")],
          "Requirement": [("match", "Match[]"), ("premiumMicros", "uint256")],
          "Match": [("key", "string"), ("values", "string[]")]}


def test_order_digest_matches_eth_account_typed_data():
    # eth-account's encode_typed_data is an independent EIP-712 implementation; the wallet sees every field.
    order = sell()
    message = {"orderId": "o1", "participant": ALICE.address, "side": 1, "slotStart": int(SLOT.timestamp()),
               "energyWh": 500, "priceMicros": 12_340_000, "submittedAtUs": int(SLOT.timestamp() - 7200) * 10**6,
               "attributes": [{"key": "producer", "value": "alice"}, {"key": "source", "value": "solar"}],
               "requirements": [], "nonce": 7}
    signed = sign_action(ALICE, DOMAIN, order, 7)
    encoded = encode_typed_data(full_message=typed("Order", ORDER_FIELDS, message, **NESTED))
    assert Account.recover_message(encoded, signature=signed.signature) == ALICE.address
    assert Account.sign_message(encoded, ALICE.private_key).signature == signed.signature
    assert typed_message(order, 7, ALICE.address) == ("Order", message)


def test_buy_requirements_are_typed_in_preference_order():
    buy = Order("b1", "alice", "buy", SLOT, 300, Decimal("20.5"), SLOT - timedelta(hours=1),
                requirements=(Requirement.of({"source": ["wind", "solar"], "site": "s1"}, "1.25"), Requirement.any()))
    message = {"orderId": "b1", "participant": ALICE.address, "side": 0, "slotStart": int(SLOT.timestamp()),
               "energyWh": 300, "priceMicros": 20_500_000, "submittedAtUs": int(SLOT.timestamp() - 3600) * 10**6,
               "attributes": [],
               "requirements": [{"match": [{"key": "site", "values": ["s1"]},
                                           {"key": "source", "values": ["solar", "wind"]}],
                                 "premiumMicros": 1_250_000},
                                {"match": [], "premiumMicros": 0}],
               "nonce": 9}
    encoded = encode_typed_data(full_message=typed("Order", ORDER_FIELDS, message, **NESTED))
    assert Account.recover_message(encoded, signature=sign_action(ALICE, DOMAIN, buy, 9).signature) == ALICE.address
    swapped = replace(buy, requirements=buy.requirements[::-1])  # preference is signed
    assert struct_hash(swapped, 9, ALICE.address) != struct_hash(buy, 9, ALICE.address)


def test_meter_reading_and_read_match_eth_account():
    values = {"load_wh": 400, "pv_wh": 900, "grid_export_wh": 500}
    enc = encode_typed_data(full_message=typed(
        "MeterReading", [("participant", "address"), ("slotStart", "uint64"), ("loadWh", "uint64"),
                         ("pvWh", "uint64"), ("gridImportWh", "uint64"), ("gridExportWh", "uint64"),
                         ("socWh", "uint64"), ("nonce", "uint64")],
        {"participant": ALICE.address, "slotStart": int(SLOT.timestamp()), "loadWh": 400, "pvWh": 900,
         "gridImportWh": 0, "gridExportWh": 500, "socWh": 0, "nonce": 11}))
    sig = sign_digest(ALICE.private_key, meter_digest(DOMAIN, ALICE.address, SLOT, values, 11))
    assert Account.recover_message(enc, signature=sig) == ALICE.address
    ts = int(SLOT.timestamp()) * 10**6 + 123
    enc = encode_typed_data(full_message=typed(
        "Read", [("participant", "address"), ("path", "string"), ("query", "string"), ("timestampUs", "uint64")],
        {"participant": ALICE.address, "path": "/api/me/bill", "query": "month=2020-08", "timestampUs": ts}))
    sig = sign_digest(ALICE.private_key, read_digest(DOMAIN, ALICE.address, "/api/me/bill", "month=2020-08", ts))
    assert Account.recover_message(enc, signature=sig) == ALICE.address
    other_query = read_digest(DOMAIN, ALICE.address, "/api/me/bill", "month=2020-09", ts)
    assert Account.recover_message(enc, signature=sign_digest(ALICE.private_key, other_query)) != ALICE.address


def test_an_address_signs_for_one_participant_only():
    v = verifier()
    with pytest.raises(SignatureError, match="already registered for 'alice'"):
        v.register("mallory", ALICE.address)
    v.register("alice", ALICE.address)  # the same binding again is fine


def test_cancel_modify_and_batch_match_eth_account():
    cancel = Cancel("o1", "alice", SLOT - timedelta(minutes=30))
    modify = Modify("o1", "alice", 200, Decimal("9.5"), SLOT - timedelta(minutes=20))
    at_us = int((SLOT - timedelta(minutes=30)).timestamp()) * 10**6
    enc = encode_typed_data(full_message=typed(
        "Cancel", [("orderId", "string"), ("participant", "address"), ("cancelledAtUs", "uint64"),
                   ("nonce", "uint64")], {"orderId": "o1", "participant": ALICE.address, "cancelledAtUs": at_us,
                                          "nonce": 3}))
    assert Account.recover_message(enc, signature=sign_action(ALICE, DOMAIN, cancel, 3).signature) == ALICE.address
    enc = encode_typed_data(full_message=typed(
        "Modify", [("orderId", "string"), ("participant", "address"), ("energyWh", "uint64"),
                   ("priceMicros", "uint256"), ("modifiedAtUs", "uint64"), ("nonce", "uint64")],
        {"orderId": "o1", "participant": ALICE.address, "energyWh": 200, "priceMicros": 9_500_000,
         "modifiedAtUs": at_us + 600 * 10**6, "nonce": 4}))
    assert Account.recover_message(enc, signature=sign_action(ALICE, DOMAIN, modify, 4).signature) == ALICE.address
    batch = sign_batch(ALICE, DOMAIN, [(sell(), 0), (cancel, 1)])
    items = [struct_hash(sell(), 0, ALICE.address), struct_hash(cancel, 1, ALICE.address)]
    enc = encode_typed_data(full_message=typed(
        "Batch", [("participant", "address"), ("items", "bytes32[]")], {"participant": ALICE.address,
                                                                        "items": items}))
    assert Account.recover_message(enc, signature=batch.signature) == ALICE.address
    assert batch_hash(ALICE.address, items)  # same inputs the digest above used


def test_verify_accepts_then_rejects_replay():
    v = verifier()
    signed = sign_action(ALICE, DOMAIN, sell(), 0)
    v.verify(signed)
    with pytest.raises(ReplayError, match="nonce 0 of 'alice' is not above the last used 0"):
        v.verify(signed)


def test_altered_order_is_rejected():
    signed = sign_action(ALICE, DOMAIN, sell(), 0)
    altered = replace(signed, action=sell(energy=5000))
    with pytest.raises(SignatureError, match="altered or forged"):
        verifier().verify(altered)


def test_order_signed_by_someone_else_is_rejected():
    forged = sign_action(BOB, DOMAIN, sell(), 0)  # bob signs an order in alice's name
    with pytest.raises(SignatureError, match="registered key"):
        verifier().verify(forged)


def test_batch_replay_and_alteration():
    v = verifier()
    batch = sign_batch(ALICE, DOMAIN, [(sell("o1"), 5), (sell("o2"), 6)])
    assert len(v.verify_batch(batch)) == 2
    with pytest.raises(ReplayError):
        v.verify_batch(batch)
    other = sign_batch(ALICE, DOMAIN, [(sell("o3"), 7)])
    tampered = replace(other, entries=((sell("o3", price="1.00"), 7),))
    with pytest.raises(SignatureError, match="altered or forged"):
        v.verify_batch(tampered)
    v.verify_batch(other)  # a rejected batch does not use up its nonces


def test_unregistered_participant_and_bad_signature_bytes():
    v = Verifier(DOMAIN)
    with pytest.raises(SignatureError, match="not registered"):
        v.verify(sign_action(ALICE, DOMAIN, sell(), 0))
    v.register("alice", ALICE.address)
    with pytest.raises(SignatureError, match="65 bytes"):
        v.verify(replace(sign_action(ALICE, DOMAIN, sell(), 0), signature=b"\x01" * 10))


@settings(max_examples=40, deadline=None)
@given(energy=st.integers(1, 10**6), cents=st.integers(0, 5000), nonce=st.integers(0, 2**32),
       delta=st.sampled_from(["energy", "price", "slot", "side", "tag", "nonce", "id"]))
def test_any_change_breaks_the_signature(energy, cents, nonce, delta):
    order = sell(energy=energy, price=str(Decimal(cents) / 100))
    signed = sign_action(ALICE, DOMAIN, order, nonce)
    changed = {
        "energy": replace(order, energy_wh=energy + 1),
        "price": replace(order, price_per_kwh=order.price_per_kwh + Decimal("0.01")),
        "slot": replace(order, slot_start=SLOT + timedelta(minutes=30)),
        "side": Order("o1", "alice", "buy", SLOT, energy, order.price_per_kwh, order.submitted_at,
                      requirements=(Requirement.any(),)),
        "tag": replace(order, tag=Tag.of(source="battery", producer="alice")),
        "nonce": order, "id": replace(order, order_id="o2"),
    }[delta]
    new_nonce = nonce + 1 if delta == "nonce" else nonce
    v = verifier()
    with pytest.raises(SignatureError):
        v.verify(replace(signed, action=changed, nonce=new_nonce))
    verifier().verify(signed)
