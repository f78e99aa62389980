"""Load and PV forecasters: two naive baselines and a gradient-boosting model.

Every forecaster follows :class:`Forecaster`: ``fit`` on the past, then ``predict`` the
energy (Wh per slot, float, ≥ 0) of a site for the slots of a horizon, from what was
observed before ``issued_at`` (slots that have ended) and a weather forecast issued at
that time. Nothing in ``history`` after ``issued_at`` is read (see
:mod:`p2penergy.agents.forecast_features`), so the same call with the future changed
gives the same answer.

* :class:`SameSlotYesterday` — the latest observed value at the same time of day
  (yesterday's, or the day before's for slots whose yesterday is not yet over).
* :class:`SevenDayMean` — the mean of the last 7 such values.
* :class:`GradientBoostingForecaster` — one model per target type for all sites
  (site-normalised target and lags, so homes and an office share it), on calendar,
  lag and weather-forecast features, trained on issue times spread over the day with
  horizons "rest of today and tomorrow": the same model serves day-ahead and intraday.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from p2penergy.agents.forecast_features import (
    DAY_NS,
    FEATURES,
    TARGETS,
    SiteBatch,
    SiteSeries,
    SiteView,
    aware_ns,
    day_off_flags,
    features,
    horizon_ns,
    lag_ns,
    local_calendar,
    local_midnights_ns,
    row_day_off,
    same_day_type_values,
    same_slot_mean,
    same_slot_median,
    same_slot_yesterday,
    site_batches,
    weather_lookup,
    weather_table,
)
from p2penergy.agents.plan_input import AgentInputError
from p2penergy.agents.weather_forecast import WeatherForecastSource, index_ns, slot_length_ns

BACKENDS = ("lightgbm", "sklearn")
OBJECTIVES = ("l2", "l1")


@runtime_checkable
class Forecaster(Protocol):
    """Forecasts one target column (``load_wh`` or ``pv_wh``) of any site."""

    target: str

    def fit(self, history: Mapping[str, pd.DataFrame], weather_forecasts: WeatherForecastSource | None = None,
            cutoff: datetime | None = None) -> Self: ...

    def predict(self, history: pd.DataFrame, issued_at: datetime, horizon: pd.DatetimeIndex,
                weather_forecast: pd.DataFrame | None = None) -> np.ndarray: ...


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise AgentInputError("target", f"one of {', '.join(TARGETS)}, got {target!r}")


def _fill(values: np.ndarray) -> np.ndarray:
    return np.nan_to_num(values, nan=0.0).clip(min=0.0)


@dataclass
class _NaiveForecaster:
    """A baseline: nothing to fit; ``predict`` applies :meth:`_rule` to the observed past."""

    target: str = "load_wh"

    def __post_init__(self) -> None:
        _check_target(self.target)

    def fit(self, history: Mapping[str, pd.DataFrame], weather_forecasts: WeatherForecastSource | None = None,
            cutoff: datetime | None = None) -> Self:
        return self

    def predict(self, history: pd.DataFrame, issued_at: datetime, horizon: pd.DatetimeIndex,
                weather_forecast: pd.DataFrame | None = None) -> np.ndarray:
        target_ns = horizon_ns(horizon)
        batches = site_batches([history], self.target, aware_ns(issued_at, "issued_at"), target_ns, ["history"])
        return self.predict_batches(batches, 1, len(target_ns))[0]

    def predict_many(self, histories: Sequence[pd.DataFrame], issued_at: datetime, horizon: pd.DatetimeIndex,
                     weather_forecast: pd.DataFrame | None = None) -> np.ndarray:
        """Forecasts for several sites at once (one array operation per batch of sites on one grid):
        shape ``(len(histories), len(horizon))``, each row equal to :meth:`predict`'s."""
        target_ns = horizon_ns(horizon)
        batches = site_batches(histories, self.target, aware_ns(issued_at, "issued_at"), target_ns)
        return self.predict_batches(batches, len(histories), len(target_ns))

    def predict_batches(self, batches: Sequence[SiteBatch], n_sites: int, n_slots: int) -> np.ndarray:
        """``(n_sites, n_slots)``: the rule for the members of ``batches`` (other rows 0)."""
        out = np.zeros((n_sites, n_slots))
        for batch in batches:
            out[batch.members] = _fill(self._rule(batch.view))
        return out

    @staticmethod
    def _rule(view: SiteView) -> np.ndarray:
        raise NotImplementedError


@dataclass
class SameSlotYesterday(_NaiveForecaster):
    """Baseline: the latest observed value at the same time of day."""

    @staticmethod
    def _rule(view: SiteView) -> np.ndarray:
        return same_slot_yesterday(view)


@dataclass
class SevenDayMean(_NaiveForecaster):
    """Baseline: the mean of the last 7 observed values at the same time of day."""

    @staticmethod
    def _rule(view: SiteView) -> np.ndarray:
        return same_slot_mean(view)


@dataclass
class SevenDayMedian(_NaiveForecaster):
    """The median of the last 7 observed values at the same time of day (what an nMAE rewards:
    a home's occasional spikes pull a mean up, not a median)."""

    @staticmethod
    def _rule(view: SiteView) -> np.ndarray:
        return same_slot_median(view)


def local_midnight_after(ts: pd.Timestamp, days: int) -> pd.Timestamp:
    """Local midnight ``days`` calendar days after ``ts``'s day (days of 23–25 h included)."""
    return (ts.normalize() + pd.Timedelta(hours=24 * days + 2)).normalize()


def rest_of_today_and_tomorrow(issued_at: datetime, slot_minutes: int, tz: object | None = None) -> pd.DatetimeIndex:
    """Slot starts from the slot containing ``issued_at`` to the end of the next local day."""
    ts = pd.Timestamp(issued_at)
    if ts.tz is None:
        raise AgentInputError("issued_at", "a timezone-aware datetime")
    if tz is not None:
        ts = ts.tz_convert(tz)
    slot = pd.Timedelta(minutes=slot_minutes)
    # floor on the instant by the local wall minutes (as MarketSettings.slot_start_of): a local
    # floor would be ambiguous in the repeated autumn hour
    into = pd.Timedelta(minutes=(ts.hour * 60 + ts.minute) % slot_minutes, seconds=ts.second,
                        microseconds=ts.microsecond, nanoseconds=ts.nanosecond)
    return pd.date_range(ts - into, local_midnight_after(ts, 2), freq=slot, inclusive="left")


@dataclass
class GradientBoostingForecaster:
    """Gradient-boosted trees over sites (see module docstring).

    ``issue_every_hours``: spacing of the training issue times; ``sample_fraction``:
    share of (issue, target slot) pairs kept for training (seeded), at most ``max_training_rows``
    in all (a year of 20 homes would give 800 k rows, the scenario's June–July 134 k; more rows of
    the same sites add little while the fit's time grows with them, and the agents fit twice — a
    validation model and the final one: 100 k keeps a year of 20 homes, load and PV, within 30 s);
    ``threads``: 1 or 2.
    ``days_off``: local dates that are not working days besides weekends (public and company
    holidays; a calendar feature). ``fit`` uses only slots that ended by ``cutoff`` (default:
    all of ``history``). ``objective``: LightGBM's loss, ``l2`` (the mean) or ``l1`` (the median:
    what an nMAE rewards). Weather forecasts should carry the observed weather of the last days
    (:meth:`WeatherForecastSource.issue` does by default): the model compares the forecast
    temperature with the temperature at the time of its lags.
    """

    target: str = "load_wh"
    backend: str = "lightgbm"
    n_estimators: int = 200
    learning_rate: float = 0.06
    num_leaves: int = 31
    min_samples_leaf: int = 40
    issue_every_hours: int = 3
    sample_fraction: float = 0.2
    max_training_rows: int = 100_000
    min_history_days: int = 7
    threads: int = 1
    seed: int = 0
    days_off: frozenset[date] = frozenset()
    objective: str = "l2"
    _model: object | None = field(default=None, init=False, repr=False)
    n_training_rows: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        _check_target(self.target)
        if self.backend not in BACKENDS:
            raise AgentInputError("backend", f"one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.objective not in OBJECTIVES:
            raise AgentInputError("objective", f"one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.max_training_rows < 1:
            raise AgentInputError("max_training_rows", "at least 1")
        if not 0 < self.sample_fraction <= 1:
            raise AgentInputError("sample_fraction", "in (0, 1]")
        if self.threads not in (1, 2):
            raise AgentInputError("threads", "1 or 2 (the machine is shared)")

    # -- training ---------------------------------------------------------------------
    def _issue_times(self, series: SiteSeries, cutoff_ns: int) -> np.ndarray:
        first = datetime.fromtimestamp(series.start_ns // 10**9, tz=series.tz)
        first = first.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=self.min_history_days)
        every = self.issue_every_hours * 3600 * 10**9
        return np.arange(pd.Timestamp(first).value, cutoff_ns, every, dtype=np.int64)

    def training_set(self, history: Mapping[str, pd.DataFrame], weather_forecasts: WeatherForecastSource | None,
                     cutoff: datetime | None = None, slot_ends: list[np.ndarray] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(features, normalised target) for every site and sampled (issue, slot) pair before ``cutoff``.

        Horizons are "rest of today and tomorrow" from issue times every ``issue_every_hours``
        (from ``min_history_days`` after the history starts); only target slots that ended
        by the cutoff are used, and features only read slots that ended by the issue time.
        At most ``max_training_rows`` are kept (the sampled share shrinks for long histories).
        ``slot_ends``: if given, the end (UTC ns) of each row's target slot is appended to it.
        """
        if not history:
            raise AgentInputError("history", "at least one site")
        rng = np.random.default_rng(self.seed)
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        weather_cache: dict[tuple[int, int], np.ndarray] = {}
        row_ends: list[np.ndarray] = []
        plans = []
        for name in sorted(history):
            series = SiteSeries.from_frame(history[name], self.target, f"history[{name!r}]")
            step, n_rows = series.step_ns, len(series.values)
            end_of_data = series.start_ns + n_rows * step
            cut = min(aware_ns(cutoff, "cutoff"), end_of_data) if cutoff is not None else end_of_data
            issued = self._issue_times(series, cut)
            if len(issued) == 0:
                continue
            # every issue's horizon: from its current slot to the end of the next local day, slots ended by the cut
            ends = local_midnights_ns(local_midnights_ns(issued, series.tz) + 50 * 3_600 * 10**9, series.tz)
            current = series.start_ns + (issued - series.start_ns) // step * step
            stop = np.minimum(ends, cut - step + 1)
            counts = np.maximum(-((current - stop) // step), 0)  # ceil((stop - current) / step)
            plans.append((series, issued, current, counts))
        candidates = sum(int(c.sum()) for _, _, _, c in plans)
        fraction = min(self.sample_fraction, self.max_training_rows / candidates) if candidates else 0.0
        for series, issued, current, counts in plans:
            step, n_rows = series.step_ns, len(series.values)
            total = int(counts.sum())
            if total == 0:
                continue
            which = np.repeat(np.arange(len(issued)), counts)
            offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            keep = rng.random(total) < fraction
            if not keep.any():
                continue
            which, offset = which[keep], offset[keep]
            target_ns = current[which] + offset * step
            issued_rows = issued[which]
            weather = np.full((4, len(target_ns)), np.nan)
            if weather_forecasts is not None:
                bounds = np.searchsorted(which, np.arange(len(issued) + 1))  # ``which`` is sorted
                for i in np.flatnonzero(np.diff(bounds)):
                    key = (int(issued[i]), int(counts[i]))
                    if key not in weather_cache:
                        horizon = current[i] + np.arange(counts[i], dtype=np.int64) * step
                        weather_cache[key] = weather_forecasts.issue_on(int(issued[i]), horizon)
                    rows = slice(bounds[i], bounds[i + 1])
                    weather[:, rows] = weather_cache[key][:, offset[rows]]
            positions = (target_ns - series.start_ns) // step
            view = SiteView(series.values, np.minimum((issued_rows - series.start_ns) // step, n_rows), positions,
                            series.slots_per_day, (positions - (current[which] - series.start_ns) // step
                                                   ).astype(np.float64))
            then_ns = lag_ns(series, view)
            if weather_forecasts is None:
                then = np.full((4, len(target_ns)), np.nan)
            else:
                then = weather_forecasts.observed_on(issued_rows, then_ns)
            hour, weekday, day = local_calendar(target_ns, series.tz)
            off = day_off_flags(weekday, day, self.days_off)
            x, scale = features(view, self.target, (hour, weekday), weather, then, off,
                                same_day_type_values(view, row_day_off(series, self.days_off), off, hour))
            useful = scale > 0  # a site without PV teaches nothing about PV
            xs.append(x[useful])
            ys.append(series.values[positions[useful]] / scale[useful])
            row_ends.append(target_ns[useful] + step)
        if not xs or not sum(len(y) for y in ys):
            raise AgentInputError("history", f"at least {self.min_history_days + 1} days before the cutoff")
        if slot_ends is not None:
            slot_ends.append(np.concatenate(row_ends))
        return np.vstack(xs), np.concatenate(ys)

    def fit(self, history: Mapping[str, pd.DataFrame], weather_forecasts: WeatherForecastSource | None = None,
            cutoff: datetime | None = None) -> Self:
        return self.fit_rows(*self.training_set(history, weather_forecasts, cutoff))

    def fit_rows(self, x: np.ndarray, y: np.ndarray) -> Self:
        """Fit on rows of :meth:`training_set` (or a subset: an earlier cutoff's rows are those whose
        target slot ended by it)."""
        self.n_training_rows = len(y)
        if self.backend == "lightgbm":
            import lightgbm as lgb

            params = {
                "objective": self.objective, "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
                "min_data_in_leaf": self.min_samples_leaf, "bagging_fraction": 0.8, "bagging_freq": 1,
                "feature_fraction": 0.9, "lambda_l2": 1.0, "num_threads": self.threads, "seed": self.seed,
                "deterministic": True, "force_row_wise": True, "verbosity": -1,
            }
            self._model = lgb.train(params, lgb.Dataset(x, y), num_boost_round=self.n_estimators)
        else:
            from sklearn.ensemble import HistGradientBoostingRegressor
            from threadpoolctl import threadpool_limits

            model = HistGradientBoostingRegressor(
                loss="absolute_error" if self.objective == "l1" else "squared_error",
                max_iter=self.n_estimators, learning_rate=self.learning_rate, max_leaf_nodes=self.num_leaves,
                min_samples_leaf=self.min_samples_leaf, l2_regularization=1.0, early_stopping=False,
                random_state=self.seed,
            )
            with threadpool_limits(self.threads):
                self._model = model.fit(x, y)
        return self

    # -- prediction -------------------------------------------------------------------
    def _raw(self, x: np.ndarray) -> np.ndarray:
        if self._model is None:
            raise AgentInputError("forecaster", "fitted before predicting (call fit first)")
        if self.backend == "lightgbm":
            return self._model.predict(x, num_threads=self.threads)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.threads):
            return self._model.predict(x)

    def predict(self, history: pd.DataFrame, issued_at: datetime, horizon: pd.DatetimeIndex,
                weather_forecast: pd.DataFrame | None = None) -> np.ndarray:
        return self.predict_many([history], issued_at, horizon, weather_forecast)[0]

    def predict_many(self, histories: Sequence[pd.DataFrame], issued_at: datetime, horizon: pd.DatetimeIndex,
                     weather_forecast: pd.DataFrame | None = None) -> np.ndarray:
        """Forecasts for several sites at once (one model call): shape ``(len(histories), len(horizon))``."""
        target_ns = horizon_ns(horizon)
        batches = site_batches(histories, self.target, aware_ns(issued_at, "issued_at"), target_ns)
        return self.predict_batches(batches, len(histories), target_ns, weather_forecast)

    def predict_batches(self, batches: Sequence[SiteBatch], n_sites: int, target_ns: np.ndarray,
                        weather_forecast: pd.DataFrame | None) -> np.ndarray:
        """``(n_sites, len(target_ns))``: forecasts of the members of ``batches`` (from
        :func:`~p2penergy.agents.forecast_features.site_batches`; other rows 0), the features of each
        batch in one array operation and one model call for all. The calendar is the first batch's zone's.
        A PV slot without sun in the weather forecast is 0 and is not put to the model."""
        n = len(target_ns)
        out = np.zeros((n_sites, n))
        if not batches:
            return out
        table = weather_table(weather_forecast)
        weather = weather_lookup(table, target_ns)
        hour, weekday, day = local_calendar(target_ns, batches[0].series.tz)
        day_off = day_off_flags(weekday, day, self.days_off)
        asked = np.ones(n, dtype=bool)
        if self.target == "pv_wh":
            asked = ~(np.isfinite(weather[2]) & ~(weather[2] > 0))  # no sun, no PV
        if not asked.any():
            return out
        blocks, scales = [], []
        for batch in batches:
            then = weather_lookup(table, lag_ns(batch.series, batch.view))
            same_type = same_day_type_values(batch.view, row_day_off(batch.series, self.days_off), day_off, hour)
            x, scale = features(batch.view, self.target, (hour, weekday), weather, then, day_off, same_type)
            blocks.append(x[:, asked].reshape(-1, len(FEATURES)))
            scales.append(scale[:, asked])
        raw = self._raw(np.vstack(blocks)).reshape(-1, int(asked.sum()))
        members = np.concatenate([b.members for b in batches])
        out[np.ix_(members, asked)] = np.clip(raw, 0.0, None) * np.concatenate(scales)
        return out


CANDIDATES = ("gbm", "blend", "blend_median", "seven_day_median", "seven_day_mean", "yesterday")
"""The models :class:`SelectedForecaster` chooses from per site, in order of preference on ties:
gradient boosting, its mean with the 7-day mean and with the 7-day median, the 7-day median,
and the two baselines."""
_BLENDS = {"blend": "seven_day_mean", "blend_median": "seven_day_median"}
QUANTILES = (0.1, 0.5, 0.9)
INTERVAL_SCALES = {"load_wh": "forecast", "pv_wh": "absolute"}
"""What :class:`SelectedForecaster` measures a forecast error in, per target (``interval_scale``):
``forecast`` — a share of the point forecast (at least ``interval_floor_share`` of the site's mean):
a home's load errors grow with its level, so a heat wave's higher load gets wider intervals than
the cooler validation weeks' (the shipped community's August, fitted on June–July: 62.7 % of the
load inside 10–90 % measured in Wh, 78.2 % as a share; eight real homes' July: 76.8 % and 83.5 %;
pinball loss summed over both, 429 → 379 Wh at 10 % and 584 → 532 Wh at 90 %; a square-root middle
way gave 70.6 % and 81.6 %); ``absolute`` — Wh, for PV, whose errors follow the sun's hour
(the hour-of-day offsets) and whose relative errors explode at dawn and dusk (real homes' PV:
80.3 % inside in Wh against 77.8 % as a share)."""


@dataclass
class SelectedForecaster:
    """Per site, the best of :data:`CANDIDATES` on walk-forward validation, with quantiles.

    ``fit(history, weather_forecasts, cutoff)``:

    1. the *validation window* is the last ``validation_days`` whole local days before the
       cutoff (at most half of the history, so the inner model keeps something to learn from);
    2. an inner gradient-boosting model (``gbm``'s settings) is fitted on the training rows whose
       target slot ended before the window (one training set serves both fits), and every
       candidate forecasts each day of the window day-ahead (issued at ``issue_hour`` the day
       before, as the agents' day-ahead trading does), from the history as it was at the issue time;
    3. per site, the candidate with the lowest nMAE over the window wins (``selected_``,
       ``validation_nmae_``); a site not seen in ``fit`` gets ``default_``, the candidate with the
       lowest nMAE pooled over all sites;
    4. the winner's validation errors (actual − forecast, in Wh or as a share of the forecast:
       ``interval_scale``, default :data:`INTERVAL_SCALES`) give, per site and local hour of
       day (pooled with the hours either side), their empirical ``quantiles`` less their median:
       split-conformal offsets added to the point forecast (:meth:`quantiles_of`; a share's offset
       times the forecast, at least ``interval_floor_share`` of the site's mean over the window); ``coverage_`` is their
       coverage on the validation window itself (``interval``: share of actuals inside the
       outermost levels; ``below_lowest``: share at or below the lowest; slots where actual and
       forecast are both zero left out);
    5. the gradient-boosting model is fitted on all the training rows (everything before the cutoff).

    Nothing at or after the cutoff is read: validation is on the past only.
    """

    target: str = "load_wh"
    validation_days: int = 28
    issue_hour: float = 12.0
    quantiles: tuple[float, ...] = QUANTILES
    seed: int = 0
    days_off: frozenset[date] = frozenset()
    gbm: GradientBoostingForecaster | None = None
    interval_scale: str | None = None
    interval_floor_share: float = 0.1
    selected_: dict[str, str] = field(default_factory=dict, init=False)
    validation_nmae_: dict[str, dict[str, float]] = field(default_factory=dict, init=False)
    default_: str = field(default="gbm", init=False)
    coverage_: dict[str, float] = field(default_factory=dict, init=False)
    validation_days_: int = field(default=0, init=False)
    _offsets: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    _floors: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _offset_rows: dict[str, int] | None = field(default=None, init=False, repr=False)
    _floor_stack: np.ndarray = field(default_factory=lambda: np.zeros(0), init=False, repr=False)
    _offset_stack: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 24)), init=False, repr=False)

    def __post_init__(self) -> None:
        _check_target(self.target)
        if self.interval_scale is None:
            self.interval_scale = INTERVAL_SCALES[self.target]
        if self.interval_scale not in ("absolute", "forecast"):
            raise AgentInputError("interval_scale", f"absolute or forecast, got {self.interval_scale!r}")
        if not 0 < self.interval_floor_share <= 1:
            raise AgentInputError("interval_floor_share", "in (0, 1]")
        if self.validation_days < 1:
            raise AgentInputError("validation_days", "at least 1")
        qs = np.asarray(self.quantiles, dtype=float)
        if len(qs) == 0 or not ((qs > 0) & (qs < 1)).all() or (np.diff(qs) <= 0).any():
            raise AgentInputError("quantiles", "increasing levels strictly between 0 and 1")
        if self.gbm is None:
            self.gbm = GradientBoostingForecaster(self.target, seed=self.seed, days_off=self.days_off,
                                                  objective="l1")
        elif self.gbm.target != self.target:
            raise AgentInputError("gbm", f"a model of the same target ({self.target!r})")
        self._baselines: dict[str, _NaiveForecaster] = {
            "seven_day_median": SevenDayMedian(self.target), "seven_day_mean": SevenDayMean(self.target),
            "yesterday": SameSlotYesterday(self.target)}

    @property
    def n_training_rows(self) -> int:
        assert self.gbm is not None
        return self.gbm.n_training_rows

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, history: Mapping[str, pd.DataFrame], weather_forecasts: WeatherForecastSource | None = None,
            cutoff: datetime | None = None) -> Self:
        assert self.gbm is not None
        if not history:
            raise AgentInputError("history", "at least one site")
        names = sorted(history)
        frames = [history[n] for n in names]
        first = frames[0]
        SiteSeries.from_frame(first, self.target, f"history[{names[0]!r}]")
        tz = first.index.tz
        end = pd.Timestamp(cutoff).tz_convert(tz) if cutoff is not None else first.index[-1] + (
            first.index[1] - first.index[0])
        days = self._window(first.index[0], end)
        self.validation_days_ = len(days)
        self.selected_, self.validation_nmae_, self._offsets, self.coverage_, self._floors = {}, {}, {}, {}, {}
        self._offset_rows = None
        self.default_ = "gbm"
        slot_ends: list[np.ndarray] = []
        x, y = self.gbm.training_set(history, weather_forecasts, cutoff, slot_ends)
        inner = dataclasses.replace(self.gbm)  # before the final fit starts: a copy of the settings only
        # LightGBM's final model is fitted in a thread while the inner one is fitted and validated here
        # (LightGBM releases the GIL): each fit is deterministic on its own rows with the same thread
        # count, and the final one reads nothing the validation writes, so the models are the ones fitted
        # one after the other. Not scikit-learn's: its thread limit is process-wide (threadpoolctl)
        final = ThreadPoolExecutor(max_workers=1, thread_name_prefix="final-fit")
        fitted = final.submit(self.gbm.fit_rows, x, y) if self.gbm.backend == "lightgbm" else None
        try:
            if days:
                # the inner model learns from the rows whose target slot ended before the window (their
                # issue times and features are earlier still): as if fitted with the window's start as cutoff
                before = slot_ends[0] <= pd.Timestamp(days[0]).value
                if before.any():
                    self._validate(names, frames, inner.fit_rows(x[before], y[before]), weather_forecasts, days)
                else:
                    self.validation_days_ = 0
        finally:
            if fitted is not None:
                fitted.result()
            final.shutdown()
        if fitted is None:
            self.gbm.fit_rows(x, y)
        return self

    def _window(self, start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
        """Local midnights of the whole days of the validation window before ``end``."""
        assert self.gbm is not None
        last = end.normalize()  # the day containing the cutoff is whole only if the cutoff is its midnight
        first_day = (start + pd.Timedelta(days=1)).normalize() if start != start.normalize() else start
        whole = pd.date_range(first_day.tz_localize(None), last.tz_localize(None), freq="D",
                              inclusive="left").tz_localize(end.tz)
        n = min(self.validation_days, (len(whole) - self.gbm.min_history_days - 1) // 2)
        return list(whole[len(whole) - n:]) if n > 0 else []

    def _validate(self, names: list[str], frames: list[pd.DataFrame], inner: GradientBoostingForecaster,
                  weather_forecasts: WeatherForecastSource | None, days: list[pd.Timestamp]) -> None:
        step_minutes = int(slot_length_ns(frames[0].index, "history.index") // 60_000_000_000)
        preds: dict[str, list[np.ndarray]] = {c: [] for c in CANDIDATES}
        actual, hours = [], []
        for day in days:
            issued = day_ahead_issue_time(day, self.issue_hour).to_pydatetime()
            horizon = slots_of_day(day, step_minutes)
            wf = weather_forecasts.issue_for(issued, horizon) if weather_forecasts is not None else None
            hns = horizon_ns(horizon)
            batches = site_batches(frames, self.target, aware_ns(issued, "issued_at"), hns)
            preds["gbm"].append(inner.predict_batches(batches, len(frames), hns, wf))
            for name, base in self._baselines.items():
                preds[name].append(base.predict_batches(batches, len(frames), len(hns)))
            for blend, base_name in _BLENDS.items():
                preds[blend].append(0.5 * (preds["gbm"][-1] + preds[base_name][-1]))
            actual.append(np.stack([f[self.target].to_numpy(dtype=np.float64)[
                np.searchsorted(index_ns(f.index), hns)] for f in frames]))
            hours.append(local_calendar(hns, horizon.tz)[0].astype(np.int64))
        truth = np.concatenate(actual, axis=1)
        hour = np.concatenate(hours)
        forecast = {c: np.concatenate(p, axis=1) for c, p in preds.items()}
        abs_err = {c: np.abs(f - truth).sum(axis=1) for c, f in forecast.items()}
        denominator = np.abs(truth).sum(axis=1)
        pooled = {c: float(e.sum() / denominator.sum()) if denominator.sum() > 0 else float("nan")
                  for c, e in abs_err.items()}
        if denominator.sum() > 0:
            self.default_ = min(CANDIDATES, key=lambda c: (pooled[c], CANDIDATES.index(c)))
        levels = np.asarray(self.quantiles)
        inside = below = n = 0
        for k, name in enumerate(names):
            if denominator[k] <= 0:
                continue  # no load or no PV in the window: nothing to choose by
            scores = {c: float(abs_err[c][k] / denominator[k]) for c in CANDIDATES}
            self.validation_nmae_[name] = scores
            best = self.selected_[name] = min(CANDIDATES, key=lambda c: (scores[c], CANDIDATES.index(c)))
            floor = self._floors[name] = self.interval_floor_share * float(denominator[k]) / truth.shape[1]
            unit = self._error_unit(forecast[best][k], floor)
            residual = (truth[k] - forecast[best][k]) / unit
            offsets = np.zeros((len(levels), 24))
            for h in range(24):
                near = np.isin(hour, [(h - 1) % 24, h, (h + 1) % 24])
                if near.any():
                    # centred on the median error: the point forecast is the median (a bias of
                    # the validation weeks, e.g. the rainy season's PV, would not carry over)
                    offsets[:, h] = np.quantile(residual[near], levels) - np.median(residual[near])
            self._offsets[name] = offsets
            uncertain = (truth[k] > 0) | (forecast[best][k] > 0)  # not PV at night
            lower = np.clip(forecast[best][k] + offsets[0, hour] * unit, 0.0, None)[uncertain]
            upper = np.clip(forecast[best][k] + offsets[-1, hour] * unit, 0.0, None)[uncertain]
            actual_k = truth[k][uncertain]
            inside += int(((actual_k >= lower) & (actual_k <= upper)).sum())
            below += int((actual_k <= lower).sum())
            n += int(uncertain.sum())
        if n:
            self.coverage_ = {"interval": inside / n, "below_lowest": below / n}

    def _error_unit(self, point: np.ndarray, floor: float | np.ndarray) -> np.ndarray:
        """What a forecast error is measured in (see ``interval_scale``): 1 Wh, or the point forecast
        itself, at least ``floor`` Wh."""
        if self.interval_scale == "absolute":
            return np.ones_like(point)
        return np.maximum(point, floor)

    # -- prediction -------------------------------------------------------------------------
    def choice(self, site: str | None) -> str:
        """The candidate used for ``site`` (``default_`` for a site not seen in ``fit`` or ``None``)."""
        return self.selected_.get(site, self.default_) if site is not None else self.default_

    def predict(self, history: pd.DataFrame, issued_at: datetime, horizon: pd.DatetimeIndex,
                weather_forecast: pd.DataFrame | None = None, site: str | None = None) -> np.ndarray:
        return self.predict_many([history], issued_at, horizon, weather_forecast, sites=[site])[0]

    def predict_many(self, histories: Sequence[pd.DataFrame], issued_at: datetime, horizon: pd.DatetimeIndex,
                     weather_forecast: pd.DataFrame | None = None,
                     sites: Sequence[str | None] | None = None) -> np.ndarray:
        """Point forecasts ``(len(histories), len(horizon))``, each site by its selected model
        (``sites`` names the histories; unnamed ones use ``default_``)."""
        assert self.gbm is not None
        names = list(sites) if sites is not None else [None] * len(histories)
        if len(names) != len(histories):
            raise AgentInputError("sites", f"one name per history ({len(histories)}), got {len(names)}")
        choices = [self.choice(n) for n in names]
        target_ns = horizon_ns(horizon)
        if not histories:
            return np.zeros((0, len(target_ns)))
        # every site cut once; the model and each baseline then run on the sites that use them
        batches = site_batches(histories, self.target, aware_ns(issued_at, "issued_at"), target_ns)

        def of(wanted: np.ndarray) -> list[SiteBatch]:
            return [b.subset(wanted[b.members]) for b in batches if wanted[b.members].any()]

        out = self.gbm.predict_batches(of(np.array([c == "gbm" or c in _BLENDS for c in choices])), len(histories),
                                       target_ns, weather_forecast)
        for name, base in self._baselines.items():
            alone = np.array([c == name for c in choices])
            blended = np.array([_BLENDS.get(c) == name for c in choices])
            if not (alone | blended).any():
                continue
            values = base.predict_batches(of(alone | blended), len(histories), len(target_ns))
            out[alone] = values[alone]
            out[blended] = 0.5 * (out[blended] + values[blended])
        return out

    def predict_quantiles(self, history: pd.DataFrame, issued_at: datetime, horizon: pd.DatetimeIndex,
                          weather_forecast: pd.DataFrame | None = None, site: str | None = None
                          ) -> dict[float, np.ndarray]:
        """``{level: forecast}`` for one site (its point forecast plus its offsets, :meth:`quantiles_of`)."""
        point = self.predict(history, issued_at, horizon, weather_forecast, site=site)
        q = self.quantiles_of(point[None], horizon, [site])[0]
        return {float(level): q[i] for i, level in enumerate(self.quantiles)}

    def quantiles_of(self, point: np.ndarray, horizon: pd.DatetimeIndex,
                     sites: Sequence[str | None] | None = None) -> np.ndarray:
        """Quantile forecasts ``(sites, len(quantiles), len(horizon))`` from point forecasts
        ``(sites, len(horizon))`` (of :meth:`predict_many`): the point plus each site's conformal
        offsets for the slot's local hour, at least 0. A site without offsets (not seen in ``fit``)
        gets the point at every level."""
        point = np.atleast_2d(np.asarray(point, dtype=float))
        names = list(sites) if sites is not None else [None] * len(point)
        if len(names) != len(point):
            raise AgentInputError("sites", f"one name per forecast ({len(point)}), got {len(names)}")
        hour = local_calendar(horizon_ns(horizon), horizon.tz)[0].astype(np.int64)
        if self._offset_rows is None:  # every site's offsets in one array (a row of zeros last, for sites without)
            self._offset_rows = {name: k for k, name in enumerate(self._offsets)}
            self._offset_stack = np.stack([*self._offsets.values(), np.zeros((len(self.quantiles), 24))])
            self._floor_stack = np.array([*(self._floors[name] for name in self._offsets), 0.0])
        none = len(self._offset_rows)
        rows = np.array([self._offset_rows.get(n, none) if n is not None else none for n in names], dtype=np.int64)
        unit = self._error_unit(point, self._floor_stack[rows][:, None])
        return np.clip(point[:, None, :] + self._offset_stack[rows][:, :, hour] * unit[:, None, :], 0.0, None)


def day_ahead_issue_time(day: pd.Timestamp, hour: float = 12.0) -> pd.Timestamp:
    """The day-ahead issue time for local ``day``: ``hour`` o'clock (wall clock) the day before."""
    before = (pd.Timestamp(day).normalize() - pd.Timedelta(hours=12)).normalize()
    minutes = round(hour * 60)
    return before.replace(hour=minutes // 60, minute=minutes % 60)


def slots_of_day(day: pd.Timestamp, slot_minutes: int) -> pd.DatetimeIndex:
    """The slot starts of local ``day`` (92, 96 or 100 quarter hours on DST days)."""
    start = pd.Timestamp(day).normalize()
    return pd.date_range(start, local_midnight_after(start, 1), freq=timedelta(minutes=slot_minutes),
                         inclusive="left")


__all__ = [
    "BACKENDS", "CANDIDATES", "DAY_NS", "INTERVAL_SCALES", "QUANTILES", "Forecaster", "GradientBoostingForecaster",
    "SameSlotYesterday",
    "SelectedForecaster", "SevenDayMean", "SevenDayMedian",
    "day_ahead_issue_time", "local_midnight_after", "rest_of_today_and_tomorrow", "slots_of_day",
]
