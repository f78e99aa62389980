"""Agents over the network: the simulation's :class:`TradingAgent` driven by the service's clock.

A :class:`SiteRunner` is one participant's home gateway (or car, or office): at each new
slot of the exchange's clock it reads the slot that just ended from its meter (the
scenario's data, the same physics as the simulation) and uploads it, and every
``replan_slots`` slots it observes (:func:`p2penergy.agents.gateway.observe`, forecasts
from its metered history) and lets the agent act through :class:`HttpMarketAccess`.
:func:`prepare_sites` builds the community and forecasters once for any number of sites.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pandas as pd

from p2penergy.agents.forecast import GradientBoostingForecaster, SevenDayMean
from p2penergy.agents.gateway import ForecastKit, forecast_sites, horizon_for, observe
from p2penergy.agents.trader import AgentConfig, TradingAgent
from p2penergy.agents.weather_forecast import WeatherForecastSource
from p2penergy.community import CAR_KIND, LOCATIONS, Community, Participant
from p2penergy.ledger.keys import Key
from p2penergy.market import OrderRejected
from p2penergy.service.client import HttpMarketAccess, ServiceRefused
from p2penergy.sim.physics import dispatch_car, dispatch_site

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
    weather = WeatherForecastSource(community.weather, rng_seed=community.seed)
    history = {pid: _history(community.participants[pid], community.index) for pid in sites
               if community.participants[pid].kind != CAR_KIND}
    if forecaster == "seven-day-mean" or not history:
        return ForecastKit(load=SevenDayMean(target="load_wh"), pv=SevenDayMean(target="pv_wh"), weather=weather)
    pv_history = {pid: h for pid, h in history.items() if community.participants[pid].has_pv}
    load = GradientBoostingForecaster(target="load_wh", seed=community.seed).fit(history, weather, cutoff=cutoff)
    pv = (GradientBoostingForecaster(target="pv_wh", seed=community.seed).fit(pv_history, weather, cutoff=cutoff)
          if pv_history else SevenDayMean(target="pv_wh"))
    return ForecastKit(load=load, pv=pv, weather=weather)


def _history(p: Participant, index: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame({"load_wh": p.load_wh, "pv_wh": p.pv_wh}, index=index)


@dataclass
class SiteRunner:
    """One participant's agent, meter and market access."""

    participant: Participant
    community: Community
    kit: ForecastKit
    access: HttpMarketAccess
    config: AgentConfig = field(default_factory=AgentConfig)
    replan_slots: int = 4
    agent: TradingAgent = field(init=False)
    soc_wh: int | None = field(init=False, default=None)
    month_import_wh: int = field(init=False, default=0)
    peak_w: float = field(init=False, default=0.0)
    last_slot: datetime | None = field(init=False, default=None)
    steps: int = field(init=False, default=0)
    errors: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.agent = TradingAgent(self.participant, self.config)
        p = self.participant
        store = p.car_store if p.kind == CAR_KIND else p.battery
        self.soc_wh = store.initial_soc_wh if store is not None else None
        self._history = _history(p, self.community.index) if p.kind != CAR_KIND else None

    def step(self, now: datetime) -> None:
        """Handle the exchange's time ``now``: meter the slots that ended, act at replanning slots."""
        settings = self.access.settings
        slot = settings.slot_start_of(now)
        if slot == self.last_slot:
            return
        if self.last_slot is not None:
            s = self.last_slot
            while s < slot:
                self._meter(s)
                s += settings.slot_length
        self.last_slot = slot
        if self.steps % self.replan_slots == 0:
            self._act(now, slot)
        self.steps += 1

    def _position(self, slot: datetime) -> int:
        return int(self.community.index.get_loc(pd.Timestamp(slot)))

    def _act(self, now: datetime, slot: datetime) -> None:
        p = self.participant
        index = self.community.index
        i = self._position(slot)
        horizon = horizon_for(index, i, self.access.settings.tz)
        j = slice(i, i + len(horizon))
        forecast = None
        if self._history is not None and self.kit is not None:
            forecast = forecast_sites(self.kit, {p.id: (self._history.iloc[:i], p.has_pv)}, now, horizon)[p.id]
        obs = observe(p, forecast, now, horizon,
                      soc_wh=self.soc_wh if p.battery is not None else None,
                      car_soc_wh=self.soc_wh if p.kind == CAR_KIND else None,
                      car_location=p.location[j] if p.location is not None else None,
                      car_drive_wh=p.drive_wh[j] if p.drive_wh is not None else None,
                      month_import_wh=self.month_import_wh, peak_so_far_w=self.peak_w)
        try:
            self.agent.act(obs, self.access)
        except (OrderRejected, ServiceRefused, httpx.HTTPError) as exc:  # e.g. a gate closed while planning,
            # or the service restarting: the next replanning step tries again
            self.errors.append(str(exc))
            log.info("%s: %s", p.id, exc)

    def _meter(self, slot: datetime) -> None:
        p = self.participant
        i = self._position(slot)
        minutes = self.access.settings.slot_minutes
        buy = sell = 0
        try:
            mine = self.access.my_trades()
        except (ServiceRefused, httpx.HTTPError) as exc:
            mine = []
            self.errors.append(f"trades of {slot.isoformat()}: {exc}")
        for t in mine:
            if datetime.fromisoformat(t["slot_start"]) == slot:
                if t["side"] == "buy":
                    buy += int(t["energy_wh"])
                else:
                    sell += int(t["energy_wh"])
        if p.kind == CAR_KIND:
            assert p.car_store is not None and p.phv is not None and p.location is not None and p.drive_wh is not None
            charge, discharge = self.agent.setpoints.get(slot, (0, 0))
            meter = dispatch_car(LOCATIONS[p.location[i]], int(p.drive_wh[i]), buy, sell, charge, discharge,
                                 p.car_store, p.phv, int(self.soc_wh or 0), minutes)
        else:
            meter = dispatch_site(int(p.load_wh[i]), int(p.pv_wh[i]), buy, sell, p.battery, int(self.soc_wh or 0),
                                  minutes)
        if self.soc_wh is not None:
            self.soc_wh = meter.soc_wh
        self.month_import_wh += meter.grid_import_wh
        self.peak_w = max(self.peak_w, meter.grid_import_wh * 60 / minutes)
        values = {"load_wh": meter.load_wh, "pv_wh": meter.pv_wh, "grid_import_wh": meter.grid_import_wh,
                  "grid_export_wh": meter.grid_export_wh}
        if self.soc_wh is not None:
            values["soc_wh"] = meter.soc_wh
        try:
            self.access.upload_meter(slot, values)
        except (ServiceRefused, httpx.HTTPError) as exc:
            self.errors.append(str(exc))


def opening_price(community: Community) -> Decimal:
    from p2penergy.sim.loop import opening_reference

    return opening_reference(community)


def make_runners(url: str, community: Community, kit: ForecastKit, keys: dict[str, Key],
                 config: AgentConfig | None = None, replan_slots: int = 4) -> list[SiteRunner]:
    opening = opening_price(community)
    return [SiteRunner(community.participants[pid], community, kit, HttpMarketAccess(url, key, opening),
                       config or AgentConfig(), replan_slots) for pid, key in keys.items()]


def run(runners: list[SiteRunner], stop: threading.Event, poll_s: float = 0.1, max_slots: int | None = None) -> None:
    """Step every runner at each new slot of the exchange's clock until ``stop`` (or ``max_slots`` slots)."""
    if not runners:
        return
    while not stop.is_set():
        for r in runners:
            if stop.is_set():  # a bounded run ends on time, not after a whole round of agents
                return
            r.step(r.access.now())  # each at the exchange's time when its turn comes
        if max_slots is not None and min(r.steps for r in runners) >= max_slots:
            return
        stop.wait(poll_s)
