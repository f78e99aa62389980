"""Shared helpers for load profiles: AR(1) noise, calendar, sub-slot sampling of 15-min profiles."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import holidays as holidays_lib
import numpy as np
import pandas as pd


def ar1_matrix(rng: np.random.Generator, n: int, phi: float, sd: float, k: int = 1) -> np.ndarray:
    """``k`` independent stationary AR(1) series of length ``n`` (shape ``(n, k)``), marginal sd ``sd``."""
    eps = rng.normal(0.0, sd * np.sqrt(1 - phi * phi), (n, k))
    x = np.empty((n, k))
    if n == 0:
        return x
    x[0] = rng.normal(0.0, sd, k)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + eps[i]
    return x


def public_holidays(country: str, years: Iterable[int], subdivision: str | None = None) -> set[date]:
    """Public holidays from the ``holidays`` package (offline, rule-based)."""
    try:
        cal = holidays_lib.country_holidays(country, subdiv=subdivision, years=sorted(set(years)))
    except NotImplementedError as exc:
        raise ValueError(f"holiday_country: {country!r} is not known to the holidays package") from exc
    return set(cal.keys())


def business_days(days: pd.DatetimeIndex, closed: set[date]) -> np.ndarray:
    """True for Monday–Friday days not in ``closed``."""
    return np.array([d.weekday() < 5 and d.date() not in closed for d in days], dtype=bool)


def local_minutes(index: pd.DatetimeIndex) -> np.ndarray:
    """Minutes since local midnight of each slot start."""
    return np.asarray(index.hour * 60 + index.minute, dtype=np.int64)


def sample_15min(profile: pd.Series, index: pd.DatetimeIndex, slot_minutes: int) -> np.ndarray:
    """Mean of a naive-local 15-minute profile over each slot of ``index`` (5-min sub-samples)."""
    naive = index.tz_localize(None) if index.tz is not None else index
    subs = max(1, slot_minutes // 5)
    acc = np.zeros(len(index))
    for j in range(subs):
        t = (naive + pd.Timedelta(minutes=5 * j + 2.5)).floor("15min")
        pos = profile.index.get_indexer(t)
        if (pos < 0).any():
            raise ValueError("profile: does not cover the requested slots")
        acc += profile.to_numpy()[pos]
    return acc / subs
