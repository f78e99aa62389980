"""The audit of a run folder whose journal is in SQLite (the run folder's file) or PostgreSQL (by URL)."""

import json
import shutil
from pathlib import Path

import pytest
from eth_abi import decode, encode
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from sqlalchemy import update
from tests.conftest import DATABASES, create_pg_database, drop_pg_database
from tests.ledger.tamper import rewrite_chain_from
from typer.testing import CliRunner

from conftest import SETTINGS, chainless_engine, run_market
from p2penergy.cli import app
from p2penergy.ledger import audit, create_run_engine, open_run
from p2penergy.ledger.chain import _COMMIT_SELECTOR, _COMMIT_TYPES
from p2penergy.ledger.engine import leaf_of
from p2penergy.ledger.journal import Journal, journal_table, sqlite_url
from p2penergy.ledger.keys import OPERATOR_ID, Key
from p2penergy.ledger.merkle import merkle_root
from p2penergy.ledger.run_folder import JOURNAL_FILE, LEDGER_FILE

SEED = 21


@pytest.fixture(scope="module", params=DATABASES)
def template_run(request, tmp_path_factory):
    """One run with the embedded chain in its worker process, its journal in the run folder (SQLite) or in
    a PostgreSQL database; each test gets its own copy (folder and database) to alter."""
    d = tmp_path_factory.mktemp("template") / "run"
    db_url = create_pg_database() if request.param == "postgresql" else None
    try:
        eng = create_run_engine(SETTINGS, run_dir=d, db_url=db_url, seed=SEED, pipelined=True)
        out = run_market(eng, slots=3)
        eng.close()
        assert out["trades"]
        yield d
    finally:
        if db_url is not None:
            drop_pg_database(db_url)


@pytest.fixture
def run_dir(tmp_path, template_run):
    d = Path(shutil.copytree(template_run, tmp_path / "run"))
    meta = json.loads((d / LEDGER_FILE).read_text())
    if meta["journal"] != JOURNAL_FILE:  # PostgreSQL: a copy of the template's database for this test alone
        meta["journal"] = create_pg_database(template=meta["journal"])
        (d / LEDGER_FILE).write_text(json.dumps(meta))
        yield d
        drop_pg_database(meta["journal"])
    else:
        yield d


def journal_of(run_dir):
    """The run's journal, wherever ``ledger.json`` says it is."""
    where = json.loads((run_dir / LEDGER_FILE).read_text())["journal"]
    return Journal(sqlite_url(run_dir / JOURNAL_FILE) if where == JOURNAL_FILE else where)


def run_audit(*args):
    return CliRunner().invoke(app, ["audit", *map(str, args)])


def test_an_untouched_run_passes(run_dir):
    result = run_audit(run_dir)
    assert result.exit_code == 0, result.output
    assert "audit passed" in result.output and "3 slots match the chain" in result.output


def _trade_rows(run_dir):
    j = journal_of(run_dir)
    return j, [r for r in j.rows() if r.kind == "trade"]


def test_an_altered_journal_row_fails_by_name(run_dir):
    j, trades = _trade_rows(run_dir)
    row = trades[1]
    body = json.loads(row.body)
    body["energy_wh"] += 1
    with j.engine.begin() as conn:
        conn.execute(update(journal_table).where(journal_table.c.seq == row.seq)
                     .values(body=json.dumps(body, sort_keys=True, separators=(",", ":"))))
    result = run_audit(run_dir)
    assert result.exit_code == 1
    assert f"journal row {row.seq} (trade {row.ref}): hash does not match its content" in result.output


@pytest.mark.parametrize(("kind", "field", "value", "expected"), [
    # certificates are not replayed: the slot's certificates root on chain catches the forgery
    ("certificate", "energy_wh", 1, "certificates root recomputed from the journal"),
    # meters are in no root: the journal head committed on chain catches it
    ("meter", "values", {"load_wh": 1, "pv_wh": 0}, "journal head on chain"),
    # a trade: the replay catches it before its slot's commitment does
    ("trade", "price_per_kwh", "1.00", "differs from what replaying gives"),
])
def test_a_rehashed_journal_still_fails_against_the_chain(run_dir, kind, field, value, expected):
    j = journal_of(run_dir)
    rows = list(j.rows())
    target = next(r for r in rows if r.kind == kind)
    forged_body = json.loads(target.body)
    forged_body[field] = value
    forged = json.dumps(forged_body, sort_keys=True, separators=(",", ":"))
    group = {"certificate": "certificates", "trade": "trades"}.get(kind)
    new_root = None
    if group is not None:
        same = [forged if r.seq == target.seq else r.body for r in rows
                if r.kind == kind and r.slot_start == target.slot_start]
        new_root = merkle_root([leaf_of(kind, b) for b in same]).hex()

    def edit(r, prev):
        if r.seq == target.seq:
            return forged
        if r.kind == "commit":  # a thorough forger fixes every commit row it can
            body = json.loads(r.body)
            body["journal_head"] = prev.hex()
            if r.slot_start == target.slot_start and group is not None:
                body[f"{group}_root"] = new_root
            return json.dumps(body, sort_keys=True, separators=(",", ":"))
        return r.body

    rewrite_chain_from(j, target.seq, edit)
    result = run_audit(run_dir)
    assert result.exit_code == 1
    assert expected in result.output, result.output
    if kind != "trade":
        assert "on chain" in result.output


def test_an_altered_slot_commitment_fails(run_dir):
    log = run_dir / "chain-transactions.jsonl"
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    operator = Key.derive(SEED, OPERATOR_ID)
    slot = None
    for i, line in enumerate(lines):
        tx = TypedTransaction.from_bytes(HexBytes(line["raw"])).as_dict()
        data = bytes(tx["data"])
        if data[:4] == _COMMIT_SELECTOR:
            args = list(decode(_COMMIT_TYPES, data[4:]))
            slot = args[0]
            args[2] = b"\xee" * 32  # a different trades root, signed by the operator's key
            tx["data"] = HexBytes(data[:4] + encode(_COMMIT_TYPES, args))
            tx.pop("v", None), tx.pop("r", None), tx.pop("s", None)
            tx["type"] = 2
            lines[i] = {"raw": "0x" + bytes(Account.sign_transaction(tx, operator.private_key).raw_transaction).hex()}
            break
    assert slot is not None
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = run_audit(run_dir)
    assert result.exit_code == 1
    assert "trades root recomputed from the journal" in result.output and "committed on chain" in result.output


def test_prove_prints_a_verified_merkle_proof(run_dir):
    _, trades = _trade_rows(run_dir)
    result = run_audit(run_dir, "--prove", trades[2].ref)
    assert result.exit_code == 0, result.output
    proof = json.loads(result.output[result.output.index("{"):])
    assert proof["trade_id"] == trades[2].ref and proof["verified"] is True
    assert proof["root_on_chain"].startswith("0x")


def test_audit_api_reports_counts(run_dir):
    j, chain = open_run(run_dir)
    report = audit(j, chain)
    assert report.ok and report.slots_committed == 3 and report.trades_replayed > 0
    assert report.signed_actions == sum(1 for r in j.rows() if r.kind in ("order", "modify", "cancel", "reject"))


def test_cli_errors_are_clear(tmp_path, run_dir):
    missing = run_audit(tmp_path / "nowhere")
    assert missing.exit_code == 2 and "ledger.json not found" in missing.output
    unknown = run_audit(run_dir, "--prove", "no-such-trade")
    assert unknown.exit_code == 2 and "no trade 'no-such-trade'" in unknown.output


def test_a_deleted_row_is_named(run_dir):
    j = journal_of(run_dir)
    meter = next(r for r in j.rows() if r.kind == "meter")
    with j.engine.begin() as conn:
        conn.execute(journal_table.delete().where(journal_table.c.seq == meter.seq))
    result = run_audit(run_dir)
    assert result.exit_code == 1
    assert f"journal row {meter.seq}: missing (next row is {meter.seq + 1})" in result.output


def test_a_malformed_row_is_a_failure_naming_it_not_a_crash(run_dir):
    j, trades = _trade_rows(run_dir)
    target = trades[0]
    rewrite_chain_from(j, target.seq, lambda r, prev: '{"energy_wh": "lots"' if r.seq == target.seq else r.body)
    result = run_audit(run_dir)
    assert result.exit_code == 1, result.output
    assert f"journal row {target.seq} (trade {target.ref}): malformed" in result.output
    assert "Traceback" not in result.output


def test_a_refusal_whose_reason_was_rewritten_fails_the_replay(run_dir):
    j = journal_of(run_dir)
    target = next(r for r in j.rows() if r.kind == "reject")

    def edit(r, prev):
        if r.seq != target.seq:
            return r.body
        body = json.loads(r.body)
        body["reason"] = "the operator says so"
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    rewrite_chain_from(j, target.seq, edit)
    result = CliRunner().invoke(app, ["audit", str(run_dir)])
    assert result.exit_code == 1
    # the forgery is re-hashed, so the first thing that breaks is its slot's orders root (or the replay)
    assert ("orders root recomputed from the journal" in result.output
            or f"journal row {target.seq} (reject" in result.output), result.output


def test_no_malformed_row_crashes_the_audit(tmp_path):
    """Every row of a small journal replaced, in turn, by JSON the engine never writes (re-hashed, so
    only the content is wrong): the audit reports a failure naming a row, and never raises."""
    from datetime import timedelta
    from decimal import Decimal

    from conftest import START
    from p2penergy.ledger import Cancel
    from p2penergy.market import Order, Requirement, Tag

    url = f"sqlite:///{tmp_path / 'j.sqlite'}"
    eng, w = chainless_engine(url)
    at = START - timedelta(hours=1)
    eng.apply(w.sign("a", [Order("s", "a", "sell", START, 300, Decimal("10"), at, tag=Tag.of(source="solar"))]), at)
    eng.apply(w.sign_one(Order("b", "b", "buy", START, 200, Decimal("12"), at, requirements=(Requirement.any(),))),
              at)
    eng.apply(w.sign_one(Cancel("nope", "b", at)), at)
    eng.record_meter("a", START, {"load_wh": 10})
    eng.commit_slot(START)
    eng.journal.close()
    pristine = [(r.seq, r.kind, r.body) for r in Journal(url).rows()]
    assert audit(Journal(url), None).ok
    junk = ["null", "[]", '"text"', '{"action": {"price_per_kwh": "abc"}, "nonce": "x", "kind": 7}',
            '{"slot_start": "not a time", "values": [1], "participant": null}']
    for seq, kind, body in pristine:
        for bad in junk:
            j = Journal(url)
            rewrite_chain_from(j, seq, lambda r, prev, s=seq, b=bad: b if r.seq == s else r.body)
            report = audit(j, None)
            assert not report.ok and "journal row" in report.error, (kind, bad, report.error)
            j.close()
        j = Journal(url)
        rewrite_chain_from(j, seq, lambda r, prev, s=seq, b=body: b if r.seq == s else r.body)  # restore
        j.close()
