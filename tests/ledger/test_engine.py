"""The exchange engine: verify → apply at the driver's clock → journal (refusals and self-trade
cancels too) → close → commit; and the same engine rebuilding itself from the journal."""

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from tests.ledger.tamper import rewrite_chain_from

from conftest import SETTINGS, START, chainless_engine, run_market
from p2penergy.ledger import (
    Cancel,
    ChainError,
    Engine,
    Journal,
    JournalMismatch,
    Modify,
    ReplayError,
    SignatureError,
    Wallets,
    create_run_engine,
    replay,
)
from p2penergy.ledger.actions import canonical_json
from p2penergy.ledger.audit import audit_run
from p2penergy.ledger.replay import balances_of
from p2penergy.market import Order, Requirement, Tag
from p2penergy.market.book import SiteLimitsWh


@pytest.fixture
def engine(tmp_path):
    eng = create_run_engine(SETTINGS, run_dir=tmp_path / "run", seed=11)
    yield eng
    eng.close()


@pytest.fixture
def wallets(engine):
    w = Wallets(engine.domain, 11)
    engine.register(w.add(["a", "b"]))
    return w


def sell(oid, who, energy=100, price="10", at=None, slot=START):
    return Order(oid, who, "sell", slot, energy, Decimal(price), at or slot - timedelta(hours=1),
                 tag=Tag.of(source="solar", producer=who))


def buy(oid, who, energy=100, price="12", at=None, slot=START):
    return Order(oid, who, "buy", slot, energy, Decimal(price), at or slot - timedelta(hours=1),
                 requirements=(Requirement.any(),))


def rows_of(engine, *kinds):
    return [r for r in engine.journal.rows() if r.kind in kinds]


def audited(engine, run_dir):
    """Close the engine's run and audit its folder (the audit replays through a fresh engine)."""
    engine.close()
    return audit_run(run_dir)


@pytest.mark.parametrize(("mechanism", "pipelined"), [("cda", True), ("pay-as-clear", False)])
def test_replay_rebuilds_trades_and_balances(tmp_path, mechanism, pipelined):
    eng = create_run_engine(replace(SETTINGS, mechanism=mechanism), run_dir=tmp_path / mechanism, seed=11,
                            pipelined=pipelined)
    live = run_market(eng, slots=3)
    eng.close()
    assert live["trades"], "the scenario must trade for this test to mean anything"
    rebuilt = replay(Journal(eng.journal.url))
    assert rebuilt.trades == live["trades"]
    assert rebuilt.balances == balances_of(live["trades"])
    assert sum(b.paid for b in rebuilt.balances.values()) == sum(b.received for b in rebuilt.balances.values())


def test_run_folder_layout(engine, tmp_path):
    run_market(engine, slots=1)
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"journal.sqlite", "chain-transactions.jsonl", "ledger.json"} <= names
    kinds = {r.kind for r in engine.journal.rows()}
    assert {"genesis", "participant", "batch", "order", "trade", "close", "meter", "certificate", "commit",
            "chain_tx"} <= kinds


def test_a_replayed_or_altered_batch_is_refused_before_the_book_and_writes_nothing(engine, wallets):
    batch = wallets.sign("a", [sell("x1", "a")])
    engine.apply(batch, START - timedelta(hours=1))
    before = engine.journal.head
    with pytest.raises(ReplayError, match="replayed"):
        engine.apply(batch, START - timedelta(hours=1))
    altered = replace(wallets.sign("a", [sell("x2", "a")]), entries=((sell("x2", "a", energy=9999), 1),))
    with pytest.raises(SignatureError, match="altered or forged"):
        engine.apply(altered, START - timedelta(hours=1))
    assert engine.exchange.remaining_wh("x2", "a") == 0
    assert engine.journal.head == before


def test_refusals_are_journalled_with_their_reason_and_use_up_their_nonce(engine, wallets, tmp_path):
    late = sell("x1", "a", at=START + timedelta(minutes=25))
    signed = wallets.sign_one(late)
    applied = engine.apply(signed, START + timedelta(minutes=25))
    assert applied.accepted == [] and len(applied.rejected) == 1
    assert applied.rejected[0].field == "submitted_at" and "gate" in applied.rejected[0].reason
    [row] = rows_of(engine, "reject")
    body = json.loads(row.body)
    assert body["kind"] == "order" and body["action"]["order_id"] == "x1" and "gate" in body["reason"]
    assert body["nonce"] == signed.nonce and body["signature"] == signed.signature.hex()
    with pytest.raises(ReplayError):  # a signed action is applied once, accepted or refused
        engine.apply(signed, START - timedelta(hours=1))
    # a cancel of an order that does not exist: refused and journalled, not raised
    applied = engine.apply(wallets.sign("b", [Cancel("nope", "b", START - timedelta(hours=1))]),
                           START - timedelta(hours=1))
    assert applied.rejected[0].field == "id"
    assert [json.loads(r.body)["kind"] for r in rows_of(engine, "reject")] == ["order", "cancel"]
    engine.commit_slot(START)
    report = audited(engine, tmp_path / "run")
    assert report.ok, report.error
    assert report.signed_actions == 2


def test_the_exchange_clock_decides_the_gate_not_the_clients_timestamp(engine, wallets, tmp_path):
    gate_close = SETTINGS.gate_close(START)
    # the client says it is well inside the gate; the exchange's clock says the gate has closed
    backdated = sell("x1", "a", at=gate_close - timedelta(minutes=4))
    applied = engine.apply(wallets.sign_one(backdated), gate_close + timedelta(seconds=1))
    assert applied.rejected and "gate" in applied.rejected[0].reason
    # the client's clock runs late (its timestamp is past the gate); the exchange's is inside: accepted
    late_clock = sell("x2", "a", at=gate_close + timedelta(minutes=2))
    applied = engine.apply(wallets.sign_one(late_clock), gate_close - timedelta(minutes=1))
    assert applied.accepted == [late_clock] and engine.exchange.remaining_wh("x2", "a") == 100
    at = [json.loads(r.body)["at"] for r in rows_of(engine, "order", "reject")]
    assert at == [(gate_close + timedelta(seconds=1)).isoformat(), (gate_close - timedelta(minutes=1)).isoformat()]
    engine.commit_slot(START)
    report = audited(engine, tmp_path / "run")  # the replay applies each action at its journalled time
    assert report.ok, report.error


def test_self_trade_cancels_are_journalled_and_reported_to_the_owner(engine, wallets, tmp_path):
    at = START - timedelta(hours=1)
    engine.apply(wallets.sign_one(sell("mine", "a", energy=300, price="10")), at)
    engine.apply(wallets.sign_one(sell("theirs", "b", energy=200, price="11")), at)
    applied = engine.apply(wallets.sign_one(buy("a-buy", "a", energy=200, price="12")), at)
    assert [(t.sell_id, t.buyer) for t in applied.trades] == [("theirs", "a")]
    assert [(c.order_id, c.participant, c.remaining_wh, c.by) for c in applied.self_cancels] == [
        ("mine", "a", 300, "a-buy")]
    assert engine.exchange.remaining_wh("mine", "a") == 0
    [row] = rows_of(engine, "self_cancel")
    assert json.loads(row.body) == {"order_id": "mine", "participant": "a", "remaining_wh": 300, "by": "a-buy"}
    kinds = [r.kind for r in engine.journal.rows() if r.seq > row.seq - 2]
    assert kinds[:3] == ["order", "self_cancel", "trade"]
    engine.commit_slot(START)
    report = audited(engine, tmp_path / "run")
    assert report.ok, report.error


def test_a_journalled_self_trade_cancel_that_replay_does_not_produce_is_named(engine, wallets):
    at = START - timedelta(hours=1)
    engine.apply(wallets.sign_one(sell("mine", "a", energy=300)), at)
    engine._journal_self_cancels(sell("x", "a"), (("mine", 300),))  # a row the exchange never produced
    engine.flush()
    with pytest.raises(JournalMismatch, match=r"journal row \d+ \(self_cancel mine\): not produced by replaying"):
        Engine.open(Journal(engine.journal.url))


def test_the_engine_reopens_its_journal_and_goes_on(tmp_path, db_url):
    eng = create_run_engine(SETTINGS, run_dir=tmp_path / "run", db_url=db_url, seed=11)  # SQLite and PostgreSQL
    out = run_market(eng, slots=2)
    url = eng.journal.url
    eng.journal.close()
    again = Engine.open(Journal(url))
    assert again.committed == set(eng.committed) and again.addresses == eng.addresses
    assert again.verifier.last_nonces == eng.verifier.last_nonces
    # the rebuilt exchange refuses a used order id, and the next slot trades through it
    wallets = out["wallets"]
    wallets._next_nonce.update({p: n + 1 for p, n in again.verifier.last_nonces.items()})
    slot = START + 2 * SETTINGS.slot_length
    applied = again.apply(wallets.sign("house-01", [sell("o1", "house-01", slot=slot)]), slot - timedelta(hours=1))
    assert applied.rejected and applied.rejected[0].field == "id"
    applied = again.apply(wallets.sign("house-01", [sell("n1", "house-01", slot=slot)]), slot - timedelta(hours=1))
    assert applied.accepted
    again.journal.close()
    assert replay(Journal(url)).trades[-1] == out["trades"][-1]


def test_meter_values_must_be_integers(engine):
    with pytest.raises(ValueError, match=r"values\.load_wh"):
        engine.record_meter("a", START, {"load_wh": 1.5})


def test_a_failed_pipelined_commit_is_reported_with_its_slot(tmp_path):
    eng = create_run_engine(SETTINGS, run_dir=tmp_path / "run", seed=11, pipelined=True)
    pending = eng.prepare_commit(START)
    eng.send_commit(pending)
    eng.send_commit(pending)  # the contract refuses a slot committed twice; the parent does not wait
    with pytest.raises(ChainError, match=r"commit of slot 1596240000 failed in the embedded chain"):
        eng.close()


def test_the_simulation_tells_an_agent_of_a_refusal_as_the_exchange_does_without_a_ledger(engine, wallets):
    """The ledger path journals the refusal, then raises it, where the no-ledger path raises at once."""
    from p2penergy.agents.market_access import Fills, InProcessAccess, PriceTape
    from p2penergy.market import OrderRejected, make_exchange
    from p2penergy.sim.ledger_hook import LedgerAccess

    late_at = SETTINGS.gate_close(START) + timedelta(minutes=1)
    late = sell("x1", "a", at=late_at)
    with pytest.raises(OrderRejected) as plain:
        InProcessAccess(make_exchange(SETTINGS), "a", PriceTape()).submit(late)
    access = LedgerAccess(engine, wallets, "a", PriceTape(), [], Fills())
    access.submit(late)
    with pytest.raises(OrderRejected) as journalled:
        access.flush(late_at)
    assert (journalled.value.field, journalled.value.reason) == (plain.value.field, plain.value.reason)
    [row] = rows_of(engine, "reject")
    assert json.loads(row.body)["reason"] == str(plain.value)


def test_replay_reads_slot_starts_as_instants_whatever_their_offset(tmp_path):
    """Journals written before slots were UTC instants hold the market zone's offset: the same
    trade; a different instant is not."""
    from zoneinfo import ZoneInfo

    from tests.ledger.tamper import rewrite_chain_from

    url = f"sqlite:///{tmp_path / 'j.sqlite'}"
    eng, w = chainless_engine(url)
    at = START - timedelta(hours=1)
    eng.apply(w.sign_one(sell("s", "a")), at)
    assert eng.apply(w.sign_one(buy("b", "b")), at).trades
    eng.journal.close()
    trade = next(r for r in Journal(url).rows() if r.kind == "trade")

    def with_slot(when):
        def edit(r, prev):
            if r.seq != trade.seq:
                return r.body
            body = json.loads(r.body)
            body["slot_start"] = when.isoformat()
            return json.dumps(body, sort_keys=True, separators=(",", ":"))
        return edit

    rewrite_chain_from(Journal(url), trade.seq, with_slot(START.astimezone(ZoneInfo("Asia/Tokyo"))))
    assert replay(Journal(url)).trades[0].trade_id == trade.ref
    rewrite_chain_from(Journal(url), trade.seq, with_slot(START + SETTINGS.slot_length))
    with pytest.raises(JournalMismatch, match=rf"journal row {trade.seq} \(trade {trade.ref}\): differs"):
        replay(Journal(url))


def test_an_address_signs_for_one_participant_only(engine, wallets):
    rows = engine.journal.head[0]
    with pytest.raises(ValueError, match="already registered for 'a'"):
        engine.register({"mallory": wallets.keys["a"].address})
    with pytest.raises(ValueError, match="already registered for 'c'"):  # nor twice in one registration
        engine.register({"c": "0x" + "11" * 20, "d": "0x" + "11" * 20})
    assert engine.journal.head[0] == rows and "mallory" not in engine.addresses


def test_a_journal_of_the_old_signing_format_is_refused_by_name(tmp_path):
    from p2penergy.ledger.audit import audit
    from p2penergy.ledger.engine import JournalMismatch
    from p2penergy.ledger.journal import Journal

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    journal = Journal(url)
    journal.append("genesis", {"format_version": 2, "chain": "none", "chain_id": 1, "contract": "0x" + "00" * 20,
                               "operator": "0x" + "00" * 20, "market": SETTINGS.to_mapping()})
    journal.flush()
    with pytest.raises(JournalMismatch, match="format_version 2; this p2penergy reads formats 3 and 4"):
        Engine.open(journal)
    report = audit(journal, None)
    assert not report.ok and "format_version 2" in report.error
    journal.close()


def _ids_attack(engine: Engine, wallets: Wallets) -> list:
    """b takes a's predictable ids first (an order ``a-1``, a sell ``o-1`` it will trade with); a then
    sends its own ``a-1``, a buy ``o-1`` and a sell ``a-2``; b tries to cancel and modify a's ``a-2``."""
    at = START - timedelta(hours=1)
    results = [engine.apply(wallets.sign_one(sell("a-1", "b", energy=50, price="20")), at),
               engine.apply(wallets.sign_one(sell("o-1", "b", energy=80, price="10")), at),
               engine.apply(wallets.sign_one(sell("a-1", "a", energy=100, price="11")), at),
               engine.apply(wallets.sign_one(buy("o-1", "a", energy=80, price="12")), at),
               engine.apply(wallets.sign_one(sell("a-2", "a", energy=60, price="11")), at)]
    for action in (Cancel("a-2", "b", at), Modify("a-2", "b", 1, Decimal("11"), at), Cancel("never-used", "b", at)):
        results.append(engine.apply(wallets.sign("b", [action]), at))
    return results


def test_order_ids_are_each_participants_own(engine, wallets, tmp_path):
    """Issue 12: another participant cannot take an agent's predictable id first, nor touch or probe its
    orders by id; the journal replays exactly (the audit re-applies every action)."""
    took_a1, took_o1, own_a1, own_o1, own_a2, cancel_theirs, modify_theirs, cancel_none = _ids_attack(engine,
                                                                                                       wallets)
    assert took_a1.accepted and took_o1.accepted and own_a2.accepted
    assert own_a1.accepted and own_a1.rejected == []  # a's id is a's, whatever b sent first
    assert [(t.buy_id, t.buyer, t.sell_id, t.seller) for t in own_o1.trades] == [("o-1", "a", "o-1", "b")]
    # b's cancel and modify of a's id find nothing, exactly as an id nobody used: b learns nothing
    assert [(r.field, r.reason) for r in cancel_theirs.rejected] == [
        ("id", "order 'a-2': id: no open order with this id")]
    assert [(r.field, r.reason) for r in cancel_none.rejected] == [
        ("id", "order 'never-used': id: no open order with this id")]
    assert [(r.field, r.reason) for r in modify_theirs.rejected] == [
        ("id", "order 'a-2': id: no open order with this id")]
    assert engine.exchange.remaining_wh("a-2", "a") == 60 and engine.exchange.remaining_wh("a-2", "b") == 0
    assert engine.exchange.remaining_wh("a-1", "a") == 100 and engine.exchange.remaining_wh("a-1", "b") == 50
    # a's own cancel takes its own order, not b's
    assert engine.apply(wallets.sign("a", [Cancel("a-1", "a", START - timedelta(hours=1))]),
                        START - timedelta(hours=1)).cancelled_wh == 100
    assert engine.exchange.remaining_wh("a-1", "b") == 50
    # an id used twice by the same participant is refused, saying it is its own
    again = engine.apply(wallets.sign_one(sell("a-1", "b", energy=5)), START - timedelta(hours=1))
    assert [r.field for r in again.rejected] == ["id"] and "this participant" in again.rejected[0].reason
    trade_rows = [json.loads(r.body) for r in rows_of(engine, "trade")]
    assert [(b["buy_id"], b["buyer"], b["sell_id"], b["seller"]) for b in trade_rows] == [("o-1", "a", "o-1", "b")]
    engine.commit_slot(START)
    report = audited(engine, tmp_path / "run")
    assert report.ok, report.error
    rebuilt = replay(Journal(engine.journal.url))
    assert [(t.buy_id, t.sell_id) for t in rebuilt.trades] == [("o-1", "o-1")]


def test_a_format_3_journal_is_replayed_with_its_one_id_space(tmp_path):
    """A journal written before ids were scoped (format 3) refused a second participant's use of an id;
    it is replayed (and continued) by its own rule, so its refusals replay exactly."""
    from p2penergy.ledger.audit import audit

    url = f"sqlite:///{tmp_path / 'v3.sqlite'}"
    journal = Journal(url)
    journal.append("genesis", {"format_version": 3, "chain": "none", "chain_id": 1, "contract": "0x" + "00" * 20,
                               "operator": "0x" + "00" * 20, "market": SETTINGS.to_mapping()})
    journal.flush()
    engine = Engine.open(journal)
    wallets = Wallets(engine.domain, 11)
    engine.register(wallets.add(["a", "b"]))
    took_a1, _, own_a1, own_o1, _, cancel_theirs, _, _ = _ids_attack(engine, wallets)
    assert took_a1.accepted and own_a1.rejected[0].reason == "order 'a-1': id: already used on this exchange"
    assert own_o1.rejected and cancel_theirs.rejected[0].field == "participant"  # format 3 told these apart
    engine.close_slot(START)
    engine.close()
    reopened = Engine.open(Journal(url))
    assert reopened.exchange.remaining_wh("a-1", "b") == 0 and reopened.exchange.remaining_wh("a-2", "a") == 0
    assert len(list(reopened.journal.rows())) > 8
    report = audit(Journal(url), None)
    assert report.ok, report.error


def test_site_limits_are_journalled_in_the_genesis_and_replayed(tmp_path, engine):
    """The CDA's per-site limits live in the genesis row: the engine matches within them, a replay
    (restart, audit) builds its exchange with them and gets the same cut trade; a journal without
    limits has no such key; a malformed limit is named."""
    eng = create_run_engine(SETTINGS, run_dir=tmp_path / "limited", seed=11,
                            site_limits={"a": SiteLimitsWh(import_wh=0, export_wh=60)})
    w = Wallets(eng.domain, 11)
    eng.register(w.add(["a", "b"]))
    eng.apply(w.sign("a", [sell("s1", "a")]), START - timedelta(hours=1))
    applied = eng.apply(w.sign("b", [buy("b1", "b")]), START - timedelta(hours=1))
    assert [t.energy_wh for t in applied.trades] == [60]  # a may sell 60 Wh in the slot
    eng.close_slot(START)
    eng.close()
    assert json.loads(rows_of(eng, "genesis")[0].body)["site_limits"] == {"a": {"import_wh": 0, "export_wh": 60}}
    assert "site_limits" not in json.loads(rows_of(engine, "genesis")[0].body)
    rebuilt = replay(Journal(eng.journal.url))
    assert rebuilt.trades == applied.trades
    assert audit_run(tmp_path / "limited").ok
    journal = Journal(eng.journal.url)
    try:
        def negative(row, _prev):
            if row.kind != "genesis":
                return row.body
            body = json.loads(row.body)
            body["site_limits"]["a"]["export_wh"] = -1
            return canonical_json(body)
        rewrite_chain_from(journal, 1, negative)
        with pytest.raises(JournalMismatch, match=r"row 1 \(genesis\): malformed.*site_limits\.a\.export_wh"):
            Engine.open(journal)
    finally:
        journal.close()


def test_the_scoped_exchange_keys_an_order_as_replace_would() -> None:
    # ScopedExchange builds the keyed order from its fields (speed only): the same order as
    # dataclasses.replace, every field kept, for a tagged sell and a buy with requirements
    from p2penergy.ledger.order_scope import _with_id

    sell = Order("s-1", "house-01", "sell", START, 1500, Decimal("16.15"), START - timedelta(hours=1),
                 tag=Tag.of(source="solar", producer="house-01", device="house-01-pv", site="house-01"))
    buy = Order("b-1", "house-02", "buy", START, 700, Decimal("20"), START - timedelta(minutes=30),
                requirements=(Requirement.of({"source": ["solar"]}, Decimal("1.5")), Requirement.of({}, Decimal(0))))
    for order in (sell, buy):
        keyed = _with_id(order, order.order_id + "\x00" + order.participant)
        want = replace(order, order_id=order.order_id + "\x00" + order.participant)
        assert keyed == want and repr(keyed) == repr(want)
