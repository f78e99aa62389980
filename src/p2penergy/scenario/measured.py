"""Measured data as CSV: the meter file (load and PV per site) and the shared reading rules.

One reader per format, used by scenarios (``measured_csv`` of a home or the office), by
``p2penergy forecast evaluate`` and by the Python API (:func:`read_meter`); the weather
files are read by :mod:`p2penergy.scenario.measured_weather` with the same rules.

**Meter CSV.** A header row, then one row per slot (and site):

* ``timestamp`` (or ``slot_start``): the slot's start (see *Timestamps*);
* ``load_wh`` or ``load_kwh``: energy drawn in the slot; ``pv_wh`` or ``pv_kwh`` (optional,
  0 if absent): PV energy generated in the slot. Numbers ≥ 0, fractions allowed;
* ``site`` (optional): lets one file hold many sites (the ``sites.csv`` that
  ``p2penergy scenario export`` writes is such a file). Other columns are ignored.

**Timestamps.** ISO 8601. With a UTC offset (``2020-08-01T00:00:00+09:00``, ``…Z``) a stamp is
an instant. Without one it is local clock time and the zone must be named (``timezone=`` here,
``--timezone`` on the command line, the market's zone in a scenario). Local clock time around
daylight saving: a stamp in the *skipped* hour (e.g. 02:30 on the spring-forward night) is an
error; a stamp of the *repeated* hour is the first pass (daylight time) the first time it
appears in the file for that site (or issue) and the second pass (standard time) the second
time; a third time is a duplicate.

**Errors** are :class:`MeasuredDataError` naming the file, the line (1 = header) and the column.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from p2penergy.textfile import read_text

TIMESTAMP_COLUMNS = ("timestamp", "slot_start")
_OFFSET = re.compile(r"[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")


class MeasuredDataError(ValueError):
    """A measured-data file is unusable; the message names the file, line, column or slot."""


def check_zone(timezone: str) -> str:
    """``timezone`` if it is an IANA zone name (e.g. ``America/Los_Angeles``), else an error."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise MeasuredDataError(f"timezone: {timezone!r} is not an IANA zone name (e.g. Asia/Tokyo)") from exc
    return timezone


@dataclass(frozen=True)
class CsvTable:
    """A CSV file read as text: every cell a stripped string, rows in file order."""

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray  # the file's line (1 = header) of each row of ``frame``

    @classmethod
    def read(cls, path: Path) -> CsvTable:
        try:
            text = read_text(path)  # not UTF-8: InputFileError naming the line
        except OSError as exc:
            raise MeasuredDataError(f"{path}: cannot read ({exc.strerror})") from exc
        try:
            # blank lines read as empty rows (dropped below) so that a row's label + 2 is its line
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False,
                                skipinitialspace=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise MeasuredDataError(f"{path}: cannot read as CSV ({exc})") from exc
        frame.columns = [str(c).strip() for c in frame.columns]
        frame = frame.apply(lambda col: col.str.strip())
        frame = frame[~(frame == "").all(axis=1)]
        return cls(Path(path), frame.reset_index(drop=True), frame.index.to_numpy() + 2)

    def error(self, row: int, column: str, message: str) -> MeasuredDataError:
        """An error at data row ``row`` (0-based, blank lines skipped) of ``column``."""
        return MeasuredDataError(f"{self.path}: line {int(self.lines[row])}: column {column!r}: {message}")

    def has(self, column: str) -> bool:
        return column in self.frame.columns

    def first_of(self, names: tuple[str, ...], what: str) -> str:
        """The first of ``names`` that is a column (error if none is)."""
        for name in names:
            if self.has(name):
                return name
        raise MeasuredDataError(f"{self.path}: missing column {names[0]!r} ({what}; columns found: "
                                f"{', '.join(self.frame.columns) or 'none'})")

    def numbers(self, column: str, minimum: float | None = None) -> np.ndarray:
        """The column as floats: every cell a finite number (≥ ``minimum`` if given)."""
        raw = self.frame[column]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argmax(bad))
            raise self.error(row, column, f"a number expected, got {raw.iloc[row]!r}")
        if minimum is not None and (values < minimum).any():
            row = int(np.argmax(values < minimum))
            raise self.error(row, column, f"must be >= {minimum:g}, got {raw.iloc[row]!r}")
        return values

    def energy_wh(self, name: str, required: bool) -> np.ndarray | None:
        """``{name}_wh`` or ``{name}_kwh`` (exactly one) as Wh ≥ 0; None if neither and not required."""
        wh, kwh = f"{name}_wh", f"{name}_kwh"
        if self.has(wh) and self.has(kwh):
            raise MeasuredDataError(f"{self.path}: columns {wh!r} and {kwh!r}: give one of them, not both")
        if self.has(wh):
            return self.numbers(wh, minimum=0.0)
        if self.has(kwh):
            return self.numbers(kwh, minimum=0.0) * 1000.0
        if required:
            raise MeasuredDataError(f"{self.path}: missing column {wh!r} (or {kwh!r}); columns found: "
                                    f"{', '.join(self.frame.columns) or 'none'}")
        return None

    def instants(self, column: str, timezone: str | None, groups: np.ndarray | None = None) -> pd.DatetimeIndex:
        """The column as UTC instants (see the module docstring's rules); ``groups``: per row, the key
        (site, issue time) within which a repeated local hour's first and second pass are counted."""
        raw = self.frame[column]
        text = raw.to_numpy(dtype=object)
        for row, value in enumerate(text):
            if not _DATE_TIME.match(value):
                raise self.error(row, column, f"an ISO 8601 date and time expected, got {value!r}")
        offset = np.array([bool(_OFFSET.search(v)) for v in text], dtype=bool)
        out = np.empty(len(text), dtype="datetime64[ns]")
        if offset.any():
            parsed = pd.to_datetime(pd.Series(text[offset]), utc=True, format="ISO8601", errors="coerce")
            self._no_nat(parsed, np.flatnonzero(offset), column, raw)
            out[offset] = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
        local = ~offset
        if local.any():
            rows = np.flatnonzero(local)
            if timezone is None:
                raise self.error(int(rows[0]), column, f"{text[rows[0]]!r} has no UTC offset: give one "
                                 "(e.g. 2020-08-01T00:00:00+09:00) or name the zone of local clock times")
            naive = pd.to_datetime(pd.Series(text[local]), format="ISO8601", errors="coerce")
            self._no_nat(naive, rows, column, raw)
            keys = pd.Series(groups[local] if groups is not None else np.zeros(len(rows)))
            first_pass = pd.DataFrame({"g": keys.to_numpy(), "t": naive.to_numpy()}).groupby(
                ["g", "t"], sort=False).cumcount().to_numpy() == 0
            localized = pd.DatetimeIndex(naive).tz_localize(check_zone(timezone), ambiguous=first_pass,
                                                            nonexistent="NaT")
            skipped = np.asarray(localized.isna())
            if skipped.any():
                row = int(rows[np.argmax(skipped)])
                raise self.error(row, column, f"{text[row]!r} does not exist in {timezone} (the clocks skip that "
                                 "hour when daylight saving starts); give a UTC offset or drop the row")
            out[local] = localized.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]")
        return pd.DatetimeIndex(out).tz_localize("UTC")

    def _no_nat(self, parsed: pd.Series, rows: np.ndarray, column: str, raw: pd.Series) -> None:
        bad = np.asarray(parsed.isna())
        if bad.any():
            row = int(rows[np.argmax(bad)])
            raise self.error(row, column, f"an ISO 8601 date and time expected, got {raw.iloc[row]!r}")

    def check_unique(self, instants: pd.DatetimeIndex, column: str, groups: np.ndarray | None = None) -> None:
        """Error naming the line of the first repeated (group, instant)."""
        keys = pd.DataFrame({"g": groups if groups is not None else np.zeros(len(instants)), "t": instants.asi8})
        dup = keys.duplicated().to_numpy()
        if dup.any():
            row = int(np.argmax(dup))
            first = int(np.flatnonzero((keys == keys.iloc[row]).all(axis=1).to_numpy())[0])
            raise self.error(row, column, f"{self.frame[column].iloc[row]!r}: the same slot as line "
                             f"{int(self.lines[first])}")


def read_meter(path: Path, timezone: str | None = None, site: str | None = None) -> dict[str, pd.DataFrame]:
    """Every site of a meter CSV: site id → frame of float ``load_wh``, ``pv_wh`` indexed by slot start
    (in ``timezone``, UTC if None), sorted. ``site``: the id of a file without a ``site`` column
    (default: the file's name without extension); with a ``site`` column, only that site's rows."""
    if timezone is not None:
        check_zone(timezone)
    table = CsvTable.read(path)
    ts = table.first_of(TIMESTAMP_COLUMNS, "the slot's start, ISO 8601")
    load = table.energy_wh("load", required=True)
    pv = table.energy_wh("pv", required=False)
    if table.has("site"):
        sites = table.frame["site"].to_numpy(dtype=object)
        empty = sites == ""
        if empty.any():
            raise table.error(int(np.argmax(empty)), "site", "a site id expected, got an empty cell")
    else:
        sites = np.full(len(table.frame), site or Path(path).stem, dtype=object)
    when = table.instants(ts, timezone, sites)
    table.check_unique(when, ts, sites)
    if timezone is not None:
        when = when.tz_convert(timezone)
    frame = pd.DataFrame({"load_wh": load, "pv_wh": pv if pv is not None else 0.0, "site": sites},
                         index=pd.DatetimeIndex(when, name="slot_start"))
    if site is not None and table.has("site"):
        frame = frame[frame["site"] == site]
        if frame.empty:
            raise MeasuredDataError(f"{path}: no rows for site {site!r}")
    return {str(name): rows[["load_wh", "pv_wh"]].sort_index()
            for name, rows in frame.groupby("site", sort=True)}


def slot_step(index: pd.DatetimeIndex, where: str) -> pd.Timedelta:
    """The slot length of sorted slot starts (the smallest step); error naming the first gap."""
    if len(index) < 2:
        raise MeasuredDataError(f"{where}: at least two slots needed")
    ns = index.as_unit("ns").asi8
    steps = np.diff(ns)
    step = int(steps.min())
    if (steps != step).any():
        i = int(np.argmax(steps != step))
        raise MeasuredDataError(f"{where}: slots missing after {index[i].isoformat()} "
                                f"(next slot {index[i + 1].isoformat()}, slot length {pd.Timedelta(step)})")
    return pd.Timedelta(step)


def whole_wh(values: np.ndarray) -> np.ndarray:
    """Fractional Wh to whole Wh by rounding the running total, so any run of slots keeps its
    energy within 1 Wh (the market trades whole Wh; rounding slot by slot could drift)."""
    running = np.rint(np.cumsum(values))
    return np.diff(running, prepend=0.0).astype(np.int64)


def read_measured(path: Path, index: pd.DatetimeIndex, site_id: str) -> pd.DataFrame:
    """Integer ``load_wh`` and ``pv_wh`` for ``site_id`` on exactly ``index`` (local clock times
    in the file are read in ``index``'s zone). A file of coarser slots (a multiple of ``index``'s)
    is spread evenly over the slots inside each of its slots."""
    if index.tz is None:
        raise MeasuredDataError("index: timezone-aware slot starts needed")
    frame = _onto(read_meter(path, str(index.tz), site_id)[site_id], index, f"{path} (site {site_id!r})")
    missing = frame.index[frame.isna().any(axis=1)]
    if len(missing):
        raise MeasuredDataError(f"{path}: no value for slot {missing[0].isoformat()} ({len(missing)} slots missing)")
    return pd.DataFrame({c: whole_wh(frame[c].to_numpy()) for c in ("load_wh", "pv_wh")}, index=index)


def _onto(frame: pd.DataFrame, index: pd.DatetimeIndex, where: str) -> pd.DataFrame:
    """``frame`` (energies per slot) on ``index``'s slots: coarser slots split evenly, finer ones
    summed (a slot is missing, NaN, unless every finer slot inside it is there)."""
    if len(frame) >= 2 and len(index) >= 2:
        step = pd.Timedelta(int(np.diff(frame.index.as_unit("ns").asi8).min()))
        slot = index[1] - index[0]
        if (step % slot if step > slot else slot % step):
            raise MeasuredDataError(f"{where}: slot length {step} does not divide into, or by, the scenario's {slot}")
        if step > slot:
            parts = int(step / slot)
            starts = frame.index.repeat(parts) + np.tile(np.arange(parts) * slot, len(frame))
            frame = pd.DataFrame(np.repeat(frame.to_numpy() / parts, parts, axis=0), columns=frame.columns,
                                 index=starts)
        elif step < slot:
            parts = int(slot / step)
            ns, grid = frame.index.as_unit("ns").asi8, index.as_unit("ns").asi8
            where_in = np.searchsorted(grid, ns, side="right") - 1
            inside = (where_in >= 0) & (ns < grid[where_in.clip(min=0)] + slot.value)
            grouped = frame[inside].groupby(where_in[inside])
            sums, counts = grouped.sum(), grouped.size()
            sums[counts != parts] = np.nan
            return sums.reindex(range(len(index))).set_axis(index)
    return frame.reindex(index)
