"""The EVM node goes away mid-run and comes back: trading goes on, closed slots queue, /health
reports the lag, and once the node is back every slot is committed once, in order, and the
journal audits clean. A real anvil, stopped (SIGTERM: it writes its chain to ``--state``) and
started again on the same port from that state; a real service over HTTP."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from tests.ledger.conftest import anvil_url  # noqa: F401  (the fixture)
from tests.ledger.nodes import TEST_OPERATOR, Anvil
from tests.service.conftest import START, key, now_of, order, register, run_server, service_settings
from typer.testing import CliRunner

from p2penergy.cli import app
from p2penergy.ledger.chain import Chain
from p2penergy.ledger.engine import unix_seconds
from p2penergy.service.client import HttpMarketAccess

SPEED = 600.0  # market seconds per wall second: a 30-minute slot passes in 3 s
SLOTS = [START + timedelta(minutes=30 * k) for k in range(1, 7)]  # 09:30 ... 12:00; gates close 20 min in


def health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=10).json()


def wait_for(what: str, check, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_an_outage_of_the_node_delays_commits_but_loses_and_duplicates_none(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("P2PENERGY_OPERATOR_KEY", TEST_OPERATOR.private_key.hex())
    node = Anvil(tmp_path / "anvil-state.json")
    node.start()
    settings = service_settings(tmp_path, chain_url=node.url, speed=SPEED, commit_retry_first_s=0.1,
                                commit_retry_max_s=0.5)
    try:
        with run_server(settings) as srv:
            register(srv.url, "s", "b")
            s, b = HttpMarketAccess(srv.url, key("s")), HttpMarketAccess(srv.url, key("b"))
            now = now_of(srv.url)
            for k, slot in enumerate(SLOTS):
                s.submit(order(f"s{k}", "s", "sell", 500, "10.00", now, slot=slot))
                b.submit(order(f"b{k}", "b", "buy", 300, "12.00", now, slot=slot))
            first = SLOTS[0].isoformat()
            wait_for("the first slot's commitment", lambda: health(srv.url)["commits"]["last_committed_slot"] == first)

            node.stop()  # the node is gone; the exchange is not
            register(srv.url, "c")  # its registration on chain waits in the queue
            c = HttpMarketAccess(srv.url, key("c"))
            c.submit(order("c5", "c", "buy", 100, "12.00", now_of(srv.url), slot=SLOTS[-1]))
            late = s.submit(order("s-late", "s", "sell", 50, "11.00", now_of(srv.url), slot=SLOTS[-1]))
            assert late == []  # accepted, resting
            lag = wait_for("two slots closed but not committed",
                           lambda: (h := health(srv.url)["commits"])["pending_slots"] >= 2 and h)
            assert lag["oldest_pending_slot"] == SLOTS[1].isoformat()
            assert lag["last_committed_slot"] == first and lag["failures"] >= 1
            assert lag["last_error"]  # the node that does not answer, named
            assert health(srv.url)["status"] == "ok"  # trading goes on

            node.start()  # the same chain, on the same port
            last = SLOTS[-1].isoformat()
            wait_for("every slot committed", lambda: (h := health(srv.url)["commits"])["pending_slots"] == 0
                     and h["last_committed_slot"] == last)
            done = health(srv.url)["commits"]
            assert done["last_error"] is None and done["failures"] == 0 and done["oldest_pending_slot"] is None
            assert datetime.fromisoformat(now_of(srv.url).isoformat()) > SLOTS[-1]
            url = settings.db_url
        chain = Chain.connect(node.url, TEST_OPERATOR, read_only=True)
        journal_contract = _contract_of(url)
        chain.attach(journal_contract)
        assert chain.committed_slots() == [unix_seconds(slot) for slot in SLOTS]  # each once, in slot order
        assert chain.account_of("c").lower() == key("c").address.lower()
        audited = CliRunner().invoke(app, ["audit", "--db", url, "--chain-url", node.url])
        assert audited.exit_code == 0, audited.output
    finally:
        node.stop()


def _contract_of(db_url: str) -> str:
    import json

    from p2penergy.ledger.journal import Journal

    journal = Journal(db_url)
    try:
        return str(json.loads(journal.get_meta("contract")))
    finally:
        journal.close()


def test_a_registration_the_node_never_saw_is_sent_after_a_restart(anvil_url: str, db_url: str):  # noqa: F811
    from p2penergy.ledger.signing import sign_action
    from p2penergy.market import MarketSettings
    from p2penergy.service.clock import MarketClock
    from p2penergy.service.live import JournalCorrupt, LiveExchange

    db = db_url  # the journal on SQLite and on PostgreSQL
    clock = MarketClock.accelerated(START, 1.0)
    market = MarketSettings.demonstration()

    def reopen() -> LiveExchange:
        return LiveExchange.open(db, market, clock, chain_url=anvil_url, operator=TEST_OPERATOR)

    def trade_and_close(ex: LiveExchange, k: int) -> None:
        o = order(f"s{k}", "s", "sell", 100, "10", ex.clock.now(), slot=SLOTS[k])
        ex.submit(sign_action(key("s"), ex.domain, o, k + 1))
        ex.close_due(SLOTS[k] + timedelta(hours=2))

    ex = reopen()
    ex.register("s", key("s").address)
    trade_and_close(ex, 0)
    assert ex.chain_writes.wait_idle(30) and ex.chain.commitment(unix_seconds(SLOTS[0])) is not None
    ex.stop_chain_writes()  # the node is away from here on
    ex.register("late", key("late").address)
    ex.journal.close()

    again = reopen()  # starts: the chain lags the journal (a queued registration), it does not disagree
    again.commit_pending()
    assert again.chain_writes.wait_idle(30)
    assert again.chain.account_of("late").lower() == key("late").address.lower()
    again.stop_chain_writes()
    again.register("ghost", key("ghost").address)  # never sent ...
    trade_and_close(again, 1)
    pending = again.engine.unsent()[0]
    again.chain.commit_slot(*pending.call_args())  # ... yet a later commitment is on chain without it
    again.journal.close()
    try:
        reopen()
    except JournalCorrupt as exc:
        assert "'ghost'" in str(exc) and "before the journal head committed on chain" in str(exc)
    else:
        raise AssertionError("a registration the chain should hold but lacks was not caught")
