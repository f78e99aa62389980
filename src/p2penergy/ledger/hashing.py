"""keccak256, the one hash of the ledger (journal rows, Merkle trees, EIP-712).

From ``safe-pysha3`` (a C extension: about a fifth of pycryptodome's per-call cost, which goes
through ctypes, and the journal hashes every row and leaf of a run), else from pycryptodome
(eth-hash's own backend). Both compute the same function (tested against each other).
"""

from __future__ import annotations

from typing import Any

from Crypto.Hash import keccak as _keccak


def keccak_reference(data: bytes) -> bytes:
    """keccak256 by pycryptodome (the reference the fast path is tested against)."""
    return _keccak.new(data=data, digest_bits=256).digest()


_new: Any
try:
    from sha3 import keccak_256 as _new
except ImportError:  # pragma: no cover - safe-pysha3 is a dependency; pycryptodome serves without it
    def _new(data: bytes) -> Any:
        return _keccak.new(data=data, digest_bits=256)


def keccak(data: bytes) -> bytes:
    """Ethereum's keccak256 of ``data`` (32 bytes)."""
    return _new(data).digest()
