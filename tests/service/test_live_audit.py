"""A live service's journal is audited as a run folder's (`p2penergy audit --db URL`), on SQLite and
PostgreSQL, with and without a chain; the service checks it when it starts. Each way of tampering
with it — an address, a meter reading, a trade, a deleted row, a forgery re-hashed to the end — is
caught, naming the row (or the slot, for what only the chain can tell)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from tests.ledger.conftest import anvil_url  # noqa: F401  (the fixture)
from tests.ledger.nodes import TEST_OPERATOR
from tests.ledger.tamper import delete_row, rewrite_chain_from, set_body
from tests.service.conftest import START, key, order
from typer.testing import CliRunner

from p2penergy.cli import app
from p2penergy.ledger.journal import Journal
from p2penergy.ledger.signing import Signed, meter_digest, sign_action, sign_digest
from p2penergy.market import MarketSettings
from p2penergy.service.clock import MarketClock
from p2penergy.service.live import JournalCorrupt, LiveExchange

MARKET = MarketSettings.demonstration()
SLOT = START  # the clock starts at the slot's start: its gate is open, and its meters may be read


def clock() -> MarketClock:
    return MarketClock.accelerated(START, 1.0)


def reading(ex: LiveExchange, pid: str, values: dict[str, int], nonce: int) -> tuple[dict, bytes]:
    body = {"participant": pid, "slot_start": SLOT.isoformat(), "values": values, "nonce": nonce}
    return body, sign_digest(key(pid).private_key, meter_digest(ex.domain, key(pid).address, SLOT, values, nonce))


def live_journal(db_url: str, chain_url: str | None = None) -> None:
    """A service's journal: two participants, orders that trade, a refusal, a self-trade cancel,
    signed meter readings, the slot closed and committed (on chain when ``chain_url``)."""
    operator = TEST_OPERATOR if chain_url else None
    ex = LiveExchange.open(db_url, MARKET, clock(), chain_url=chain_url, operator=operator)
    ex.register("s", key("s").address)
    ex.register("b", key("b").address)
    now = ex.clock.now()
    nonce = {"s": 0, "b": 0}

    def send(o):
        nonce[o.participant] += 1
        s = sign_action(key(o.participant), ex.domain, o, nonce[o.participant])
        try:
            return ex.submit(Signed(o, s.nonce, s.signature))
        except Exception as exc:  # the refusal is journalled all the same
            return exc

    send(order("s1", "s", "sell", 500, "10.00", now, slot=SLOT))
    send(order("s2", "s", "sell", 300, "11.00", now, slot=SLOT))
    send(order("b1", "b", "buy", 600, "12.00", now, slot=SLOT))  # takes s1 and 100 Wh of s2
    send(order("s3", "s", "buy", 100, "11.50", now, slot=SLOT))  # would meet its own s2: s2 is cancelled
    send(order("late", "b", "buy", 100, "12.00", now, slot=SLOT - timedelta(hours=1)))  # gate closed: refused
    for pid, values in (("s", {"load_wh": 300, "pv_wh": 1200, "grid_export_wh": 400}),
                        ("b", {"load_wh": 900, "grid_import_wh": 300})):
        nonce[pid] += 1
        _, sig = reading(ex, pid, values, nonce[pid])
        ex.upload_meter(pid, SLOT, values, nonce[pid], sig)
    assert ex.close_due(SLOT + timedelta(hours=1)) == [SLOT]
    if ex.chain_writes is not None:
        assert ex.chain_writes.wait_idle(30)
        ex.stop_chain_writes()
    kinds = {r.kind for r in ex.journal.rows()}
    assert {"reject", "self_cancel", "trade", "meter", "close", "commit"} <= kinds
    ex.journal.close()


def audit(*args):
    result = CliRunner().invoke(app, ["audit", *map(str, args)])
    return result.exit_code, " ".join(result.output.split())


def first(journal: Journal, kind: str, pred=lambda body: True):
    return next(r for r in journal.rows() if r.kind == kind and pred(json.loads(r.body)))


def test_a_live_journal_without_a_chain_audits_clean_and_tampering_is_named(db_url):
    live_journal(db_url)
    code, out = audit("--db", db_url)
    assert code == 0, out
    assert "1 slots committed in the journal" in out and "2 signed readings" in out
    assert "no chain: roots checked against the journal's own commit rows only" in out
    j = Journal(db_url)
    trade = first(j, "trade")
    body = json.loads(trade.body)
    body["energy_wh"] += 1
    set_body(j, trade.seq, json.dumps(body, sort_keys=True, separators=(",", ":")))
    code, out = audit("--db", db_url)
    assert code == 1 and f"journal row {trade.seq} (trade {trade.ref}): hash does not match its content" in out
    with pytest.raises(JournalCorrupt, match=rf"journal row {trade.seq} \(trade {trade.ref}\): hash does not match"):
        LiveExchange.open(db_url, MARKET, clock())
    j.close()


@pytest.mark.parametrize("tamper", ["address", "meter", "trade", "deleted"])
def test_an_edited_or_deleted_row_is_named_by_the_audit_and_stops_the_service(db_url, tamper, anvil_url):  # noqa: F811
    live_journal(db_url, anvil_url)
    code, out = audit("--db", db_url)
    assert code == 0, out
    assert "1 slots match the chain" in out
    j = Journal(db_url)
    if tamper == "deleted":
        target = first(j, "order")
        delete_row(j, target.seq)
        expected = f"journal row {target.seq}: missing (next row is {target.seq + 1})"
    else:
        kind, field, value = {"address": ("participant", "address", key("mallory").address),
                              "meter": ("meter", "values", {"load_wh": 1}),
                              "trade": ("trade", "price_per_kwh", "1.00")}[tamper]
        target = first(j, kind, lambda b: b.get("participant", "b") == "b")
        body = json.loads(target.body)
        body[field] = value
        set_body(j, target.seq, json.dumps(body, sort_keys=True, separators=(",", ":")))
        expected = f"journal row {target.seq} ({kind}"
    j.close()
    code, out = audit("--db", db_url)
    assert code == 1 and expected in out, out
    with pytest.raises(JournalCorrupt, match=r"journal row \d+") as err:
        LiveExchange.open(db_url, MARKET, clock(), chain_url=anvil_url, operator=TEST_OPERATOR)
    assert expected in str(err.value) and "the service will not start" in str(err.value)


@pytest.mark.parametrize("tamper", ["address", "meter"])
def test_a_forgery_rehashed_to_the_end_is_caught_by_the_chain(db_url, tamper, anvil_url):  # noqa: F811
    """Re-hashing every row after an edit passes the hash chain; the chain's registry and its
    committed journal head do not (nor, for a reading, the participant's signature)."""
    live_journal(db_url, anvil_url)
    j = Journal(db_url)
    kind = "participant" if tamper == "address" else "meter"
    target = first(j, kind, lambda b: b["participant"] == "b")

    def edit(r, prev):
        if r.seq == target.seq:
            body = json.loads(r.body)
            if tamper == "address":
                body["address"] = key("mallory").address  # so that mallory's key would trade as b
            else:
                body["values"] = {"load_wh": 1}
            return json.dumps(body, sort_keys=True, separators=(",", ":"))
        if r.kind == "commit":  # a thorough forger fixes every commit row it can
            body = json.loads(r.body)
            body["journal_head"] = prev.hex()
            return json.dumps(body, sort_keys=True, separators=(",", ":"))
        return r.body

    rewrite_chain_from(j, target.seq, edit)
    j.close()
    code, out = audit("--db", db_url)
    assert code == 1, out
    if tamper == "address":
        assert f"journal row {target.seq} (participant b): address" in out and "differs from the registry's" in out
    else:
        assert f"journal row {target.seq} (meter b): reading's signature does not match its content" in out
    with pytest.raises(JournalCorrupt) as err:
        LiveExchange.open(db_url, MARKET, clock(), chain_url=anvil_url, operator=TEST_OPERATOR)
    message = str(err.value)
    assert "the service will not start" in message
    if tamper == "address":
        assert "participant 'b' has address" in message and "in the chain's registry" in message
    else:
        assert "the chain holds" in message  # the last commitment's journal head


def test_serve_refuses_a_broken_journal_naming_the_row(tmp_path):
    db = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    live_journal(db)
    j = Journal(db)
    target = first(j, "participant", lambda b: b["participant"] == "b")
    body = json.loads(target.body)
    body["address"] = key("mallory").address
    set_body(j, target.seq, json.dumps(body, sort_keys=True, separators=(",", ":")))
    j.close()
    result = CliRunner().invoke(app, ["serve", "--db", db, "--admin-token", "x" * 12])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert f"journal row {target.seq} (participant b): hash does not match its content" in text
    assert "will not start" in text


def test_audit_db_refuses_what_is_not_a_journal(tmp_path):
    code, out = audit("--db", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    assert code == 2 and "holds no journal table (not a p2penergy journal)" in out
