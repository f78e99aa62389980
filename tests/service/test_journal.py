"""Journal first: a failed journal write refuses the order and leaves nothing behind; closed
slots are committed to a real EVM node (anvil) with the Merkle roots of their journal rows."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from tests.ledger.conftest import anvil_url  # noqa: F401  (the fixture)
from tests.ledger.nodes import TEST_OPERATOR
from tests.service.conftest import START, key, now_of, order, register, run_server, service_settings
from tests.service.test_api import depth, signed_body

from p2penergy.ledger.engine import leaf_of, unix_seconds
from p2penergy.ledger.merkle import merkle_root
from p2penergy.service.client import HttpMarketAccess


def fail_inserts_of(db_url: str, ref: str) -> None:
    """Make the database refuse to insert any journal row with ``ref`` (a disk that "fails" for one order)."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(f"CREATE TRIGGER fail BEFORE INSERT ON journal WHEN NEW.ref = '{ref}' "
                              "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
        else:
            conn.execute(text(f"CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                              f"IF NEW.ref = '{ref}' THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$"))
            conn.execute(text("CREATE TRIGGER fail BEFORE INSERT ON journal FOR EACH ROW EXECUTE FUNCTION fail()"))
    engine.dispose()


def test_an_order_the_journal_cannot_hold_is_refused_and_forgotten(server):
    register(server.url, "s", "b")
    s, b = HttpMarketAccess(server.url, key("s")), HttpMarketAccess(server.url, key("b"))
    now = now_of(server.url)
    s.submit(order("s1", "s", "sell", 500, "10.00", now))
    fail_inserts_of(server.settings.db_url, "boom")
    body = signed_body(b, order("boom", "b", "buy", 300, "12.00", now))
    r = httpx.post(f"{server.url}/api/orders", json=body)
    assert r.status_code == 503 and r.json()["field"] == "journal"
    # the trade it made in memory is gone with it: the offer is whole again, no trade is public
    assert depth(server.url)["sell"] == [{"price_per_kwh": "10.00", "energy_wh": 500}]
    assert httpx.get(f"{server.url}/api/trades").json() == []
    assert b.bill()["bought_wh"] == 0
    # the exchange goes on: the same nonce is still unused, a later order trades
    retry = signed_body(b, order("b2", "b", "buy", 300, "12.00", now), nonce=body["nonce"])
    assert httpx.post(f"{server.url}/api/orders", json=retry).status_code == 201
    assert depth(server.url)["sell"] == [{"price_per_kwh": "10.00", "energy_wh": 200}]


def test_closed_slots_are_committed_on_chain(tmp_path: Path, anvil_url: str, db_url: str,  # noqa: F811
                                            monkeypatch):
    monkeypatch.setenv("P2PENERGY_OPERATOR_KEY", TEST_OPERATOR.private_key.hex())
    # 600x: the 09:30 slot's gate (closes 09:50) closes 50 market minutes = 5 s after the start
    settings = service_settings(tmp_path, chain_url=anvil_url, speed=600.0, db_url=db_url)
    slot = START + timedelta(minutes=30)
    with run_server(settings) as srv:
        register(srv.url, "s", "b")
        s, b = HttpMarketAccess(srv.url, key("s")), HttpMarketAccess(srv.url, key("b"))
        now = now_of(srv.url)
        s.submit(order("s1", "s", "sell", 500, "10.00", now, slot=slot))
        b.submit(order("b1", "b", "buy", 300, "12.00", now, slot=slot))
        ex = srv.app.state.live
        deadline = time.monotonic() + 30
        while unix_seconds(slot) not in ex.committed:
            assert time.monotonic() < deadline, "slot was not committed"
            time.sleep(0.2)
        on_chain = ex.chain.commitment(unix_seconds(slot))
        rows = [r for r in ex.journal.rows() if r.slot_start == unix_seconds(slot)]
        assert on_chain.trades_root == merkle_root([leaf_of("trade", r.body) for r in rows if r.kind == "trade"])
        assert on_chain.orders_root == merkle_root([leaf_of(r.kind, r.body) for r in rows if r.kind == "order"])
        commit_row = next(r for r in rows if r.kind == "commit")
        assert on_chain.journal_seq < commit_row.seq
        assert ex.open_orders("s") == []  # the closed slot's offer is gone


def test_a_slot_closed_but_not_committed_before_a_crash_is_committed_on_start(anvil_url: str,  # noqa: F811
                                                                           db_url: str):
    from p2penergy.ledger.signing import Signed, sign_action
    from p2penergy.market import MarketSettings
    from p2penergy.service.clock import MarketClock
    from p2penergy.service.live import LiveExchange

    db = db_url
    clock = MarketClock.accelerated(START, 1.0)
    ex = LiveExchange.open(db, MarketSettings.demonstration(), clock, chain_url=anvil_url, operator=TEST_OPERATOR)
    ex.register("s", key("s").address)
    slot = START + timedelta(minutes=30)
    o = order("s1", "s", "sell", 100, "10", clock.now(), slot=slot)
    signed = sign_action(key("s"), ex.domain, o, 1)
    ex.submit(Signed(o, signed.nonce, signed.signature))
    assert ex.chain_writes.wait_idle(30)  # the registration is on chain
    ex.stop_chain_writes()  # "crash" after closing (commit row journalled), before the transaction
    assert ex.close_due(slot + timedelta(hours=1)) == [slot]
    assert ex.chain.commitment(unix_seconds(slot)) is None
    ex.journal.close()
    again = LiveExchange.open(db, MarketSettings.demonstration(), clock, chain_url=anvil_url, operator=TEST_OPERATOR)
    assert again.commit_pending() == [slot]
    assert again.chain_writes.wait_idle(30)
    assert again.chain.commitment(unix_seconds(slot)) is not None and unix_seconds(slot) in again.committed
    assert again.commit_pending() == []
    again.stop_chain_writes()
