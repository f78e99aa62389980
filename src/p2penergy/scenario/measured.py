"""Measured smart-meter data (CSV) that replaces the generator for a site.

Format: a header row with ``timestamp`` (or ``slot_start``; ISO 8601 with UTC offset, the slot's start),
``load_wh`` and optionally ``pv_wh`` (integers ≥ 0, energy in the slot); an optional
``site`` column lets one file hold many sites (the ``sites.csv`` that
``p2penergy scenario export`` writes is such a file). Every slot of the scenario's period
must be present. Errors name the file, and the line (the header is line 1) where one row is at fault.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from p2penergy.textfile import read_text


class MeasuredDataError(ValueError):
    """A measured-data file is unusable; the message names the file, column or slot."""


def read_measured(path: Path, index: pd.DatetimeIndex, site_id: str) -> pd.DataFrame:
    """Integer ``load_wh`` and ``pv_wh`` for ``site_id`` on exactly ``index``."""
    try:
        text = read_text(path)  # not UTF-8: InputFileError naming the line
    except OSError as exc:
        raise MeasuredDataError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        # blank lines read as empty rows (dropped below) so that a row's label + 2 is its line
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise MeasuredDataError(f"{path}: cannot read as CSV ({exc})") from exc
    frame = frame[~(frame == "").all(axis=1)]
    if "timestamp" not in frame.columns and "slot_start" in frame.columns:
        frame = frame.rename(columns={"slot_start": "timestamp"})
    for column in ("timestamp", "load_wh"):
        if column not in frame.columns:
            raise MeasuredDataError(f"{path}: missing column {column!r} (need timestamp, load_wh[, pv_wh, site])")
    if "site" in frame.columns:
        frame = frame[frame["site"].astype(str) == site_id]
        if frame.empty:
            raise MeasuredDataError(f"{path}: no rows for site {site_id!r}")
    if "pv_wh" not in frame.columns:
        frame = frame.assign(pv_wh="0")
    stamps = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601", errors="coerce")
    _refuse_first(path, frame["timestamp"], stamps.isna(), "timestamp", "ISO 8601 with a UTC offset")
    energy = {}
    for column in ("load_wh", "pv_wh"):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | (values < 0) | (values != values.round())
        _refuse_first(path, frame[column], bad, column, "whole Wh >= 0")
        energy[column] = values
    frame = pd.DataFrame(energy).assign(timestamp=stamps.dt.tz_convert(index.tz)).set_index("timestamp")
    if frame.index.has_duplicates:
        raise MeasuredDataError(f"{path}: timestamp: duplicate slot {frame.index[frame.index.duplicated()][0]}")
    frame = frame[["load_wh", "pv_wh"]].reindex(index)
    missing = frame.index[frame.isna().any(axis=1)]
    if len(missing):
        raise MeasuredDataError(f"{path}: no value for slot {missing[0].isoformat()} ({len(missing)} slots missing)")
    return frame.astype(np.int64)


def _refuse_first(path: Path, cells: pd.Series, bad: pd.Series, column: str, allowed: str) -> None:
    """Raise naming the line of the first row where ``bad`` holds (row label 0 is line 2)."""
    if bad.any():
        label = bad[bad].index[0]
        raise MeasuredDataError(f"{path}: line {int(label) + 2}: {column}: must be {allowed}, "
                                f"got {cells.loc[label]!r}")
