"""The ledger's keccak256 (its fast C path) is Ethereum's keccak256, byte for byte."""

from __future__ import annotations

import random

from eth_hash.auto import keccak as eth_keccak

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
