"""Seeded weather: daily cloud day types with within-day variability, and air temperature.

Pure: every random number comes from the ``numpy.random.Generator`` passed in. Times are
the slot starts of a timezone-aware ``pandas.DatetimeIndex``; local hour of day comes from
that timezone.

Cloud model
    Each day gets a *day type* (e.g. clear, partly cloudy, overcast, rainy) from a Markov
    chain: with probability ``persistence`` it repeats yesterday's type, otherwise it is
    drawn from the month's probabilities (so the month's long-run frequencies are those
    probabilities). The day's clearness ``k_d`` (all-sky GHI / clear-sky GHI) is drawn from
    the type's normal distribution; within the day a log-normal AR(1) factor with the
    type's ``variability`` moves it slot by slot. ``cloud_index = 1 - k`` (0 clear, 1 dark).

Temperature
    Daily mean = climatological mean (monthly means interpolated between mid-months)
    + heat-wave anomalies + an AR(1) daily anomaly + a cloud term (clear days warmer);
    diurnal cosine with the minimum at 05:00 and maximum at 14:00 local, its range scaled
    by the day's clearness.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd


@dataclass(frozen=True, slots=True)
class DayType:
    """A kind of day: clearness mean and spread (daily), and within-day variability (log sd)."""

    name: str
    clearness_mean: float
    clearness_sd: float
    variability: float


@dataclass(frozen=True, slots=True)
class HeatWave:
    """Extra warmth ``anomaly_c`` [K] on days ``start..end`` (inclusive), ramped over 2 days."""

    start: date
    end: date
    anomaly_c: float


@dataclass(frozen=True, slots=True)
class WeatherParams:
    """Climate of the site. ``day_type_probabilities[month]`` aligns with ``day_types``."""

    monthly_mean_temp_c: Mapping[int, float]
    diurnal_range_c: float
    day_types: tuple[DayType, ...]
    day_type_probabilities: Mapping[int, tuple[float, ...]]
    persistence: float = 0.5
    anomaly_sd_c: float = 1.2
    anomaly_persistence: float = 0.7
    cloud_effect_c: float = 2.0
    heat_waves: tuple[HeatWave, ...] = ()

    def __post_init__(self) -> None:
        if not self.day_types:
            raise ValueError("day_types: must not be empty")
        for month, probs in self.day_type_probabilities.items():
            if len(probs) != len(self.day_types):
                raise ValueError(f"day_type_probabilities.{month}: needs {len(self.day_types)} values")
            if any(p < 0 for p in probs) or abs(sum(probs) - 1) > 1e-6:
                raise ValueError(f"day_type_probabilities.{month}: must be >= 0 and sum to 1")
        if not 0 <= self.persistence < 1:
            raise ValueError("persistence: must be in [0, 1)")

    def probabilities(self, month: int) -> np.ndarray:
        if month not in self.day_type_probabilities:
            raise ValueError(f"day_type_probabilities: no entry for month {month}")
        return np.asarray(self.day_type_probabilities[month], dtype=float)


def local_days(index: pd.DatetimeIndex) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """The distinct local days of ``index`` and, per slot, the position of its day."""
    day = index.normalize()
    days = day.unique()
    return days, days.get_indexer(day)


def day_types(days: pd.DatetimeIndex, params: WeatherParams, rng: np.random.Generator) -> np.ndarray:
    """Index into ``params.day_types`` per day (Markov chain, see module docstring)."""
    n = len(days)
    out = np.empty(n, dtype=np.int64)
    keep = rng.random(n)
    fresh = rng.random(n)
    for i, day in enumerate(days):
        cdf = np.cumsum(params.probabilities(day.month))
        if i > 0 and keep[i] < params.persistence:
            out[i] = out[i - 1]
        else:
            out[i] = min(int(np.searchsorted(cdf, fresh[i] * cdf[-1], side="right")), len(cdf) - 1)
    return out


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """Stationary AR(1) with marginal standard deviation ``sd``."""
    eps = rng.normal(0.0, sd * np.sqrt(1 - phi * phi), n)
    x = np.empty(n)
    if n == 0:
        return x
    x[0] = rng.normal(0.0, sd)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + eps[i]
    return x


def clearness(index: pd.DatetimeIndex, params: WeatherParams,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot clearness ``k`` in [0.03, 1] and per-day type indices."""
    days, pos = local_days(index)
    types = day_types(days, params, rng)
    means = np.array([t.clearness_mean for t in params.day_types])[types]
    sds = np.array([t.clearness_sd for t in params.day_types])[types]
    k_day = np.clip(means + sds * rng.standard_normal(len(days)), 0.05, 1.0)
    var = np.array([t.variability for t in params.day_types])[types][pos]
    z = _ar1(rng, len(index), 0.75, 1.0)
    k = k_day[pos] * np.exp(var * z - var * var / 2)
    return np.clip(k, 0.03, 1.0), types


def climatology_c(days: pd.DatetimeIndex, monthly_mean_temp_c: Mapping[int, float]) -> np.ndarray:
    """Daily mean temperature [°C] from monthly means placed on the 15th, linearly between."""
    if not monthly_mean_temp_c:
        raise ValueError("monthly_mean_temp_c: must not be empty")
    years = sorted({d.year for d in days})
    anchors_x: list[float] = []
    anchors_y: list[float] = []
    months = sorted(monthly_mean_temp_c)
    for year in range(years[0] - 1, years[-1] + 2):
        for m in months:
            anchors_x.append(pd.Timestamp(year=year, month=m, day=15).to_julian_date())
            anchors_y.append(monthly_mean_temp_c[m])
    x = np.array([pd.Timestamp(d.date()).to_julian_date() for d in days])
    return np.interp(x, np.array(anchors_x), np.array(anchors_y))


def heat_wave_c(days: pd.DatetimeIndex, heat_waves: tuple[HeatWave, ...]) -> np.ndarray:
    """Anomaly per day [K]: full inside each wave, half on the day before and after."""
    out = np.zeros(len(days))
    d = np.array([day.date() for day in days])
    for wave in heat_waves:
        inside = (d >= wave.start) & (d <= wave.end)
        edge = np.array([(x - wave.start).days == -1 or (x - wave.end).days == 1 for x in d], dtype=bool)
        out += wave.anomaly_c * inside + 0.5 * wave.anomaly_c * edge
    return out


def temperature_c(index: pd.DatetimeIndex, k: np.ndarray, params: WeatherParams,
                  rng: np.random.Generator) -> np.ndarray:
    """Air temperature [°C] per slot (at the slot's midpoint)."""
    days, pos = local_days(index)
    k_day = pd.Series(k).groupby(pos).mean().to_numpy()
    daily = (climatology_c(days, params.monthly_mean_temp_c) + heat_wave_c(days, params.heat_waves)
             + _ar1(rng, len(days), params.anomaly_persistence, params.anomaly_sd_c)
             + params.cloud_effect_c * (k_day - k_day.mean()))
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=30)
    mid = index + step / 2
    hour = mid.hour + mid.minute / 60
    # cosine through min at 05:00 and max at 14:00 (warming 9 h, cooling 15 h)
    phase = np.where((hour >= 5) & (hour < 14), (hour - 5) / 9 * np.pi,
                     np.pi + ((hour - 14) % 24) / 15 * np.pi)
    shape = -np.cos(phase) / 2  # -0.5 at 05:00, +0.5 at 14:00
    amplitude = params.diurnal_range_c * (0.4 + 0.6 * k_day[pos])
    return daily[pos] + amplitude * shape + rng.normal(0.0, 0.3, len(index))


def simulate(index: pd.DatetimeIndex, clearsky_ghi_w_m2: np.ndarray, params: WeatherParams,
             rng: np.random.Generator) -> pd.DataFrame:
    """Weather per slot: ``temp_c``, ``ghi_w_m2``, ``clearsky_ghi_w_m2``, ``cloud_index``, ``day_type``."""
    k, types = clearness(index, params, rng)
    temp = temperature_c(index, k, params, rng)
    _, pos = local_days(index)
    names = np.array([t.name for t in params.day_types], dtype=object)
    cs = np.asarray(clearsky_ghi_w_m2, dtype=float)
    return pd.DataFrame(
        {
            "temp_c": temp,
            "ghi_w_m2": cs * k,
            "clearsky_ghi_w_m2": cs,
            "cloud_index": 1.0 - k,
            "day_type": names[types][pos],
        },
        index=index,
    )
