"""The site gateway: turns metered history and weather forecasts into an Observation.

The simulation and a live agent (``p2penergy agent``) both build their agent's
observations here, so the agent sees the same kind of input in both. Only history
before ``now`` is passed on; forecasts come from the fitted forecasters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from p2penergy.agents.forecast import Forecaster, local_midnight_after
from p2penergy.agents.trader import Observation
from p2penergy.agents.weather_forecast import WeatherForecastSource
from p2penergy.community import CAR_KIND, Participant, utc_starts


@dataclass(frozen=True, eq=False)
class ForecastKit:
    """Fitted forecasters for load and PV, and the source of weather forecasts."""

    load: Forecaster
    pv: Forecaster
    weather: WeatherForecastSource


def horizon_for(index: pd.DatetimeIndex, i: int, tz: object) -> pd.DatetimeIndex:
    """Slot starts from position ``i`` to the end of tomorrow (local time), within ``index``."""
    now = index[i].tz_convert(tz)  # type: ignore[arg-type]
    end = local_midnight_after(now, 2)  # days of 23 or 25 hours included
    stop = int(index.searchsorted(end))
    return index[i:max(stop, i + 1)]


def forecast_sites(kit: ForecastKit, histories: Mapping[str, tuple[pd.DataFrame, bool]], now: datetime,
                   horizon: pd.DatetimeIndex) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load and PV forecasts over ``horizon`` for every site in ``histories`` (site ->
    (metered history before ``now``, has PV)), from one weather forecast issued at ``now``
    and one model call per target."""
    ids = list(histories)
    weather = kit.weather.issue(now, len(horizon))
    load = _predict(kit.load, [histories[i][0] for i in ids], now, horizon, weather)
    pv_ids = [i for i in ids if histories[i][1]]
    pv = _predict(kit.pv, [histories[i][0] for i in pv_ids], now, horizon, weather)
    pv_of = dict(zip(pv_ids, pv, strict=True))
    zeros = np.zeros(len(horizon))
    return {i: (np.asarray(load[k], dtype=float), np.asarray(pv_of.get(i, zeros), dtype=float))
            for k, i in enumerate(ids)}


def _predict(model: Forecaster, frames: list[pd.DataFrame], now: datetime, horizon: pd.DatetimeIndex,
             weather: pd.DataFrame) -> list[np.ndarray]:
    """One model call for all sites where the forecaster can (``predict_many``), else one each."""
    if not frames:
        return []
    many = getattr(model, "predict_many", None)
    if many is not None:
        return list(many(frames, now, horizon, weather))
    return [model.predict(frame, now, horizon, weather) for frame in frames]


def observe(participant: Participant, forecast: tuple[np.ndarray, np.ndarray] | None, now: datetime,
            horizon: pd.DatetimeIndex, *, slot_starts: tuple[datetime, ...] | None = None,
            soc_wh: int | None = None, car_soc_wh: int | None = None,
            car_location: np.ndarray | None = None, car_drive_wh: np.ndarray | None = None,
            month_import_wh: int = 0, peak_so_far_w: float = 0.0) -> Observation:
    """Observation for ``participant`` at ``now`` from its site's forecast (none for a car)."""
    n = len(horizon)
    load, pv = forecast if forecast is not None and participant.kind != CAR_KIND else (np.zeros(n), np.zeros(n))
    return Observation(
        now=now, horizon=horizon, load_wh=load, pv_wh=pv,
        slot_starts=slot_starts if slot_starts is not None else utc_starts(horizon),
        soc_wh=soc_wh, car_soc_wh=car_soc_wh, car_location=car_location, car_drive_wh=car_drive_wh,
        month_import_wh=month_import_wh, peak_so_far_w=peak_so_far_w,
    )
