"""One whole run: data, learning, the utility-only baseline, the P2P month, bills and results.

This is the product's main job (``p2penergy simulate``). It is deterministic: the same
scenario, period, mechanism and seed give the same bills to the yen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from p2penergy.agents.agent_forecasters import fit_agent_forecasters
from p2penergy.agents.forecast_pool import forecast_workers, split_forecast_sites
from p2penergy.agents.gateway import ForecastKit
from p2penergy.agents.issued_weather import weather_source
from p2penergy.agents.plan_pool import PLAN_WORKER_KIND, SpeculationCount, plan_workers
from p2penergy.agents.trader import AgentConfig
from p2penergy.agents.worker_pools import WORKER_KINDS
from p2penergy.community import CAR_KIND, Community
from p2penergy.ledger.keys import Key
from p2penergy.ledger.run_folder import create_run_engine
from p2penergy.ledger.wallets import Wallets
from p2penergy.market.book import SiteLimitMap
from p2penergy.network.fees import TradeFees, trade_fees
from p2penergy.network.from_scenario import scenario_feeder, scenario_market_limits
from p2penergy.network.hosting import market_limits
from p2penergy.network.operating import baseline_slot_limits
from p2penergy.network.run import NetworkRuns, network_runs
from p2penergy.outage import Outage
from p2penergy.provenance.metrics import renewable_driving_share
from p2penergy.scenario.generate import generate
from p2penergy.scenario.model import Scenario
from p2penergy.sim.build import build_community
from p2penergy.sim.costs import Cost, month_costs
from p2penergy.sim.ledger_hook import LedgerHook
from p2penergy.sim.loop import LoopConfig, SlotHook, run_baseline, run_p2p
from p2penergy.sim.provenance_hook import ProvenanceHook
from p2penergy.sim.records import RunRecords
from p2penergy.sim.results import GroupResult, group_results, kpis, reproduces_demonstration

AGENT_MODES: dict[str, tuple[AgentConfig, int]] = {
    # the demonstration's agents: economy mode, plan every 2 h, revise a slot within 2 h of delivery
    "demonstration": (AgentConfig(), 4),
    # the optimising agents at their best: re-forecast and re-plan every slot, and revise each
    # slot's orders only in the last step before its gate closes (with the freshest forecast).
    # Measured, August 2020: within a few tenths of a point of the default for all
    # participants (README); prosumers gain, consumers lose a little.
    "best": (AgentConfig(revise_slots=1), 1),
    # the demonstration's agents with the forecasting and hedging before issue 14, for the ablation:
    # one gradient-boosting model per target for every site, point forecasts, and homes without
    # storage trading a fixed 70 % of a forecast deficit and 80 % of a surplus
    "point-forecasts": (AgentConfig(forecaster="gradient_boosting", hedge="fixed"), 4),
}


@dataclass(frozen=True, slots=True)
class SimulationOptions:
    """What to run. ``period``: the report month (default: the scenario's); ``days`` and
    ``first_day``: only that many days of it from that day of the month (quick runs);
    learning uses the ``history_days`` before the first reported day.

    ``green``: agents plan in green mode (prefer renewable-tagged energy at a bounded extra
    cost, and bid a premium for it). ``baseline_export_credit``: overrides the scenario's
    ``[baseline] export_credit`` (``own-scheme``, ``none`` or a buyback scheme). ``ledger``: sign,
    journal and commit every slot (journal in ``run_dir`` unless ``db_url``; chain in-process
    unless ``chain_url``, which needs ``operator``, the contract operator's own key: see
    ``ledger/keys.py``). ``forecast_workers``: split each step's forecasts across this many
    processes (inside a sweep's Dask task: tasks on its cluster; the same forecasts, so the same
    bills; worth it for large communities only, docs/sweep.md). ``plan_workers``: make each planning
    step's plans ahead in this many workers, each used where the agent's turn plans alike
    (``agents/plan_pool.py``; the same bills; the run's ``speculation`` counts them);
    ``plan_worker_kind``: threads of this process (HiGHS's solves run alongside each other and the
    agents' Python) or processes (inside a sweep's Dask task: tasks on its cluster either way).
    ``forecasts_ahead``: the next step's forecasts in a thread while the agents act (the same
    forecasts; off by default: slower on 2 cores, ``sim/loop.py``'s ``LoopConfig``).
    """

    mechanism: str = "cda"
    period: date | None = None
    ledger: bool = True
    run_dir: Path | None = None
    chain_url: str | None = None
    db_url: str | None = None
    seed: int | None = None
    agents: str = "demonstration"
    replan_slots: int | None = None
    history_days: int = 42
    days: int | None = None
    first_day: int = 1
    green: bool = False
    operator: Key | None = None
    baseline_export_credit: str | None = None
    forecast_workers: int = 1
    plan_workers: int = 1
    plan_worker_kind: str = PLAN_WORKER_KIND
    forecasts_ahead: bool = False
    outages: tuple[Outage, ...] = ()


@dataclass(slots=True)
class Simulation:
    """Everything a run produced."""

    community: Community
    options: SimulationOptions
    baseline: RunRecords
    p2p: RunRecords
    baseline_costs: dict[str, Cost]
    p2p_costs: dict[str, Cost]
    groups: dict[str, GroupResult]
    kpis: dict[str, Any]
    provenance: ProvenanceHook
    kit: ForecastKit
    timings_s: dict[str, float] = field(default_factory=dict)
    scenario_name: str = ""
    speculation: SpeculationCount = field(default_factory=SpeculationCount)
    network: NetworkRuns | None = None
    grid_fees: TradeFees | None = None

    @property
    def reproduces_demonstration(self) -> bool:
        """Whether the demonstration's published figures apply to this run (sim/results.py)."""
        return reproduces_demonstration(self.scenario_name, self.community)


def simulate(scenario: Scenario, options: SimulationOptions, hooks: Sequence[SlotHook] = (),
             progress: Callable[[int, int], None] | None = None) -> Simulation:
    """Run baseline and P2P for the report month; learning uses only the weeks before it."""
    if options.agents not in AGENT_MODES:
        raise ValueError(f"agents: must be one of {', '.join(AGENT_MODES)}, got {options.agents!r}")
    if options.forecast_workers < 1:
        raise ValueError(f"forecast_workers: must be at least 1, got {options.forecast_workers}")
    if options.plan_workers < 1:
        raise ValueError(f"plan_workers: must be at least 1, got {options.plan_workers}")
    if options.plan_worker_kind not in WORKER_KINDS:
        raise ValueError(f"plan_worker_kind: one of {', '.join(WORKER_KINDS)}, got {options.plan_worker_kind!r}")
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - clock
        clock = now

    if options.mechanism != scenario.market.mechanism:
        # the market's settings carry the mechanism: the journal's replay and audit read it there
        scenario = scenario.model_copy(update={"market": replace(scenario.market, mechanism=options.mechanism)})
    month = (options.period or scenario.period.report_month).replace(day=1)
    if options.period is not None:
        scenario = scenario.model_copy(update={"period": replace_period(scenario, month)})
    if options.baseline_export_credit is not None:
        scenario = scenario.with_baseline_export_credit(options.baseline_export_credit, "baseline_export_credit")
    seed = scenario.scenario.seed if options.seed is None else options.seed
    if seed != scenario.scenario.seed:
        scenario = scenario.model_copy(update={"scenario": scenario.scenario.model_copy(update={"seed": seed})})
    first = month + timedelta(days=options.first_day - 1)
    start = max(scenario.period.start, first - timedelta(days=options.history_days))
    next_month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    # one more day after the month (when the period has it) so agents can plan "tomorrow"
    data = generate(scenario, start, min(scenario.period.end, next_month))
    community = build_community(scenario, data, seed, options.days, options.first_day, options.outages)
    lap("data")
    feeder = scenario_feeder(scenario)  # before the month: a bad feeder file fails at once
    if feeder is not None:
        lap("feeder")
    site_limits = scenario_market_limits(scenario, feeder, options.mechanism, community.settings.slot_minutes)
    if feeder is not None and scenario.network is not None and scenario.network.export_control:
        # the same caps as the CDA's limits (its sites are the community's homes and office): one search
        sites = [p.id for p in community.participants.values() if p.kind != CAR_KIND]
        caps = site_limits if site_limits is not None else market_limits(feeder, sites, community.settings.slot_minutes)
        community = with_export_control(community, caps)
    limits_on = feeder is not None and scenario.network is not None and scenario.network.market_limits
    agent_config, replan = AGENT_MODES[options.agents]
    kit = fit_forecasters(community, seed, agent_config.forecaster)
    lap("learning")
    baseline = run_baseline(community)
    baseline_costs = month_costs(community, baseline, community.baseline_export_credit)
    lap("baseline")
    prov = ProvenanceHook(community)
    if options.green:
        agent_config = replace(agent_config, mode="green")
    call_limits = None
    if limits_on and options.mechanism != "cda":
        assert feeder is not None
        call_limits = baseline_slot_limits(feeder, community, baseline)
        lap("network limits")
    config = LoopConfig(mechanism=options.mechanism, replan_slots=options.replan_slots or replan, agent=agent_config,
                        site_limits=site_limits, call_limits=call_limits, forecasts_ahead=options.forecasts_ahead)
    speculation = SpeculationCount()
    ledger_hook = None
    if options.ledger:
        engine = create_run_engine(community.settings, run_dir=options.run_dir, db_url=options.db_url,
                                   chain_url=options.chain_url, seed=seed, pipelined=options.chain_url is None,
                                   operator=options.operator, registry=prov.registry, site_limits=site_limits)
        wallets = Wallets(engine.domain, seed)
        engine.register(wallets.add(sorted(community.participants)))
        ledger_hook = LedgerHook(engine, wallets, prov)
    lap("ledger setup")
    try:
        # with the ledger, the engine settles certificates: its hook takes the provenance hook's place
        with forecast_workers(kit, options.forecast_workers) as workers, \
                plan_workers(options.plan_workers, options.plan_worker_kind) as planners:
            runner = partial(split_forecast_sites, workers=workers) if workers is not None else None
            if workers is not None or planners is not None:
                lap("workers start")
            p2p = run_p2p(community, kit, config, [ledger_hook or prov, *hooks], progress, ledger_hook, runner,
                          planners, speculation)
    finally:
        if ledger_hook is not None:
            ledger_hook.engine.close()
    lap("p2p month")
    if ledger_hook is not None:
        timings["chain (within p2p month)"] = ledger_hook.engine.chain_seconds
    fees = trade_fees(community, p2p.trades, community.settings.grid_fees, feeder)
    p2p_costs = month_costs(community, p2p, grid_fees=fees.by_participant)
    share = renewable_driving_share(prov.events).total.value
    result_groups = group_results(community, baseline_costs, p2p_costs)
    indicators = kpis(community, baseline, p2p, share)
    lap("settlement")
    network = None
    if feeder is not None:
        network = network_runs(feeder, community, baseline, p2p)
        lap("power flow")
    return Simulation(community, options, baseline, p2p, baseline_costs, p2p_costs, result_groups, indicators,
                      prov, kit, timings, scenario.scenario.name, speculation, network, fees)


def with_export_control(community: Community, caps: SiteLimitMap) -> Community:
    """The community with each home's meter capped at its export limit per slot in ``caps`` (the
    CDA's limits: the smaller of its hosting capacity alone and its equal share, network/hosting.py
    ``market_limits``); the office on the supply bus and cars keep none."""
    participants = {pid: replace(p, export_cap_wh=caps[pid].export_wh) if pid in caps else p
                    for pid, p in community.participants.items()}
    return replace(community, participants=participants)


def replace_period(scenario: Scenario, month: date) -> Any:
    """The scenario's period with ``month`` as the report month (the data must cover it)."""
    period = scenario.period
    end = max(period.end, (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1))
    start = min(period.start, month)
    return period.model_copy(update={"report_month": month, "start": start, "end": end})


def fit_forecasters(community: Community, seed: int, forecaster: str = "selected") -> ForecastKit:
    """Load and PV models trained on the slots before the report month (walk-forward cut);
    ``forecaster``: one of :data:`~p2penergy.agents.agent_forecasters.AGENT_FORECASTERS`."""
    index = community.index
    cutoff: datetime = community.slot(community.month.start)
    weather = weather_source(community.weather, community.weather_forecasts, seed)
    history = {
        p.id: pd.DataFrame({"load_wh": p.load_wh, "pv_wh": p.pv_wh}, index=index)
        for p in community.participants.values() if p.kind != CAR_KIND
    }
    pv_sites = frozenset(pid for pid in history if community.participants[pid].has_pv)
    load, pv = fit_agent_forecasters(history, weather, cutoff, seed, community.days_off, pv_sites, forecaster)
    return ForecastKit(load=load, pv=pv, weather=weather)

