"""Forecast accuracy: nMAE per site type and for aggregates, against the baselines.

``nMAE = Σ|forecast − actual| / Σ|actual|`` over every (issue, slot) pair evaluated — the
mean absolute error divided by the mean actual value, so night-time PV zeros neither help
nor hurt. Rows of the table:

* ``<type>`` — all sites of a type pooled (the sum of their absolute errors over the sum
  of their actuals): the accuracy a single agent of that type sees;
* ``<type> sum`` / ``all sum`` — the forecast of the *sum* of the sites' energy (the sum
  of their forecasts) against the summed actuals: what the community sees.

Sites whose actual energy is zero over the period (PV of a home without PV) are left out.
:func:`quantile_scores` reports the quantile forecasts' coverage and pinball loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from p2penergy.agents.forecast import Forecaster, SelectedForecaster, day_ahead_issue_time, slots_of_day
from p2penergy.agents.forecast_features import TARGETS, horizon_ns
from p2penergy.agents.plan_input import AgentInputError
from p2penergy.agents.weather_forecast import WeatherForecastSource, index_ns

Issue = tuple[datetime, pd.DatetimeIndex]


def nmae(forecast: np.ndarray, actual: np.ndarray) -> float:
    """Σ|forecast − actual| / Σ|actual| (NaN when the actuals are all zero)."""
    denominator = float(np.abs(actual).sum())
    return float(np.abs(np.asarray(forecast) - np.asarray(actual)).sum() / denominator) if denominator else float("nan")


def _days(start: datetime, end: datetime, tz: object) -> pd.DatetimeIndex:
    """Local midnights of the calendar days from ``start``'s day up to (not including) ``end``."""
    first = pd.Timestamp(start).tz_convert(tz).date()
    last = pd.Timestamp(end).tz_convert(tz)
    days = pd.date_range(first, last.date(), freq="D").tz_localize(tz)
    return days[days < last]


def day_ahead_issues(start: datetime, end: datetime, slot_minutes: int, hour: float = 12.0) -> list[Issue]:
    """One issue per local day in ``[start, end)``: at ``hour`` the day before, for all slots of the day."""
    tz = pd.Timestamp(start).tz
    if tz is None:
        raise AgentInputError("start", "a timezone-aware datetime")
    return [(day_ahead_issue_time(day, hour).to_pydatetime(), slots_of_day(day, slot_minutes))
            for day in _days(start, end, tz)]


def intraday_issues(start: datetime, end: datetime, slot_minutes: int, every_slots: int = 4) -> list[Issue]:
    """Re-forecasts every ``every_slots`` slots in ``[start, end)``, each for the rest of its local day."""
    tz = pd.Timestamp(start).tz
    if tz is None:
        raise AgentInputError("start", "a timezone-aware datetime")
    issues: list[Issue] = []
    for day in _days(start, end, tz):
        slots = slots_of_day(day, slot_minutes)
        for i in range(0, len(slots), every_slots):
            issues.append((slots[i].to_pydatetime(), slots[i:]))
    return issues


def _predict_all(forecaster: Forecaster, frames: Sequence[pd.DataFrame], issued_at: datetime,
                 horizon: pd.DatetimeIndex, weather: pd.DataFrame | None, names: Sequence[str]) -> np.ndarray:
    if isinstance(forecaster, SelectedForecaster):  # each site by the model chosen for it
        return forecaster.predict_many(frames, issued_at, horizon, weather, sites=names)
    many = getattr(forecaster, "predict_many", None)
    if many is not None:
        return many(frames, issued_at, horizon, weather)
    return np.stack([forecaster.predict(f, issued_at, horizon, weather) for f in frames])


def nmae_table(
    forecasters: Mapping[str, Forecaster],
    sites: Mapping[str, pd.DataFrame],
    site_types: Mapping[str, str],
    weather: WeatherForecastSource | None,
    issues: Sequence[Issue],
    target: str,
) -> pd.DataFrame:
    """nMAE of each forecaster (columns) per group (rows, see module docstring) for ``target``.

    ``forecasters`` must be fitted on data before the first issue (the caller's job: the
    table cannot tell a forecaster that has seen the future).
    """
    if target not in TARGETS:
        raise AgentInputError("target", f"one of {', '.join(TARGETS)}")
    missing = sorted(set(sites) - set(site_types))
    if missing:
        raise AgentInputError("site_types", f"a type for every site; missing {missing[0]!r}")
    names = sorted(sites)
    frames = [sites[s] for s in names]
    actual_rows = []
    for _, horizon in issues:
        hns = horizon_ns(horizon)
        row = []
        for f in frames:
            rows = np.searchsorted(index_ns(f.index), hns)
            if (rows >= len(f)).any():
                raise AgentInputError("issues", "horizons inside the sites' data")
            row.append(f[target].to_numpy(dtype=np.float64)[rows])
        actual_rows.append(np.stack(row))
    actual = np.concatenate(actual_rows, axis=1)  # (sites, all evaluated slots)
    active = np.abs(actual).sum(axis=1) > 0
    types = sorted({site_types[s] for s in names})
    groups: list[tuple[str, np.ndarray]] = [(t, np.array([site_types[s] == t for s in names]) & active)
                                            for t in types]
    table: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for label, forecaster in forecasters.items():
        preds = []
        for issued_at, horizon in issues:
            wf = weather.issue_for(issued_at, horizon) if weather is not None else None
            preds.append(_predict_all(forecaster, frames, issued_at, horizon, wf, names))
        pred = np.concatenate(preds, axis=1)
        column: dict[str, float] = {}
        for name, mask in groups:
            if not mask.any():
                continue
            column[name] = nmae(pred[mask], actual[mask])
            column[f"{name} sum"] = nmae(pred[mask].sum(axis=0), actual[mask].sum(axis=0))
            counts[name] = counts[f"{name} sum"] = int(mask.sum())
        column["all sum"] = nmae(pred[active].sum(axis=0), actual[active].sum(axis=0))
        counts["all sum"] = int(active.sum())
        table[label] = column
    out = pd.DataFrame(table)
    out.insert(0, "sites", pd.Series(counts))
    out.insert(0, "target", target)
    out.index.name = "group"
    return out


def pinball_loss(quantile_wh: np.ndarray, actual_wh: np.ndarray, level: float) -> float:
    """Mean pinball (quantile) loss of the ``level`` quantile forecast: ``τ·(y − q)`` where the actual
    ``y`` is above ``q``, ``(1 − τ)·(q − y)`` where below [Wh]."""
    diff = np.asarray(actual_wh, dtype=float) - np.asarray(quantile_wh, dtype=float)
    return float(np.mean(np.maximum(level * diff, (level - 1) * diff)))


def quantile_scores(forecaster: SelectedForecaster, sites: Mapping[str, pd.DataFrame],
                    weather: WeatherForecastSource | None, issues: Sequence[Issue], target: str) -> dict[str, object]:
    """Coverage and pinball loss of ``forecaster``'s quantile forecasts over ``issues``.

    Returns ``{"levels": [...], "coverage": {level: share of actuals at or below the quantile},
    "interval": share inside [lowest, highest level], "pinball_wh": {level: mean pinball loss},
    "pinball_point_wh": {level: the same loss of the point forecast}}`` over the slots of every site
    whose actuals are not all zero, leaving out slots where actual and forecast are both zero (PV at
    night: certain, and it would count as covered at every level). A quantile forecast earns its
    place where its pinball loss is below the point's.
    """
    if target != forecaster.target:
        raise AgentInputError("target", f"the forecaster's target {forecaster.target!r}")
    names = sorted(sites)
    frames = [sites[s] for s in names]
    quantiles, points, actuals = [], [], []
    for issued_at, horizon in issues:
        wf = weather.issue_for(issued_at, horizon) if weather is not None else None
        point = forecaster.predict_many(frames, issued_at, horizon, wf, sites=names)
        quantiles.append(forecaster.quantiles_of(point, horizon, names))
        points.append(point)
        hns = horizon_ns(horizon)
        actuals.append(np.stack([f[target].to_numpy(dtype=np.float64)[np.searchsorted(index_ns(f.index), hns)]
                                 for f in frames]))
    q = np.concatenate(quantiles, axis=2)
    point = np.concatenate(points, axis=1)
    actual = np.concatenate(actuals, axis=1)
    active = np.abs(actual).sum(axis=1) > 0
    q, point, actual = q[active], point[active], actual[active]
    uncertain = (actual > 0) | (point > 0)
    q, point, actual = q.transpose(1, 0, 2)[:, uncertain], point[uncertain], actual[uncertain]  # (levels, n), (n,)
    levels = [float(x) for x in forecaster.quantiles]
    return {
        "levels": levels,
        "coverage": {lv: float((actual <= q[i]).mean()) for i, lv in enumerate(levels)},
        "interval": float(((actual >= q[0]) & (actual <= q[-1])).mean()),
        "pinball_wh": {lv: pinball_loss(q[i], actual, lv) for i, lv in enumerate(levels)},
        "pinball_point_wh": {lv: pinball_loss(point, actual, lv) for lv in levels},
    }
