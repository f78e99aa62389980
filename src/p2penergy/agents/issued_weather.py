"""Weather forecasts that were really issued (read from a file), served like the synthetic ones.

:class:`IssuedWeatherForecasts` answers the same calls as
:class:`~p2penergy.agents.weather_forecast.WeatherForecastSource` (``issue``, ``issue_for``,
``issue_on``, ``observed_on``), so the forecasters and agents use either. A forecast asked for at
time t is the latest issue at or before t (an agent has nothing newer); slots that issue does not
cover are NaN (the forecasters treat them as unknown) and are left out of :meth:`issue`. The
observed weather (for the days before the issue time, as the synthetic source gives) comes from
the measured weather, if any. Forecast rows of slots longer than the data's hold over the
shorter slots inside them (a mean irradiance or temperature applies to every part of its slot).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from p2penergy.agents.forecast_features import DAY_NS, aware_ns
from p2penergy.agents.plan_input import AgentInputError
from p2penergy.agents.weather_forecast import LOOKBACK_DAYS, WEATHER_COLUMNS, WeatherForecastSource, index_ns


@dataclass(frozen=True, eq=False)
class IssuedWeatherForecasts:
    """Forecast rows ``issued_at``, ``slot_start`` and ``WEATHER_COLUMNS`` (as
    :func:`~p2penergy.scenario.measured_weather.read_weather_forecasts` returns them), on a grid of
    ``step`` slots; ``observed``: measured weather on that grid (``WEATHER_COLUMNS``) or None."""

    forecasts: pd.DataFrame
    step: pd.Timedelta
    observed: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        missing = [c for c in ("issued_at", "slot_start", *WEATHER_COLUMNS) if c not in self.forecasts.columns]
        if missing:
            raise AgentInputError("forecasts", f"columns issued_at, slot_start, {', '.join(WEATHER_COLUMNS)}; "
                                  f"missing {', '.join(missing)}")
        step = int(self.step.value)
        issued = pd.DatetimeIndex(self.forecasts["issued_at"]).as_unit("ns").asi8
        valid = pd.DatetimeIndex(self.forecasts["slot_start"]).as_unit("ns").asi8
        values = np.stack([self.forecasts[c].to_numpy(dtype=np.float64) for c in WEATHER_COLUMNS])
        gaps = np.diff(np.unique(valid))
        own = int(gaps.min()) if len(gaps) else step
        if own % step:
            raise AgentInputError("forecasts", f"slots whose length ({pd.Timedelta(own)}) is a multiple of the "
                                  f"data's slot ({self.step})")
        parts = own // step
        if parts > 1:  # hold each row over the data's slots inside it
            offsets = np.tile(np.arange(parts, dtype=np.int64) * step, len(valid))
            issued = np.repeat(issued, parts)
            valid = np.repeat(valid, parts) + offsets
            values = np.repeat(values, parts, axis=1)
        order = np.lexsort((valid, issued))
        issued, valid, values = issued[order], valid[order], values[:, order]
        issues, first = np.unique(issued, return_index=True)
        object.__setattr__(self, "_issues", issues)
        object.__setattr__(self, "_bounds", np.append(first, len(issued)))
        object.__setattr__(self, "_valid", valid)
        object.__setattr__(self, "_values", values)
        if self.observed is not None:
            object.__setattr__(self, "_obs_ns", index_ns(self.observed.index))
            object.__setattr__(self, "_obs", np.stack([self.observed[c].to_numpy(dtype=np.float64)
                                                       for c in WEATHER_COLUMNS]))

    def issue_on(self, issued_ns: int, target_ns: np.ndarray) -> np.ndarray:
        """``(4, len(target_ns))``: the latest issue at or before ``issued_ns`` at the given slot starts."""
        out = np.full((4, len(target_ns)), np.nan)
        i = int(np.searchsorted(self._issues, issued_ns, side="right")) - 1  # type: ignore[attr-defined]
        if i < 0 or len(target_ns) == 0:
            return out
        lo, hi = self._bounds[i], self._bounds[i + 1]  # type: ignore[attr-defined]
        valid = self._valid[lo:hi]  # type: ignore[attr-defined]
        rows = np.searchsorted(valid, target_ns).clip(max=len(valid) - 1)
        ok = valid[rows] == target_ns
        out[:, ok] = self._values[:, lo + rows[ok]]  # type: ignore[attr-defined]
        return out

    def observed_on(self, issued_ns: int, target_ns: np.ndarray) -> np.ndarray:
        """``(4, len(target_ns))`` measured weather of slots that ended by ``issued_ns``; NaN otherwise."""
        out = np.full((4, len(target_ns)), np.nan)
        if self.observed is None or len(target_ns) == 0 or len(self.observed) == 0:
            return out
        ns = self._obs_ns  # type: ignore[attr-defined]
        rows = np.searchsorted(ns, target_ns).clip(max=len(ns) - 1)
        ok = (ns[rows] == target_ns) & (target_ns + int(self.step.value) <= issued_ns)
        out[:, ok] = self._obs[:, rows[ok]]  # type: ignore[attr-defined]
        return out

    def _frame(self, issued_ns: int, target_ns: np.ndarray, lookback_days: int) -> pd.DataFrame:
        step = int(self.step.value)
        parts = [(target_ns, self.issue_on(issued_ns, target_ns))]
        if lookback_days > 0 and self.observed is not None:
            ns = self._obs_ns  # type: ignore[attr-defined]
            past = ns[(ns >= issued_ns - lookback_days * DAY_NS) & (ns + step <= issued_ns)]
            parts.insert(0, (past, self.observed_on(issued_ns, past)))
        when = np.concatenate([p[0] for p in parts])
        values = np.concatenate([p[1] for p in parts], axis=1)
        keep = np.isfinite(values).all(axis=0)
        tz = self.forecasts["slot_start"].dt.tz
        index = pd.DatetimeIndex(pd.to_datetime(when[keep], utc=True)).tz_convert(tz)
        return pd.DataFrame(dict(zip(WEATHER_COLUMNS, values[:, keep], strict=True)),
                            index=pd.DatetimeIndex(index, name="slot_start"))

    def issue(self, issued_at: datetime, horizon_slots: int, lookback_days: int = LOOKBACK_DAYS) -> pd.DataFrame:
        """The latest issue's slots from the one containing ``issued_at``, ``horizon_slots`` long,
        after the measured weather of the ``lookback_days`` before (slots ended)."""
        t_ns = aware_ns(issued_at, "issued_at")
        step = int(self.step.value)
        anchor = int(self._valid[0]) if len(self._valid) else t_ns  # type: ignore[attr-defined]
        current = anchor + (t_ns - anchor) // step * step
        return self._frame(t_ns, current + np.arange(max(horizon_slots, 1), dtype=np.int64) * step, lookback_days)

    def issue_for(self, issued_at: datetime, horizon: pd.DatetimeIndex) -> pd.DataFrame:
        """The forecast issued at ``issued_at`` for the slots of ``horizon``."""
        return self._frame(aware_ns(issued_at, "issued_at"), index_ns(horizon), LOOKBACK_DAYS)


def weather_source(weather: pd.DataFrame, forecasts: pd.DataFrame | None,
                   seed: int) -> WeatherForecastSource | IssuedWeatherForecasts:
    """The weather forecasts the agents get: the issued ones if given (with ``weather`` as the
    observed past), else the synthetic ones from ``weather`` (its error model, seeded)."""
    if forecasts is None:
        return WeatherForecastSource(weather, rng_seed=seed)
    step = pd.Timedelta(int(np.diff(index_ns(weather.index)[:2])[0])) if len(weather) > 1 else pd.Timedelta(hours=1)
    return IssuedWeatherForecasts(forecasts, step, weather)
