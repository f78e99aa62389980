"""Agents over the network: the simulation's site gateways driven by the service's clock.

A :class:`SiteRunner` drives one participant's :class:`~p2penergy.agents.gateway.SiteGateway`
— the same gateway the simulation steps — against the live service: at each new slot of
the exchange's clock it reads the slots that ended from the site's meter (the scenario's
data through the simulation's physics, :class:`~p2penergy.sim.meters.ScenarioMeter`) and
uploads them, and every ``replan_slots`` slots the gateway observes, forecasts, plans and
acts through :class:`HttpMarketAccess`. :func:`run` reads every runner's meter before any
acts (as the simulation does), so the runners of one process share one forecast per slot
and a car sees its owner's month import. :func:`prepare_community` and :func:`fit_kit`
build the community and forecasters once for any number of sites.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import numpy as np
import pandas as pd

from p2penergy.agents.agent_forecasters import fit_agent_forecasters
from p2penergy.agents.forecast import SevenDayMean
from p2penergy.agents.gateway import ForecastKit, Meter, Reading, SiteForecasts, SiteGateway, SlotGrid, site_gateways
from p2penergy.agents.issued_weather import weather_source
from p2penergy.agents.trader import AgentConfig, TradingAgent
from p2penergy.community import CAR_KIND, Community, Participant
from p2penergy.ledger.keys import Key
from p2penergy.market import OrderRejected
from p2penergy.service.client import HttpMarketAccess, ServiceRefused, positions_of
from p2penergy.sim.meters import ScenarioMeter, catch_up

log = logging.getLogger("p2penergy.agent")
FORECASTERS = ("gbm", "seven-day-mean")


def prepare_community(scenario_path: str | None, now: datetime, history_days: int = 28) -> Community:
    """The scenario's community with data from ``history_days`` before ``now`` to 2 days after."""
    from p2penergy.scenario.generate import generate
    from p2penergy.scenario.load import load_scenario
    from p2penergy.sim.build import build_community
    from p2penergy.sim.simulate import replace_period

    scenario = load_scenario(scenario_path)
    local = now.astimezone(scenario.market.tz).date()
    period = scenario.period
    if not period.start <= local <= period.end:
        raise ValueError(f"clock: the exchange's date {local} is outside the scenario period "
                         f"{period.start}..{period.end}; start the service's clock inside it")
    scenario = scenario.model_copy(update={"period": replace_period(scenario, local.replace(day=1))})
    start = max(scenario.period.start, local - timedelta(days=history_days))
    end = min(scenario.period.end, local + timedelta(days=2))
    return build_community(scenario, generate(scenario, start, end))


def fit_kit(community: Community, sites: list[str], cutoff: datetime, forecaster: str = "gbm") -> ForecastKit:
    """Forecasters trained on the given sites' metered history before ``cutoff`` only."""
    if forecaster not in FORECASTERS:
        raise ValueError(f"forecaster: one of {', '.join(FORECASTERS)}, got {forecaster!r}")
    weather = weather_source(community.weather, community.weather_forecasts, community.seed)
    history = {pid: _history(community.participants[pid], community.index) for pid in sites
               if community.participants[pid].kind != CAR_KIND}
    if forecaster == "seven-day-mean" or not history:
        return ForecastKit(load=SevenDayMean(target="load_wh"), pv=SevenDayMean(target="pv_wh"), weather=weather)
    pv_sites = frozenset(pid for pid in history if community.participants[pid].has_pv)
    load, pv = fit_agent_forecasters(history, weather, cutoff, community.seed, community.days_off, pv_sites)
    return ForecastKit(load=load, pv=pv, weather=weather)


def _history(p: Participant, index: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame({"load_wh": p.load_wh, "pv_wh": p.pv_wh}, index=index)


class SiteRunner:
    """One participant's gateway driven by the service's clock: its meter, its HTTP market access.

    A car prices energy at its contract's month import, so its owner's meter is read up to the
    same slot first: ``owner`` is the owner's runner when it runs in this process; otherwise
    ``household`` is a stand-in for the owner's meter (the owner's site read with no P2P
    trades, which this process cannot see).
    """

    def __init__(self, gateway: SiteGateway, access: HttpMarketAccess, meter: Meter,
                 household: tuple[SiteGateway, Meter] | None = None, owner: SiteRunner | None = None) -> None:
        self.gateway = gateway
        self.participant = gateway.participant
        self.access = access
        self.meter = meter
        self.household = household
        self.owner = owner
        self.errors: list[str] = []

    @property
    def steps(self) -> int:
        return self.gateway.steps

    def read_meters(self, now: datetime) -> None:
        """Read and upload every slot that ended by ``now`` (a failed read is retried next time)."""
        g = self.gateway
        if self.owner is not None:  # the owner's meter first, as the simulation reads every site first
            self.owner.read_meters(now)
        if self.household is not None:
            owner, meter = self.household
            while owner.metered < g.grid.position(self.access.settings.slot_start_of(now)):
                owner.meter(owner.grid.starts[owner.metered], 0, 0, meter)
        try:
            g.meter_ended(now, _TradesRead(self.access), self.meter, self._upload)
        except (ServiceRefused, httpx.HTTPError) as exc:
            self.errors.append(f"trades of {g.grid.starts[g.metered].isoformat()}: {exc}")

    def step(self, now: datetime) -> None:
        """Handle the exchange's time ``now``: meter the slots that ended, act at planning steps."""
        self.read_meters(now)
        try:
            self.gateway.step(now, self.access, self.meter)
        except (OrderRejected, ServiceRefused, httpx.HTTPError) as exc:  # e.g. a gate closed while planning,
            # or the service restarting: the next planning step tries again
            self.errors.append(str(exc))
            log.info("%s: %s", self.participant.id, exc)

    def _upload(self, slot: datetime, meter: Reading) -> None:
        values = {"load_wh": meter.load_wh, "pv_wh": meter.pv_wh, "grid_import_wh": meter.grid_import_wh,
                  "grid_export_wh": meter.grid_export_wh}
        if self.gateway.soc_wh is not None:
            values["soc_wh"] = meter.soc_wh
        try:
            self.access.upload_meter(slot, values)
        except (ServiceRefused, httpx.HTTPError) as exc:
            self.errors.append(str(exc))


class _TradesRead:
    """My trades read once (one request, not one per slot): the positions of slots that ended are
    final, as their gates closed before they ended."""

    def __init__(self, access: HttpMarketAccess) -> None:
        self.settings = access.settings
        self._access = access
        self._wh: dict[datetime, tuple[int, int]] | None = None

    def position(self, slot_start: datetime) -> tuple[int, int]:
        if self._wh is None:
            self._wh = positions_of(self._access.my_trades())
        return self._wh.get(slot_start, (0, 0))


def opening_price(community: Community) -> Decimal:
    from p2penergy.sim.loop import opening_reference

    return opening_reference(community)


def make_runners(url: str, community: Community, kit: ForecastKit, keys: dict[str, Key],
                 config: AgentConfig | None = None, replan_slots: int = 4) -> list[SiteRunner]:
    """A runner for each site in ``keys``, stepping from the exchange's current slot; gateways of
    one process share their forecasts, and a car's is linked to its owner's (or a stand-in)."""
    opening = opening_price(community)
    accesses = {pid: HttpMarketAccess(url, key, opening) for pid, key in keys.items()}
    settings = next(iter(accesses.values())).settings if accesses else community.settings
    grid = SlotGrid(community.index, settings.tz, settings.slot_minutes)
    now = next(iter(accesses.values())).now() if accesses else community.slot(0)
    start = grid.position(settings.slot_start_of(now))
    # each gateway starts at the month's first slot (or the data's) and reads the slots up to now as
    # the site ran before it joined (utility only): it knows the month's import, peak and storage so far
    first = int(np.flatnonzero(grid.months == grid.months[start])[0])
    forecasts = SiteForecasts(kit)
    gateways = site_gateways(community, grid, first, forecasts, config or AgentConfig(), replan_slots, list(keys))
    runners: dict[str, SiteRunner] = {}
    for pid, g in sorted(gateways.items(), key=lambda item: item[1].participant.kind == CAR_KIND):  # owners first
        p = g.participant
        household = None
        if p.owner is not None and g.owner is None and p.owner in community.participants:
            owner = community.participants[p.owner]
            stand_in = SiteGateway(owner, TradingAgent(owner), grid, first, SiteForecasts(None), replan_slots=1)
            g.owner = stand_in
            household = (stand_in, ScenarioMeter(owner, grid))
            catch_up(stand_in, household[1], start)
        meter = ScenarioMeter(p, grid)
        catch_up(g, meter, start)
        runners[pid] = SiteRunner(g, accesses[pid], meter, household, runners.get(p.owner) if p.owner else None)
    return [runners[pid] for pid in keys]


def _data_ended(r: SiteRunner) -> bool:
    """True once the exchange's clock has left the last slot of the site's data (a fast clock or a
    long run): nothing is left to meter or plan, so the agents stop rather than fail on a slot the
    data lack."""
    last = r.gateway.grid.starts[-1]
    if r.access.settings.slot_start_of(r.access.now()) <= last:
        return False
    log.warning("%s: the exchange's clock passed the site data's last slot (%s); the agent stops",
                r.participant.id, last.isoformat())
    return True


def run(runners: list[SiteRunner], stop: threading.Event, poll_s: float = 0.1, max_slots: int | None = None) -> None:
    """Step every runner at each new slot of the exchange's clock until ``stop``, ``max_slots`` slots, or
    the end of the site data: first every runner reads its meter, then each steps (each at the exchange's
    time when its turn comes)."""
    if not runners:
        return
    while not stop.is_set():
        for r in runners:
            if stop.is_set() or _data_ended(r):  # a bounded run ends on time, not after a whole round
                return
            r.read_meters(r.access.now())
        for r in runners:
            if stop.is_set() or _data_ended(r):
                return
            r.step(r.access.now())  # each at the exchange's time when its turn comes
        if max_slots is not None and min(r.steps for r in runners) >= max_slots:
            return
        stop.wait(poll_s)
