"""results.json's ``resilience`` and the report's outage section, from a short run with an outage."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from p2penergy.community import CAR_KIND
from p2penergy.outage import parse_outage
from p2penergy.report.files import write_run
from p2penergy.report.html import render_report
from p2penergy.scenario.load import load_scenario
from p2penergy.sim.resilience import islanded_positions
from p2penergy.sim.simulate import SimulationOptions, simulate


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    outage = parse_outage("2020-08-01T17:00+09:00/PT6H")
    sim = simulate(load_scenario(), SimulationOptions(days=1, history_days=14, ledger=False, outages=(outage,)))
    folder = tmp_path_factory.mktemp("outage")
    write_run(sim, folder, render_report(sim))
    return sim, folder


def test_results_json_says_how_each_group_came_through(run):
    sim, folder = run
    body = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    res = body["resilience"]
    assert res["islanded_slots"] == 12
    assert res["outages"] == [{"start": "2020-08-01T17:00:00+09:00", "duration_hours": 6.0, "announced_hours": None}]
    ks = islanded_positions(sim.community)
    sites = [pid for pid, p in sim.community.participants.items() if p.kind != CAR_KIND]
    for way, records in (("p2p", sim.p2p), ("alone", sim.baseline)):
        groups = res[way]["groups"]
        assert {"all", "consumers", "prosumers", "office", "community"} <= set(groups)
        for g in groups.values():
            for key in ("critical_served_pct", "essential_served_pct", "deferrable_served_pct"):
                assert g[key] is None or 0 <= g[key] <= 100
        shed = sum(int(records.accounts[pid].columns[c][ks].sum()) for pid in sites
                   for c in ("shed_critical_wh", "shed_essential_wh", "shed_deferrable_wh"))
        assert groups["community"]["unserved_kwh"] == pytest.approx(shed / 1000, abs=0.05)
        first = res[way]["sites"]
        assert set(first) == set(sites)
        for pid, s in first.items():
            (hours,) = s["hours_to_first_critical_shortfall"]
            crit = records.accounts[pid].columns["shed_critical_wh"][ks]
            if hours is None:
                assert crit.sum() == 0
            else:
                assert crit[int(hours * 2)] > 0 and crit[: int(hours * 2)].sum() == 0
    # consumers without PV or battery have nothing of their own in the dark: the island is what they get
    assert res["alone"]["groups"]["consumers_no_phv"]["critical_served_pct"] == 0.0
    assert res["p2p"]["groups"]["consumers_no_phv"]["critical_served_pct"] > 0.0
    imported = sum(a.columns["grid_import_wh"][ks] for a in sim.p2p.accounts.values())
    assert not np.any(imported)


def test_the_report_shows_the_outage(run):
    _, folder = run
    page = (folder / "report.html").read_text(encoding="utf-8")
    text = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    assert "<h2>Through the outage</h2>" in text and "<table id='resilience'>" in text
    assert "2020-08-01T17:00+09:00 for 6 h, unannounced" in text
    assert "state of charge of batteries and cars, P2P island" in page
    assert "Community load by priority through the outage" in page


def test_the_ideal_operator_does_at_least_as_well_as_the_island_by_its_own_measure(run):
    """The island's schedule is one the ideal operator could have run (same devices, same stored
    energy at the start, one bus), so its objective is never worse."""
    from p2penergy.sim.ideal_island import PRIORITY_WEIGHTS, ideal_island_shed
    from p2penergy.sim.resilience import demand_by_priority

    sim, folder = run
    c = sim.community
    ks = islanded_positions(c)
    demand = {pid: demand_by_priority(c, pid, ks) for pid, p in c.participants.items() if p.kind != CAR_KIND}
    soc = {pid: int(sim.p2p.accounts[pid].columns["soc_wh"][ks[0] - 1]) for pid, p in c.participants.items()
           if p.battery is not None or p.kind == CAR_KIND}
    ideal = ideal_island_shed(c, ks, soc, demand)
    island = {pid: np.array([sim.p2p.accounts[pid].columns[f"shed_{t}_wh"][ks] for t in
                             ("critical", "essential", "deferrable")]) for pid in demand}

    def score(shed):
        return sum(PRIORITY_WEIGHTS[t] * (1 - shed[pid][t].sum() / demand[pid][t].sum())
                   for pid in demand for t in range(3) if demand[pid][t].sum())

    assert score(ideal) >= score(island) - 1e-3
    for pid in demand:
        assert (ideal[pid] >= 0).all() and (ideal[pid] <= demand[pid]).all()
    body = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert set(body["resilience"]) >= {"p2p", "alone", "ideal_operator"}
