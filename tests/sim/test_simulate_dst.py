"""Short simulated runs on the 15-minute euro market across both 2020 DST changes.

No euro scenario ships; the report tests' one is used (the shipped community on
``markets/eu-15min.toml``, Europe/Berlin, near Munich, with euro tariffs). Two days each:
28–29 March 2020 (96 + 92 slots) and 24–25 October 2020 (96 + 100 slots), with the ledger
on, so the journal, its replay and the chain commits see the repeated autumn hour.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from tests.report.test_report_run import euro_scenario
from tests.sim.test_simulate import audit_folder

from p2penergy.ledger.audit import open_run
from p2penergy.sim.simulate import SimulationOptions, simulate

# (first reported day, slots per local day)
CHANGES = {"spring": (date(2020, 3, 28), [96, 92]), "autumn": (date(2020, 10, 24), [96, 100])}


@pytest.fixture(scope="module", params=sorted(CHANGES))
def run(request, tmp_path_factory):
    first, per_day = CHANGES[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    sim = simulate(euro_scenario(), SimulationOptions(
        period=first.replace(day=1), first_day=first.day, days=2, history_days=9, run_dir=folder))
    return sim, first, per_day, folder


def order_body(row) -> dict:
    body = json.loads(row.body)
    return body.get("action", body)


def slots_of(sim) -> list[datetime]:
    c = sim.community
    return [c.slot(i) for i in range(c.month.start, c.month.stop)]


def test_every_slot_once_92_or_100_on_the_change_day(run):
    sim, first, per_day, _ = run
    slots = slots_of(sim)
    settings = sim.community.settings
    assert settings.timezone == "Europe/Berlin" and settings.currency == "EUR"
    assert slots == [*settings.slots_of_day(first), *settings.slots_of_day(first + timedelta(days=1))]
    assert len(slots) == sum(per_day) == len(set(slots))
    assert all(s.tzinfo is UTC for s in slots)
    assert [b - a for a, b in itertools.pairwise(slots)] == [timedelta(minutes=15)] * (len(slots) - 1)
    days = Counter(settings.local_day(s) for s in slots)
    assert [days[first], days[first + timedelta(days=1)]] == per_day
    assert [s.slot_start for s in sim.provenance.slots] == slots  # settled once each, in order
    for records in (sim.p2p, sim.baseline):
        assert all(len(acc.columns["load_wh"]) == len(slots) for acc in records.accounts.values())
    assert {t.slot_start for t in sim.p2p.trades} <= set(slots)


def test_energy_and_money_balance(run):
    sim = run[0]
    trades = sim.p2p.trades
    assert trades, "the agents traded"
    paid = sum((x.p2p_paid for x in sim.p2p_costs.values()), Decimal(0))
    received = sum((x.p2p_received for x in sim.p2p_costs.values()), Decimal(0))
    assert paid == received == sum((t.amount for t in trades), Decimal(0))
    for records in (sim.p2p, sim.baseline):
        for acc in records.accounts.values():
            c = acc.columns
            inflow = c["pv_wh"] + c["battery_discharge_wh"] + c["car_discharge_wh"] + c["p2p_buy_wh"] + c["grid_import_wh"]
            outflow = c["load_wh"] + c["battery_charge_wh"] + c["car_charge_wh"] + c["p2p_sell_wh"] + c["grid_export_wh"]
            assert (inflow == outflow).all()
    bought = sum(int(acc.columns["p2p_buy_wh"].sum()) for acc in sim.p2p.accounts.values())
    assert bought == sum(t.energy_wh for t in trades)


def test_journal_has_each_slot_closed_and_committed_once_and_audits(run):
    sim, _, _, folder = run
    slots = slots_of(sim)
    journal, chain = open_run(folder)
    try:
        closes = [r for r in journal.rows(kinds=("close",))]
        commits = [r for r in journal.rows(kinds=("commit",))]
        orders = [order_body(r) for r in journal.rows(kinds=("order",))]
        trade_rows = [(r.slot_start, r.ref) for r in journal.rows(kinds=("trade",))]
    finally:
        journal.close()
        chain.close()
    unix = [int(s.timestamp()) for s in slots]
    assert [r.slot_start for r in closes] == unix and [r.slot_start for r in commits] == unix
    assert [json.loads(r.body)["slot_start"] for r in commits] == [s.isoformat() for s in slots]
    ordered = {datetime.fromisoformat(o["slot_start"]) for o in orders}  # includes day-ahead orders past the run
    assert all(sim.community.settings.is_slot_start(s) for s in ordered)
    assert len(ordered & set(slots)) > len(slots) // 2
    report = audit_folder(folder)
    assert report.ok, report.error
    assert report.slots_committed == len(slots) and report.trades_replayed == len(trade_rows)
    # day-ahead trades for slots after the run's end are journalled (and replayed) too; the run's
    # own slots' trades are exactly the simulation's
    in_run = sorted(ref for slot, ref in trade_rows if slot in set(unix))
    assert in_run == sorted(t.trade_id for t in sim.p2p.trades)


# slots around each change that must each have orders of their own (UTC ISO strings in the journal):
# autumn: the two 02:15s; spring: 01:45 CET and 03:00 CEST, back to back
AROUND = {3: ("2020-03-29T00:45:00+00:00", "2020-03-29T01:00:00+00:00"),
          10: ("2020-10-25T00:15:00+00:00", "2020-10-25T01:15:00+00:00")}


def test_the_slots_around_the_change_have_their_own_orders(run):
    sim, first, _, folder = run
    journal, chain = open_run(folder)
    try:
        stamps = Counter(order_body(r)["slot_start"] for r in journal.rows(kinds=("order",)))
    finally:
        journal.close()
        chain.close()
    before, after = AROUND[first.month]
    assert stamps[before] > 0 and stamps[after] > 0
    local = [sim.community.settings.local(datetime.fromisoformat(s)) for s in stamps]
    assert len({t.isoformat() for t in local}) == len(stamps)  # distinct on the local clock too (offsets differ)
