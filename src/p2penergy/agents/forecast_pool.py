"""A step's forecasts split across processes: the sites in chunks, each chunk forecast elsewhere.

One forecasting step is one batch for all sites (:func:`~p2penergy.agents.gateway.forecast_sites`),
and every site's forecast depends on that site's history alone: the features are per-site
arithmetic on a leading sites axis (:mod:`~p2penergy.agents.forecast_features`), LightGBM
predicts each row on its own, the per-site choice and the quantile offsets are per site. So the
batch can be cut into chunks of sites, each forecast in another process, and the forecasts put
back together are the unsplit ones bit for bit (tested: a split run's bills equal the unsplit
run's to the yen).

What a chunk is sent: its sites' histories cut to the :data:`~p2penergy.agents.forecast_features.READ_DAYS`
a forecast reads, the issue time, the horizon and the weather forecast issued once for the step;
the fitted forecasters go to every worker once. Workers are a local pool of processes
(:class:`ProcessForecastWorkers`) or the Dask cluster a sweep point runs on
(:class:`DaskForecastWorkers`, from inside a Dask task: ``distributed.worker_client``).

Worth it for large communities only: a chunk's round trip (pickling some hundred kB of
history, a task on another process) costs a few milliseconds, against about half a
millisecond of model time per site (``benchmarks/bench_agents.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from p2penergy.agents.forecast_features import DAY_NS, aware_ns, first_read_row, observed_rows
from p2penergy.agents.gateway import ForecastKit, SiteForecast, forecast_sites
from p2penergy.agents.weather_forecast import UNIT_NS
from p2penergy.agents.worker_pools import local_processes, workers_for

Histories = Mapping[str, tuple[pd.DataFrame, bool]]


class ForecastWorkers(Protocol):
    """Runs chunks of a step's forecasts elsewhere and returns them in order."""

    workers: int

    def forecast(self, chunks: Sequence[Histories], now: datetime, horizon: pd.DatetimeIndex,
                 weather: pd.DataFrame) -> list[dict[str, SiteForecast]]: ...

    def close(self) -> None: ...


def recent_history(frame: pd.DataFrame, issued_at: datetime) -> pd.DataFrame:
    """``frame`` cut to the rows a forecast issued at ``issued_at`` reads: the last
    :data:`READ_DAYS` days before it (at least two rows: the slot length is read from them)."""
    index = frame.index
    if len(index) < 3:
        return frame
    unit = UNIT_NS[index.unit]
    start_ns, step_ns = int(index.asi8[0]) * unit, int(index.asi8[1] - index.asi8[0]) * unit
    observed = observed_rows(start_ns, step_ns, len(index), aware_ns(issued_at, "issued_at"))
    first = first_read_row(observed, DAY_NS // step_ns)
    return frame.iloc[first:max(observed, first + 2)]


def chunks_of(histories: Histories, n: int, now: datetime) -> list[dict[str, tuple[pd.DataFrame, bool]]]:
    """``histories`` in at most ``n`` chunks of consecutive sites (in order), each history cut
    to what the forecast reads."""
    ids = list(histories)
    return [{i: (recent_history(histories[i][0], now), histories[i][1]) for i in part}
            for part in np.array_split(np.array(ids, dtype=object), min(n, len(ids))) if len(part)]


def split_forecast_sites(kit: ForecastKit, histories: Histories, now: datetime, horizon: pd.DatetimeIndex,
                         workers: ForecastWorkers) -> dict[str, SiteForecast]:
    """:func:`~p2penergy.agents.gateway.forecast_sites` with the sites split across ``workers``:
    one weather issue here, one chunk per worker, the forecasts merged in the sites' order."""
    weather = kit.weather.issue(now, len(horizon))
    merged: dict[str, SiteForecast] = {}
    for part in workers.forecast(chunks_of(histories, workers.workers, now), now, horizon, weather):
        merged.update(part)
    return {i: merged[i] for i in histories}


# -- a local pool of processes -------------------------------------------------------------------
_KIT: ForecastKit | None = None


def _install(kit: ForecastKit) -> None:
    global _KIT
    _KIT = kit


def _chunk_here(histories: Histories, now: datetime, horizon: pd.DatetimeIndex,
                weather: pd.DataFrame) -> dict[str, SiteForecast]:
    assert _KIT is not None, "the worker's forecasters are installed when it starts"
    return forecast_sites(_KIT, histories, now, horizon, weather)


class ProcessForecastWorkers:
    """``workers`` local processes (started by a fork server), each holding the fitted forecasters."""

    def __init__(self, kit: ForecastKit, workers: int) -> None:
        if workers < 2:
            raise ValueError(f"forecast_workers: at least 2 to split (1 forecasts in process), got {workers}")
        self.workers = workers
        self._pool = local_processes(workers, initializer=_install, initargs=(kit,))

    def forecast(self, chunks: Sequence[Histories], now: datetime, horizon: pd.DatetimeIndex,
                 weather: pd.DataFrame) -> list[dict[str, SiteForecast]]:
        futures = [self._pool.submit(_chunk_here, chunk, now, horizon, weather) for chunk in chunks]
        return [f.result() for f in futures]

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


# -- the Dask cluster a sweep point runs on --------------------------------------------------------
class DaskForecastWorkers:
    """Chunks as tasks on a Dask cluster: the forecasters scattered to every worker once.

    ``client``: a ``distributed.Client``; inside a Dask task (a sweep point) the one from
    ``distributed.worker_client()``, which also frees this task's thread while it waits."""

    def __init__(self, kit: ForecastKit, workers: int, client: Any) -> None:
        if workers < 2:
            raise ValueError(f"forecast_workers: at least 2 to split (1 forecasts in process), got {workers}")
        self.workers = workers
        self._client = client
        self._kit = client.scatter(kit, broadcast=True)

    def forecast(self, chunks: Sequence[Histories], now: datetime, horizon: pd.DatetimeIndex,
                 weather: pd.DataFrame) -> list[dict[str, SiteForecast]]:
        futures = [self._client.submit(forecast_sites, self._kit, chunk, now, horizon, weather, pure=False)
                   for chunk in chunks]
        return list(self._client.gather(futures))

    def close(self) -> None:
        self._kit.release()


def forecast_workers(kit: ForecastKit, workers: int) -> AbstractContextManager[ForecastWorkers | None]:
    """Workers to split a run's forecasting steps across (``None`` for ``workers`` ≤ 1: in
    process): inside a Dask task, tasks on its cluster; elsewhere a local pool of processes
    (:func:`~p2penergy.agents.worker_pools.workers_for`)."""
    return workers_for(workers, lambda client: DaskForecastWorkers(kit, workers, client),
                       lambda: ProcessForecastWorkers(kit, workers))
