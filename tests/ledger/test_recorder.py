from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from conftest import SETTINGS, START, run_market
from p2penergy.ledger import Journal, Ledger, ReplayError, SignatureError, replay
from p2penergy.ledger.replay import balances_of
from p2penergy.market import Order, Tag, make_exchange


@pytest.fixture
def ledger(tmp_path):
    led = Ledger.create(SETTINGS, run_dir=tmp_path / "run", seed=11)
    yield led
    led.close()


@pytest.mark.parametrize("mechanism", ["cda", "pay-as-clear"])
def test_replay_rebuilds_trades_and_balances(tmp_path, mechanism):
    led = Ledger.create(replace(SETTINGS, mechanism=mechanism), run_dir=tmp_path / mechanism, seed=11)
    live = run_market(led, slots=3)
    led.close()
    assert live["trades"], "the scenario must trade for this test to mean anything"
    rebuilt = replay(Journal(led.journal.url))
    assert rebuilt.trades == live["trades"]
    assert rebuilt.balances == balances_of(live["trades"])
    assert sum(b.paid for b in rebuilt.balances.values()) == sum(b.received for b in rebuilt.balances.values())


def test_run_folder_layout(ledger):
    run_market(ledger, slots=1)
    names = sorted(p.name for p in ledger.run_dir.iterdir())
    assert {"journal.sqlite", "chain-transactions.jsonl", "ledger.json"} <= set(names)
    kinds = {r.kind for r in ledger.journal.rows()}
    assert {"genesis", "participant", "batch", "order", "trade", "close", "meter", "certificate", "commit"} <= kinds


def test_submit_rejects_a_replayed_batch_before_the_book(ledger):
    ledger.register(["a"])
    ex = make_exchange(SETTINGS)
    order = Order("x1", "a", "sell", START, 100, Decimal("10"), START - timedelta(hours=1), tag=Tag.of(source="solar"))
    batch = ledger.sign("a", [order])
    ledger.submit(ex, batch)
    with pytest.raises(ReplayError, match="replayed"):
        ledger.submit(ex, batch)
    altered = replace(ledger.sign("a", [replace(order, order_id="x2")]),
                      entries=((replace(order, order_id="x2", energy_wh=9999), 1),))
    with pytest.raises(SignatureError, match="altered or forged"):
        ledger.submit(ex, altered)
    assert ex.remaining_wh("x2") == 0


def test_book_refusals_are_reported_not_journaled(ledger):
    ledger.register(["a"])
    ex = make_exchange(SETTINGS)
    late = Order("x1", "a", "sell", START, 100, Decimal("10"), START + timedelta(minutes=25),
                 tag=Tag.of(source="solar"))
    result = ledger.submit(ex, ledger.sign_one(late))
    assert result.rejected and "gate" in result.rejected[0][1]
    assert not [r for r in ledger.journal.rows() if r.kind == "order"]


def test_meter_values_must_be_integers(ledger):
    with pytest.raises(ValueError, match=r"fields\.load_wh"):
        ledger.record_meter(START, "a", {"load_wh": 1.5})
