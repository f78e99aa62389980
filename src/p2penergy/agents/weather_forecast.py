"""Synthetic weather forecasts: the scenario's weather plus seeded error growing with lead time.

A forecast issued at ``issued_at`` covers the slot containing ``issued_at`` and the
``horizon_slots − 1`` slots after it. For each forecast slot it reads the *truth of that
slot only* (that is what an error model of "truth + error" needs: it stands in for a
numerical weather prediction, which is correlated with the weather to come); it never
reads slots outside the horizon, and its error depends only on ``(rng_seed, issued_at)``
and the lead time. So everything downstream may use a forecast without looking ahead
except through this documented, noisy channel.

Error model (:class:`WeatherErrorModel`), per slot at lead time ``L`` hours
(slot midpoint minus issue time), with ``z`` a unit-variance AR(1) sequence over the
horizon (correlation ``error_correlation_per_hour`` per hour):

* ``temp_c`` + ``σ_T(L)·z_T``, with ``σ_T(L) = temp_sd_c + temp_sd_c_per_sqrt_day·√(L/24)``;
* clear-sky index ``k = ghi/clearsky`` − ``σ_k(L)·z_k``, clipped to [0, 1.2], and
  ``cloud_index`` + ``σ_k(L)·z_k`` clipped to [0, 1] (more cloud, less sun), with
  ``σ_k(L) = clear_index_sd + clear_index_sd_per_sqrt_day·√(L/24)``;
* ``clearsky_ghi_w_m2`` is astronomy and copied unchanged; ``ghi_w_m2 = k·clearsky``.

Defaults give about 1.5 °C and 0.23 clear-sky-index error one day ahead, the order of
day-ahead NWP errors for temperature and irradiance (e.g. Lorenz et al. 2009,
doi:10.1109/JSTARS.2009.2020300: day-ahead GHI RMSE about 30–40 % of mean in central Europe).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from pandas.tseries.offsets import Tick
from scipy.signal import lfilter

from p2penergy.agents.plan_input import AgentInputError

WEATHER_COLUMNS = ("temp_c", "ghi_w_m2", "clearsky_ghi_w_m2", "cloud_index")
LOOKBACK_DAYS = 2
"""Days of observed weather a forecast from :class:`WeatherForecastSource` carries before its issue time."""


@dataclass(frozen=True, slots=True)
class WeatherErrorModel:
    """Standard deviations of forecast error (see module docstring)."""

    temp_sd_c: float = 0.3
    temp_sd_c_per_sqrt_day: float = 1.2
    clear_index_sd: float = 0.03
    clear_index_sd_per_sqrt_day: float = 0.2
    error_correlation_per_hour: float = 0.85

    def __post_init__(self) -> None:
        for name in ("temp_sd_c", "temp_sd_c_per_sqrt_day", "clear_index_sd", "clear_index_sd_per_sqrt_day"):
            if not getattr(self, name) >= 0:
                raise AgentInputError(name, "zero or more")
        if not 0 <= self.error_correlation_per_hour < 1:
            raise AgentInputError("error_correlation_per_hour", "in [0, 1)")


UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
"""Nanoseconds per unit of a DatetimeIndex's ``asi8`` (pandas 3 may hold us or s)."""


def index_ns(index: pd.DatetimeIndex) -> np.ndarray:
    """UTC nanoseconds of a DatetimeIndex, whatever its unit (pandas 3 may use us or s); a new array."""
    if index.unit == "ns":  # a copy of its integers (converting to its own unit costs some 30 µs a call)
        return index.asi8.copy()
    return index.as_unit("ns").asi8


def slot_length_ns(index: pd.DatetimeIndex, field: str) -> int:
    """The (single) step of a regular, tz-aware index, in nanoseconds."""
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise AgentInputError(field, "indexed by timezone-aware slot starts (a DatetimeIndex with tz)")
    if len(index) < 2:
        raise AgentInputError(field, "at least two slots")
    ns = index.asi8  # the index's own unit (pandas 3 may use us or s): no converted copy
    unit = UNIT_NS[index.unit]
    raw_step = int(ns[1] - ns[0])
    if raw_step <= 0:
        raise AgentInputError(field, "regular, increasing slot starts without gaps")
    step = raw_step * unit
    freq = index.freq
    if isinstance(freq, Tick) and pd.Timedelta(freq).value == step:
        return step  # an index with a fixed frequency is regular by pandas' own check (date_range, its slices)
    if not (np.diff(ns) == raw_step).all():
        raise AgentInputError(field, "regular, increasing slot starts without gaps")
    return step


def _aware_ns(when: datetime, field: str) -> int:
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise AgentInputError(field, f"a timezone-aware datetime, got {when!r}")
    return pd.Timestamp(when).value


def _error_draws(rng_seed: int, issued_ns: int, horizon_slots: int, step_ns: int, phi_per_hour: float) -> np.ndarray:
    """(2, horizon_slots) unit-variance AR(1) sequences, a function of (seed, issue time) only."""
    rng = np.random.default_rng([int(rng_seed) & 0xFFFFFFFF, issued_ns // 1_000_000_000 & 0xFFFFFFFFFFFF])
    phi = phi_per_hour ** (step_ns / 3.6e12)
    shocks = rng.standard_normal((horizon_slots, 2)).T  # slot by slot: a longer horizon extends, never reshuffles
    # z[0] = shock[0], z[i] = phi·z[i−1] + √(1 − phi²)·shock[i], as one linear filter
    scale = np.sqrt(1.0 - phi * phi)
    drive = shocks.copy()
    drive[:, 0] /= scale
    return lfilter([scale], [1.0, -phi], drive, axis=1)


def forecast_weather_array(
    truth: np.ndarray, ns: np.ndarray, step_ns: int, issued_ns: int, horizon_slots: int, rng_seed: int,
    error: WeatherErrorModel,
) -> tuple[int, np.ndarray]:
    """Array core of :func:`forecast_weather`: ``truth`` is ``(4, len(ns))`` in ``WEATHER_COLUMNS`` order.

    Returns (row of the first forecast slot, ``(4, n)`` forecast), ``n <= horizon_slots``.
    """
    first = int(np.searchsorted(ns + step_ns, issued_ns, side="right"))  # first slot not yet over
    stop = min(first + horizon_slots, len(ns))
    n = max(stop - first, 0)
    z = _error_draws(rng_seed, issued_ns, horizon_slots, step_ns, error.error_correlation_per_hour)[:, :n]
    lead_h = np.maximum((ns[first:stop] + step_ns / 2 - issued_ns) / 3.6e12, 0.0)
    root_days = np.sqrt(lead_h / 24.0)
    sd_t = error.temp_sd_c + error.temp_sd_c_per_sqrt_day * root_days
    sd_k = error.clear_index_sd + error.clear_index_sd_per_sqrt_day * root_days
    temp, ghi, clear, cloud = truth[:, first:stop]
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(clear > 1.0, ghi / clear, 0.0)
    k_fc = np.clip(k - sd_k * z[1], 0.0, 1.2)
    out = np.stack([
        temp + sd_t * z[0],
        np.where(clear > 1.0, k_fc * clear, 0.0),
        clear,
        np.clip(cloud + sd_k * z[1], 0.0, 1.0),
    ])
    return first, out


def _truth(weather: pd.DataFrame) -> np.ndarray:
    missing = [c for c in WEATHER_COLUMNS if c not in weather.columns]
    if missing:
        raise AgentInputError("weather", f"columns {', '.join(WEATHER_COLUMNS)}; missing {', '.join(missing)}")
    return np.stack([weather[c].to_numpy(dtype=np.float64) for c in WEATHER_COLUMNS])


def forecast_weather(
    weather: pd.DataFrame,
    issued_at: datetime,
    horizon_slots: int,
    rng_seed: int,
    error: WeatherErrorModel | None = None,
) -> pd.DataFrame:
    """The forecast issued at ``issued_at`` for ``horizon_slots`` slots (fewer if the data end).

    Deterministic per ``(rng_seed, issued_at)``: the same call gives the same numbers, and
    a forecast's value for a slot does not depend on how long the horizon is.
    """
    truth = _truth(weather)
    if isinstance(horizon_slots, bool) or not isinstance(horizon_slots, int) or horizon_slots < 1:
        raise AgentInputError("horizon_slots", f"a positive whole number, got {horizon_slots!r}")
    step = slot_length_ns(weather.index, "weather.index")
    t_ns = _aware_ns(issued_at, "issued_at")
    first, out = forecast_weather_array(truth, index_ns(weather.index), step, t_ns, horizon_slots, rng_seed,
                                        error or WeatherErrorModel())
    index = weather.index[first: first + out.shape[1]]
    return pd.DataFrame(dict(zip(WEATHER_COLUMNS, out, strict=True)), index=index)


@dataclass(frozen=True, eq=False)
class WeatherForecastSource:
    """Issues forecasts from the scenario's weather (the truth stays inside; see module docstring)."""

    weather: pd.DataFrame
    rng_seed: int
    error: WeatherErrorModel = WeatherErrorModel()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_truth", _truth(self.weather))
        object.__setattr__(self, "_ns", index_ns(self.weather.index))
        object.__setattr__(self, "_step", slot_length_ns(self.weather.index, "weather.index"))
        object.__setattr__(self, "_recent", {})  # the last few issued frames: agents of one slot share them

    def issue(self, issued_at: datetime, horizon_slots: int, lookback_days: int = LOOKBACK_DAYS) -> pd.DataFrame:
        """The forecast as a DataFrame indexed by slot start (see :func:`forecast_weather`),
        preceded by the *observed* weather of the ``lookback_days`` before ``issued_at`` (only
        slots that have ended: measurements an agent has; the forecasters compare them with
        the forecast)."""
        t_ns = _aware_ns(issued_at, "issued_at")
        key = (t_ns, horizon_slots, lookback_days)
        recent: dict = self._recent  # type: ignore[attr-defined]
        if key not in recent:
            if len(recent) >= 8:
                recent.pop(next(iter(recent)))
            recent[key] = self._issue(issued_at, t_ns, horizon_slots, lookback_days)
        return recent[key].copy()

    def _issue(self, issued_at: datetime, t_ns: int, horizon_slots: int, lookback_days: int) -> pd.DataFrame:
        forecast = forecast_weather(self.weather, issued_at, horizon_slots, self.rng_seed, self.error)
        if lookback_days <= 0:
            return forecast
        ns = self._ns
        stop = int(np.searchsorted(ns + self._step, t_ns, side="right"))
        start = int(np.searchsorted(ns, t_ns - lookback_days * 86_400 * 10**9, side="left"))
        observed = self.weather.iloc[start:stop][list(WEATHER_COLUMNS)].astype(np.float64)
        return pd.concat([observed, forecast]) if len(observed) else forecast

    def issue_for(self, issued_at: datetime, horizon: pd.DatetimeIndex) -> pd.DataFrame:
        """The forecast issued at ``issued_at``, long enough to cover every slot of ``horizon``."""
        t_ns = _aware_ns(issued_at, "issued_at")
        last = int(index_ns(horizon).max()) if len(horizon) else t_ns
        return self.issue(issued_at, max(int((last - t_ns) // self._step) + 2, 1))

    def observed_on(self, issued_ns: int, target_ns: np.ndarray) -> np.ndarray:
        """``(4, len(target_ns))`` observed weather of slots that ended by ``issued_ns``; NaN otherwise."""
        ns, step = self._ns, self._step
        rows = (target_ns - ns[0]) // step
        ok = (rows >= 0) & (rows < len(ns)) & (target_ns + step <= issued_ns)
        out = np.full((4, len(target_ns)), np.nan)
        out[:, ok] = self._truth[:, rows[ok]]
        return out

    def issue_on(self, issued_ns: int, target_ns: np.ndarray) -> np.ndarray:
        """``(4, len(target_ns))`` forecast issued at ``issued_ns`` for the given slot starts (UTC ns);
        NaN for slots outside the data. Same numbers as :meth:`issue`."""
        ns, step = self._ns, self._step
        first = int(np.searchsorted(ns + step, issued_ns, side="right"))
        last = int((target_ns.max() - ns[0]) // step) if len(target_ns) else first
        _, arr = forecast_weather_array(self._truth, ns, step, issued_ns, max(last - first + 1, 1), self.rng_seed,
                                        self.error)
        rows = (target_ns - ns[0]) // step - first
        ok = (rows >= 0) & (rows < arr.shape[1]) & ((target_ns - ns[0]) % step == 0)
        out = np.full((4, len(target_ns)), np.nan)
        out[:, ok] = arr[:, rows[ok]]
        return out
