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
    requirements_hash,
    sign_action,
    sign_batch,
    struct_hash,
    tag_hash,
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


def typed(primary, fields, message):
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            primary: [{"name": n, "type": t} for n, t in fields],
        },
        "primaryType": primary, "domain": DOMAIN.as_typed_data_domain(), "message": message,
    }


def test_order_digest_matches_eth_account_typed_data():
    # eth-account's encode_typed_data is an independent EIP-712 implementation.
    order = sell()
    fields = [("orderId", "string"), ("participant", "address"), ("side", "uint8"), ("slotStart", "uint64"),
              ("energyWh", "uint64"), ("priceMicros", "uint256"), ("submittedAtUs", "uint64"),
              ("attributes", "bytes32"), ("requirements", "bytes32"), ("nonce", "uint64")]
    message = {"orderId": "o1", "participant": ALICE.address, "side": 1, "slotStart": int(SLOT.timestamp()),
               "energyWh": 500, "priceMicros": 12_340_000, "submittedAtUs": int(SLOT.timestamp() - 7200) * 10**6,
               "attributes": tag_hash(order.tag), "requirements": requirements_hash(()), "nonce": 7}
    signed = sign_action(ALICE, DOMAIN, order, 7)
    encoded = encode_typed_data(full_message=typed("Order", fields, message))
    assert Account.recover_message(encoded, signature=signed.signature) == ALICE.address
    assert Account.sign_message(encoded, ALICE.private_key).signature == signed.signature


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
