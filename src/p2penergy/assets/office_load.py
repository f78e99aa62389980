"""Office (research site) load: business-day profile with a midday peak, low nights,
weekends and holidays, plus cooling.

Business days (Monday–Friday, not a public holiday nor a site closure such as the Obon
week): ``base_w`` outside hours; from ``open_hour`` the load ramps (1 h) to ``peak_w``
with a Gaussian bump of ``midday_bump`` × (peak − base) centred on 13:30 (σ = 1.5 h) —
the midday peak — and ramps down after ``close_hour``. Closed days stay at ``base_w``
× (1 + small noise). Cooling adds ``cooling_w_per_k × max(0, T − threshold)`` during
business hours (and a fifth of it otherwise). Noise: log-normal AR(1), sd ``noise_sd``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from p2penergy.assets.profiles import ar1_matrix, local_minutes


@dataclass(frozen=True, slots=True)
class OfficeLoadSpec:
    """base_w, peak_w [W]; hours local; cooling_w_per_k [W/K]."""

    base_w: float
    peak_w: float
    cooling_w_per_k: float = 0.0
    cooling_threshold_c: float = 24.0
    open_hour: float = 8.0
    close_hour: float = 18.5
    midday_bump: float = 0.15
    noise_sd: float = 0.05

    def __post_init__(self) -> None:
        if not 0 < self.base_w <= self.peak_w:
            raise ValueError(f"peak_w: must be >= base_w > 0, got base {self.base_w}, peak {self.peak_w}")
        if not 0 <= self.open_hour < self.close_hour <= 24:
            raise ValueError("close_hour: must be after open_hour, both in 0–24")


def occupancy(index: pd.DatetimeIndex, spec: OfficeLoadSpec) -> np.ndarray:
    """0–1 business-hours occupancy per slot for a business day (trapezoid, 1 h ramps)."""
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=30)
    minutes = local_minutes(index) + step.total_seconds() / 120  # slot midpoint
    h = minutes / 60.0
    up = np.clip(h - (spec.open_hour - 0.5), 0, 1)
    down = np.clip((spec.close_hour + 0.5) - h, 0, 1)
    return np.minimum(up, down)


def office_load_wh(index: pd.DatetimeIndex, temp_c: np.ndarray, business_slot: np.ndarray,
                   spec: OfficeLoadSpec, slot_minutes: int, rng: np.random.Generator) -> np.ndarray:
    """Integer load per slot [Wh] for the office."""
    hours = slot_minutes / 60.0
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=slot_minutes)
    h = (local_minutes(index) + step.total_seconds() / 120) / 60.0
    occ = occupancy(index, spec) * business_slot
    bump = spec.midday_bump * np.exp(-0.5 * ((h - 13.5) / 1.5) ** 2) * occ
    span = spec.peak_w - spec.base_w
    power = spec.base_w + span * (occ + bump)
    cooling = spec.cooling_w_per_k * np.clip(np.asarray(temp_c) - spec.cooling_threshold_c, 0, None)
    power += cooling * np.where(occ > 0, occ, 0.2)
    noise = np.exp(ar1_matrix(rng, len(index), 0.8, spec.noise_sd)[:, 0] - spec.noise_sd**2 / 2)
    return np.rint(np.clip(power * noise, 0, None) * hours).astype(np.int64)
