"""CityLearn Challenge 2022 building files to the project's meter and weather CSVs.

The data set (``Building_N.csv`` and ``weather.csv``: 8,760 hourly rows from 1 August 2016,
homes in Fontana, California) has no timestamps. Its rows are local clock hours: row ``r``
covers the hour starting at ``r mod 24`` o'clock on the ``r div 24``-th day after 2016-08-01
(the PV's midday — its energy-weighted mean hour — sits at 12.9 h in August and
11.5 h in November in that reading, where solar noon is 12:56 PDT and 11:34 PST). Every day has
24 rows, so around daylight saving:

* 2017-03-12 02:00 does not exist (clocks skip to 03:00): that row is dropped;
* 2016-11-06 01:00 happens twice: the row is the first pass, and the second pass (01:00 PST)
  repeats it, so the series has every hour.

The written files carry UTC offsets, so they read without these rules. Columns used:
``Equipment Electric Power [kWh]`` (load), ``Solar Generation [W/kW]`` × ``pv_kw`` (PV energy,
Wh per hour), ``Outdoor Drybulb Temperature [C]``, and ``Diffuse Solar Radiation [W/m2]`` read
as *global* horizontal irradiance: despite its name it is the GHI (median 0.95 of pvlib's clear
sky at Fontana in daylight, 5.0 kWh/m²/day over the year; read as diffuse with the "direct"
column as direct normal, GHI would be 1.6 times clear sky).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from p2penergy.assets.pv import Site

FONTANA = Site(34.09, -117.43, 377.0, "America/Los_Angeles")
"""Where the homes are: Fontana, California (city centre and elevation; the data set names the city only)."""
PV_KW = 4.0
"""Installed PV per home [kW] (assumption: the data give PV per kW installed; 4 kW is a typical
Californian rooftop system. It scales each home's PV, so per-home nMAE does not depend on it)."""
FIRST_DAY = "2016-08-01"
ROWS = 8760
LOAD = "Equipment Electric Power [kWh]"
PV = "Solar Generation [W/kW]"
TEMP = "Outdoor Drybulb Temperature [C]"
GHI = "Diffuse Solar Radiation [W/m2]"


def clock_hours(rows: int = ROWS, tz: str = FONTANA.timezone) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """(positions of the rows kept, the hour each row or repeat starts) — see the module docstring."""
    wall = pd.Timestamp(FIRST_DAY) + pd.to_timedelta(np.arange(rows), unit="h")
    first = pd.DatetimeIndex(wall).tz_localize(tz, ambiguous=np.ones(rows, dtype=bool), nonexistent="NaT")
    second = pd.DatetimeIndex(wall).tz_localize(tz, ambiguous=np.zeros(rows, dtype=bool), nonexistent="NaT")
    keep = np.flatnonzero(~first.isna())
    repeat = keep[first[keep] != second[keep]]  # the repeated hour's second pass
    rows_out = np.sort(np.concatenate([keep, repeat]), kind="stable")
    starts = first[keep].append(second[repeat]).sort_values()
    return rows_out, starts


def citylearn_tables(directory: Path, buildings: Sequence[int] = range(1, 9),
                     pv_kw: float = PV_KW) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(meter table: ``timestamp``, ``site``, ``load_kwh``, ``pv_wh``; weather table: ``timestamp``,
    ``temp_c``, ``ghi_w_m2``), timestamps ISO 8601 with offset; sites ``building-N``."""
    directory = Path(directory)
    meters = []
    for n in buildings:
        frame = _read(directory / f"Building_{n}.csv", (LOAD, PV))
        rows, starts = clock_hours(len(frame))
        stamps = _iso(starts)
        meters.append(pd.DataFrame({"timestamp": stamps, "site": f"building-{n}",
                                    "load_kwh": frame[LOAD].to_numpy()[rows],
                                    "pv_wh": frame[PV].to_numpy()[rows] * pv_kw}))
    weather = _read(directory / "weather.csv", (TEMP, GHI))
    rows, starts = clock_hours(len(weather))
    table = pd.DataFrame({"timestamp": _iso(starts), "temp_c": weather[TEMP].to_numpy()[rows],
                          "ghi_w_m2": weather[GHI].to_numpy()[rows]})
    return pd.concat(meters, ignore_index=True), table


def write_citylearn(directory: Path, out_dir: Path, buildings: Sequence[int] = range(1, 9),
                    pv_kw: float = PV_KW) -> tuple[Path, Path]:
    """Write ``meter.csv`` and ``weather.csv`` into ``out_dir`` (created); returns their paths."""
    meter, weather = citylearn_tables(directory, buildings, pv_kw)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / "meter.csv", out_dir / "weather.csv"
    meter.to_csv(paths[0], index=False)
    weather.to_csv(paths[1], index=False)
    return paths


def _iso(starts: pd.DatetimeIndex) -> np.ndarray:
    """ISO 8601 with the UTC offset (``2016-08-01T00:00:00-07:00``), vectorised."""
    text = pd.Series(starts.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return (text.str[:-2] + ":" + text.str[-2:]).to_numpy()


def _read(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"{path}: cannot read as CSV ({exc})") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column {missing[0]!r} (not a CityLearn 2022 building or weather file)")
    if len(frame) != ROWS:
        raise ValueError(f"{path}: {len(frame)} rows, expected {ROWS} (a year of hours from {FIRST_DAY})")
    bad = frame[list(columns)].isna().any(axis=1).to_numpy()
    if bad.any():
        raise ValueError(f"{path}, line {int(np.argmax(bad)) + 2}: empty value in {', '.join(columns)}")
    return frame
