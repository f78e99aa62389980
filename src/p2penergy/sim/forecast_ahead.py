"""The next planning step's forecasts computed in another process while the agents act on this one's.

A site's metered load and PV are what the scenario says they are (:class:`~p2penergy.sim.meters.ScenarioMeter`
reads the true series; trading and devices change the flows at the connection, not these two). So
while the agents plan and trade on one step's forecasts, the simulation can guess the histories the
sites' meters will have reported at the next planning step — the true series up to it — and have
another process forecast from that guess. At the next step the guess is checked against what the
meters did report (every row a forecast reads, the index, the columns and their types, which sites
and which have PV, the issue time and the horizon): only an exact match takes the forecasts made
ahead, otherwise they are dropped and computed as without this runner. A forecast is a function of
those inputs alone (the forecasting step is deterministic, and the weather forecast is a function of
the seed and the issue time), and forecasts of histories cut to what they read are the uncut ones bit
for bit (:mod:`~p2penergy.agents.forecast_pool`), so the agents see exactly the forecasts they would
have computed themselves: the same bills to the yen (tested). Nothing the agents see comes from
after their time; the guess only decides whether work done early can be used.

Worth it on a machine with a second core that is free (:func:`spare_core`): the forecasting step
then runs beside the agents instead of before them, and what is left of it here is the guess and its
check (about a third of its CPU time). On a busy machine it is not: the worker takes its share of
cores the simulation's own thread then lacks (7 days at a load average of 5-6 on 2 cores: the P2P
part 23-25 s with it against 16-18 s without), so the simulation uses it only when a core is spare.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

import numpy as np
import pandas as pd

from p2penergy.agents.forecast_pool import _chunk_here, _install, recent_history
from p2penergy.agents.gateway import ForecastKit, ForecastRunner, SiteForecast, forecast_sites, horizon_for
from p2penergy.community import CAR_KIND, Community, utc_starts

Histories = Mapping[str, tuple[pd.DataFrame, bool]]

SPARE_CORE_MARGIN = 0.5
"""[cores] A core is spare when the 1-minute load average stays this far below the machine's cores
minus the one the simulation itself runs on: idle, a running simulation alone makes a load of about 1
(on 2 cores: 1.0 < 2 − 0.5); anything else running fills the second core."""


def spare_core(load: float | None = None, cores: int | None = None) -> bool:
    """Whether a core beside the simulation's is free: ``load`` (default: the 1-minute load average)
    below ``cores`` (default: the machine's) minus :data:`SPARE_CORE_MARGIN`, on 2 cores or more."""
    cores = (os.cpu_count() or 1) if cores is None else cores
    load = os.getloadavg()[0] if load is None else load
    return cores >= 2 and load < cores - SPARE_CORE_MARGIN


@dataclass(frozen=True, slots=True)
class _Guess:
    """A step's forecasts being computed ahead, and the inputs they were computed from."""

    issued_at: datetime
    horizon: pd.DatetimeIndex
    histories: dict[str, tuple[pd.DataFrame, bool]]  # cut to what a forecast issued at ``issued_at`` reads
    forecasts: Future[dict[str, SiteForecast]]


def _read_rows(index: pd.DatetimeIndex, issued_at: datetime) -> slice:
    """The rows of a history over ``index`` that a forecast issued at ``issued_at`` reads
    (:func:`~p2penergy.agents.forecast_pool.recent_history`'s cut, which depends on the index alone)."""
    cut = recent_history(pd.DataFrame(index=index), issued_at).index
    first = int(index.searchsorted(cut[0])) if len(cut) else 0
    return slice(first, first + len(cut))


class ForecastAhead:
    """A :data:`~p2penergy.agents.gateway.ForecastRunner` for a simulation of ``community``
    whose agents plan every ``replan_slots`` slots (see the module docstring); ``runner``
    computes a step's forecasts when the guess made ahead does not match (default:
    :func:`~p2penergy.agents.gateway.forecast_sites`). Use it as a context manager (it owns
    one worker process, started by a fork server; if it fails, the forecasts are computed here from
    then on). ``hits`` and ``misses`` count the steps whose forecasts made ahead were taken or dropped."""

    def __init__(self, kit: ForecastKit, community: Community, replan_slots: int,
                 runner: ForecastRunner = forecast_sites) -> None:
        if replan_slots < 1:
            raise ValueError(f"replan_slots: must be >= 1, got {replan_slots}")
        self.kit = kit
        self.replan_slots = replan_slots
        self.runner = runner
        self._index = community.index
        self._tz = community.settings.tz
        self._series = {p.id: np.column_stack([p.load_wh, p.pv_wh]) for p in community.participants.values()
                        if p.kind != CAR_KIND}
        self._guess: _Guess | None = None
        self.hits = 0
        self.misses = 0
        self._broken = False
        # forkserver: a clean process, not a fork of one that may run threads (the chain's pipeline).
        # The forecasters go as the first task, not as the initializer's argument: starting a process
        # writes its arguments down a pipe that the new process reads only once it has imported the
        # main module, and the megabytes of the fitted models would block this thread till then.
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("forkserver"))
        self._pool.submit(_install, kit)  # one worker: it runs its tasks in order

    def __enter__(self) -> ForecastAhead:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._guess = None
        self._pool.shutdown(cancel_futures=True)

    def __call__(self, kit: ForecastKit, histories: Histories, now: datetime,
                 horizon: pd.DatetimeIndex) -> dict[str, SiteForecast]:
        guess, self._guess = self._guess, None
        forecasts = None
        if guess is not None:
            if kit is self.kit and self._matches(guess, histories, now, horizon):
                try:
                    forecasts = guess.forecasts.result()
                    self.hits += 1
                except Exception:  # the worker failed (killed, out of memory): forecast here from now on
                    self._broken = True
            else:
                guess.forecasts.cancel()
            if forecasts is None:
                self.misses += 1
        if forecasts is None:
            forecasts = self.runner(kit, histories, now, horizon)
        if kit is self.kit and not self._broken:
            try:
                self._guess_next(histories, now)
            except BrokenExecutor:
                self._broken = True
        return forecasts

    def _matches(self, guess: _Guess, histories: Histories, now: datetime, horizon: pd.DatetimeIndex) -> bool:
        if guess.issued_at != now or not guess.horizon.equals(horizon) or list(guess.histories) != list(histories):
            return False
        if not histories:
            return False
        first = next(iter(histories.values()))[0].index  # every site's history is over the same slots
        rows = _read_rows(first, now)
        read = first[rows]
        if not read.equals(next(iter(guess.histories.values()))[0].index):
            return False
        for pid, (frame, has_pv) in histories.items():
            guessed, guessed_pv = guess.histories[pid]
            values, wanted = frame.to_numpy(), guessed.to_numpy()  # one block each: their types are the columns'
            if (guessed_pv != has_pv or list(frame.columns) != list(guessed.columns) or values.dtype != wanted.dtype
                    or len(set(frame.dtypes.tolist())) != 1
                    or not (frame.index is first or frame.index.equals(first))
                    or not (guessed.index is read or guessed.index.equals(read))):
                return False
            if not np.array_equal(values[rows], wanted):
                return False
        return True

    def _guess_next(self, histories: Histories, now: datetime) -> None:
        """Start forecasting the next planning step from the true series up to it."""
        at = int(self._index.searchsorted(pd.Timestamp(now)))
        nxt = at + self.replan_slots
        if at >= len(self._index) or self._index[at] != pd.Timestamp(now) or nxt >= len(self._index):
            return
        if any(pid not in self._series for pid in histories):
            return
        issued_at = utc_starts(self._index[nxt:nxt + 1])[0]  # the market's slot key, as the gateways ask
        horizon = horizon_for(self._index, nxt, self._tz)
        rows = _read_rows(self._index[:nxt], issued_at)
        index = self._index[rows]
        guessed: dict[str, tuple[pd.DataFrame, bool]] = {}
        for pid, (frame, has_pv) in histories.items():
            if frame.shape[1] != 2:
                return
            values = self._series[pid][rows].astype(frame.to_numpy().dtype)
            guessed[pid] = (pd.DataFrame(values, columns=frame.columns, index=index), has_pv)
        weather = self.kit.weather.issue(issued_at, len(horizon))
        future = self._pool.submit(_chunk_here, guessed, issued_at, horizon, weather)
        self._guess = _Guess(issued_at, horizon, guessed, future)
