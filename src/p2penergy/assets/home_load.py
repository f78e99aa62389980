"""Household load: BDEW H25 shape (demandlib) + air conditioning + occupancy noise.

The shape of use over the day and week is demandlib's BDEW 2025 household profile ``H25``
(15-min, with its day-of-year dynamisation; holidays treated as Sundays), scaled so its
mean day holds ``base_kwh_per_day``. On top:

* air conditioning: ``cooling_w_per_k × max(0, T − cooling_threshold_c) × presence``, where
  presence is 1 in the evening and night, ``away_presence`` on business-day working hours
  for commuting households (``away_presence`` otherwise ``home_presence``);
* occupancy noise: a log-normal AR(1) factor (mean 1) and appliance events (cooking,
  washing) of 200–700 Wh in a slot, more likely where the H25 profile is high.

Power never exceeds the contract breaker: each slot is clipped at ``max_power_w``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from demandlib.bdew import H25

from p2penergy.assets.profiles import ar1_matrix, local_minutes, sample_15min

EVENT_WH_LOW, EVENT_WH_HIGH = 200.0, 700.0


@dataclass(frozen=True, slots=True)
class HomeLoadSpec:
    """One household's load parameters.

    base_kwh_per_day : mean daily energy without air conditioning [kWh/day]
    cooling_w_per_k : AC electric power per kelvin above the threshold when present [W/K]
    cooling_threshold_c : outdoor temperature above which the AC runs [°C]
    commuter : occupants are out on business days 08:30–18:00
    noise_sd : log-sd of the occupancy noise
    events_per_day : mean number of appliance events per day
    max_power_w : breaker limit (contract amperage × 100 V) [W]
    """

    base_kwh_per_day: float
    cooling_w_per_k: float
    max_power_w: int
    cooling_threshold_c: float = 24.0
    commuter: bool = True
    noise_sd: float = 0.35
    events_per_day: float = 2.0
    home_presence: float = 0.8
    away_presence: float = 0.25

    def __post_init__(self) -> None:
        if not self.base_kwh_per_day > 0:
            raise ValueError(f"base_kwh_per_day: must be > 0, got {self.base_kwh_per_day}")
        if self.cooling_w_per_k < 0:
            raise ValueError(f"cooling_w_per_k: must be >= 0, got {self.cooling_w_per_k}")
        if self.max_power_w <= 0:
            raise ValueError(f"max_power_w: must be > 0, got {self.max_power_w}")


def h25_shape(index: pd.DatetimeIndex, slot_minutes: int, holidays: Iterable[date] = ()) -> np.ndarray:
    """demandlib H25 per slot, normalised to mean 1 over ``index`` (local wall-clock time)."""
    naive = index.tz_localize(None) if index.tz is not None else index
    first = naive[0].floor("D")
    days = int((naive[-1].floor("D") - first).days) + 1
    grid = pd.date_range(first, periods=days * 96 + 1, freq="15min")  # one extra: H25 drops its last step
    profile = pd.Series(H25(grid, holidays=sorted(holidays)).to_numpy(), index=grid)
    shape = sample_15min(profile, index, slot_minutes)
    return shape / shape.mean()


def presence(index: pd.DatetimeIndex, business_slot: np.ndarray, spec: HomeLoadSpec) -> np.ndarray:
    """Share of the household at home per slot (0–1), for the AC term."""
    minutes = local_minutes(index)
    daytime = (minutes >= 8 * 60 + 30) & (minutes < 18 * 60)
    out = np.ones(len(index))
    day_level = np.where(business_slot & spec.commuter, spec.away_presence, spec.home_presence)
    out[daytime] = day_level[daytime]
    return out


def home_load_wh(index: pd.DatetimeIndex, shape: np.ndarray, temp_c: np.ndarray, business_slot: np.ndarray,
                 spec: HomeLoadSpec, slot_minutes: int, rng: np.random.Generator) -> np.ndarray:
    """Integer load per slot [Wh] for one household (≥ 0, ≤ breaker limit)."""
    hours = slot_minutes / 60.0
    slots_per_day = 24 * 60 / slot_minutes
    event_mean_wh = (EVENT_WH_LOW + EVENT_WH_HIGH) / 2
    events_kwh = spec.events_per_day * event_mean_wh / 1000
    base_kwh = max(spec.base_kwh_per_day - events_kwh, 0.2 * spec.base_kwh_per_day)
    noise = np.exp(ar1_matrix(rng, len(index), 0.6, spec.noise_sd)[:, 0] - spec.noise_sd**2 / 2)
    base_wh = shape * noise * base_kwh * 1000 / slots_per_day
    p_event = np.clip(spec.events_per_day * shape / slots_per_day, 0, 1)
    events = (rng.random(len(index)) < p_event) * rng.uniform(EVENT_WH_LOW, EVENT_WH_HIGH, len(index))
    cooling_w = spec.cooling_w_per_k * np.clip(np.asarray(temp_c) - spec.cooling_threshold_c, 0, None)
    cooling_wh = cooling_w * presence(index, business_slot, spec) * hours
    total = base_wh + events + cooling_wh
    return np.rint(np.clip(total, 0, spec.max_power_w * hours)).astype(np.int64)
