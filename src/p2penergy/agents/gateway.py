"""The site gateway: turns metered history and weather forecasts into an Observation.

The simulation and a live agent (``p2penergy agent``) both build their agent's
observations here, so the agent sees the same kind of input in both. Only history
before ``now`` is passed on; forecasts come from the fitted forecasters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from p2penergy.agents.forecast import Forecaster
from p2penergy.agents.trader import Observation
from p2penergy.agents.weather_forecast import WeatherForecastSource
from p2penergy.community import CAR_KIND, Participant


@dataclass(frozen=True, eq=False)
class ForecastKit:
    """Fitted forecasters for load and PV, and the source of weather forecasts."""

    load: Forecaster
    pv: Forecaster
    weather: WeatherForecastSource


def horizon_for(index: pd.DatetimeIndex, i: int, tz: object) -> pd.DatetimeIndex:
    """Slot starts from position ``i`` to the end of tomorrow (local time), within ``index``."""
    now = index[i].tz_convert(tz)  # type: ignore[arg-type]
    end = (now.normalize() + pd.Timedelta(days=2))
    stop = int(index.searchsorted(end))
    return index[i:max(stop, i + 1)]


def observe(participant: Participant, history: pd.DataFrame | None, kit: ForecastKit | None, now: datetime,
            horizon: pd.DatetimeIndex, *, soc_wh: int | None = None, car_soc_wh: int | None = None,
            car_location: np.ndarray | None = None, car_drive_wh: np.ndarray | None = None,
            month_import_wh: int = 0, peak_so_far_w: float = 0.0) -> Observation:
    """Observation for ``participant`` at ``now``; ``history`` must end before ``now``."""
    n = len(horizon)
    load = np.zeros(n)
    pv = np.zeros(n)
    if participant.kind != CAR_KIND and kit is not None and history is not None:
        weather = kit.weather.issue(now, n)
        load = kit.load.predict(history, now, horizon, weather)
        if participant.has_pv:
            pv = kit.pv.predict(history, now, horizon, weather)
    return Observation(
        now=now, horizon=horizon, load_wh=np.asarray(load, dtype=float), pv_wh=np.asarray(pv, dtype=float),
        soc_wh=soc_wh, car_soc_wh=car_soc_wh, car_location=car_location, car_drive_wh=car_drive_wh,
        month_import_wh=month_import_wh, peak_so_far_w=peak_so_far_w,
    )
