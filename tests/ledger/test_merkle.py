import pytest
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st

from p2penergy.ledger.merkle import EMPTY_ROOT, leaf_hash, merkle_proof, merkle_root, verify_proof


def test_hand_computed_three_leaf_tree():
    # By the definition in merkle.py: root = H(1 || H(1 || a || b) || c), the odd leaf promoted.
    a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    assert a == keccak(b"\x00a")
    assert merkle_root([a, b, c]) == keccak(b"\x01" + keccak(b"\x01" + a + b) + c)
    assert merkle_root([a]) == a
    assert merkle_root([]) == EMPTY_ROOT


@given(st.lists(st.binary(max_size=20), min_size=1, max_size=40), st.data())
def test_every_proof_verifies_and_a_changed_leaf_does_not(items, data):
    leaves = [leaf_hash(x) for x in items]
    root = merkle_root(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1))
    proof = merkle_proof(leaves, i)
    assert verify_proof(leaves[i], proof, root)
    assert not verify_proof(leaf_hash(items[i] + b"!"), proof, root)


def test_order_matters_and_index_is_checked():
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert merkle_root([a, b]) != merkle_root([b, a])
    with pytest.raises(IndexError):
        merkle_proof([a, b], 2)
