"""The site gateway: one participant's step — meter, observe, forecast, plan, act.

A :class:`SiteGateway` is what sits at a home, the office or in a car: it reads the
site's meter when a slot ends and keeps the site's state (stored energy, the month's
utility import — a car's includes its owner's, as it is billed on the owner's contract —
the month's peak, the metered history), and at each planning step it forecasts from that
history, builds the agent's :class:`Observation` and lets the :class:`TradingAgent` act
through a :class:`MarketAccess`. The simulation (``sim/loop.py``) and the live agents
(``service/live_agents.py``, ``p2penergy agent``) drive the same gateway; only the meter
(the simulated world) and the market access (in-process or HTTP) differ.

What the gateway knows of its site is what its meter told it: the history before it
started (the site's measured past) and every reading since — a site's load and PV, a
car's location and driving energy. Forecasts of many sites at one time share one weather
issue and one model call per target (:class:`SiteForecasts`); a car forecasts its trips
from its own past (:class:`~p2penergy.agents.trip_forecast.CommuteCalendar`), never from
its driver's plans.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import pandas as pd

from p2penergy.agents.forecast import Forecaster, SelectedForecaster, local_midnight_after
from p2penergy.agents.issued_weather import IssuedWeatherForecasts
from p2penergy.agents.market_access import MarketAccess
from p2penergy.agents.trader import AgentConfig, Observation, TradingAgent
from p2penergy.agents.trip_forecast import TRIP_COLUMNS, CommuteCalendar, TripForecast
from p2penergy.agents.weather_forecast import WeatherForecastSource
from p2penergy.community import CAR_KIND, Community, Participant, utc_starts
from p2penergy.market import MarketSettings
from p2penergy.outage import Outage


@dataclass(frozen=True, eq=False)
class ForecastKit:
    """Fitted forecasters for load and PV, and the source of weather forecasts."""

    load: Forecaster
    pv: Forecaster
    weather: WeatherForecastSource | IssuedWeatherForecasts


ForecastRunner = Callable[[ForecastKit, Mapping[str, tuple[pd.DataFrame, bool]], datetime, pd.DatetimeIndex],
                          "dict[str, SiteForecast]"]
"""Computes a step's forecasts for every site (:func:`forecast_sites` or a split of it)."""


def horizon_for(index: pd.DatetimeIndex, i: int, tz: object) -> pd.DatetimeIndex:
    """Slot starts from position ``i`` to the end of tomorrow (local time), within ``index``."""
    now = index[i].tz_convert(tz)  # type: ignore[arg-type]
    end = local_midnight_after(now, 2)  # days of 23 or 25 hours included
    stop = int(index.searchsorted(end))
    return index[i:max(stop, i + 1)]


@dataclass(frozen=True, slots=True)
class SiteForecast:
    """A site's load and PV forecasts [Wh per slot] over a horizon, with their quantile forecasts
    ``(len(quantile_levels), len(horizon))`` where the forecaster gives them."""

    load_wh: np.ndarray
    pv_wh: np.ndarray
    quantile_levels: tuple[float, ...] = ()
    load_quantiles_wh: np.ndarray | None = None
    pv_quantiles_wh: np.ndarray | None = None


def forecast_sites(kit: ForecastKit, histories: Mapping[str, tuple[pd.DataFrame, bool]], now: datetime,
                   horizon: pd.DatetimeIndex, weather: pd.DataFrame | None = None) -> dict[str, SiteForecast]:
    """Load and PV forecasts over ``horizon`` for every site in ``histories`` (site ->
    (metered history before ``now``, has PV)), from one weather forecast issued at ``now``
    (``weather``, or ``kit.weather``'s issue) and one model call per target."""
    ids = list(histories)
    if weather is None:
        weather = kit.weather.issue(now, len(horizon))
    load, load_q = _predict(kit.load, ids, [histories[i][0] for i in ids], now, horizon, weather)
    pv_ids = [i for i in ids if histories[i][1]]
    pv, pv_q = _predict(kit.pv, pv_ids, [histories[i][0] for i in pv_ids], now, horizon, weather)
    pv_of = dict(zip(pv_ids, pv, strict=True))
    pv_q_of = dict(zip(pv_ids, pv_q, strict=True)) if pv_q is not None else {}
    levels = tuple(getattr(kit.load, "quantiles", ())) if load_q is not None else ()
    if levels and pv_ids and tuple(getattr(kit.pv, "quantiles", ())) != levels:
        levels = ()  # load and PV quantiles at different levels: the agents use the point forecasts
    zeros = np.zeros(len(horizon))
    out = {}
    for k, i in enumerate(ids):
        load_qi = load_q[k] if levels and load_q is not None else None
        pv_qi = pv_q_of.get(i, np.zeros((len(levels), len(horizon)))) if levels else None
        out[i] = SiteForecast(np.asarray(load[k], dtype=float), np.asarray(pv_of.get(i, zeros), dtype=float),
                              levels, load_qi, pv_qi)
    return out


def _predict(model: Forecaster, ids: list[str], frames: list[pd.DataFrame], now: datetime,
             horizon: pd.DatetimeIndex, weather: pd.DataFrame) -> tuple[list[np.ndarray], np.ndarray | None]:
    """(point forecasts, quantile forecasts or ``None``): one model call for all sites where the
    forecaster can (``predict_many``), else one each. A forecaster that chooses its model per site
    and gives quantiles (:class:`~p2penergy.agents.forecast.SelectedForecaster`) is told the sites."""
    if not frames:
        return [], None
    if isinstance(model, SelectedForecaster):
        point = model.predict_many(frames, now, horizon, weather, sites=ids)
        return list(point), model.quantiles_of(point, horizon, ids)
    many = getattr(model, "predict_many", None)
    if many is not None:
        return list(many(frames, now, horizon, weather)), None
    return [model.predict(frame, now, horizon, weather) for frame in frames], None


def observe(participant: Participant, forecast: SiteForecast | None, now: datetime,
            horizon: pd.DatetimeIndex, *, slot_starts: tuple[datetime, ...] | None = None,
            soc_wh: int | None = None, car_soc_wh: int | None = None,
            car_location: np.ndarray | None = None, car_drive_wh: np.ndarray | None = None,
            car_parked_probability: np.ndarray | None = None, month_import_wh: int = 0,
            peak_so_far_w: float = 0.0, past_day_peaks_w: tuple[float, ...] = (),
            outages: tuple[Outage, ...] = ()) -> Observation:
    """Observation for ``participant`` at ``now`` from its site's forecast (none for a car)."""
    n = len(horizon)
    if forecast is None or participant.kind == CAR_KIND:
        forecast = SiteForecast(np.zeros(n), np.zeros(n))
    return Observation(
        now=now, horizon=horizon, load_wh=forecast.load_wh, pv_wh=forecast.pv_wh,
        quantile_levels=forecast.quantile_levels, load_quantiles_wh=forecast.load_quantiles_wh,
        pv_quantiles_wh=forecast.pv_quantiles_wh,
        slot_starts=slot_starts if slot_starts is not None else utc_starts(horizon),
        soc_wh=soc_wh, car_soc_wh=car_soc_wh, car_location=car_location, car_drive_wh=car_drive_wh,
        car_parked_probability=car_parked_probability, month_import_wh=month_import_wh,
        peak_so_far_w=peak_so_far_w, past_day_peaks_w=past_day_peaks_w, outages=outages,
    )


class Reading(Protocol):
    """A slot's flows at the site's connection [Wh] (``sim.physics.SlotMeter`` is one)."""

    @property
    def load_wh(self) -> int: ...

    @property
    def pv_wh(self) -> int: ...

    @property
    def soc_wh(self) -> int: ...

    @property
    def grid_import_wh(self) -> int: ...

    @property
    def drive_wh(self) -> int: ...

    @property
    def shortfall_wh(self) -> int: ...


@dataclass(frozen=True, slots=True)
class SlotReading:
    """What a site reports for a slot that ended: its meter, and for a car where it was
    (a location code of ``community.LOCATIONS``; the car's own telematics)."""

    meter: Reading
    location: int | None = None


class Meter(Protocol):
    """A site's meter and devices: what happened in a slot that ended, given the slot's traded
    energy, the agent's setpoint (charge, discharge [Wh] of a car, or of a site's battery while it
    keeps a reserve for an outage; ``None``: no setpoint) and the stored energy at its start."""

    def read(self, slot_start: datetime, bought_wh: int, sold_wh: int, setpoint: tuple[int, int] | None,
             soc_wh: int) -> SlotReading: ...


class TradedPositions(Protocol):
    """What the gateway reads of the market when metering: my Wh bought and sold per slot
    (any :class:`MarketAccess` is one)."""

    settings: MarketSettings

    def position(self, slot_start: datetime) -> tuple[int, int]: ...


class SlotGrid:
    """The slot starts of a site's data (tz-aware, the market's zone), shared by the gateways of
    one driver: positions by slot start, and the starts as ``datetime`` objects."""

    def __init__(self, index: pd.DatetimeIndex, tz: object, slot_minutes: int) -> None:
        self.index = index
        self.tz = tz
        self.slot_minutes = slot_minutes
        self.starts: tuple[datetime, ...] = utc_starts(index)  # the market's slot keys (UTC instants)
        self._positions = {s: i for i, s in enumerate(self.starts)}
        local = index.tz_convert(tz)  # type: ignore[arg-type]
        self.months: np.ndarray = np.asarray(local.year * 12 + local.month - 1)
        self.dates: np.ndarray = np.asarray(local.date)  # local calendar day of each slot
        self._horizon: tuple[int, pd.DatetimeIndex] | None = None

    def __len__(self) -> int:
        return len(self.starts)

    def horizon(self, i: int) -> pd.DatetimeIndex:
        """:func:`horizon_for` position ``i`` (the last one asked is kept: all gateways ask the same)."""
        if self._horizon is None or self._horizon[0] != i:
            self._horizon = (i, horizon_for(self.index, i, self.tz))
        return self._horizon[1]

    def position(self, slot_start: datetime) -> int:
        try:
            return self._positions[slot_start]
        except KeyError:
            raise ValueError(f"slot_start: {slot_start.isoformat()} is not a slot of the site's data "
                             f"({self.starts[0].isoformat()}..{self.starts[-1].isoformat()})") from None


ExpectedReadings = Callable[[str, int, int], "np.ndarray | None"]
"""``(site id, start, stop)`` → what its meter is expected to read at grid positions ``start..stop-1``:
``(stop - start, 2)`` load and PV Wh, or ``None`` when not known (:class:`SiteForecasts` forecasts a
step ahead from them, and uses that forecast only if the meters then read exactly that)."""


@dataclass(frozen=True, eq=False)
class _Ahead:
    """A step's forecasts computed ahead in a thread, and the readings they assumed."""

    key: tuple[datetime, int]
    sites: tuple[tuple[str, bool], ...]
    metered: tuple[int, ...]  # each site's rows read when they were started (the assumption starts there)
    assumed: tuple[np.ndarray, ...]  # the readings assumed from there to the step
    result: Future[dict[str, SiteForecast]]


class SiteForecasts:
    """Load and PV forecasts of every site gateway added, at one issue time: one weather issue
    and one model call per target for all of them (the first gateway to ask computes them all).

    A forecast is issued at the start of the slot the gateway acts in, from each site's metered
    history at that moment; drivers meter every site before any acts, so all see the same slot.
    ``runner`` computes them (:func:`forecast_sites`, or the same split across processes:
    :func:`~p2penergy.agents.forecast_pool.split_forecast_sites`).

    ``expected`` (the simulation's when ``LoopConfig.forecasts_ahead``, off by default: slower on 2
    cores; the sites' own load and PV series): right after a step's
    forecasts, the next planning step's (``replan_slots`` later) are computed in a thread from the
    history as it will be if the meters read what ``expected`` says, while the agents act and the
    market runs (LightGBM's prediction releases the GIL). At that step they are used only if every
    site's meter read exactly the assumed values (an islanded slot or curtailed PV reads otherwise)
    and the step is the one assumed: the same inputs, so the same forecasts as computed then and
    there (:func:`forecast_sites` is a function of its inputs); otherwise they are dropped and
    computed anew.
    """

    def __init__(self, kit: ForecastKit | None, runner: ForecastRunner | None = None,
                 expected: ExpectedReadings | None = None) -> None:
        self.kit = kit
        self.runner: ForecastRunner = runner or forecast_sites
        self.expected = expected
        self._sites: list[SiteGateway] = []
        self._key: tuple[datetime, int] | None = None
        self._values: dict[str, SiteForecast] = {}
        self._ahead: _Ahead | None = None
        self.ahead_used = 0  # steps whose forecasts computed ahead were used
        self.ahead_dropped = 0  # ... were dropped (the meters read otherwise, or another step came)

    def add(self, gateway: SiteGateway) -> None:
        if gateway.participant.kind != CAR_KIND:
            self._sites.append(gateway)

    def of(self, gateway: SiteGateway, issued_at: datetime, horizon: pd.DatetimeIndex) -> SiteForecast:
        """Load and PV forecasts [Wh per slot] of ``gateway``'s site over ``horizon``."""
        if self.kit is None:
            return SiteForecast(np.zeros(len(horizon)), np.zeros(len(horizon)))
        key = (issued_at, len(horizon))
        if key != self._key or gateway.participant.id not in self._values:
            ahead = self._computed_ahead(key)
            if ahead is None:
                histories = {g.participant.id: (g.history(), g.participant.has_pv) for g in self._sites}
                ahead = self.runner(self.kit, histories, issued_at, horizon)
            self._values = ahead
            self._key = key
            self._start_ahead(gateway.grid, gateway.grid.position(issued_at) + gateway.replan_slots)
        return self._values[gateway.participant.id]

    def _start_ahead(self, grid: SlotGrid, j: int) -> None:
        """Start computing the forecasts of the step at grid position ``j`` in a thread, if every
        site's readings until then are expected."""
        if self.expected is None or self.kit is None or j >= len(grid) or not self._sites:
            return
        histories: dict[str, tuple[pd.DataFrame, bool]] = {}
        metered, assumed = [], []
        for g in self._sites:
            m = g.metered
            rows = self.expected(g.participant.id, m, j) if m <= j else None
            if rows is None:
                return
            rows = np.asarray(rows, dtype=np.int64).reshape(j - m, 2)
            wh = np.concatenate((g._wh[:m], rows))  # a copy: the thread reads nothing the loop writes
            histories[g.participant.id] = (pd.DataFrame(wh, columns=g._frame.columns, index=grid.index[:j],
                                                        copy=False), g.participant.has_pv)
            metered.append(m)
            assumed.append(rows)
        horizon = horizon_for(grid.index, j, grid.tz)
        issued_at = grid.starts[j]
        kit, runner = self.kit, self.runner
        result: Future[dict[str, SiteForecast]] = Future()

        def work() -> None:
            try:
                result.set_result(runner(kit, histories, issued_at, horizon))
            except BaseException as exc:  # handed to the step, which then computes anew
                result.set_exception(exc)

        self._ahead = _Ahead((issued_at, len(horizon)), tuple((i, h[1]) for i, h in histories.items()),
                             tuple(metered), tuple(assumed), result)
        threading.Thread(target=work, name="forecasts-ahead", daemon=True).start()

    def close(self) -> None:
        """Wait for (and drop) forecasts being computed ahead: for a driver that stops before the
        step they were for and then uses the kit elsewhere (the simulation's last step starts none)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.result.exception()

    def _computed_ahead(self, key: tuple[datetime, int]) -> dict[str, SiteForecast] | None:
        """The forecasts computed ahead for the step ``key`` if they are this step's (same step, same
        sites, every site's meter read what was assumed), else ``None``. Waits for the thread in
        any case: the kit is used by one thread at a time."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return None
        try:
            values = ahead.result.result()
        except Exception:
            values = None
        same = (values is not None and ahead.key == key
                and ahead.sites == tuple((g.participant.id, g.participant.has_pv) for g in self._sites)
                and all(g.metered == m + len(rows) and np.array_equal(g._wh[m:g.metered], rows)
                        for g, m, rows in zip(self._sites, ahead.metered, ahead.assumed, strict=True)))
        if not same:
            self.ahead_dropped += 1
            return None
        self.ahead_used += 1
        return values


class SiteGateway:
    """One participant's gateway (see the module docstring).

    ``grid``: the slot grid of the site's data; ``start``: the position of the first slot the
    gateway steps (everything before is the site's measured past, copied once from
    ``participant``'s series; the gateway reads nothing of them after that); ``replan_slots``:
    the agent plans and acts at every N-th step. ``owner``: a car's owner's gateway, whose
    month import adds to the car's (one contract).
    """

    def __init__(self, participant: Participant, agent: TradingAgent, grid: SlotGrid, start: int,
                 forecasts: SiteForecasts, *, replan_slots: int = 4, owner: SiteGateway | None = None,
                 trips: CommuteCalendar | None = None, outages: tuple[Outage, ...] = ()) -> None:
        if replan_slots < 1:
            raise ValueError(f"replan_slots: must be >= 1, got {replan_slots}")
        if not 0 <= start < len(grid):
            raise ValueError(f"start: a position in the data's index (0..{len(grid) - 1}), got {start}")
        self.participant = participant
        self.agent = agent
        self.grid = grid
        self.replan_slots = replan_slots
        self.outages = outages  # the agent sees one from its announcement (Outage.known_at)
        self.owner = owner
        p = participant
        is_car = p.kind == CAR_KIND
        store = p.car_store if is_car else p.battery
        self.soc_wh: int | None = store.initial_soc_wh if store is not None else None
        self.month_import_wh = 0
        self.peak_w = 0.0
        self._month: int | None = None
        self._day_peaks: tuple[object, tuple[float, ...]] | None = None
        self.metered = start  # positions before this are known (measured past, then readings)
        # what the meter reports per slot of the grid: a site's load and PV [Wh], a car's location
        # code and driving energy [Wh]; the frame is a view on it (built once: a forecast reads
        # ``frame.iloc[:metered]``, and readings are written beyond that)
        columns = TRIP_COLUMNS if is_car else ("load_wh", "pv_wh")
        self._wh = np.zeros((len(grid), 2), dtype=np.int64)
        past = (p.location, p.drive_wh) if is_car else (p.load_wh, p.pv_wh)
        for c, series in enumerate(past):
            if series is not None:
                self._wh[:start, c] = series[:start]
        if p.office_tariff is not None and p.battery is None and start > 0:
            # a site billed on its month's peak knows the peak its meter showed this month before
            # it started (without storage its import is the load its PV did not cover)
            month = int(grid.months[start])
            same = np.flatnonzero(grid.months[:start] == month)
            imported = np.maximum(self._wh[same, 0] - self._wh[same, 1], 0)
            self._month = month
            self.month_import_wh = int(imported.sum())
            self.peak_w = float(imported.max(initial=0)) * 60 / grid.slot_minutes
        self._frame = pd.DataFrame(self._wh, columns=list(columns), index=grid.index, copy=False)
        self._frame_is_view = np.shares_memory(self._frame.to_numpy(), self._wh)
        self.trips = (trips or CommuteCalendar()) if is_car else None
        self.last_trip_forecast: TripForecast | None = None
        self._steps = 0
        self._last_step: datetime | None = None
        self.last_observation: Observation | None = None
        self.forecasts = forecasts
        forecasts.add(self)

    # -- what the gateway knows -------------------------------------------------------------
    def history(self) -> pd.DataFrame:
        """What the site's meter reported, up to the last slot read: ``load_wh`` and ``pv_wh``, or
        for a car ``location`` (``LOCATION_CODES``) and ``drive_wh`` (driving energy)."""
        m = self.metered
        if self._frame_is_view:
            return self._frame.iloc[:m]
        return pd.DataFrame(self._wh[:m], columns=self._frame.columns, index=self.grid.index[:m])

    def past_day_peaks_w(self) -> tuple[float, ...]:
        """The highest slot import [W] of each whole business day its meter read (a site without
        storage imports what its PV does not cover): what a site billed on its month's peak knows of
        how high a business day goes. Recomputed once a day."""
        m = self.metered
        today = self.grid.dates[m] if m < len(self.grid) else self.grid.dates[-1] + pd.Timedelta(days=1)
        if self._day_peaks is not None and self._day_peaks[0] == today:
            return self._day_peaks[1]
        whole = int(np.searchsorted(self.grid.dates, today))  # slots of the days before today
        imported = np.maximum(self._wh[:whole, 0] - self._wh[:whole, 1], 0)
        peaks = pd.Series(imported).groupby(self.grid.dates[:whole]).max()
        out = tuple(float(x) * 60 / self.grid.slot_minutes for d, x in peaks.items()
                    if self.participant.is_business_day(d))
        self._day_peaks = (today, out)
        return out

    @property
    def contract_import_wh(self) -> int:
        """Utility import this month on the site's contract so far: a car's adds its owner's."""
        owner = self.owner
        if owner is not None and owner._month == self._month:
            return self.month_import_wh + owner.month_import_wh
        return self.month_import_wh

    # -- the step ---------------------------------------------------------------------------
    def step(self, now: datetime, access: MarketAccess, meter: Meter) -> Observation | None:
        """Meter the slots that ended, then at a planning step observe, forecast, plan and act.

        Called at least once per slot (more calls in the same slot do nothing); returns the
        observation the agent acted on, or ``None`` when this step does not plan.
        """
        obs = self.prepare(now, access, meter)
        if obs is not None:
            self.agent.act(obs, access)
        return obs

    def prepare(self, now: datetime, access: MarketAccess, meter: Meter) -> Observation | None:
        """:meth:`step` up to the agent's turn: meter the slots that ended and, at a planning step,
        observe; returns what the agent is to act on (``None`` when this step does not plan). What it
        reads is the site's own state, which no other agent's action changes: a driver may prepare
        every gateway of a step before any agent acts (``sim/loop.py`` with plans made ahead)."""
        self.meter_ended(now, access, meter)
        slot = access.settings.slot_start_of(now)
        if slot == self._last_step:
            return None
        self._last_step = slot
        due = self._steps % self.replan_slots == 0
        self._steps += 1
        return self.observe(now, slot) if due else None

    @property
    def steps(self) -> int:
        """Slots stepped so far."""
        return self._steps

    def meter_ended(self, now: datetime, access: TradedPositions, meter: Meter,
                    on_reading: Callable[[datetime, Reading], None] | None = None) -> None:
        """Read every slot that ended by ``now`` and is not read yet (its trades from ``access``),
        in order, handing each reading to ``on_reading`` (e.g. to upload it)."""
        current = self.grid.position(access.settings.slot_start_of(now))
        while self.metered < current:
            slot = self.grid.starts[self.metered]
            bought, sold = access.position(slot)
            reading = self.meter(slot, bought, sold, meter)
            if on_reading is not None:
                on_reading(slot, reading)

    def meter(self, slot_start: datetime, bought_wh: int, sold_wh: int, meter: Meter,
              setpoint: tuple[int, int] | None = None) -> Reading:
        """Read the slot that ended (the next unread one) and update the site's state; the devices
        followed the agent's plan, or ``setpoint`` (car charge, discharge [Wh]) when given."""
        i = self.grid.position(slot_start)
        if i != self.metered:
            raise ValueError(f"slot_start: the next slot to read is {self.grid.starts[self.metered].isoformat()}, "
                             f"got {slot_start.isoformat()}")
        if setpoint is None:
            setpoint = self.agent.setpoints.get(slot_start)
        reading = meter.read(slot_start, bought_wh, sold_wh, setpoint, int(self.soc_wh or 0))
        m = reading.meter
        if self.soc_wh is not None:
            self.soc_wh = m.soc_wh
        month = int(self.grid.months[i])
        if month != self._month:
            self._month, self.month_import_wh, self.peak_w = month, 0, 0.0
        self.month_import_wh += m.grid_import_wh
        self.peak_w = max(self.peak_w, m.grid_import_wh * 60 / self.grid.slot_minutes)
        if self.participant.kind != CAR_KIND:
            self._wh[i] = (m.load_wh, m.pv_wh)
        else:
            if reading.location is None:
                raise ValueError(f"meter: a car's reading needs its location ({self.participant.id})")
            self._wh[i] = (reading.location, m.drive_wh + m.shortfall_wh)
        self.metered = i + 1
        return m

    def observe(self, now: datetime, slot_start: datetime) -> Observation:
        """What the agent knows at ``now``: forecasts over the rest of today and tomorrow, its state."""
        p = self.participant
        grid = self.grid
        i = grid.position(slot_start)
        horizon = grid.horizon(i)
        forecast = trips = None
        if p.kind == CAR_KIND:
            assert self.trips is not None
            trips = self.last_trip_forecast = self.trips.predict(self.history(), slot_start, horizon)
        else:
            forecast = self.forecasts.of(self, slot_start, horizon)
        obs = observe(
            p, forecast, now, horizon, slot_starts=grid.starts[i:i + len(horizon)],
            soc_wh=self.soc_wh if p.battery is not None else None,
            car_soc_wh=self.soc_wh if p.kind == CAR_KIND else None,
            car_location=trips.location if trips is not None else None,
            car_drive_wh=trips.drive_wh if trips is not None else None,
            car_parked_probability=trips.parked_probability if trips is not None else None,
            month_import_wh=self.contract_import_wh, peak_so_far_w=self.peak_w,
            past_day_peaks_w=self.past_day_peaks_w() if p.office_tariff is not None else (),
            outages=tuple(o for o in self.outages if o.known_at(now)),
        )
        self.last_observation = obs
        return obs


def site_gateways(community: Community, grid: SlotGrid, start: int, forecasts: SiteForecasts, agent: AgentConfig,
                  replan_slots: int, ids: Sequence[str] | None = None) -> dict[str, SiteGateway]:
    """A gateway for each participant in ``ids`` (default: all), starting at position ``start``;
    a car's is linked to its owner's when the owner is among them."""
    chosen = list(community.participants) if ids is None else list(ids)
    unknown = sorted(set(chosen) - set(community.participants))
    if unknown:
        raise ValueError(f"ids: participants of the community ({', '.join(community.participants)}), "
                         f"got {', '.join(unknown)}")
    gateways: dict[str, SiteGateway] = {}
    for pid in sorted(chosen, key=lambda q: community.participants[q].kind == CAR_KIND):
        p = community.participants[pid]
        gateways[pid] = SiteGateway(p, TradingAgent(p, agent), grid, start, forecasts, replan_slots=replan_slots,
                                    owner=gateways.get(p.owner) if p.owner else None,
                                    trips=CommuteCalendar(days_off=community.days_off) if p.kind == CAR_KIND else None,
                                    outages=community.outages)
    return {pid: gateways[pid] for pid in chosen}
