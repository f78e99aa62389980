"""The slot loop of the P2P run.

For each slot of the report month, in order:

1. every ``replan_slots`` slots, each agent (in a seeded random order) observes — its own
   forecasts from metered history before now — plans, and posts or revises orders;
2. the slot's book closes (a call auction clears now; a CDA has traded continuously);
3. meters read the actual load and PV; batteries and cars follow their physics
   (:mod:`p2penergy.sim.physics`); P2P trades settle as traded, the rest with the utility —
   or, in an outage, the island's controller runs the devices, sheds by priority and
   settles the rest in balancing trades (:mod:`p2penergy.sim.island`);
4. hooks (journal and chain, provenance) see the slot's orders, trades and meters.

The model owns the only random generator (seeded); agents never touch each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import numpy as np

from p2penergy.agents.gateway import (
    ForecastKit,
    ForecastRunner,
    SiteForecasts,
    SlotGrid,
    SlotReading,
    site_gateways,
)
from p2penergy.agents.market_access import Fills, InProcessAccess, PriceTape
from p2penergy.agents.plan_pool import PlanWorkers, SpeculationCount, plan_ahead
from p2penergy.agents.trader import AgentConfig, marginal_retail_per_kwh
from p2penergy.community import CAR_KIND, LOCATIONS, Community, Participant
from p2penergy.market import Order, Trade, make_exchange
from p2penergy.market.book import SiteLimitsWh
from p2penergy.market.exchange import ClearingLimits
from p2penergy.sim.island import island_slot
from p2penergy.sim.ledger_hook import LedgerHook
from p2penergy.sim.meters import ScenarioMeter, expected_readings, utility_only_charge_wh
from p2penergy.sim.physics import SlotMeter, dispatch_car, dispatch_site
from p2penergy.sim.records import RunRecords


class SlotHook(Protocol):
    """Observes the run without changing it (journal, chain, provenance, progress)."""

    def on_order(self, order: Order) -> None: ...

    def on_cancel(self, order_id: str, participant: str, now: datetime) -> None: ...

    def on_slot(self, slot_start: datetime, trades: Sequence[Trade], meters: dict[str, SlotMeter]) -> None: ...


@dataclass(frozen=True, slots=True)
class LoopConfig:
    """``mechanism``: cda, pay-as-clear or pay-as-bid; ``replan_slots``: agents act every N slots;
    ``site_limits``: the CDA's per-site P2P limits per slot (the feeder's hosting capacity);
    ``call_limits``: a call auction's network limits of the month's ``k``-th slot (``network/auction.py``);
    ``forecasts_ahead``: compute the next step's forecasts in a thread while the agents act
    (:class:`~p2penergy.agents.gateway.SiteForecasts`; the same forecasts). Off by default: on the
    2-core machine, idle, the month without the ledger took 65.6 s with it against 58.7 s without
    (2026-12-02 20:45 UTC, back to back; 76.2 against 61.0 CPU s): the thread's feature building
    holds the interpreter lock the agents' planning waits for, and costs more than the prediction
    it moves to the second core."""

    mechanism: str = "cda"
    replan_slots: int = 4
    agent: AgentConfig = field(default_factory=AgentConfig)
    site_limits: Mapping[str, SiteLimitsWh] | None = None
    call_limits: Callable[[int], ClearingLimits] | None = None
    forecasts_ahead: bool = False


def run_p2p(community: Community, kit: ForecastKit, config: LoopConfig, hooks: Sequence[SlotHook] = (),
            progress: Callable[[int, int], None] | None = None, ledger: LedgerHook | None = None,
            forecast_runner: ForecastRunner | None = None, plan_workers: PlanWorkers | None = None,
            speculation: SpeculationCount | None = None) -> RunRecords:
    """Simulate the report month with the exchange and the agents.

    With ``ledger``, the exchange is the engine's: agents' actions are signed, verified and
    journalled (one batch per agent step) and closings journalled; the ledger hook, among
    ``hooks``, journals meters and certificates and commits each slot. ``forecast_runner``:
    computes each step's forecasts (default in process, the next step's ahead in a thread while the
    agents act, used only where the meters read what was assumed; a split across processes gives the same).
    ``plan_workers``: make each step's plans ahead there, each used where the agent's turn plans
    alike (:mod:`~p2penergy.agents.plan_pool`; the same results); ``speculation`` counts them.
    """
    speculation = speculation if speculation is not None else SpeculationCount()
    settings = community.settings
    limits = dict(config.site_limits) if config.site_limits else None
    if ledger is not None and ledger.engine.site_limits != limits:
        raise ValueError("site_limits: the ledger's exchange matches within other per-site limits than the run's; "
                         "create its engine with the run's (create_run_engine(..., site_limits=...))")
    exchange = ledger.exchange if ledger is not None else make_exchange(settings, config.mechanism, limits)
    tape = PriceTape(opening_price=opening_reference(community))
    rng = np.random.default_rng(community.seed)
    index = community.index
    month = community.month
    n = month.stop - month.start
    participants = list(community.participants.values())
    records = RunRecords.empty([p.id for p in participants], n)
    slot_trades: list[Trade] = []

    def on_order(order: Order) -> None:
        for h in hooks:
            h.on_order(order)

    def on_cancel(order_id: str, who: str, now: datetime) -> None:
        for h in hooks:
            h.on_cancel(order_id, who, now)

    fills = Fills()
    access: dict[str, Any]
    if ledger is not None:
        access = {p.id: ledger.access(p.id, tape, slot_trades, fills, on_order, on_cancel) for p in participants}
    else:
        access = {p.id: _RecordingAccess(exchange, p.id, tape, on_order, on_cancel, slot_trades, fills)
                  for p in participants}
    grid = SlotGrid(index, settings.tz, settings.slot_minutes)
    # the next step's forecasts computed ahead in a thread, if asked and they are computed in process
    ahead = expected_readings(community) if config.forecasts_ahead and forecast_runner is None else None
    gateways = site_gateways(community, grid, month.start, SiteForecasts(kit, forecast_runner, ahead), config.agent,
                             config.replan_slots)
    meters = {pid: ScenarioMeter(p, grid) for pid, p in community.participants.items()}
    ids = sorted(gateways)

    for k in range(n):
        i = month.start + k
        now = community.slot(i)
        # each agent in a seeded random order when they plan; the order does not matter otherwise
        order = [gateways[str(pid)] for pid in (rng.permutation(ids) if k % config.replan_slots == 0 else ids)]
        turns = [(gw, gw.prepare(now, access[gw.participant.id], meters[gw.participant.id])) for gw in order]
        ahead = None
        if plan_workers is not None:  # the acting agents' plans made ahead, a few turns ahead of theirs
            ahead = plan_ahead([(gw.agent, obs, access[gw.participant.id]) for gw, obs in turns if obs is not None],
                               plan_workers)
        for gw, obs in turns:
            if obs is not None:
                made = ahead.get(gw.participant.id) if ahead is not None else None
                used = gw.agent.act(obs, access[gw.participant.id], made)
                if made is not None:
                    speculation.planned_ahead += 1
                    speculation.used += used
                elif ahead is not None:
                    speculation.not_ahead += 1
            if ledger is not None:
                access[gw.participant.id].flush(now)
            if ahead is not None:  # the next agents' plans from the market after this turn
                ahead.turn_over(gw.participant.id)
            if obs is not None and gw.participant.kind != CAR_KIND:
                records.log_forecast("load_wh", gw.participant.id, k, obs.load_wh[: config.replan_slots], n)
                if gw.participant.has_pv:
                    records.log_forecast("pv_wh", gw.participant.id, k, obs.pv_wh[: config.replan_slots], n)
        if ahead is not None:
            ahead.cancel()
        limits = config.call_limits(k) if config.call_limits is not None else None
        closed = ledger.close_slot(now, limits) if ledger is not None else exchange.close(now, limits)
        tape.record(list(closed.trades))
        fills.record(list(closed.trades))
        slot_trades.extend(closed.trades)
        mine = [t for t in slot_trades if t.slot_start == now]
        slot_trades[:] = [t for t in slot_trades if t.slot_start != now]
        island = None
        if community.islanded(i):
            island = island_slot(community, i, {pid: int(gw.soc_wh or 0) for pid, gw in gateways.items()}, mine)
            mine = [*mine, *island.balancing]
        positions = records.settle_trades(k, mine)
        slot_meters: dict[str, SlotMeter] = {}
        for p in participants:
            buy, sell = positions.get(p.id, (0, 0))
            site_meter = meters[p.id] if island is None else IslandReading(p, i, island.meters[p.id])
            meter = gateways[p.id].meter(now, buy, sell, site_meter)
            assert isinstance(meter, SlotMeter)
            records.accounts[p.id].put(k, meter)
            slot_meters[p.id] = meter
        for h in hooks:
            h.on_slot(now, mine, slot_meters)
        if progress is not None:
            progress(k + 1, n)
    return records


def run_baseline(community: Community) -> RunRecords:
    """The same devices and weather with no market: batteries charge from their own
    surplus, cars charge at home as fast as they can, everything else is the utility's.
    In an outage each site is alone on its own devices (sim/island.py, ``pooled=False``)."""
    month = community.month
    n = month.stop - month.start
    participants = list(community.participants.values())
    records = RunRecords.empty([p.id for p in participants], n)
    slot_minutes = community.settings.slot_minutes
    soc: dict[str, int] = {}
    for p in participants:
        store = p.car_store if p.kind == CAR_KIND else p.battery
        soc[p.id] = int(store.initial_soc_wh or 0) if store is not None else 0
    for k in range(n):
        i = month.start + k
        if community.islanded(i):
            island = island_slot(community, i, soc, [], pooled=False)
            for p in participants:
                records.accounts[p.id].put(k, island.meters[p.id])
                soc[p.id] = island.meters[p.id].soc_wh
            continue
        for p in participants:
            if p.kind == CAR_KIND:
                assert p.car_store is not None and p.phv is not None and p.location is not None
                assert p.drive_wh is not None
                where = LOCATIONS[p.location[i]]
                target = utility_only_charge_wh(p, i, slot_minutes)
                meter = dispatch_car(where, int(p.drive_wh[i]), 0, 0, target, p.car_store, p.phv, soc[p.id],
                                     slot_minutes)
            else:
                meter = dispatch_site(int(p.load_wh[i]), int(p.pv_wh[i]), 0, 0, p.battery, soc[p.id], slot_minutes,
                                      export_cap_wh=p.export_cap_wh)
            soc[p.id] = meter.soc_wh
            records.accounts[p.id].put(k, meter)
    return records


class IslandReading:
    """The :class:`~p2penergy.agents.gateway.Meter` of a participant in an islanded slot: the
    island's controller has already run the devices (sim/island.py); this reads its result."""

    def __init__(self, participant: Participant, i: int, meter: SlotMeter) -> None:
        self._location = int(participant.location[i]) if participant.location is not None else None
        self._meter = meter

    def read(self, slot_start: datetime, bought_wh: int, sold_wh: int, setpoint: tuple[int, int] | None,
             soc_wh: int) -> SlotReading:
        if (bought_wh, sold_wh) != (self._meter.p2p_buy_wh, self._meter.p2p_sell_wh):
            raise ValueError(f"bought_wh, sold_wh: the island's balancing included, ({self._meter.p2p_buy_wh}, "
                             f"{self._meter.p2p_sell_wh}), got ({bought_wh}, {sold_wh})")
        return SlotReading(self._meter, self._location)


class _RecordingAccess(InProcessAccess):
    """In-process access that also collects every trade for the loop's settlement."""

    def __init__(self, exchange: object, participant: str, tape: PriceTape, on_order: Callable[[Order], None],
                 on_cancel: Callable[[str, str, datetime], None], sink: list[Trade], fills: Fills) -> None:
        super().__init__(exchange, participant, tape, on_order, on_cancel, fills)  # type: ignore[arg-type]
        self._sink = sink

    def submit(self, order: Order) -> list[Trade]:
        trades = super().submit(order)
        self._sink.extend(trades)
        return trades


def opening_reference(community: Community) -> Decimal:
    """Public reference price before the first trade: the midpoint of the utility's retail
    price of a typical home's next kWh (at 150 kWh into the month) and the lowest buyback."""
    month = community.report_month
    retail = [marginal_retail_per_kwh(p.retail, month, 150_000) for p in community.participants.values()
              if p.retail is not None and p.kind != CAR_KIND]
    buyback = [p.buyback.price_per_kwh for p in community.participants.values() if p.buyback is not None]
    if not retail:
        return (community.settings.price_min_per_kwh + community.settings.price_max_per_kwh) / 2
    mid = (sum(retail) / len(retail) + (min(buyback) if buyback else Decimal(0))) / 2
    return community.settings.floor_to_tick(mid)

