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
10–90 % interval, with pinball losses; :func:`coverage_of`) needs a forecaster that gives
quantiles (:class:`~p2penergy.agents.forecast.SelectedForecaster`); for one that does not, the
coverage is reported as absent (an empty table), never estimated otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from p2penergy.agents.agent_forecasters import fit_agent_forecasters
from p2penergy.agents.evaluation import Issue, day_ahead_issues, nmae_table, quantile_scores
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
    choices: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per target, the model ``selected`` used for each site (when it chooses per site)."""

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
    choices: dict[str, dict[str, str]] = {}
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
        choice = getattr(chosen[target], "choice", None)
        if callable(choice):
            choices[target] = {name: str(choice(name)) for name in frames if per_site[name][target]}
    return MonthEvaluation(month.replace(day=1), per_site, total, coverage, len(issues), choices)


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
                issues: Sequence[Issue], column: str) -> dict[str, Any]:
    """The quantile forecasts' scores over the month (:func:`~p2penergy.agents.evaluation.quantile_scores`:
    ``levels``; ``coverage``, the share of actuals at or below each level's forecast; ``interval``,
    the share inside the outermost levels; pinball losses of the quantiles and of the point), level
    keys as text for JSON (``"0.1"``); ``{}`` for a forecaster without quantiles."""
    if not isinstance(forecaster, SelectedForecaster):
        return {}
    scores = quantile_scores(forecaster, frames, weather, issues, column)
    return {key: ({f"{level:g}": v for level, v in value.items()} if isinstance(value, dict) else value)
            for key, value in scores.items()}
