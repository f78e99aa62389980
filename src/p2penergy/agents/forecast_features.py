"""What a forecast issued at time t may know about one site, as numpy arrays.

:func:`site_view` cuts a site's history at the issue time: a slot is *observed* when
it has ended (``start + slot <= issued_at``), and nothing after the observed rows is
ever read. Lags are in slots of the history's grid (one day = ``86400 s / slot``
slots, so in zones with daylight saving "yesterday" means 24 h earlier).

Features of a target slot (all energies divided by the site's ``scale``: the mean load of
the last 24 h if they were of the target's type — business day or day off —, else of the
latest whole observed day of its type; or the highest PV slot of the last 14 days): lead time,
local hour and weekday, the weather forecast, the latest observed value at the same time of day
(and how many days old it is), the mean of the last 7 such values on days of the target's type,
the value a week before the target on a day of its type (the same weekday, or before it the
latest of the target's type), the latest observed value at the same time of day on a day of the
target's type, the last observed slot, the last 24 h mean, the deviation of the last 2 h from
the same hours a day earlier, and the log of the scale. The target's type throughout, so that
after a weekend or a closure a business day is measured against the last business days, not the
closed days before it (issue 13: the first business day after the Obon closure was forecast
12–15 % low when the scale was the last 24 h and "a week before" a closed day).

Everything here also works on many sites at once: a :class:`SiteSeries` (and its
:class:`SiteView`) may hold a ``(sites, rows)`` array of sites on one grid, and every function
then answers per site (a leading axis) with the same arithmetic as for one site, so a batched
forecast equals the per-site ones (:func:`site_batches` builds the batches a forecasting step uses,
cut to the :data:`READ_DAYS` a forecast reads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from p2penergy.agents.plan_input import AgentInputError
from p2penergy.agents.weather_forecast import UNIT_NS, WEATHER_COLUMNS, index_ns, slot_length_ns

TARGETS = ("load_wh", "pv_wh")
_EPOCH = date(1970, 1, 1)
DAY_NS = 86_400 * 10**9
FEATURES = (
    "lead_slots", "hour", "weekday", "temp_c", "ghi_kw_m2", "clearsky_kw_m2", "cloud_index", "clear_index",
    "same_slot_latest", "same_slot_age_days", "same_slot_mean7", "same_slot_last_week", "last_observed",
    "mean_24h", "recent_anomaly", "log_scale", "temp_c_then", "temp_change_c", "clear_index_then", "day_off",
    "same_slot_same_day_type",
)
SAME_TYPE_SEARCH_DAYS = 21  # how far back to look for days of the target's type (a two-week closure leaves one)
PV_SCALE_DAYS = 14  # a PV site's scale: its highest slot over these last days
WEEK_DAYS = 7  # "a week before the target": the same weekday
READ_DAYS = max(SAME_TYPE_SEARCH_DAYS + 1, PV_SCALE_DAYS, 8)
"""How many days before the issue time a forecast reads: the same-day-type search reaches back
``SAME_TYPE_SEARCH_DAYS`` days from the latest same-time-of-day slot (at most a day old), with its
day-off flags; the PV scale ``PV_SCALE_DAYS``; the 7-day lags and "a week before the target" 8.
A forecasting step cuts each history to these rows (:func:`site_batches`): the answer is the same,
and a year of history costs no more than three weeks."""


@dataclass(frozen=True, slots=True)
class SiteSeries:
    """One site's target column on a regular grid: float64 values, first slot start and step (UTC ns).

    ``values`` is ``(rows,)`` for one site or ``(sites, rows)`` for sites sharing the grid."""

    values: np.ndarray
    start_ns: int
    step_ns: int
    tz: tzinfo

    @classmethod
    def from_frame(cls, history: pd.DataFrame, target: str, field: str = "history") -> SiteSeries:
        raw = cls.raw(history, target, field)
        return cls(raw.values.astype(np.float64), raw.start_ns, raw.step_ns, raw.tz)

    @classmethod
    def raw(cls, history: pd.DataFrame, target: str, field: str = "history") -> SiteSeries:
        """As :meth:`from_frame` (validated the same way), with the column's values as stored
        (a view, not yet float64: callers that read a few rows convert only those)."""
        if target not in TARGETS:
            raise AgentInputError("target", f"one of {', '.join(TARGETS)}, got {target!r}")
        try:
            column = history.columns.get_loc(target)
        except KeyError:
            raise AgentInputError(field, f"a column {target!r}") from None
        index = history.index
        step = slot_length_ns(index, f"{field}.index")
        if DAY_NS % step:
            raise AgentInputError(f"{field}.index", "a slot length that divides a day")
        # a frame of one or two columns, as the agents' histories are, is read through its array
        # (a view when they share a dtype): a column lookup costs more than the rows a forecast needs
        values = history.to_numpy()[:, column] if history.shape[1] <= 2 else history[target].to_numpy()
        return cls(values, int(index.asi8[0]) * UNIT_NS[index.unit], step, index.tz)

    @property
    def slots_per_day(self) -> int:
        return int(DAY_NS // self.step_ns)

    def observed_at(self, issued_ns: int) -> int:
        """Rows whose slot has ended by ``issued_ns``."""
        return observed_rows(self.start_ns, self.step_ns, self.values.shape[-1], issued_ns)


def observed_rows(start_ns: int, step_ns: int, rows: int, issued_ns: int) -> int:
    """Of ``rows`` slots from ``start_ns`` every ``step_ns`` (UTC ns), how many have ended by ``issued_ns``."""
    return int(min(max((issued_ns - start_ns) // step_ns, 0), rows))


def first_read_row(observed: int, slots_per_day: int) -> int:
    """The first row a forecast reads: :data:`READ_DAYS` days before the ``observed`` rows (or row 0)."""
    return max(observed - READ_DAYS * slots_per_day, 0)


@dataclass(frozen=True, slots=True)
class SiteView:
    """A site's target series as seen at the issue time, with the horizon's grid positions
    (``values`` ``(sites, rows)`` for sites sharing the grid: the positions are the same for all)."""

    values: np.ndarray  # float64 target values; only values[..., :observed] may be read
    observed: int | np.ndarray  # rows whose slot has ended by the issue time (one per horizon row in training)
    positions: np.ndarray  # horizon slots as row positions in the history grid (may lie beyond the data)
    slots_per_day: int
    lead_slots: np.ndarray  # slots from the issue slot to each horizon slot (0 = the current slot)

    def past(self) -> np.ndarray:
        return self.values[..., : self.observed]


def aware_ns(when: datetime, field: str) -> int:
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise AgentInputError(field, f"a timezone-aware datetime, got {when!r}")
    return pd.Timestamp(when).value


def horizon_ns(horizon: pd.DatetimeIndex) -> np.ndarray:
    if not isinstance(horizon, pd.DatetimeIndex) or horizon.tz is None or len(horizon) == 0:
        raise AgentInputError("horizon", "a non-empty, timezone-aware DatetimeIndex of slot starts")
    return index_ns(horizon)


def view_of(series: SiteSeries, issued_ns: int, target_ns: np.ndarray) -> SiteView:
    """Cut ``series`` at ``issued_ns`` for the slots starting at ``target_ns`` (UTC ns)."""
    step = series.step_ns
    offsets = target_ns - series.start_ns
    if (offsets % step).any():
        raise AgentInputError("horizon", "slot starts on the history's grid")
    if target_ns.min() + step <= issued_ns:
        raise AgentInputError("horizon", "slots not yet over at issued_at (no forecasting of the observed past)")
    positions = offsets // step
    current = (issued_ns - series.start_ns) // step  # the slot containing the issue time
    return SiteView(series.values, series.observed_at(issued_ns), positions, series.slots_per_day,
                    (positions - current).astype(np.float64))


def site_view(history: pd.DataFrame, target: str, issued_at: datetime, horizon: pd.DatetimeIndex) -> SiteView:
    """Validate and cut ``history[target]`` at ``issued_at`` for the ``horizon`` slots."""
    return view_of(SiteSeries.from_frame(history, target), aware_ns(issued_at, "issued_at"), horizon_ns(horizon))


@dataclass(frozen=True, slots=True)
class SiteBatch:
    """Sites on one grid, cut to what a forecast issued at one time reads: ``members`` are their
    positions in the caller's list, ``series`` their ``(len(members), rows)`` values (the rows from
    :data:`READ_DAYS` before the issue time to it), ``view`` those cut at the issue time for the horizon."""

    members: np.ndarray
    series: SiteSeries
    view: SiteView

    def subset(self, keep: np.ndarray) -> SiteBatch:
        """The batch of the members where ``keep`` (a boolean per member) is true."""
        s, v = self.series, self.view
        values = s.values[keep]
        return SiteBatch(self.members[keep], SiteSeries(values, s.start_ns, s.step_ns, s.tz),
                         SiteView(values, v.observed, v.positions, v.slots_per_day, v.lead_slots))


def site_batches(histories: Sequence[pd.DataFrame], target: str, issued_ns: int,
                 target_ns: np.ndarray, fields: Sequence[str] | None = None) -> list[SiteBatch]:
    """Every history validated (as :meth:`SiteSeries.from_frame`; ``fields`` name them in errors,
    default ``histories[i]``) and cut for a forecast issued at ``issued_ns`` of the slots ``target_ns``,
    in batches of sites on one grid (same first slot, slot length and rows observed: the agents'
    sites are one batch), in order of first member.

    Only the last :data:`READ_DAYS` days before the issue time are kept: :func:`features` and the
    baselines read nothing older, so the answer equals the uncut history's."""
    groups: dict[tuple[int, int, int], list[tuple[int, np.ndarray]]] = {}
    tzs: dict[tuple[int, int, int], tzinfo] = {}
    for i, frame in enumerate(histories):
        series = SiteSeries.raw(frame, target, fields[i] if fields is not None else f"histories[{i}]")
        observed = series.observed_at(issued_ns)
        first = first_read_row(observed, series.slots_per_day)
        key = (series.start_ns + first * series.step_ns, series.step_ns, observed - first)
        groups.setdefault(key, []).append((i, series.values[first:observed]))
        tzs.setdefault(key, series.tz)
    out = []
    for key, members in groups.items():
        start_ns, step_ns, _ = key
        values = np.stack([v for _, v in members]).astype(np.float64)
        series = SiteSeries(values, start_ns, step_ns, tzs[key])
        out.append(SiteBatch(np.array([i for i, _ in members]), series, view_of(series, issued_ns, target_ns)))
    return out


def local_calendar(ns: np.ndarray, tz: tzinfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(local hour as a float, weekday 0=Monday, local date as days since 1970-01-01) of UTC-ns instants.

    By offset arithmetic where the zone keeps one offset over the whole span (:func:`fixed_offset_ns`:
    read at every whole hour, so a span holding two clock changes, such as a year of Berlin, is not
    taken for one without); otherwise pandas converts.
    """
    offset = fixed_offset_ns(ns, tz)
    if offset is None:
        local = pd.DatetimeIndex(pd.to_datetime(ns, utc=True)).tz_convert(tz)
        wall = local.tz_localize(None).as_unit("ns").asi8
    else:
        wall = ns + offset
    day = wall // DAY_NS
    hour = (wall - day * DAY_NS) / 3.6e12
    return hour, (day + 3) % 7, day  # 1970-01-01 was a Thursday


HOUR_NS = 3_600 * 10**9
_ONE_NS = timedelta(microseconds=1)


def _offset_ns(offset: timedelta | None) -> int:
    assert offset is not None
    return offset // _ONE_NS * 1_000


def fixed_offset_ns(ns: np.ndarray, tz: tzinfo) -> int | None:
    """The UTC offset [ns] of ``tz`` if it is the same at every instant from ``ns.min()`` to ``ns.max()``
    (UTC ns), else ``None``; also ``None`` for a zone other than a ``ZoneInfo`` or a fixed
    ``datetime.timezone`` (callers then let pandas convert). Read at both ends and at every whole hour
    between: no zone changes its offset and back within an hour."""
    if not isinstance(tz, ZoneInfo | timezone) or len(ns) == 0:
        return None
    lo, hi = int(ns.min()), int(ns.max())
    seconds = {lo // 10**9, hi // 10**9, *range((lo - lo % HOUR_NS) // 10**9, hi // 10**9, 3_600)}
    offsets = {datetime.fromtimestamp(s, tz=tz).utcoffset() for s in seconds}
    return _offset_ns(offsets.pop()) if len(offsets) == 1 else None


def local_midnights_ns(ns: np.ndarray, tz: tzinfo) -> np.ndarray:
    """The UTC ns of the local midnight that starts each instant's local day (UTC ns): what
    ``DatetimeIndex(ns, tz).normalize()`` gives, without pandas' costly localisation of wall times
    for ``ZoneInfo`` zones (some ms per call). A midnight that is ambiguous or does not exist (a
    zone changing its clock at 00:00), or an offset that changes within ``ns``, is left to pandas."""
    ns = np.asarray(ns, dtype=np.int64)
    offset = fixed_offset_ns(ns, tz)
    if offset is not None:
        day = (ns + offset) // DAY_NS
        days, inverse = np.unique(day, return_inverse=True)
        midnights = np.empty(len(days), dtype=np.int64)
        for k, d in enumerate(days.tolist()):
            first = datetime(1970, 1, 1, tzinfo=tz) + timedelta(days=d)  # wall-clock arithmetic
            second = first.replace(fold=1)
            if first.utcoffset() != second.utcoffset():
                break  # ambiguous or skipped: pandas decides (it refuses both)
            midnights[k] = d * DAY_NS - _offset_ns(first.utcoffset())
        else:
            return midnights[inverse.reshape(-1)]
    local = pd.DatetimeIndex(pd.to_datetime(ns, utc=True)).tz_convert(tz)
    return index_ns(local.normalize())


def horizon_midnights_ns(index: pd.DatetimeIndex) -> np.ndarray:
    """:func:`local_midnights_ns` of a tz-aware index's instants in its own zone (``index.normalize()``'s
    instants as UTC ns)."""
    return local_midnights_ns(index_ns(index), index.tz)


def day_off_flags(weekday: np.ndarray, day: np.ndarray, days_off: frozenset[date]) -> np.ndarray:
    """1.0 on Saturdays, Sundays and ``days_off`` (local dates), else 0.0."""
    flags = weekday >= 5
    if days_off:
        ordinals = np.array([(d - _EPOCH).days for d in days_off])
        flags = flags | np.isin(day, ordinals)
    return flags.astype(np.float64)


def latest_same_slot(view: SiteView) -> tuple[np.ndarray, np.ndarray]:
    """(latest observed row position at the same time of day, its age in days) per horizon slot."""
    spd = view.slots_per_day
    age = np.maximum(1, -((view.observed - 1 - view.positions) // spd))  # ceil((pos - observed + 1) / spd)
    return view.positions - age * spd, age


def row_day_off(series: SiteSeries, days_off: frozenset[date], first_row: int = 0) -> np.ndarray:
    """The day-off flag (as :func:`day_off_flags`) of the local day of every row of ``series``
    from ``first_row`` on (rows before it: 0, for callers that read only later rows)."""
    rows = series.values.shape[-1]
    first_row = min(max(first_row, 0), rows)
    out = np.zeros(rows)
    ns = series.start_ns + np.arange(first_row, rows, dtype=np.int64) * series.step_ns
    if len(ns) == 0:
        return out
    _, weekday, day = local_calendar(ns, series.tz)
    out[first_row:] = day_off_flags(weekday, day, days_off)
    return out


@dataclass(frozen=True, slots=True)
class SameTypeLags:
    """Per horizon slot, observed values at the same time of day on days of the target's type
    (business day or day off; :func:`same_day_type_values`), in Wh: ``latest`` ``(..., count, n)``
    newest first, and ``week_before`` ``(..., n)``, the latest at least a week before the target
    (the same weekday unless that day was of the other type: after a closure, the last business day
    before it). NaN where none was found."""

    latest: np.ndarray
    week_before: np.ndarray
    day_mean: np.ndarray
    """Mean Wh per slot over the last 24 h if they were all of the target's type, else over the
    latest whole observed day of its type (the grid day of ``spd`` slots from the local midnight
    before a same-type slot); NaN where none or a NaN in it."""


def same_day_type_values(view: SiteView, row_flags: np.ndarray, day_off: np.ndarray, hour: np.ndarray,
                         count: int = 7) -> SameTypeLags:
    """The target's same-day-type lags (:class:`SameTypeLags`; ``(sites, ...)`` for a batch): the
    observed values at the same time of day on days whose day-off flag (``row_flags``, from
    :func:`row_day_off`) equals the target's (``day_off``), searched ``SAME_TYPE_SEARCH_DAYS``
    back from the latest observed one; ``hour``: the targets' local hour (:func:`local_calendar`),
    which places their day's midnight."""
    spd = view.slots_per_day
    pos, _ = latest_same_slot(view)
    lead = view.values.shape[:-1]
    out = np.full((*lead, count, len(pos)), np.nan)
    cand = pos - np.arange(SAME_TYPE_SEARCH_DAYS)[:, None] * spd  # (days back, n), newest first
    seen = (cand >= 0) & (cand < view.observed)
    match = seen & (row_flags[np.where(seen, cand, 0)] == day_off)
    rank = np.cumsum(match, axis=0) - 1  # how many of the target's type were found before, per slot
    j, col = np.nonzero(match & (rank < count))
    out[..., rank[j, col], col] = view.values[..., cand[j, col]]
    old = match & (view.positions - cand >= WEEK_DAYS * spd)
    first = old.argmax(axis=0)  # the newest such candidate per slot
    found = old.any(axis=0)
    week = np.full((*lead, len(pos)), np.nan)
    week[..., found] = view.values[..., cand[first[found], np.flatnonzero(found)]]
    # the latest same-type day observed whole: its midnight is as many slots before the candidate
    # as the target's slot is after its own
    into_day = np.floor(np.asarray(hour) * spd / 24.0 + 1e-6).astype(np.int64)
    whole = match & (cand - into_day + spd <= np.asarray(view.observed).reshape(-1)) & (cand >= into_day)
    first = whole.argmax(axis=0)
    found = whole.any(axis=0)
    lo = np.where(found, cand[first, np.arange(len(pos))] - into_day, 0)
    # ... unless the last 24 h are all of the target's type: they are newer (a fast scale)
    m = np.broadcast_to(np.asarray(view.observed, dtype=np.int64).reshape(-1), lo.shape)
    flag_sum = np.concatenate(([0.0], np.cumsum(row_flags[: int(m.max())])))
    recent = (m >= spd) & (flag_sum[m] - flag_sum[np.maximum(m - spd, 0)] == spd * day_off)
    found = found | recent
    lo = np.where(recent, m - spd, lo)
    total, _ = _window_sums(view.values, lo, lo + spd)
    day_mean = np.where(found, total / spd, np.nan)
    return SameTypeLags(out, week, day_mean)


def _take(values: np.ndarray, positions: np.ndarray, observed: int | np.ndarray) -> np.ndarray:
    ok = (positions >= 0) & (positions < observed)
    out = np.full((*values.shape[:-1], *positions.shape), np.nan)
    out[..., ok] = values[..., positions[ok]]
    return out


def same_slot_yesterday(view: SiteView) -> np.ndarray:
    pos, _ = latest_same_slot(view)
    return _take(view.values, pos, view.observed)


def _same_slot_stack(view: SiteView, days: int) -> np.ndarray:
    pos, _ = latest_same_slot(view)
    return np.stack([_take(view.values, pos - j * view.slots_per_day, view.observed) for j in range(days)])


def same_slot_mean(view: SiteView, days: int = 7) -> np.ndarray:
    stack = _same_slot_stack(view, days)
    counts = np.isfinite(stack).sum(axis=0)
    sums = np.nansum(stack, axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def same_slot_median(view: SiteView, days: int = 7) -> np.ndarray:
    """The median of the last ``days`` observed values at the same time of day (NaN where none)."""
    stack = _same_slot_stack(view, days)
    finite = np.isfinite(stack)
    if finite.all():
        return np.median(stack, axis=0)
    out = np.full(stack.shape[1:], np.nan)
    some = finite.any(axis=0)
    out[some] = np.nanmedian(stack[:, some], axis=0)
    return out


def _window_sums(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum, count) of ``values[..., lo:hi]`` per element of ``lo``/``hi``; the sum is NaN where the
    window holds a NaN."""
    base = int(lo.min()) if lo.size else 0
    part = values[..., base:int(hi.max()) if hi.size else 0]  # only the rows some window covers
    lo, hi = lo - base, hi - base
    finite = np.isfinite(part)
    lead = (*part.shape[:-1], 1)
    csum = np.concatenate((np.zeros(lead), np.cumsum(np.where(finite, part, 0.0), axis=-1)), axis=-1)
    cnan = np.concatenate((np.zeros(lead, dtype=np.int64), np.cumsum(~finite, axis=-1)), axis=-1)
    total = csum[..., hi] - csum[..., lo]
    return np.where(cnan[..., hi] - cnan[..., lo] > 0, np.nan, total), hi - lo


def _issue_rows(view: SiteView) -> np.ndarray:
    """``view.observed`` as a 1-d array: one per horizon row, or a single one when the rows share
    an issue time (what depends only on it is then computed once per site and broadcast)."""
    return np.asarray(view.observed, dtype=np.int64).reshape(-1)


def site_scale(view: SiteView, target: str, same_type: SameTypeLags | None = None) -> np.ndarray:
    """Per horizon row (each may have its own issue time; PV: one value, shape ``(..., 1)``, when all
    share one). Load: the mean of the last 24 h if they were all of the target's type (business day
    or day off), else of the latest whole observed day of its type (``same_type.day_mean``: after a
    weekend or a closure a business day is measured against the last business day, not the closed
    days before it; issue 13), else (none in the read window, or ``same_type`` not given) of the
    last 24 h; at least 1 Wh (a fast scale keeps heat waves in the training range). PV: highest slot of the last
    ``PV_SCALE_DAYS`` days (0: no PV)."""
    spd = view.slots_per_day
    m = _issue_rows(view)
    if target == "load_wh":
        total, count = _window_sums(view.values, np.maximum(m - spd, 0), m)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / np.maximum(count, 1), 1.0)
        if same_type is not None:
            mean = np.where(np.isfinite(same_type.day_mean), same_type.day_mean, mean)
        return np.maximum(mean, 1.0)  # a NaN in the window stays NaN
    width = PV_SCALE_DAYS * spd
    padded = np.concatenate((np.full((*view.values.shape[:-1], width), -np.inf), view.values), axis=-1)
    unique, inverse = np.unique(m, return_inverse=True)
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)[..., unique, :]  # rows m-width .. m-1
    best = windows.max(axis=-1)
    return np.where(np.isneginf(best), 0.0, best)[..., inverse].reshape((*view.values.shape[:-1], *m.shape))


WeatherTable = tuple[np.ndarray, np.ndarray]
"""A weather frame as (slot starts in UTC ns, ``(4, rows)`` values in ``WEATHER_COLUMNS`` order)."""


def weather_table(weather_forecast: pd.DataFrame | None) -> WeatherTable | None:
    """Extract a weather forecast frame once (columns checked) for many :func:`weather_lookup` calls."""
    if weather_forecast is None:
        return None
    missing = [c for c in WEATHER_COLUMNS if c not in weather_forecast.columns]
    if missing:
        raise AgentInputError("weather_forecast", f"columns {', '.join(WEATHER_COLUMNS)}; missing {', '.join(missing)}")
    if tuple(weather_forecast.columns) == WEATHER_COLUMNS:  # as issued: one array, no column lookups
        values = weather_forecast.to_numpy(dtype=np.float64).T
    else:
        values = np.stack([weather_forecast[c].to_numpy(dtype=np.float64) for c in WEATHER_COLUMNS])
    return index_ns(weather_forecast.index), values


def weather_lookup(table: WeatherTable | None, target_ns: np.ndarray) -> np.ndarray:
    """(4, n) weather at the given slot starts; NaN where the table has no row."""
    out = np.full((4, len(target_ns)), np.nan)
    if table is None or len(table[0]) == 0:
        return out
    wns, values = table
    rows = np.searchsorted(wns, target_ns).clip(max=len(wns) - 1)
    ok = wns[rows] == target_ns
    out[:, ok] = values[:, rows[ok]]
    return out


def weather_arrays(weather_forecast: pd.DataFrame | None, target_ns: np.ndarray) -> np.ndarray:
    """(4, n) forecast ``temp_c, ghi, clearsky, cloud`` at the given slot starts; NaN where not given."""
    return weather_lookup(weather_table(weather_forecast), target_ns)


def lag_ns(series: SiteSeries, view: SiteView) -> np.ndarray:
    """Slot starts (UTC ns) of the latest observed same-time-of-day slots of ``view``'s horizon."""
    pos, _ = latest_same_slot(view)
    return series.start_ns + pos * series.step_ns


def features(view: SiteView, target: str, calendar: tuple[np.ndarray, np.ndarray], weather: np.ndarray,
             weather_then: np.ndarray, day_off: np.ndarray, same_type: SameTypeLags) -> tuple[np.ndarray, np.ndarray]:
    """(feature matrix ``(n, len(FEATURES))``, scale per row) for one site; for a batch of sites
    (``view.values`` ``(sites, rows)``) ``(sites, n, len(FEATURES))`` and ``(sites, n)``.

    Rows may come from different issue times: ``view.observed`` is then an array (one per row).
    ``weather``: the forecast for the horizon; ``weather_then``: the observed weather of the
    latest same-time-of-day slots (``lag_ns``); both ``(4, n)``, NaN where unknown.
    ``day_off``: per horizon slot, 1 on weekends and the caller's days off; ``same_type``:
    :func:`same_day_type_values`.
    """
    scale = site_scale(view, target, same_type)
    div = np.where(scale > 0, scale, 1.0)
    spd = view.slots_per_day
    values = view.values
    n = len(view.positions)
    m = _issue_rows(view)
    pos, age = latest_same_slot(view)
    x = np.empty((*values.shape[:-1], n, len(FEATURES)))
    x[..., 0] = view.lead_slots
    x[..., 1], x[..., 2] = calendar
    temp, ghi, clear, cloud = weather
    x[..., 3] = temp
    x[..., 4] = ghi / 1000.0
    x[..., 5] = clear / 1000.0
    x[..., 6] = cloud
    with np.errstate(divide="ignore", invalid="ignore"):
        x[..., 7] = np.where(clear > 1.0, ghi / clear, 0.0)
    x[..., 8] = _take(values, pos, m) / div
    x[..., 9] = age
    with np.errstate(all="ignore"):
        counts = np.isfinite(same_type.latest).sum(axis=-2)
        x[..., 10] = np.where(counts > 0, np.nansum(same_type.latest, axis=-2) / np.maximum(counts, 1), np.nan) / div
    x[..., 11] = same_type.week_before / div
    x[..., 12] = _take(values, m - 1, m) / div
    total, count = _window_sums(values, np.maximum(m - spd, 0), m)
    with np.errstate(divide="ignore", invalid="ignore"):
        x[..., 13] = np.where(count > 0, total / np.maximum(count, 1), np.nan) / div
    k = max(1, spd // 12)  # about 2 h
    ok = m >= spd + k
    m_ok = np.where(ok, m, spd + k)
    recent, _ = _window_sums(values, m_ok - k, m_ok)
    before, _ = _window_sums(values, m_ok - spd - k, m_ok - spd)
    x[..., 14] = np.where(ok, (recent - before) / k, np.nan) / div
    x[..., 15] = np.log10(div)
    x[..., 16] = weather_then[0]
    x[..., 17] = temp - weather_then[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        x[..., 18] = np.where(weather_then[2] > 1.0, weather_then[1] / weather_then[2], 0.0)
    x[..., np.isnan(weather_then[2]), 18] = np.nan
    x[..., 19] = day_off
    x[..., 20] = same_type.latest[..., 0, :] / div
    return x, np.broadcast_to(scale, (*values.shape[:-1], n))
