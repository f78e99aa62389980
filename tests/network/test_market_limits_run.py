"""A run with ``[network] market_limits = true``: in the CDA no home's P2P purchases or sales in a slot
pass its limit (hosting capacity alone and equal share, network/hosting.py), and the limits bind on a
weak feeder with heavy PV; with the ledger on, the CDA matches within the same limits (journalled in the
genesis row and re-applied by the replay: same trades and bills as without the ledger, the audit
passes and catches altered limits). A call auction clears
each slot within the feeder's linearised limits (network/auction.py) with the ledger on: every
constrained clearing against an independent LP, the journalled limits kept by the slot's trades, the
audit's replay clearing within them again (and catching limits loosened after the fact), every slot
balanced."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from tests.ledger.tamper import rewrite_chain_from
from tests.network.test_call_limits import independent_lp

from p2penergy.ledger.actions import canonical_json
from p2penergy.ledger.audit import audit, audit_run
from p2penergy.ledger.journal import Journal, sqlite_url
from p2penergy.market.book import site_limits_from_dict
from p2penergy.market.call_auction import clear_call
from p2penergy.market.trades import TradeSummary
from p2penergy.network.auction import ADMIT_TOLERANCE, SlotLimits, net_purchases
from p2penergy.network.from_scenario import scenario_feeder
from p2penergy.network.hosting import market_limits
from p2penergy.sim.physics import SlotMeter
from p2penergy.sim.simulate import SimulationOptions, simulate

EXAMPLES = Path(__file__).parents[2] / "examples"


def _weak_feeder_example():
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location("weak_feeder", EXAMPLES / "weak_feeder.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


@pytest.fixture(scope="module")
def cda_runs(tmp_path_factory):
    """One day of the CDA within the weak feeder's limits, ledger off and on (the same seed)."""
    ex = _weak_feeder_example()
    scenario = ex.heavy_pv_scenario(network=ex.network_table(True))
    feeder = scenario_feeder(scenario)
    assert feeder is not None
    folder = tmp_path_factory.mktemp("cda-limits")
    plain = simulate(scenario, SimulationOptions(days=1, history_days=14, ledger=False))
    journalled = simulate(scenario, SimulationOptions(days=1, history_days=14, mechanism="cda", run_dir=folder))
    return market_limits(feeder, ex.HOMES, 30), plain, journalled, folder


def _sums(trades) -> tuple[dict, dict]:
    bought, sold = defaultdict(int), defaultdict(int)
    for t in trades:
        bought[t.buyer, t.slot_start] += t.energy_wh
        sold[t.seller, t.slot_start] += t.energy_wh
    return bought, sold


def test_no_home_trades_past_its_limit_and_the_limits_bind(cda_runs):
    limits, plain, journalled, _ = cda_runs
    for sim in (plain, journalled):
        bought, sold = _sums(sim.p2p.trades)
        assert all(wh <= limits[s].import_wh for (s, _), wh in bought.items() if s in limits)
        assert all(wh <= limits[s].export_wh for (s, _), wh in sold.items() if s in limits)
        assert any(wh == limits[s].export_wh for (s, _), wh in sold.items() if s in limits)  # they bind


def test_the_cda_with_the_ledger_trades_and_bills_as_without_and_the_audit_passes(cda_runs):
    limits, plain, journalled, folder = cda_runs
    assert journalled.p2p.trades and [t.as_dict() for t in journalled.p2p.trades] == [
        t.as_dict() for t in plain.p2p.trades]
    assert journalled.p2p_costs == plain.p2p_costs
    journal = Journal(sqlite_url(folder / "journal.sqlite"), create=False)
    try:
        genesis = json.loads(next(journal.rows(kinds=("genesis",))).body)
    finally:
        journal.close()
    assert site_limits_from_dict(genesis["site_limits"]) == limits
    report = audit_run(folder)
    assert report.ok, report.error
    assert report.trades_replayed == len(journalled.p2p.trades)


def test_site_limits_altered_in_the_journal_fail_the_audit(cda_runs, tmp_path):
    """An operator who changes a home's journalled limit and re-hashes the whole journal (the commit
    rows' heads too) is caught by the replay itself: it matches within the altered limit and gets
    other trades than the journalled ones (the journal checked alone, so no chain check catches it)."""
    limits, _, journalled, source = cda_runs
    _, sold = _sums(journalled.p2p.trades)
    seller = next(s for (s, _), wh in sorted(sold.items()) if s in limits and wh == limits[s].export_wh)
    folder = tmp_path / "run"
    shutil.copytree(source, folder)
    journal = Journal(sqlite_url(folder / "journal.sqlite"), create=False)

    def edit(row, prev):
        body = json.loads(row.body)
        if row.kind == "genesis":
            body["site_limits"][seller]["export_wh"] -= 1
        elif row.kind == "commit":
            body["journal_head"] = prev.hex()
        else:
            return row.body
        return canonical_json(body)

    try:
        rewrite_chain_from(journal, 1, edit)
        report = audit(journal, None)
    finally:
        journal.close()
    assert not report.ok
    assert "replay" in report.error and "(trade" in report.error, report.error
    assert not audit_run(folder).ok


@pytest.fixture(scope="module")
def call_run(tmp_path_factory):
    """Two days of pay-as-clear within the weak feeder's limits, ledger on; every clearing within
    limits recorded (the real clearing runs; the wrapper only keeps its inputs and trades)."""
    ex = _weak_feeder_example()
    folder = tmp_path_factory.mktemp("call-limits")
    seen: list[tuple[list, SlotLimits, str, object, object]] = []
    clear = SlotLimits.clear

    def recording(self, orders, settings, slot_start, pricing, next_id):
        out = clear(self, orders, settings, slot_start, pricing, next_id)
        seen.append((list(orders), self, pricing, out, clear_call(orders, settings, slot_start, pricing)))
        return out

    mp = pytest.MonkeyPatch()
    mp.setattr(SlotLimits, "clear", recording)
    try:
        sim = simulate(ex.heavy_pv_scenario(network=ex.network_table(True)),
                       SimulationOptions(days=2, first_day=2, history_days=14, mechanism="pay-as-clear",
                                         run_dir=folder))
    finally:
        mp.undo()
    return sim, folder, seen


def _deals(clearing) -> list:
    return [(t.buy_id, t.sell_id, t.energy_wh, t.price_per_kwh) for t in clearing.trades]


def test_each_constrained_clearing_is_the_independent_lps_within_whole_wh(call_run):
    _, _, seen = call_run
    constrained = [(o, lim, pr, out, free) for o, lim, pr, out, free in seen if _deals(out) != _deals(free)]
    assert constrained, "the feeder's limits bound in some slot"
    costly = 0
    for orders, limits, pricing, out, free in constrained:
        prices = {t.tag: t.price_per_kwh for t in free.trades}
        lp, top_gain = independent_lp(orders, limits, pricing, prices)
        welfare = float(TradeSummary.of(out.trades).welfare)
        assert lp - (len(orders) + len(limits.rows)) * top_gain - 1e-9 <= welfare <= lp + 1e-9
        assert welfare <= float(TradeSummary.of(free.trades).welfare)
        costly += welfare < float(TradeSummary.of(free.trades).welfare)
        assert all(t.price_per_kwh == prices[t.tag] for t in out.trades)  # the price of the auction without
    assert costly, "the limits cost welfare in some slot"


def test_the_journal_holds_the_limits_its_trades_keep_and_the_audit_replays_them(call_run):
    sim, folder, _ = call_run
    journal = Journal(sqlite_url(folder / "journal.sqlite"), create=False)
    try:
        closes = [json.loads(r.body) for r in journal.rows(kinds=("close",))]
    finally:
        journal.close()
    limited = {datetime.fromisoformat(b["slot_start"]): SlotLimits.from_dict(b["network_limits"])
               for b in closes if "network_limits" in b}
    assert limited
    by_slot = defaultdict(list)
    for t in sim.p2p.trades:
        by_slot[t.slot_start].append(t)
    for slot, limits in limited.items():
        effect = limits.net_effect(net_purchases(by_slot[slot]))
        assert (effect <= limits.slack + ADMIT_TOLERANCE).all(), slot
    report = audit_run(folder)
    assert report.ok, report.error
    # every slot of every participant balances to the Wh
    for pid, account in sim.p2p.accounts.items():
        columns = account.columns
        for k in range(len(columns["load_wh"])):
            assert SlotMeter(**{f: int(v[k]) for f, v in columns.items()}).balance_wh() == 0, (pid, k)


def test_limits_loosened_after_the_fact_fail_the_audit(call_run, tmp_path):
    """An operator who widens a slot's journalled limits and re-hashes the journal is caught: the
    replay clears within the journalled limits again and gets other trades, or other limits."""
    _, source, _ = call_run
    folder = tmp_path / "run"
    shutil.copytree(source, folder)
    journal = Journal(sqlite_url(folder / "journal.sqlite"), create=False)
    try:
        row = next(r for r in journal.rows(kinds=("close",)) if "network_limits" in json.loads(r.body))
        body = json.loads(row.body)
        body["network_limits"]["slack"] = [s + 1.0 for s in body["network_limits"]["slack"]]
        altered = json.dumps(body, sort_keys=True, separators=(",", ":"))
        rewrite_chain_from(journal, row.seq, lambda r, _prev: altered if r.seq == row.seq else r.body)
    finally:
        journal.close()
    report = audit_run(folder)
    assert not report.ok
    assert f"journal row {row.seq} (close)" in report.error or "differs from what replaying gives" in report.error, \
        report.error


def test_export_control_keeps_every_home_within_its_export_limit_in_both_runs():
    ex = _weak_feeder_example()
    scenario = ex.heavy_pv_scenario(network=ex.network_table(False, export_control=True))
    feeder = scenario_feeder(scenario)
    assert feeder is not None
    caps = market_limits(feeder, ex.HOMES, 30)
    sim = simulate(scenario, SimulationOptions(days=1, first_day=3, history_days=14, ledger=False))
    curtailed = 0
    for records in (sim.baseline, sim.p2p):
        for pid, account in records.accounts.items():
            c = account.columns
            out = c["grid_export_wh"] + c["p2p_sell_wh"] - c["grid_import_wh"] - c["p2p_buy_wh"]
            if pid in caps:
                assert (out <= caps[pid].export_wh).all(), pid
                curtailed += int(c["curtailed_wh"].sum())
            else:
                assert not c["curtailed_wh"].any(), pid
            for k in range(len(c["load_wh"])):
                assert SlotMeter(**{f: int(v[k]) for f, v in c.items()}).balance_wh() == 0, (pid, k)
    assert curtailed > 0  # heavy PV on a weak feeder: the caps bind
    # the feeder stays within its band and ratings where only export broke them (no import limit here)
    assert sim.network is not None
    assert sim.network.figures()["p2p"]["peak_transformer_loading_pct"] <= 100.5
