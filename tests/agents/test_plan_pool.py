"""Plans made ahead in parallel are used only where the agent's turn would plan the same: a run with
them equals the run without to the yen (issue 15: within one community, planning runs in parallel
with identical results)."""

from __future__ import annotations

import dataclasses
import math
from concurrent.futures import Future
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from p2penergy.agents.market_access import Fills, InProcessAccess, PriceTape
from p2penergy.agents.plan_input import Battery
from p2penergy.agents.plan_pool import (
    PLANS_AHEAD_PER_WORKER,
    DaskPlanWorkers,
    LocalPlanWorkers,
    plan_ahead,
    plan_each,
    plan_workers,
    worth_planning_ahead,
)
from p2penergy.agents.planner import plan, solved_in_closed_form
from p2penergy.agents.trader import AgentConfig, Observation, PlannedStep, TradingAgent, same_bits
from p2penergy.community import HOME_KIND, Participant
from p2penergy.ledger.journal import Journal, sqlite_url
from p2penergy.ledger.run_folder import JOURNAL_FILE
from p2penergy.market import MarketSettings, Order, make_exchange
from p2penergy.scenario.load import load_scenario, parse_scenario
from p2penergy.sim.simulate import Simulation, SimulationOptions, simulate
from p2penergy.sweeps.point import simulation_options
from p2penergy.sweeps.spec import parse_sweep


class _Here:
    """Plans each chunk in this process (what a worker does with it)."""

    workers = 2

    def __init__(self) -> None:
        self.sent: list[float] = []  # the sent inputs' first load values


    def submit(self, chunk) -> Future:
        future: Future = Future()
        self.sent += [inp.load_wh[0] for inp in chunk]
        future.set_result(plan_each(chunk))
        return future

    def close(self) -> None:
        pass


NOW = pd.Timestamp("2020-08-03 12:00", tz="Asia/Tokyo")
HORIZON = pd.date_range(NOW, periods=8, freq="30min")


class _Market:
    """A CDA with a home's agent and two other traders sharing the public price tape."""

    def __init__(self, who: str = "house-01", load_wh: float = 500.0) -> None:
        self.exchange = make_exchange(MarketSettings.demonstration(), "cda")
        tape, fills = PriceTape(opening_price=Decimal("25.00")), Fills()
        self.submitted: list[Order] = []
        self.home = InProcessAccess(self.exchange, who, tape, on_order=self.submitted.append, fills=fills)
        self.others = {who: InProcessAccess(self.exchange, who, tape, fills=fills) for who in ("house-02", "house-03")}
        zeros = np.zeros(48, dtype=np.int64)
        self.agent = TradingAgent(Participant(who, HOME_KIND, "consumer", zeros, zeros), AgentConfig())
        self.obs = Observation(NOW.to_pydatetime(), HORIZON, np.full(8, load_wh), np.zeros(8))

    def others_trade(self) -> None:
        """Two other participants trade a later slot: the public reference price moves."""
        slot, now = HORIZON[6].tz_convert("UTC").to_pydatetime(), NOW.to_pydatetime()
        self.others["house-02"].submit(Order("s1", "house-02", "sell", slot, 2000, Decimal("12.00"), now))
        assert self.others["house-03"].submit(Order("b1", "house-03", "buy", slot, 2000, Decimal("20.00"), now))


def test_a_plan_made_ahead_is_used_while_the_market_holds_and_replaced_when_it_moved() -> None:
    held, moved, alone = _Market(), _Market(), _Market()
    ahead = {name: plan_ahead([(m.agent, m.obs, m.home)], _Here()).get("house-01")
             for name, m in (("held", held), ("moved", moved))}
    assert held.agent.act(held.obs, held.home, ahead["held"])
    assert held.agent.last_plan is ahead["held"].made()
    moved.others_trade()
    alone.others_trade()
    def never() -> None:
        raise AssertionError("a turn that does not use the plan made ahead waited for it")

    unused = dataclasses.replace(ahead["moved"], made=never)
    assert not moved.agent.act(moved.obs, moved.home, unused)  # the reference price moved: planned afresh
    assert moved.agent.last_plan is not ahead["moved"].made()
    alone.agent.act(alone.obs, alone.home)
    assert moved.submitted == alone.submitted and moved.submitted
    assert moved.home.reference_price() != Decimal("25.00")


def test_a_plan_made_ahead_is_used_when_the_input_is_the_same_and_never_for_another_observation() -> None:
    m = _Market()
    ahead = plan_ahead([(m.agent, m.obs, m.home)], _Here()).get("house-01")
    # a read that differs in what the plan would read but builds the same input: the plan is the same
    other = dataclasses.replace(ahead.read, plan=dataclasses.replace(ahead.read.plan, reference=Decimal("24.00")))
    assert not other.plans_alike(ahead.read)
    assert m.agent.act(m.obs, m.home, PlannedStep(m.obs, other, ahead.input, ahead.made))
    assert m.agent.last_plan is ahead.made()
    twin = _Market()
    ahead = plan_ahead([(twin.agent, twin.obs, twin.home)], _Here()).get("house-01")
    copy = dataclasses.replace(twin.obs)
    assert not twin.agent.act(copy, twin.home, ahead)  # made for another observation
    assert twin.agent.last_plan is not ahead.made()


def test_an_agent_whose_last_plan_was_solved_in_closed_form_plans_in_its_turn() -> None:
    m = _Market()  # a home without PV or battery: its plan needs no LP
    assert worth_planning_ahead(m.agent)  # it has not planned yet
    assert m.agent.act(m.obs, m.home, plan_ahead([(m.agent, m.obs, m.home)], _Here()).get("house-01"))
    assert m.agent.last_input is not None and solved_in_closed_form(m.agent.last_input)
    assert not worth_planning_ahead(m.agent)
    assert plan_ahead([(m.agent, m.obs, m.home)], _Here()).get("house-01") is None
    stored = _Market()
    stored.agent.last_input = dataclasses.replace(
        m.agent.last_input, battery=Battery(capacity_wh=5000.0, power_w=2000.0, soc_wh=2500.0))
    assert worth_planning_ahead(stored.agent)
    assert plan_ahead([(stored.agent, stored.obs, stored.home)], _Here()).get("house-01") is not None


def test_plans_are_made_a_few_turns_ahead_from_the_market_after_the_turns_before() -> None:
    markets = [_Market(f"house-1{k}", 100.0 * (k + 1)) for k in range(7)]
    here = _Here()
    ahead = plan_ahead([(m.agent, m.obs, m.home) for m in markets], here)
    window = here.workers * PLANS_AHEAD_PER_WORKER
    assert here.sent == [100.0 * (k + 1) for k in range(window)]  # the first agents' when the step begins
    assert ahead.get("house-1" + str(window)) is None
    ahead.turn_over("house-10")  # after the first turn, the next agent's
    assert here.sent[-1] == 100.0 * (window + 1) and ahead.get("house-1" + str(window)) is not None
    ahead.turn_over("house-11")
    ahead.turn_over("house-12")
    assert len(here.sent) == len(markets)  # never past the step's last agent
    assert all(ahead.get(m.agent.participant.id).input.load_wh[0] == m.obs.load_wh[0] for m in markets)


def _workers_in_a_task() -> str:
    with plan_workers(2) as workers:
        return type(workers).__name__


def test_plans_made_on_a_dask_cluster_are_the_plans_made_here() -> None:
    from distributed import Client, LocalCluster

    m = _Market()
    home = plan_ahead([(m.agent, m.obs, m.home)], _Here()).get("house-01").input
    stored = dataclasses.replace(home, battery=Battery(capacity_wh=5000.0, power_w=2000.0, soc_wh=2500.0))
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0") as lc, \
            Client(lc) as client:
        workers = DaskPlanWorkers(2, client)
        plans = [workers.submit(chunk).result() for chunk in ([home], [stored, home])]
        # a sweep point's run (a Dask task) makes its plans ahead as tasks on the same cluster
        assert client.submit(_workers_in_a_task).result() == "DaskPlanWorkers"
    assert [len(chunk) for chunk in plans] == [1, 2]
    for made, inp in zip([*plans[0], *plans[1]], [home, stored, home], strict=True):
        assert same_bits(made, plan(inp))
    assert plans[1][0].soc_wh.any()  # the LP with storage, not only the closed form


def test_same_bits_is_bit_for_bit() -> None:
    a = np.array([1.0, math.nan, 0.0])
    assert same_bits(a, a.copy()) and not same_bits(a, np.array([1.0, math.nan, -0.0]))
    assert not same_bits(a, a.astype(np.float32)) and not same_bits(a, a[:2])
    assert same_bits(0.1 + 0.2, 0.30000000000000004) and not same_bits(0.0, -0.0) and not same_bits(1, 1.0)
    battery = Battery(capacity_wh=5000.0, power_w=2000.0, soc_wh=1000.0)
    assert same_bits((battery, None), (dataclasses.replace(battery), None))
    assert not same_bits(battery, dataclasses.replace(battery, soc_wh=np.nextafter(1000.0, 2000.0)))


def test_plan_workers_need_two_to_plan_ahead() -> None:
    with pytest.raises(ValueError, match="plan_workers"):
        LocalPlanWorkers(1)
    with pytest.raises(ValueError, match="worker kind"):
        LocalPlanWorkers(2, "fibres")
    with pytest.raises(ValueError, match="plan_worker_kind"):
        simulate(load_scenario(), SimulationOptions(plan_workers=2, plan_worker_kind="fibres"))
    with pytest.raises(ValueError, match="plan_workers"):
        simulate(load_scenario(), SimulationOptions(plan_workers=0))


def _run(mechanism: str, plan_workers: int, ledger: bool = False, tmp_path=None, kind: str = "threads") -> Simulation:
    # a Monday (the office open, cars at its chargers), homes with PV, batteries and cars among consumers
    community = {"homes": 6, "shares": {"consumer": 0.34, "pv_only": 0.33, "pv_battery_phv": 0.33}}
    point = parse_sweep({"days": 1, "first_day": 3, "history_days": 8, "mechanism": mechanism,
                         "community": community}).points[0]
    options = dataclasses.replace(simulation_options(point, tmp_path, ledger, plan_workers=plan_workers),
                                  plan_worker_kind=kind)
    return simulate(parse_scenario(point.scenario_data, point.label, point.base_dir), options)


def _same_run(a: Simulation, b: Simulation) -> None:
    assert a.p2p.trades == b.p2p.trades and a.p2p.trades
    assert a.p2p_costs == b.p2p_costs


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_a_cda_run_with_plans_made_ahead_by_two_workers_equals_the_run_without(kind: str) -> None:
    one, two = _run("cda", 1), _run("cda", 2, kind=kind)
    _same_run(one, two)
    assert one.speculation.planned_ahead == 0
    # every acting agent's plan was made ahead but those whose last plan was solved in closed form (homes
    # without a battery); in a CDA some turns found the market moved (a trade earlier in the step moved
    # the reference price) and planned afresh
    s = two.speculation
    assert s.planned_ahead + s.not_ahead == sum(1 for _ in one.community.participants) * 48 // 4
    assert s.planned_ahead >= len(one.community.participants) and s.not_ahead > 0  # all at the first step
    assert 0 < s.used < s.planned_ahead


def test_threads_plan_ahead_on_their_own_highs_and_make_the_plans_made_here() -> None:
    m = _Market()
    home = plan_ahead([(m.agent, m.obs, m.home)], _Here()).get("house-01").input
    inputs = [dataclasses.replace(home, battery=Battery(capacity_wh=5000.0, power_w=2000.0, soc_wh=float(soc)))
              for soc in range(0, 5000, 250)]
    with plan_workers(2, "threads") as workers:
        assert isinstance(workers, LocalPlanWorkers) and workers.kind == "threads"
        futures = [workers.submit(inputs[k::4]) for k in range(4)]  # four chunks at once on two threads
        made = [f.result() for f in futures]
    for k in range(4):
        for plan_made, inp in zip(made[k], inputs[k::4], strict=True):
            assert same_bits(plan_made, plan(inp))
    assert any(p.soc_wh.any() for chunk in made for p in chunk)  # LPs with storage, not only the closed form


def test_a_cda_run_with_the_ledger_and_plans_made_ahead_journals_the_same_rows(tmp_path) -> None:
    one, two = _run("cda", 1, True, tmp_path / "1"), _run("cda", 2, True, tmp_path / "2")
    _same_run(one, two)
    assert 0 < two.speculation.used < two.speculation.planned_ahead
    heads = [Journal(sqlite_url(tmp_path / w / JOURNAL_FILE)).head for w in ("1", "2")]
    assert heads[0] == heads[1] and heads[0][0] > 0  # the same journal, row for row


def test_a_call_auction_run_uses_every_plan_made_ahead() -> None:
    # nothing trades before a call auction's close: every agent's read at its turn is the step's opening one
    run = _run("pay-as-clear", 2)
    assert run.speculation.used == run.speculation.planned_ahead > 0 and run.p2p.trades
