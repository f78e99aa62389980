"""Car trips forecast from the car's own past: a commuter calendar.

A car's agent does not know its driver's plans. It knows, slot by slot, where the car
was (``home``, ``office`` or ``road``: its own telematics) and how much energy driving
took (its meter); and it knows the office's calendar (business days; public). From
the last ``window_days`` complete days of that history, :class:`CommuteCalendar` keeps,
separately for business days and days off, per time of day (local slot of the day):

* the share of those days the car was at home, at the office and on the road;
* the mean driving energy [Wh].

The spread of those shares is the uncertainty the scenario's commute model has
(:mod:`p2penergy.assets.car`: departure and leaving times vary by a normal error,
errands, leisure trips of random length, days of leave); nothing of the model is read.

**Today** is conditioned on where the car is now (the last slot that ended): only past
days of today's type on which the car was in the same place at the same time of day
count (a car still at home at 08:30 leaves later than usual; a car at the office goes
home at the usual time). With fewer than ``min_analog_days`` such days, a parked car where
it rarely is at that time (on less than ``unusual_share`` of the days) is taken to stay for
the rest of the day (at home at 10:00 on a business day, when it has almost never left
that late: a day off); otherwise, and on the road, the whole calendar of the day type
holds. **Tomorrow** is the calendar of its day type.

**One schedule for the planner** (:attr:`TripForecast.location`, ``drive_wh``): a slot
is planned parked at home or at the office only if the car was there on at least
``parked_probability`` of the matching days; otherwise it is planned away (no charging,
no selling). The threshold weighs the two errors of a plan: planning a parked slot that
turns out away loses the energy bought for it (it goes back to the utility at no price,
about 20 JPY/kWh lost at the P2P price), planning away a slot that turns out parked only
loses the saving of buying there instead of later (retail less the P2P price, about
5 JPY/kWh); a parked slot is worth planning when p × 5 > (1 − p) × 20, p > 0.8. Each away
block gets, in its first slot, the driving energy of its slots and of the parked slots
nearer to it than to any other block, so the plan leaves with the trip's energy on
board: not the mean but the ``trip_energy_quantile`` (0.9) of what the matching past days
drove over those slots. Too little energy costs the engine's fuel instead of electricity
(about 42 − 25 = 17 JPY/kWh at the scenario's 134 JPY/L), too much only stays in the
battery for the next trip (a few JPY/kWh of price difference and losses): the newsvendor's
critical ratio 17 / (17 + 2) ≈ 0.9. Expected energy in a horizon with no away block is
left out. The planner also learns how likely the car is where it plans it parked
(:attr:`TripForecast.parked_probability`): the lowest share of days it was there over the
slot and the next ``departure_margin_h`` (2 h: the scenario's departure and leaving times
vary by 15 min to 1.2 h, and a few weeks of history have not seen the earliest ones). The
car's agent prices energy planned into a slot by that risk (price ÷ probability), so at
equal prices it charges where it surely is plugged in — the night before, not the hours it
may already have left.

Everything is read from slots that ended by the issue time: the same call with the
future changed gives the same answer (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, tzinfo
from typing import Self

import numpy as np
import pandas as pd

from p2penergy.agents.forecast_features import aware_ns, day_off_flags, local_calendar
from p2penergy.agents.plan_input import AgentInputError
from p2penergy.agents.weather_forecast import index_ns
from p2penergy.community import LOCATION_CODES

HOME, OFFICE, ROAD = LOCATION_CODES["home"], LOCATION_CODES["office"], LOCATION_CODES["road"]
UNKNOWN = -1
TRIP_COLUMNS = ("location", "drive_wh")
_DAY_NS = 86_400 * 10**9


@dataclass(frozen=True, slots=True)
class TripForecast:
    """A car's trips over a horizon: probabilities per slot, and one schedule for the planner.

    ``p_home``, ``p_office``, ``p_road``: share of matching past days the car was there;
    ``expected_drive_wh``: mean driving energy per slot; ``location``: planning codes
    (``LOCATION_CODES``: parked at home / office, or away); ``drive_wh``: the energy of each
    away block, in its first slot; ``parked_probability``: how likely the car is where
    ``location`` plans it parked, and stays there for the departure margin (1 where away).
    """

    p_home: np.ndarray
    p_office: np.ndarray
    p_road: np.ndarray
    expected_drive_wh: np.ndarray
    location: np.ndarray
    drive_wh: np.ndarray
    parked_probability: np.ndarray


@dataclass(frozen=True, slots=True)
class _Days:
    """The fitted calendar: complete local days as rows, local slots of the day as columns, and
    per day type (0: business day, 1: day off) the shares of days at each place and the mean
    driving energy per slot of the day."""

    location: np.ndarray  # int8 codes, UNKNOWN where the day had no such slot (DST)
    drive_wh: np.ndarray  # float, NaN where unknown
    day_off: np.ndarray  # bool per row
    through: int  # last complete local day fitted (days since 1970-01-01)
    shares: np.ndarray  # (2 day types, 3 places, slots of the day)
    mean_drive_wh: np.ndarray  # (2 day types, slots of the day)


def _rows_of_type(day_off: np.ndarray, off: bool) -> np.ndarray:
    """Past days of a day type (all days when the window has none of that type)."""
    rows = day_off == off
    return rows if rows.any() else np.ones(len(day_off), dtype=bool)


def _shares(location: np.ndarray, drive_wh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(share of days at home / office / road per column, mean driving energy per column); no data: home, 0."""
    known = (location != UNKNOWN).sum(axis=0)
    shares = np.zeros((3, location.shape[1]))
    for code in (HOME, OFFICE, ROAD):
        np.divide((location == code).sum(axis=0), known, out=shares[code], where=known > 0)
    shares[HOME, known == 0] = 1.0
    counted = (~np.isnan(drive_wh)).sum(axis=0)
    mean = np.divide(np.nansum(drive_wh, axis=0), counted, out=np.zeros(location.shape[1]), where=counted > 0)
    return shares, mean


@dataclass
class CommuteCalendar:
    """The commuter calendar (see the module docstring).

    ``window_days``: complete days of history it learns from (the last ones before the issue
    time; 28 holds about 20 business days and 8 days off: enough for the shares to move in
    steps of 5 % and 12 %, recent enough to follow a change of routine within weeks);
    ``parked_probability``: share of matching days a slot must have been parked to be
    planned parked (0.8, reasoning above); ``min_analog_days``: matching days needed to
    condition today on where the car is now (3: fewer is one or two odd days);
    ``unusual_share``: with fewer such days, a parked car stays put for the day only if it
    was there at this time on less than this share of the matching days (0.2: a car at home
    at 10:00 on one business day in twenty is off work; at home at 14:00 on two Saturdays of
    eight it may still go out);
    ``trip_energy_quantile``: the share of matching past days whose driving a block's energy
    covers (0.9, reasoning in the module docstring); ``departure_margin_h``: how much earlier
    than the matching days a car may leave (2 h; below); ``days_off``: local dates besides
    weekends that are not business days.
    """

    window_days: int = 28
    parked_probability: float = 0.8
    min_analog_days: int = 3
    trip_energy_quantile: float = 0.9
    departure_margin_h: float = 2.0
    unusual_share: float = 0.2
    days_off: frozenset[date] = frozenset()
    _days: _Days | None = field(default=None, init=False, repr=False)
    _slot_ns: int = field(default=0, init=False, repr=False)
    _horizon: tuple[tuple[int, int, int, str], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = field(
        default=None, init=False, repr=False)
    # a block's energy quantile by (past days, slots of the day) for the fit ``_block_energy_of``: the
    # day's later steps ask the same of tomorrow's blocks and today's still ahead
    _block_energy: dict[tuple[bytes, bytes], float] = field(default_factory=dict, init=False, repr=False)
    _block_energy_of: _Days | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.window_days < 1:
            raise AgentInputError("window_days", f"at least 1, got {self.window_days}")
        if not 0.5 < self.parked_probability <= 1:
            raise AgentInputError("parked_probability", f"in (0.5, 1], got {self.parked_probability}")
        if self.min_analog_days < 1:
            raise AgentInputError("min_analog_days", f"at least 1, got {self.min_analog_days}")
        if not 0 <= self.unusual_share <= 1:
            raise AgentInputError("unusual_share", f"in [0, 1], got {self.unusual_share}")
        if not 0 <= self.departure_margin_h <= 24:
            raise AgentInputError("departure_margin_h", f"hours in [0, 24], got {self.departure_margin_h}")
        if not 0 <= self.trip_energy_quantile <= 1:
            raise AgentInputError("trip_energy_quantile", f"in [0, 1], got {self.trip_energy_quantile}")

    # -- learning -------------------------------------------------------------------------
    def fit(self, history: pd.DataFrame, cutoff: datetime | None = None) -> Self:
        """Learn from the last ``window_days`` local days of ``history`` complete by ``cutoff``
        (default: its end). ``history``: indexed by tz-aware slot starts, columns ``location``
        (``LOCATION_CODES``) and ``drive_wh``."""
        ns, step, tz = _grid(history)
        cut = aware_ns(cutoff, "cutoff") if cutoff is not None else int(ns[-1]) + step
        self._days = self._tabulate(history, ns, step, tz, cut)
        self._slot_ns = step
        return self

    def _tabulate(self, history: pd.DataFrame, ns: np.ndarray, step: int, tz: tzinfo, cut: int) -> _Days:
        spd = _DAY_NS // step
        _, _, today = local_calendar(np.array([cut]), tz)
        through = int(today[0]) - 1  # local days before the cutoff's day are complete
        first = through - self.window_days + 1
        # rows of the window: from the window's first local midnight (a day ago at most 26 h away) on
        lo = int(np.searchsorted(ns, cut - (self.window_days + 2) * _DAY_NS))
        hi = int(np.searchsorted(ns, cut - step, side="right"))  # slots that ended by the cutoff
        rows = slice(lo, hi)
        hour, weekday, day = local_calendar(ns[rows], tz) if hi > lo else (np.zeros(0),) * 3
        keep = (day >= first) & (day <= through)
        day, weekday = day[keep].astype(np.int64), weekday[keep]
        col = _slot_of_day(hour[keep], step)
        days = np.arange(first, through + 1)
        location = np.full((len(days), spd), UNKNOWN, dtype=np.int8)
        drive = np.full((len(days), spd), np.nan)
        r = day - first
        location[r, col] = history["location"].to_numpy()[rows][keep]
        drive[r, col] = history["drive_wh"].to_numpy(dtype=np.float64)[rows][keep]
        seen = (location != UNKNOWN).any(axis=1)  # days the history covers
        weekdays = (days + 3) % 7
        off = day_off_flags(weekdays, days, self.days_off).astype(bool)[seen]
        location, drive = location[seen], drive[seen]
        shares = np.zeros((2, 3, spd))
        mean = np.zeros((2, spd))
        for kind in (0, 1):
            rows = _rows_of_type(off, bool(kind))
            shares[kind], mean[kind] = _shares(location[rows], drive[rows])
        return _Days(location, drive, off, through, shares, mean)

    # -- forecasting ----------------------------------------------------------------------
    def predict(self, history: pd.DataFrame, issued_at: datetime, horizon: pd.DatetimeIndex) -> TripForecast:
        """The car's trips over ``horizon`` from ``history`` as it stood at ``issued_at`` (slots
        that ended by then). Refits when a day has completed since the last fit."""
        ns, step, tz = _grid(history)
        issued = aware_ns(issued_at, "issued_at")
        ended = int(np.searchsorted(ns, issued - step, side="right"))
        # local calendar of the issue time and of the last slot that ended (where the car is now)
        hours, _, local_days = local_calendar(np.array([issued, ns[ended - 1] if ended else issued]), tz)
        today = int(local_days[0])
        if self._days is None or self._days.through != today - 1 or self._slot_ns != step:
            self._days = self._tabulate(history, ns, step, tz, issued)
            self._slot_ns = step
        days = self._days
        h_day, h_col, h_off = self._horizon_calendar(horizon, step, tz)
        p = days.shares[h_off, :, h_col].T.copy()  # (3, horizon): the calendar of each slot's day type
        energy = days.mean_drive_wh[h_off, h_col]
        # the past days each slot's forecast comes from: its day type's (0, 1), today's analogs (2), none (-1)
        rows_of = [_rows_of_type(days.day_off, False), _rows_of_type(days.day_off, True)]
        group = h_off.copy()
        today_cols = h_day == today
        if ended and int(local_days[1]) == today and today_cols.any():
            # the rest of today, given where the car is now
            code = int(history["location"].to_numpy()[ended - 1])
            col = int(_slot_of_day(hours[1:], step)[0])
            of_type = days.day_off == bool(h_off[today_cols][0])
            analog = of_type & (days.location[:, col] == code)
            unusual = analog.sum() < self.unusual_share * max(int(of_type.sum()), 1)
            if analog.sum() >= self.min_analog_days:
                cols = h_col[today_cols]
                p[:, today_cols], energy[today_cols] = _shares(days.location[analog][:, cols],
                                                               days.drive_wh[analog][:, cols])
                rows_of.append(analog)
                group[today_cols] = 2
            elif code != ROAD and unusual:  # an unusual day: a parked car stays where it is
                p[:, today_cols] = 0.0
                p[code, today_cols] = 1.0
                energy[today_cols] = 0.0
                group[today_cols] = -1
        margin = round(self.departure_margin_h * 3_600_000_000_000 / step)
        forecast = plan_view(p[HOME], p[OFFICE], p[ROAD], energy, self.parked_probability, margin)
        return self._with_trip_quantiles(forecast, h_day, h_col, group, rows_of)

    def _with_trip_quantiles(self, forecast: TripForecast, h_day: np.ndarray, h_col: np.ndarray, group: np.ndarray,
                             rows_of: list[np.ndarray]) -> TripForecast:
        """Each away block's energy as the ``trip_energy_quantile`` of what the matching past days drove
        over the block's slots of its day (plus the expected energy of its slots on another day)."""
        days = self._days
        assert days is not None
        starts, block_of = _blocks(forecast.location)
        drive = forecast.drive_wh.copy()
        for b, first in enumerate(starts):
            g = int(group[first])
            if g < 0:
                continue
            mine = block_of == b
            same = mine & (h_day == h_day[first]) & (group == g)
            rows = rows_of[g]
            if not rows.any():
                continue
            cols = h_col[same]
            key = (rows.tobytes(), cols.tobytes())
            energy = self._block_energy.get(key) if self._block_energy_of is days else None
            if energy is None:
                if self._block_energy_of is not days:  # a new fit: what was kept was of the last one
                    self._block_energy_of, self._block_energy = days, {}
                per_day = np.nansum(days.drive_wh[rows][:, cols], axis=1)
                energy = self._block_energy[key] = float(np.quantile(per_day, self.trip_energy_quantile))
            drive[first] = energy + float(forecast.expected_drive_wh[mine & ~same].sum())
        return replace(forecast, drive_wh=drive)

    def _horizon_calendar(self, horizon: pd.DatetimeIndex, step: int,
                          tz: tzinfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(local day, slot of the day, day type 0/1) of each horizon slot (the last one is kept)."""
        if not isinstance(horizon, pd.DatetimeIndex) or horizon.tz is None or len(horizon) == 0:
            raise AgentInputError("horizon", "a non-empty, timezone-aware DatetimeIndex of slot starts")
        h_ns = index_ns(horizon)
        key = (int(h_ns[0]), len(h_ns), step, str(tz))
        if self._horizon is None or self._horizon[0] != key:
            hour, weekday, day = local_calendar(h_ns, tz)
            off = day_off_flags(weekday, day, self.days_off).astype(np.int64)
            self._horizon = (key, (day, _slot_of_day(hour, step), off))
        return self._horizon[1]


def plan_view(p_home: np.ndarray, p_office: np.ndarray, p_road: np.ndarray, expected_drive_wh: np.ndarray,
              parked_probability: float, margin_slots: int = 0) -> TripForecast:
    """The planner's schedule from per-slot probabilities, each block with its expected energy
    (see the module docstring). A planned parked slot's probability is the lowest share of its
    place over it and the next ``margin_slots`` slots."""
    location = np.where(p_home >= parked_probability, HOME,
                        np.where(p_office >= parked_probability, OFFICE, ROAD)).astype(np.int8)
    drive = np.zeros(len(location))
    starts, block_of = _blocks(location)
    if len(starts):
        np.add.at(drive, starts[block_of], expected_drive_wh)
    there = np.where(location == HOME, p_home, np.where(location == OFFICE, p_office, 1.0))
    for place, share in ((HOME, p_home), (OFFICE, p_office)):
        ahead = share.copy()
        for k in range(1, margin_slots + 1):  # the lowest share over the next slots (horizon's end: as is)
            ahead[:-k] = np.minimum(ahead[:-k], share[k:])
        there = np.where(location == place, ahead, there)
    return TripForecast(p_home, p_office, p_road, expected_drive_wh, location, drive, there)


def _blocks(location: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first slot of each away block, the block each slot's driving energy belongs to: the nearest,
    ties to the earlier; empty when there is no block)."""
    away = location == ROAD
    starts = np.flatnonzero(away & ~np.concatenate(([False], away[:-1])))
    if not len(starts):
        return starts, np.zeros(0, dtype=np.int64)
    ends = np.flatnonzero(away & ~np.concatenate((away[1:], [False])))
    k = np.arange(len(location))
    # distance of every slot to each block (0 inside it)
    dist = np.maximum(starts[None, :] - k[:, None], 0) + np.maximum(k[:, None] - ends[None, :], 0)
    return starts, np.argmin(dist, axis=1)


def _slot_of_day(hour: np.ndarray, step_ns: int) -> np.ndarray:
    """Local slot of the day (0 = the slot starting at midnight) of local clock hours."""
    minutes = np.rint(np.asarray(hour) * 60).astype(np.int64)
    return np.minimum(minutes * 60 * 10**9 // step_ns, _DAY_NS // step_ns - 1)


def _grid(history: pd.DataFrame) -> tuple[np.ndarray, int, tzinfo]:
    for column in TRIP_COLUMNS:
        if column not in history.columns:
            raise AgentInputError("history", f"a column {column!r}")
    index = history.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None or len(index) < 2:
        raise AgentInputError("history.index", "timezone-aware slot starts (a DatetimeIndex with tz), 2 or more")
    ns = index_ns(index)
    step = int(ns[1] - ns[0])
    if step <= 0 or _DAY_NS % step or int(ns[-1] - ns[0]) != step * (len(ns) - 1):
        raise AgentInputError("history.index", "regular slots whose length divides a day")
    return ns, step, index.tz
