"""Measured smart-meter data (CSV) that replaces the generator for a site.

Format: a header row with ``timestamp`` (or ``slot_start``; ISO 8601 with UTC offset, the slot's start),
``load_wh`` and optionally ``pv_wh`` (integers ≥ 0, energy in the slot); an optional
``site`` column lets one file hold many sites (the ``sites.csv`` that
``p2penergy scenario export`` writes is such a file). Every slot of the scenario's period
must be present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


class MeasuredDataError(ValueError):
    """A measured-data file is unusable; the message names the file, column or slot."""


def read_measured(path: Path, index: pd.DatetimeIndex, site_id: str) -> pd.DataFrame:
    """Integer ``load_wh`` and ``pv_wh`` for ``site_id`` on exactly ``index``."""
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise MeasuredDataError(f"{path}: cannot read as CSV ({exc})") from exc
    if "timestamp" not in frame.columns and "slot_start" in frame.columns:
        frame = frame.rename(columns={"slot_start": "timestamp"})
    for column in ("timestamp", "load_wh"):
        if column not in frame.columns:
            raise MeasuredDataError(f"{path}: missing column {column!r} (need timestamp, load_wh[, pv_wh, site])")
    if "site" in frame.columns:
        frame = frame[frame["site"].astype(str) == site_id]
        if frame.empty:
            raise MeasuredDataError(f"{path}: no rows for site {site_id!r}")
    try:
        stamps = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise MeasuredDataError(f"{path}: timestamp: ISO 8601 with a UTC offset expected ({exc})") from exc
    frame = frame.assign(timestamp=stamps.dt.tz_convert(index.tz)).set_index("timestamp")
    if frame.index.has_duplicates:
        raise MeasuredDataError(f"{path}: timestamp: duplicate slot {frame.index[frame.index.duplicated()][0]}")
    if "pv_wh" not in frame.columns:
        frame["pv_wh"] = 0
    frame = frame[["load_wh", "pv_wh"]].reindex(index)
    missing = frame.index[frame.isna().any(axis=1)]
    if len(missing):
        raise MeasuredDataError(f"{path}: no value for slot {missing[0].isoformat()} ({len(missing)} slots missing)")
    values = frame.to_numpy(dtype=float)
    if (values < 0).any() or not np.all(values == np.round(values)):
        raise MeasuredDataError(f"{path}: load_wh, pv_wh: must be whole Wh >= 0")
    return frame.astype(np.int64)
