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


# -- the operator's own key ------------------------------------------------------------------------
import pytest  # noqa: E402

from p2penergy.ledger.keys import (  # noqa: E402
    OPERATOR_ID,
    OperatorKeyError,
    describe_operator,
    keystore_address,
    operator_for,
    operator_key,
    write_keystore,
)
from p2penergy.textfile import InputFileError  # noqa: E402

FAST_SCRYPT_N = 2**10  # tests only: a real keystore uses KEYSTORE_SCRYPT_N


def test_a_keystore_is_read_with_its_password_from_a_file_or_the_environment(tmp_path):
    key = Key.from_hex(OPERATOR_ID, "0x" + "42" * 32)
    path = tmp_path / "operator.json"
    write_keystore(path, "correct horse", key, scrypt_n=FAST_SCRYPT_N)
    assert path.stat().st_mode & 0o777 == 0o600
    assert keystore_address(path) == key.address
    (tmp_path / "pw").write_text("correct horse\nsecond line ignored\n")
    from_file = operator_key(path, tmp_path / "pw", environ={})
    assert from_file.private_key == key.private_key and from_file.origin == "keystore"
    from_env = operator_key(path, environ={"P2PENERGY_OPERATOR_PASSWORD": "correct horse"})
    assert from_env.address == key.address and not from_env.demonstration
    assert "private_key" not in repr(from_env) and "42" * 8 not in repr(from_env)
    # an independent reader: eth-account opens what we wrote
    assert Account.decrypt(path.read_text(), "correct horse") == key.private_key


def test_the_key_may_come_from_the_environment_and_bad_sources_are_named(tmp_path):
    key = operator_key(environ={"P2PENERGY_OPERATOR_KEY": "0x" + "07" * 32})
    assert key.origin == "environment" and key.address == Account.from_key(b"\x07" * 32).address
    assert operator_key(environ={}) is None
    with pytest.raises(OperatorKeyError, match=r"\$P2PENERGY_OPERATOR_KEY: a 32-byte"):
        operator_key(environ={"P2PENERGY_OPERATOR_KEY": "nothex"})
    path = tmp_path / "k.json"
    write_keystore(path, "pw", Key.from_hex(OPERATOR_ID, "0x" + "09" * 32), scrypt_n=FAST_SCRYPT_N)
    with pytest.raises(OperatorKeyError, match=r"--operator-keystore: cannot decrypt .*wrong password"):
        operator_key(path, environ={"P2PENERGY_OPERATOR_PASSWORD": "wrong"})
    with pytest.raises(OperatorKeyError, match="--operator-password-file FILE or \\$P2PENERGY_OPERATOR_PASSWORD"):
        operator_key(path, environ={})
    with pytest.raises(OperatorKeyError, match="both given"):
        operator_key(path, environ={"P2PENERGY_OPERATOR_KEY": "0x" + "07" * 32, "P2PENERGY_OPERATOR_PASSWORD": "pw"})
    with pytest.raises(OperatorKeyError, match="--operator-keystore: cannot read"):
        operator_key(tmp_path / "missing.json", environ={"P2PENERGY_OPERATOR_PASSWORD": "pw"})
    (tmp_path / "not.json").write_text("{}")
    with pytest.raises(InputFileError, match=r"not\.json: crypto: must be present: an Ethereum JSON keystore"):
        operator_key(tmp_path / "not.json", environ={"P2PENERGY_OPERATOR_PASSWORD": "pw"})
    with pytest.raises(OperatorKeyError, match="never overwritten"):
        write_keystore(path, "pw", Key.from_hex(OPERATOR_ID, "0x" + "09" * 32), scrypt_n=FAST_SCRYPT_N)


def test_a_derived_key_is_a_demonstration_key_allowed_only_on_the_embedded_chain():
    demo = operator_for(None, None, seed=3)
    assert demo.demonstration and demo == Key.derive(3, OPERATOR_ID)
    assert "demonstration key" in describe_operator(demo)
    with pytest.raises(OperatorKeyError, match=r"--chain-url: .* never one derived from a public seed; give "
                                               "--operator-keystore FILE"):
        operator_for("http://127.0.0.1:8545", None, seed=3)
    with pytest.raises(OperatorKeyError, match="P2PENERGY_OPERATOR_KEY"):
        operator_for("http://127.0.0.1:8545", demo, seed=3)
    real = Key.from_hex(OPERATOR_ID, "0x" + "05" * 32, "keystore")
    assert operator_for("http://127.0.0.1:8545", real, seed=3) is real
    assert describe_operator(real) == f"operator {real.address} (key from keystore)"
