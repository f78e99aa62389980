"""keccak256 straight from pycryptodome (eth-hash's own backend, minus its per-call dispatch)."""

from __future__ import annotations

from Crypto.Hash import keccak as _keccak


def keccak(data: bytes) -> bytes:
    """Ethereum's keccak256 of ``data`` (32 bytes)."""
    return _keccak.new(data=data, digest_bits=256).digest()
