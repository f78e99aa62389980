"""The operator's own key: refused without one on an external chain, restart against the existing
contract, rotation (`p2penergy operator rotate`) on a real anvil node."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from tests.ledger.nodes import TEST_OPERATOR, TEST_OPERATOR_2
from tests.service.conftest import START, key, order
from typer.testing import CliRunner

from conftest import SETTINGS
from p2penergy.cli import app
from p2penergy.ledger import create_run_engine
from p2penergy.ledger.chain import ChainError
from p2penergy.ledger.engine import unix_seconds
from p2penergy.ledger.keys import OperatorKeyError, write_keystore
from p2penergy.ledger.signing import sign_action
from p2penergy.market import MarketSettings
from p2penergy.service.clock import MarketClock
from p2penergy.service.live import LiveExchange

FAST_SCRYPT_N = 2**10  # tests only: real keystores use KEYSTORE_SCRYPT_N
NOWHERE = "http://127.0.0.1:9"  # nothing listens: a refusal must come before any connection


@pytest.fixture(autouse=True)
def no_key_in_environment(monkeypatch):
    for name in ("P2PENERGY_OPERATOR_KEY", "P2PENERGY_OPERATOR_PASSWORD", "P2PENERGY_OPERATOR_KEYSTORE",
                 "P2PENERGY_OPERATOR_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def keystores(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "pw").write_text("operator password\n")
    write_keystore(tmp_path / "a.json", "operator password", TEST_OPERATOR, FAST_SCRYPT_N)
    write_keystore(tmp_path / "b.json", "operator password", TEST_OPERATOR_2, FAST_SCRYPT_N)
    return {"a": tmp_path / "a.json", "b": tmp_path / "b.json", "pw": tmp_path / "pw"}


def test_serve_and_simulate_refuse_an_external_chain_without_the_operators_key(tmp_path):
    runner = CliRunner()
    for args in (["serve", "--chain-url", NOWHERE, "--db", f"sqlite:///{tmp_path / 's.sqlite'}"],
                 ["simulate", "--chain-url", NOWHERE, "--days", "1", "--out", str(tmp_path / "run")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert "--chain-url: the external chain http://127.0.0.1:9 needs the operator's own key" in text
        assert "--operator-keystore FILE" in text and "$P2PENERGY_OPERATOR_KEY" in text
    assert not (tmp_path / "run").exists() and not (tmp_path / "s.sqlite").exists()


def test_a_bad_keystore_or_password_is_named(tmp_path, keystores):
    (tmp_path / "wrong").write_text("not it\n")
    result = CliRunner().invoke(app, ["serve", "--chain-url", NOWHERE, "--operator-keystore", str(keystores["a"]),
                                      "--operator-password-file", str(tmp_path / "wrong")])
    assert result.exit_code == 2 and "--operator-keystore: cannot decrypt" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["simulate", "--chain-url", NOWHERE, "--operator-keystore", str(keystores["a"])])
    assert result.exit_code == 2 and "$P2PENERGY_OPERATOR_PASSWORD" in result.output


def test_the_core_refuses_a_derived_key_on_an_external_chain_and_labels_the_demonstration_key(tmp_path):
    with pytest.raises(OperatorKeyError, match="--chain-url"):
        create_run_engine(SETTINGS, run_dir=tmp_path / "ext", chain_url=NOWHERE, seed=1)
    with pytest.raises(OperatorKeyError, match="--chain-url"):
        LiveExchange.open(f"sqlite:///{tmp_path / 'j.sqlite'}", SETTINGS, MarketClock.accelerated(START, 1.0),
                          chain_url=NOWHERE)
    assert not (tmp_path / "ext").exists() and not (tmp_path / "j.sqlite").exists()
    led = create_run_engine(SETTINGS, run_dir=tmp_path / "demo", seed=1)
    led.close()
    doc = json.loads((tmp_path / "demo" / "ledger.json").read_text())
    assert doc["operator_key"] == "demonstration"
    genesis = json.loads(next(led.journal.rows(kinds=("genesis",))).body)
    assert genesis["operator_key"] == "demonstration"


def trade_and_commit(ex: LiveExchange, slot_index: int, nonce: int) -> int:
    """One sell order for the slot ``slot_index`` half-hours after START; close it and commit it."""
    slot = START + timedelta(minutes=30 * slot_index)
    o = order(f"s{slot_index}", "s", "sell", 100, "10", ex.clock.now(), slot=slot)
    ex.submit(sign_action(key("s"), ex.domain, o, nonce))
    assert ex.close_due(slot + timedelta(hours=1)) == [slot]
    assert ex.chain_writes.wait_idle(30) and unix_seconds(slot) in ex.committed
    return unix_seconds(slot)


def test_restart_against_the_contract_and_rotate_the_operator(tmp_path, keystores, anvil_url, db_url):
    db = db_url  # the journal on SQLite and on PostgreSQL
    clock = MarketClock.accelerated(START, 1.0)
    market = MarketSettings.demonstration()
    runner = CliRunner()

    ex = LiveExchange.open(db, market, clock, chain_url=anvil_url, operator=TEST_OPERATOR)
    contract = ex.chain.address
    ex.register("s", key("s").address)
    first = trade_and_commit(ex, 1, 1)
    ex.stop_chain_writes()
    ex.journal.close()
    # restart with the same key: the journal's contract, nothing deployed anew
    ex = LiveExchange.open(db, market, clock, chain_url=anvil_url, operator=TEST_OPERATOR)
    assert ex.chain.address == contract
    second = trade_and_commit(ex, 2, 2)
    ex.stop_chain_writes()
    ex.journal.close()

    shown = runner.invoke(app, ["operator", "show", "--chain-url", anvil_url, "--db", db])
    assert shown.exit_code == 0 and f"operator {TEST_OPERATOR.address}" in shown.output
    rotated = runner.invoke(app, ["operator", "rotate", "--chain-url", anvil_url, "--db", db,
                                  "--operator-keystore", str(keystores["a"]),
                                  "--operator-password-file", str(keystores["pw"]),
                                  "--new-keystore", str(keystores["b"])])
    assert rotated.exit_code == 0, rotated.output
    assert f"{TEST_OPERATOR.address} -> {TEST_OPERATOR_2.address}" in rotated.output

    # the old key may no longer run the exchange, nor rotate again
    with pytest.raises(ChainError, match=f"operated by {TEST_OPERATOR_2.address}, not by the key given"):
        LiveExchange.open(db, market, clock, chain_url=anvil_url, operator=TEST_OPERATOR)
    again = runner.invoke(app, ["operator", "rotate", "--chain-url", anvil_url, "--contract", contract,
                                "--operator-keystore", str(keystores["a"]),
                                "--operator-password-file", str(keystores["pw"]),
                                "--new-address", TEST_OPERATOR.address])
    assert again.exit_code == 2 and "operated by" in again.output

    # the service restarts with the new key (from its keystore, as `serve --operator-keystore` gives it)
    from tests.service.conftest import service_settings

    from p2penergy.service.app import create_app

    settings = service_settings(tmp_path, db_url=db, chain_url=anvil_url, operator_keystore=str(keystores["b"]),
                                operator_password_file=str(keystores["pw"]))
    live = create_app(settings, market).state.live
    assert live.chain.address == contract and live.chain.operator.address == TEST_OPERATOR_2.address
    third = trade_and_commit(live, 3, 3)
    assert live.chain.committed_slots() == [first, second, third]
    genesis = json.loads(next(live.journal.rows(kinds=("genesis",))).body)
    assert genesis["operator"] == TEST_OPERATOR.address and genesis["operator_key"] == "own"
    live.stop_chain_writes()
    live.journal.close()


def test_new_keystore_makes_a_fresh_key_that_opens_with_its_password(tmp_path):
    from eth_account import Account

    (tmp_path / "pw").write_text("s3cret\n")
    path = tmp_path / "operator.json"
    args = ["operator", "new-keystore", str(path), "--password-file", str(tmp_path / "pw"),
            "--scrypt-n", str(FAST_SCRYPT_N)]
    made = CliRunner().invoke(app, args)
    assert made.exit_code == 0, made.output
    address = made.output.split()[0]
    assert Account.from_key(Account.decrypt(path.read_text(), "s3cret")).address == address
    assert path.stat().st_mode & 0o777 == 0o600
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "never overwritten" in again.output
    other = CliRunner().invoke(app, ["operator", "new-keystore", str(tmp_path / "other.json"), "--password-file",
                                     str(tmp_path / "pw"), "--scrypt-n", str(FAST_SCRYPT_N)])
    assert other.output.split()[0] != address  # a new key each time, not derived from anything
