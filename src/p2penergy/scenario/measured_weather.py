"""Measured weather and weather forecasts as CSV, with the sky quantities the forecasters need.

Both files follow the timestamp rules and error style of :mod:`p2penergy.scenario.measured`.

**Measured-weather CSV**: ``timestamp`` (slot start), ``temp_c`` (air temperature, °C) and the
global horizontal irradiance — ``ghi_w_m2``, or ``dni_w_m2`` and ``dhi_w_m2`` (direct normal and
diffuse horizontal; then ``GHI = DHI + DNI·cos(zenith)``, solar zenith from pvlib at the slot's
midpoint). Values are means over the slot. Other columns are ignored.

**Weather-forecast CSV**: the same columns plus ``issued_at`` (or ``issue_time``): one row per
(issue time, valid slot); ``timestamp`` (or ``valid_time``) is the slot the row forecasts.

Derived with pvlib for every row (:func:`sky`): ``clearsky_ghi_w_m2`` (Ineichen–Perez clear sky
at the slot's midpoint, as the synthetic weather) and ``cloud_index`` = 1 − GHI/clear-sky GHI,
clipped to [0, 1] (0 clear, 1 dark; the synthetic weather's definition). Where the clear-sky GHI
is below :data:`CLOUD_INDEX_MIN_CLEARSKY_W_M2` (night, and sun so low that the ratio is noise)
the slot gets its local day's index from the day's totals over the slots above it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from p2penergy.assets.pv import Site
from p2penergy.scenario.measured import TIMESTAMP_COLUMNS, CsvTable, MeasuredDataError, check_zone

WEATHER_COLUMNS = ("temp_c", "ghi_w_m2", "clearsky_ghi_w_m2", "cloud_index")
ISSUE_COLUMNS = ("issued_at", "issue_time")
VALID_COLUMNS = (*TIMESTAMP_COLUMNS, "valid_time")
CLOUD_INDEX_MIN_CLEARSKY_W_M2 = 50.0
"""Clear-sky GHI [W/m²] below which a slot's own GHI/clear-sky ratio is not used: about the sun
3° above the horizon, where timing and horizon shading make the ratio swing between 0 and >2."""
TEMP_RANGE_C = (-90.0, 60.0)
"""Plausible air temperatures [°C] (the world's records); outside is a unit or column mistake."""
IRRADIANCE_MAX_W_M2 = 1500.0
"""Highest plausible hourly-mean irradiance [W/m²] (the solar constant is 1361 W/m²)."""


def read_weather(path: Path, site: Site, timezone: str | None = None) -> pd.DataFrame:
    """Measured weather: ``WEATHER_COLUMNS`` indexed by slot start (in ``site.timezone``), sorted.
    ``timezone``: the zone of stamps without a UTC offset (default: none allowed)."""
    table = CsvTable.read(path)
    ts = table.first_of(TIMESTAMP_COLUMNS, "the slot's start, ISO 8601")
    when = table.instants(ts, _zone(timezone))
    table.check_unique(when, ts)
    temp, ghi_or_parts = _values(table)
    order = np.argsort(when.asi8, kind="stable")
    starts = when[order].tz_convert(site.timezone)
    step = _step(starts, path)
    ghi = _ghi(site, starts, step, ghi_or_parts, order)
    clear, cloud = sky(site, starts, step, ghi, np.zeros(len(starts)))
    return pd.DataFrame({"temp_c": temp[order], "ghi_w_m2": ghi, "clearsky_ghi_w_m2": clear, "cloud_index": cloud},
                        index=pd.DatetimeIndex(starts, name="slot_start"))


def read_weather_forecasts(path: Path, site: Site, timezone: str | None = None) -> pd.DataFrame:
    """Weather forecasts: columns ``issued_at``, ``slot_start`` (both in ``site.timezone``) and
    ``WEATHER_COLUMNS``, sorted by issue then slot."""
    table = CsvTable.read(path)
    issue_col = table.first_of(ISSUE_COLUMNS, "when the forecast was issued, ISO 8601")
    valid_col = table.first_of(VALID_COLUMNS, "the start of the slot forecast, ISO 8601")
    zone = _zone(timezone)
    issued = table.instants(issue_col, zone)
    valid = table.instants(valid_col, zone, issued.asi8)
    table.check_unique(valid, valid_col, issued.asi8)
    late = valid.asi8 < issued.asi8 - 86_400 * 10**9
    if late.any():
        raise table.error(int(np.argmax(late)), valid_col, "more than a day before its issue time: not a forecast")
    temp, ghi_or_parts = _values(table)
    order = np.lexsort((valid.asi8, issued.asi8))
    starts = valid[order].tz_convert(site.timezone)
    step = _step(pd.DatetimeIndex(np.unique(starts)), path)
    ghi = _ghi(site, starts, step, ghi_or_parts, order)
    clear, cloud = sky(site, starts, step, ghi, issued.asi8[order])
    return pd.DataFrame({"issued_at": issued[order].tz_convert(site.timezone), "slot_start": starts,
                         "temp_c": temp[order], "ghi_w_m2": ghi, "clearsky_ghi_w_m2": clear, "cloud_index": cloud})


def sky(site: Site, starts: pd.DatetimeIndex, step: pd.Timedelta, ghi: np.ndarray,
        groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(clear-sky GHI, cloud index) of slots starting at ``starts`` (any order, repeats allowed);
    ``groups``: rows of one forecast issue share a key (measured weather: all one key)."""
    unique, inverse = np.unique(starts.asi8, return_inverse=True)
    mids = pd.DatetimeIndex(pd.to_datetime(unique, utc=True)).tz_convert(site.timezone) + step / 2
    clear = site.location().get_clearsky(mids, model="ineichen")["ghi"].to_numpy(dtype=np.float64)[inverse]
    bright = clear >= CLOUD_INDEX_MIN_CLEARSKY_W_M2
    with np.errstate(divide="ignore", invalid="ignore"):
        own = np.clip(1.0 - ghi / clear, 0.0, 1.0)
    local_day = starts.tz_convert(site.timezone).tz_localize(None).normalize().asi8
    frame = pd.DataFrame({"g": groups, "d": local_day, "ghi": np.where(bright, ghi, 0.0),
                          "clear": np.where(bright, clear, 0.0)})
    totals = frame.groupby(["g", "d"])[["ghi", "clear"]].transform("sum")
    with np.errstate(divide="ignore", invalid="ignore"):
        daily = np.clip(1.0 - totals["ghi"].to_numpy() / totals["clear"].to_numpy(), 0.0, 1.0)
    return clear, np.where(bright, own, daily)


def on_grid(weather: pd.DataFrame, index: pd.DatetimeIndex, where: str) -> pd.DataFrame:
    """``weather`` (slot means) on the slots of ``index``: each slot takes the row whose slot holds
    it (a coarser row holds over its slots), or the mean of the finer rows inside it; error naming
    the first slot without weather."""
    ns = weather.index.as_unit("ns").asi8
    target = index.as_unit("ns").asi8
    step = int(np.diff(ns).min()) if len(ns) > 1 else 0
    slot = int(target[1] - target[0]) if len(target) > 1 else 0
    if 0 < step < slot:  # finer weather: the mean of the rows inside each slot
        into = np.searchsorted(target, ns, side="right") - 1
        inside = (into >= 0) & (ns < target[into.clip(min=0)] + slot)
        means = weather[inside].groupby(into[inside]).mean().reindex(range(len(index)))
        missing = np.asarray(means.isna().any(axis=1))
        if missing.any():
            first = index[int(np.argmax(missing))]
            raise MeasuredDataError(f"{where}: no weather for slot {first.isoformat()} ({int(missing.sum())} "
                                    "slots missing)")
        return means.set_axis(index)
    rows = np.searchsorted(ns, target, side="right") - 1
    ok = (rows >= 0) & (target < ns[rows.clip(min=0)] + step) if len(ns) else np.zeros(len(target), dtype=bool)
    if not ok.all():
        first = index[int(np.argmax(~ok))]
        raise MeasuredDataError(f"{where}: no weather for slot {first.isoformat()} ({int((~ok).sum())} slots missing)")
    return pd.DataFrame(weather.to_numpy()[rows], columns=weather.columns, index=index)


def _zone(timezone: str | None) -> str | None:
    return check_zone(timezone) if timezone is not None else None


def _values(table: CsvTable) -> tuple[np.ndarray, np.ndarray | tuple[np.ndarray, np.ndarray]]:
    temp = table.first_of(("temp_c",), "air temperature, °C")
    values = table.numbers(temp, minimum=TEMP_RANGE_C[0])
    if (values > TEMP_RANGE_C[1]).any():
        row = int(np.argmax(values > TEMP_RANGE_C[1]))
        raise table.error(row, temp, f"must be <= {TEMP_RANGE_C[1]:g} °C, got {table.frame[temp].iloc[row]!r}")
    if table.has("ghi_w_m2"):
        return values, _irradiance(table, "ghi_w_m2")
    if table.has("dni_w_m2") and table.has("dhi_w_m2"):
        return values, (_irradiance(table, "dni_w_m2"), _irradiance(table, "dhi_w_m2"))
    raise MeasuredDataError(f"{table.path}: missing column 'ghi_w_m2' (or both 'dni_w_m2' and 'dhi_w_m2'); "
                            f"columns found: {', '.join(table.frame.columns)}")


def _irradiance(table: CsvTable, column: str) -> np.ndarray:
    values = table.numbers(column, minimum=0.0)
    if (values > IRRADIANCE_MAX_W_M2).any():
        row = int(np.argmax(values > IRRADIANCE_MAX_W_M2))
        raise table.error(row, column, f"must be <= {IRRADIANCE_MAX_W_M2:g} W/m², got "
                          f"{table.frame[column].iloc[row]!r}")
    return values


def _step(starts: pd.DatetimeIndex, path: Path) -> pd.Timedelta:
    ns = starts.asi8
    steps = np.diff(ns)
    steps = steps[steps > 0]
    if len(steps) == 0:
        raise MeasuredDataError(f"{path}: at least two slots needed")
    return pd.Timedelta(int(steps.min()))


def _ghi(site: Site, starts: pd.DatetimeIndex, step: pd.Timedelta,
         values: np.ndarray | tuple[np.ndarray, np.ndarray], order: np.ndarray) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values[order]
    dni, dhi = values[0][order], values[1][order]
    unique, inverse = np.unique(starts.asi8, return_inverse=True)
    mids = pd.DatetimeIndex(pd.to_datetime(unique, utc=True)).tz_convert(site.timezone) + step / 2
    zenith = site.location().get_solarposition(mids)["apparent_zenith"].to_numpy(dtype=np.float64)[inverse]
    return dhi + dni * np.clip(np.cos(np.radians(zenith)), 0.0, None)


__all__ = ["CLOUD_INDEX_MIN_CLEARSKY_W_M2", "WEATHER_COLUMNS", "MeasuredDataError", "on_grid", "read_weather",
           "read_weather_forecasts", "sky"]
