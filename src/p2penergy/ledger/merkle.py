"""Keccak-256 Merkle trees over a slot's journal entries, and their proofs.

Leaves are ``keccak256(0x00 || data)`` and inner nodes ``keccak256(0x01 || left || right)``
(domain separation: a leaf can never pose as an inner node). An odd node at the end of
a level is promoted unchanged. The root of no leaves is 32 zero bytes. A proof lists
``(sibling, sibling_is_left)`` from the leaf up.
"""

from __future__ import annotations

from collections.abc import Sequence

from p2penergy.ledger.hashing import keccak

EMPTY_ROOT = b"\x00" * 32


def leaf_hash(data: bytes) -> bytes:
    return keccak(b"\x00" + data)


def _node(left: bytes, right: bytes) -> bytes:
    return keccak(b"\x01" + left + right)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root over already-hashed ``leaves`` (in order)."""
    level = list(leaves)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[tuple[bytes, bool]]:
    """Siblings from leaf ``index`` up to the root, each with True if it sits on the left."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"index: in [0, {len(leaves)}), got {index}")
    proof: list[tuple[bytes, bool]] = []
    level = list(leaves)
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append((level[sibling], sibling < index))
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level, index = nxt, index // 2
    return proof


def verify_proof(leaf: bytes, proof: Sequence[tuple[bytes, bool]], root: bytes) -> bool:
    node = leaf
    for sibling, is_left in proof:
        node = _node(sibling, node) if is_left else _node(node, sibling)
    return node == root
