"""Island mode (issue 18): no utility in an outage, critical loads first, every slot balanced to the Wh."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.ledger.tamper import rewrite_chain_from

from p2penergy.community import CAR_KIND, LOCATIONS, Community, load_shares
from p2penergy.ledger.audit import audit_run
from p2penergy.ledger.journal import Journal, sqlite_url
from p2penergy.market import Trade
from p2penergy.market.tags import UNTAGGED
from p2penergy.outage import parse_outage
from p2penergy.report.files import write_run
from p2penergy.report.html import render_report
from p2penergy.scenario.generate import generate
from p2penergy.scenario.load import load_scenario
from p2penergy.sim.build import build_community
from p2penergy.sim.island import fair_shares, island_of, island_slot
from p2penergy.sim.loop import LoopConfig, run_baseline, run_p2p
from p2penergy.sim.simulate import SimulationOptions, fit_forecasters, simulate

from .test_no_lookahead import Orders

OUTAGE = "2020-08-01T13:00+09:00/PT10H"


@pytest.fixture(scope="module")
def base():
    scenario = load_scenario()
    month = scenario.period.report_month
    data = generate(scenario, month - timedelta(days=21), month + timedelta(days=3))
    community = build_community(scenario, data, report_days=1, outages=(parse_outage(OUTAGE),))
    return community, fit_forecasters(community, 1)


def _stores(c: Community):
    for p in c.participants.values():
        store = p.car_store if p.kind == CAR_KIND else p.battery
        if store is not None:
            yield p.id, store


def _scaled(c: Community, i: int, load_x: float, pv_x: float) -> Community:
    people = {}
    for pid, p in c.participants.items():
        load, pv = p.load_wh.copy(), p.pv_wh.copy()
        load[i] = int(load[i] * load_x)
        pv[i] = int(pv[i] * pv_x)
        people[pid] = replace(p, load_wh=load, pv_wh=pv)
    return replace(c, participants=people)


def _trade(c: Community, i: int, n: int, buyer: str, seller: str, wh: int) -> Trade:
    price = Decimal(20)
    return Trade(f"t{n}", c.slot(i), f"b{n}", f"s{n}", buyer, seller, wh, price, Decimal(0), UNTAGGED, 0, price, price)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), load_x=st.sampled_from([0.0, 0.5, 1.0, 3.0, 30.0]), pv_x=st.sampled_from([0.0, 1.0, 4.0]),
       pooled=st.booleans())
def test_every_islanded_slot_balances_with_no_utility_and_critical_first(base, data, load_x, pv_x, pooled):
    community, _ = base
    i = data.draw(st.integers(community.month.start, community.month.stop - 1), label="slot")
    c = _scaled(community, i, load_x, pv_x)
    soc = {pid: data.draw(st.integers(s.soc_min_wh, s.soc_max_wh), label=f"soc {pid}") for pid, s in _stores(c)}
    ids = sorted(c.participants)
    trades = []
    if pooled:
        for n in range(data.draw(st.integers(0, 6), label="trades")):
            buyer, seller = data.draw(st.permutations(ids), label="pair")[:2]
            trades.append(_trade(c, i, n, buyer, seller, data.draw(st.integers(1, 5000), label="wh")))
    out = island_slot(c, i, {**dict.fromkeys(ids, 0), **soc}, trades, pooled=pooled)
    meters = out.meters
    assert set(meters) == set(ids)
    shed_tiers: dict[str, list[int]] = {}
    served_tiers: dict[str, list[int]] = {}
    for pid, m in meters.items():
        p = c.participants[pid]
        assert m.balance_wh() == 0, pid
        assert m.grid_import_wh == 0 and m.grid_export_wh == 0, pid
        if p.kind != CAR_KIND:
            need = load_shares(p).split_wh(int(p.load_wh[i]))
            shed = (m.shed_critical_wh, m.shed_essential_wh, m.shed_deferrable_wh)
            assert m.load_wh + sum(shed) == int(p.load_wh[i]) and min(shed) >= 0
            assert m.pv_wh + m.curtailed_wh == int(p.pv_wh[i]) and m.curtailed_wh >= 0
            key = island_of(p)
            for t in range(3):
                shed_tiers.setdefault(key, [0, 0, 0])[t] += shed[t]
                served_tiers.setdefault(key, [0, 0, 0])[t] += need[t] - shed[t]
            if m.curtailed_wh:  # sunshine thrown away only when no load of the site was left unserved
                assert sum(shed) == 0, pid
        store = p.car_store if p.kind == CAR_KIND else p.battery
        if store is not None:
            assert store.soc_min_wh <= m.soc_wh <= store.soc_max_wh
        if p.kind == CAR_KIND and LOCATIONS[int(p.location[i])] == "road":
            assert m.car_discharge_wh == 0 and m.car_charge_wh == 0
    assert sum(m.p2p_buy_wh for m in meters.values()) == sum(m.p2p_sell_wh for m in meters.values())
    if pooled:
        # critical loads first across each island (the homes' feeder, the office), then essential
        for key, shed_t in shed_tiers.items():
            if shed_t[0]:
                assert served_tiers[key][1] == 0 or _own_pv_only(c, i, meters), key
        traded = {t.trade_id for t in trades}
        assert all(t.trade_id not in traded and t.price_per_kwh == c.settings.price_max_per_kwh
                   for t in out.balancing)
    else:
        assert out.balancing == ()


def _own_pv_only(c: Community, i: int, meters) -> bool:
    """Essential loads served while critical ones were shed only from a site's own PV (which
    serves its own site first, tier by tier, before the pool): no store delivered."""
    return all(m.battery_discharge_wh == 0 and m.car_discharge_wh == 0 for m in meters.values())


def test_scarcity_serves_every_homes_critical_load_before_any_essential_load(base):
    community, _ = base
    i = community.month.start + 40  # 20:00: dark, the island on its batteries and cars
    c = _scaled(community, i, 30.0, 0.0)
    soc = {pid: s.soc_max_wh for pid, s in _stores(c)}
    out = island_slot(c, i, {**dict.fromkeys(c.participants, 0), **soc}, [])
    homes = {pid: m for pid, m in out.meters.items() if c.participants[pid].kind == "home"}
    assert sum(m.shed_critical_wh for m in homes.values()) > 0, "the test needs a shortage of critical energy"
    assert sum(m.load_wh for m in homes.values()) > 0
    for pid, m in homes.items():
        need = load_shares(c.participants[pid]).split_wh(int(c.participants[pid].load_wh[i]))
        assert m.shed_essential_wh == need[1] and m.shed_deferrable_wh == need[2], pid
    # the office is an island of its own: in the dark it has only the cars at its chargers
    at_office = [pid for pid, p in c.participants.items()
                 if p.kind == CAR_KIND and LOCATIONS[int(p.location[i])] == "office"]
    office = out.meters["office"]
    assert office.load_wh == sum(out.meters[pid].car_discharge_wh for pid in at_office)
    assert sum(m.battery_discharge_wh for m in homes.values()) > 0


def test_fair_shares_fill_small_needs_first():
    assert fair_shares(10, [2, 100, 3]) == [2, 5, 3]
    assert fair_shares(100, [2, 7]) == [2, 7]
    assert fair_shares(5, [4, 4]) == [3, 2]
    assert sum(fair_shares(7, [0, 0, 0])) == 0


def test_nothing_is_imported_or_exported_during_an_outage(base):
    community, kit = base
    outage = community.outages[0]
    islanded = np.array([outage.covers(community.slot(community.month.start + k))
                         for k in range(community.month.stop - community.month.start)])
    assert islanded.sum() == 20
    for records in (run_baseline(community), run_p2p(community, kit, LoopConfig())):
        imported = sum(a.columns["grid_import_wh"] for a in records.accounts.values())
        exported = sum(a.columns["grid_export_wh"] for a in records.accounts.values())
        assert imported[islanded].sum() == 0 and exported[islanded].sum() == 0
        assert imported[~islanded].sum() > 0, "outside the outage the utility is there"
        served = sum(a.columns["load_wh"] for a in records.accounts.values())
        assert served[islanded].sum() > 0, "the island keeps some load on"
        for a in records.accounts.values():
            flows = {name: col[islanded] for name, col in a.columns.items()}
            inflow = (flows["pv_wh"] + flows["battery_discharge_wh"] + flows["car_discharge_wh"]
                      + flows["p2p_buy_wh"])
            outflow = flows["load_wh"] + flows["battery_charge_wh"] + flows["car_charge_wh"] + flows["p2p_sell_wh"]
            assert np.array_equal(inflow, outflow)


LEDGER_OUTAGE = "2020-08-01T10:00+09:00/PT6H"


@pytest.fixture(scope="module")
def ledger_runs(tmp_path_factory):
    """One day with a 6-hour outage, with the ledger (run folder, in-process chain) and without."""

    folders = []
    for ledger in (True, False):
        folder = tmp_path_factory.mktemp("ledger" if ledger else "noledger")
        options = SimulationOptions(days=1, history_days=14, ledger=ledger, run_dir=folder if ledger else None,
                                    outages=(parse_outage(LEDGER_OUTAGE),))
        sim = simulate(load_scenario(), options)
        write_run(sim, folder, render_report(sim))
        folders.append(folder)
    return folders


def _bills(folder):
    body = json.loads((folder / "results.json").read_text())
    return {k: v for k, v in body.items() if "timing" not in k}


def test_an_outage_run_with_the_ledger_bills_as_without_it_and_its_journal_audits(ledger_runs):
    with_ledger, without = ledger_runs
    assert _bills(with_ledger) == _bills(without)
    with sqlite3.connect(with_ledger / "journal.sqlite") as db:
        balancing = db.execute("SELECT slot_start FROM journal WHERE kind = 'balancing'").fetchall()
    outage = parse_outage(LEDGER_OUTAGE)
    slots = {s for (s,) in balancing}
    assert slots, "the island balanced some slot with balancing trades"
    assert all(outage.start.timestamp() <= s < outage.start.timestamp() + 6 * 3600 for s in slots)
    report = audit_run(with_ledger)
    assert report.ok, report.error
    assert report.slots_committed == 48


@pytest.mark.parametrize("change", ["energy", "buyer"])
def test_a_rehashed_balancing_row_fails_the_audit_naming_the_row(ledger_runs, tmp_path, change):
    """An operator who alters a balancing trade and re-hashes the journal after it is caught by the
    replay, which strikes the balancing trades again from the journalled meters."""
    folder = tmp_path / "run"
    shutil.copytree(ledger_runs[0], folder)
    journal = Journal(sqlite_url(folder / "journal.sqlite"), create=False)
    try:
        row = next(journal.rows(kinds=("balancing",)))
        body = json.loads(row.body)
        if change == "energy":
            body["energy_wh"] += 1
        else:
            body["buyer"] = body["seller"]
        altered = json.dumps(body, sort_keys=True, separators=(",", ":"))
        rewrite_chain_from(journal, row.seq, lambda r, _prev: altered if r.seq == row.seq else r.body)
    finally:
        journal.close()
    report = audit_run(folder)
    assert not report.ok
    assert f"journal row {row.seq} (balancing {row.ref})" in report.error, report.error
    assert "recomputed" in report.error


def _when(o):
    return o[3] if isinstance(o, tuple) else o.submitted_at


def test_an_unannounced_outage_is_not_foreseen_an_announced_one_is_prepared_for(base):
    community, kit = base
    outage = community.outages[0]
    assert outage.announced_hours is None
    announced = replace(outage, announced_hours=10.0)
    runs = {}
    for name, outages in (("none", ()), ("unannounced", (outage,)), ("announced", (announced,))):
        hook = Orders()
        records = run_p2p(replace(community, outages=outages), kit, LoopConfig(), [hook])
        runs[name] = (hook.placed, records)
    before_start = [[o for o in runs[n][0] if _when(o) < outage.start] for n in ("none", "unannounced")]
    assert before_start[0] and before_start[0] == before_start[1], "no agent acts on an outage it cannot know"
    assert [o for o in runs["announced"][0] if _when(o) < announced.announced_at] == \
        [o for o in runs["none"][0] if _when(o) < announced.announced_at]
    assert [o for o in runs["announced"][0] if _when(o) < outage.start] != before_start[0], \
        "an announced outage changes what the agents do before it"
    # and they store more for it: batteries and cars at the outage's start
    k = next(k for k in range(community.month.stop - community.month.start)
             if community.slot(community.month.start + k) == outage.start) - 1

    def stored(records):
        return sum(int(a.columns["soc_wh"][k]) for pid, a in records.accounts.items()
                   if community.participants[pid].battery is not None or community.participants[pid].kind == CAR_KIND)

    assert stored(runs["announced"][1]) > stored(runs["unannounced"][1])
