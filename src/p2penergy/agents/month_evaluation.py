"""Day-ahead forecast accuracy of measured sites over one test month (``p2penergy forecast evaluate``).

The forecasters are fitted on every slot before the test month (walk-forward: nothing of the
month is seen in fitting), then each day of the month is forecast the day before at
:data:`DAY_AHEAD_ISSUE_HOUR` local time (:func:`~p2penergy.agents.evaluation.day_ahead_issues`),
from what was metered until then. nMAE (:func:`~p2penergy.agents.evaluation.nmae`, a fraction)
per site and for the sum of the sites, for each model:

* ``selected`` — what the agents use (:func:`~p2penergy.agents.agent_forecasters.fit_agent_forecasters`);
* ``seven_day_mean`` and ``yesterday`` — the baselines
  (:class:`~p2penergy.agents.forecast.SevenDayMean`, :class:`~p2penergy.agents.forecast.SameSlotYesterday`).

Quantile coverage (the share of actuals at or below each forecast quantile, and inside the
10–90 % interval) needs a forecaster that gives quantiles (a ``predict_quantiles`` method, see
:func:`coverage`); for one that does not, the coverage is reported as absent (an empty table),
never estimated otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from p2penergy.agents.agent_forecasters import fit_agent_forecasters
from p2penergy.agents.evaluation import Issue, day_ahead_issues, nmae_table
from p2penergy.agents.forecast import Forecaster, SameSlotYesterday, SelectedForecaster, SevenDayMean
from p2penergy.agents.plan_input import AgentInputError
from p2penergy.agents.weather_forecast import index_ns

DAY_AHEAD_ISSUE_HOUR = 12.0
"""Local hour of the day before at which the day-ahead forecast is issued: the hour
:func:`~p2penergy.agents.evaluation.day_ahead_issues` uses for the agents' day-ahead trading
(the book opens 24 h ahead; by noon the day before, every slot of the next day is open)."""
TARGETS = {"load": "load_wh", "pv": "pv_wh"}
MODELS = ("selected", "seven_day_mean", "yesterday")
SUM = "all sum"


@dataclass(frozen=True)
class MonthEvaluation:
    """nMAE by site (or the sum), target (``load``, ``pv``) and model; quantile coverage (may be empty)."""

    month: date
    sites: dict[str, dict[str, dict[str, float]]]
    sum: dict[str, dict[str, float]]
    coverage: dict[str, Any] = field(default_factory=dict)
    days: int = 0

    def to_json(self) -> dict[str, Any]:
        """``{"sites": {SITE: {"load": {MODEL: NMAE}, "pv": {…}}}, "sum": {…}, "coverage": {…}}``."""
        return {"sites": self.sites, "sum": self.sum, "coverage": self.coverage}


def month_bounds(month: date, tz: object) -> tuple[datetime, datetime]:
    """Local midnights starting ``month`` and the month after."""
    first = month.replace(day=1)
    after = (first + timedelta(days=32)).replace(day=1)
    return (pd.Timestamp(first, tz=tz).to_pydatetime(),  # type: ignore[arg-type]
            pd.Timestamp(after, tz=tz).to_pydatetime())  # type: ignore[arg-type]


def evaluate_month(
    sites: Mapping[str, pd.DataFrame],
    month: date,
    weather: Any = None,
    seed: int = 0,
    days_off: frozenset[date] = frozenset(),
    fit: Callable[..., tuple[Forecaster, Forecaster]] = fit_agent_forecasters,
) -> MonthEvaluation:
    """Fit on the slots before ``month`` and evaluate its days day-ahead (see the module docstring).

    ``sites``: site id → frame of ``load_wh``, ``pv_wh`` (Wh per slot) on one regular, tz-aware grid
    that covers the month; ``weather``: a weather-forecast source (synthetic or issued) or None.
    """
    if not sites:
        raise AgentInputError("sites", "at least one site")
    frames = dict(sorted(sites.items()))
    first_frame = next(iter(frames.values()))
    tz = first_frame.index.tz
    if tz is None:
        raise AgentInputError("sites", "frames indexed by timezone-aware slot starts")
    start, end = month_bounds(month, tz)
    step_ns = int(np.diff(index_ns(first_frame.index)[:2])[0])
    for name, frame in frames.items():
        ns = index_ns(frame.index)
        if ns[0] > pd.Timestamp(start).value or ns[-1] + step_ns < pd.Timestamp(end).value:
            raise AgentInputError(f"sites[{name!r}]", f"data covering the test month {month:%Y-%m} "
                                  f"(it has {frame.index[0]} to {frame.index[-1]})")
    issues = day_ahead_issues(start, end, step_ns // 60_000_000_000, DAY_AHEAD_ISSUE_HOUR)
    load_model, pv_model = fit(frames, weather, start, seed, days_off)
    weather = _IssueMemo(weather) if weather is not None else None
    chosen = {"load": load_model, "pv": pv_model}
    per_site: dict[str, dict[str, dict[str, float]]] = {name: {"load": {}, "pv": {}} for name in frames}
    total: dict[str, dict[str, float]] = {}
    coverage: dict[str, Any] = {}
    for target, column in TARGETS.items():
        models: dict[str, Forecaster] = {"selected": chosen[target], "seven_day_mean": SevenDayMean(target=column),
                                         "yesterday": SameSlotYesterday(target=column)}
        table = nmae_table(models, frames, {name: name for name in frames}, weather, issues, column)
        for name in frames:
            if name in table.index:
                per_site[name][target] = {m: float(table.loc[name, m]) for m in MODELS}
        total[target] = {m: float(table.loc[SUM, m]) for m in MODELS}
        covered = coverage_of(chosen[target], frames, weather, issues, column)
        if covered:
            coverage[target] = covered
    return MonthEvaluation(month.replace(day=1), per_site, total, coverage, len(issues))


class _IssueMemo:
    """A weather source whose ``issue_for`` answers are kept: every model and target asks for the
    same issues of the month (the sources themselves keep only the last few)."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self._kept: dict[tuple[datetime, int, int], pd.DataFrame] = {}

    def issue_for(self, issued_at: datetime, horizon: pd.DatetimeIndex) -> pd.DataFrame:
        ns = index_ns(horizon)
        key = (issued_at, int(ns[0]), len(ns))
        if key not in self._kept:
            self._kept[key] = self._source.issue_for(issued_at, horizon)
        return self._kept[key].copy()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def coverage_of(forecaster: Forecaster, frames: Mapping[str, pd.DataFrame], weather: Any,
                issues: Sequence[Issue], column: str) -> dict[str, float]:
    """Share of actuals at or below each forecast quantile (``"q10"``: ideally 0.10 …) and inside
    the 10–90 % interval (``"interval_10_90"``), over every site and slot with energy; ``{}`` when the
    forecaster gives no quantiles (no ``predict_quantiles(history, issued_at, horizon, weather)``
    returning ``{quantile: values}``)."""
    predict = getattr(forecaster, "predict_quantiles", None)
    if not callable(predict):
        return {}
    below: dict[float, list[np.ndarray]] = {}
    inside: list[np.ndarray] = []
    for issued_at, horizon in issues:
        wf = weather.issue_for(issued_at, horizon) if weather is not None else None
        for name, frame in frames.items():
            actual = frame[column].reindex(horizon).to_numpy(dtype=np.float64)
            if not np.nansum(np.abs(frame[column].to_numpy(dtype=np.float64))) > 0:
                continue
            # a forecaster that chooses per site (SelectedForecaster) is told which site this is
            named = {"site": name} if isinstance(forecaster, SelectedForecaster) else {}
            quantiles: dict[float, np.ndarray] = predict(frame, issued_at, horizon, wf, **named)
            for q, values in quantiles.items():
                below.setdefault(float(q), []).append(actual <= np.asarray(values))
            if 0.1 in quantiles and 0.9 in quantiles:
                inside.append((actual >= np.asarray(quantiles[0.1])) & (actual <= np.asarray(quantiles[0.9])))
    out = {f"q{round(q * 100)}": float(np.concatenate(v).mean()) for q, v in sorted(below.items())}
    if inside:
        out["interval_10_90"] = float(np.concatenate(inside).mean())
    return out
