from eth_account import Account

from p2penergy.ledger.keys import Key, derive_keys, derive_private_key


def test_derivation_is_deterministic_and_per_participant():
    a1, a2 = Key.derive(42, "house-01"), Key.derive(42, "house-01")
    assert a1 == a2
    assert Key.derive(42, "house-02").address != a1.address
    assert Key.derive(43, "house-01").address != a1.address


def test_address_matches_eth_account():
    # eth-account derives addresses with its own code path: an independent reference.
    for pid in ("house-01", "office", "car-09"):
        key = Key.derive(2020, pid)
        assert Account.from_key(key.private_key).address == key.address


def test_reserved_and_duplicate_ids_are_rejected():
    import pytest

    with pytest.raises(ValueError, match="reserved"):
        derive_keys(1, ["@operator"])
    with pytest.raises(ValueError, match="unique"):
        derive_keys(1, ["a", "a"])
    with pytest.raises(ValueError, match="seed"):
        derive_private_key(-1, "a")
