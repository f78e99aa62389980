"""The ledger's keccak256 (its fast C path) is Ethereum's keccak256, byte for byte; its canonical JSON is
json.dumps's."""

from __future__ import annotations

import json
import random

import pytest
from eth_hash.auto import keccak as eth_keccak

from p2penergy.ledger.actions import canonical_json
from p2penergy.ledger.hashing import keccak, keccak_reference


def test_keccak_is_ethereums_keccak256_on_known_vectors_and_random_input() -> None:
    # keccak256("") and keccak256("abc"): Ethereum's, not NIST SHA3-256 (different padding)
    assert keccak(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak(b"abc").hex() == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    rng = random.Random(16)
    # lengths around the 136-byte rate, where padding moves into another block
    for size in [*range(0, 300), 1_000, 65_537]:
        data = rng.randbytes(size)
        assert keccak(data) == keccak_reference(data) == eth_keccak(data)


def test_canonical_json_is_json_dumps_sorted_and_compact() -> None:
    # the journal's byte form (hashed into every row): one reused encoder, the same text as
    # json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    rng = random.Random(3)
    for _ in range(300):
        body = {rng.choice("zyxabc") + str(rng.randrange(50)): rng.choice(
            [rng.randrange(-10**20, 10**20), rng.random(), "é ✓ \u2028", None, True, [1, "a", {"k": 0.5}],
             {"b": 1, "a": [None]}]) for _ in range(rng.randrange(8))}
        assert canonical_json(body) == json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_canonical_json_refuses_what_json_cannot_hold_as_json_does() -> None:
    # the encoder made once raises what JSONEncoder.encode raises for a value JSON cannot hold
    for bad in ({"a": object()}, {"a": [1, {1.5, 2}]}, {"a": b"bytes"}):
        with pytest.raises(TypeError) as ours:
            canonical_json(bad)
        with pytest.raises(TypeError) as theirs:
            json.dumps(bad, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert str(ours.value) == str(theirs.value)
    assert canonical_json({"a": float("nan"), "b": -float("inf"), "c": 1e300}) == '{"a":NaN,"b":-Infinity,"c":1e+300}'
    assert canonical_json("x\u00e9") == json.dumps("x\u00e9", ensure_ascii=False)
