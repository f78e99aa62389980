"""Measured files (meter, weather, weather forecasts) as forecasting inputs, and their evaluation.

The Python API behind ``p2penergy forecast evaluate``::

    from p2penergy.formats.measured_inputs import evaluate_files
    result = evaluate_files("meter.csv", date(2017, 7, 1), "America/Los_Angeles",
                            weather="weather.csv", site=Site(34.09, -117.43, 377.0, "America/Los_Angeles"))
    result.to_json()  # {"sites": …, "sum": …, "coverage": …}

Formats: :mod:`p2penergy.scenario.measured` (meter) and :mod:`p2penergy.scenario.measured_weather`.
Weather forecasts come from the weather-forecast file if given (with the measured weather as the
observed past); with measured weather alone they are the project's synthetic forecasts of it
(:class:`~p2penergy.agents.weather_forecast.WeatherForecastSource`: the measured values plus its
seeded error growing with lead time — a stand-in, stated in the output); with neither, the
forecasters work from the meter alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from p2penergy.agents.issued_weather import IssuedWeatherForecasts, weather_source
from p2penergy.agents.month_evaluation import MonthEvaluation, evaluate_month
from p2penergy.assets.profiles import public_holidays
from p2penergy.assets.pv import Site
from p2penergy.scenario.measured import MeasuredDataError, check_zone, read_meter, slot_step
from p2penergy.scenario.measured_weather import on_grid, read_weather, read_weather_forecasts

WEATHER_KINDS = {"none": "no weather", "synthetic": "synthetic forecasts of the measured weather (its error model)",
                 "issued": "issued forecasts from the file"}


@dataclass(frozen=True)
class MeasuredInputs:
    """Sites on one regular grid (site id → ``load_wh``, ``pv_wh``), and the weather-forecast source."""

    sites: dict[str, pd.DataFrame]
    weather: Any
    weather_kind: str


def measured_inputs(meter: Path, timezone: str, weather: Path | None = None, weather_forecast: Path | None = None,
                    site: Site | None = None, seed: int = 0) -> MeasuredInputs:
    """Read the files (local clock times in ``timezone``; ``site`` locates the weather for pvlib)."""
    check_zone(timezone)
    sites = read_meter(Path(meter), timezone)
    steps = {name: slot_step(frame.index, f"{meter} (site {name!r})") for name, frame in sites.items()}
    step = next(iter(steps.values()))
    odd = [name for name, s in steps.items() if s != step]
    if odd:
        raise MeasuredDataError(f"{meter}: site {odd[0]!r} has slots of {steps[odd[0]]}, others of {step}")
    if (weather is not None or weather_forecast is not None) and site is None:
        raise MeasuredDataError("site: the weather files need the site's latitude and longitude (for pvlib)")
    if site is not None and site.timezone != timezone:
        site = Site(site.latitude, site.longitude, site.altitude_m, timezone)
    first = min(frame.index[0] for frame in sites.values())
    last = max(frame.index[-1] for frame in sites.values())
    grid = pd.date_range(first, last, freq=step, name="slot_start")
    observed = on_grid(read_weather(Path(weather), site, timezone), grid, str(weather)) \
        if weather is not None and site is not None else None
    forecasts = read_weather_forecasts(Path(weather_forecast), site, timezone) \
        if weather_forecast is not None and site is not None else None
    if forecasts is not None:
        source: Any = IssuedWeatherForecasts(forecasts, step, observed)
        kind = "issued"
    elif observed is not None:
        source, kind = weather_source(observed, None, seed), "synthetic"
    else:
        source, kind = None, "none"
    return MeasuredInputs(sites, source, kind)


def days_off(holidays: str | None, sites: dict[str, pd.DataFrame]) -> frozenset[date]:
    """Public holidays of ``holidays`` (``"US"``, or ``"US-CA"`` with a subdivision) in the years of the data."""
    if holidays is None:
        return frozenset()
    country, _, subdivision = holidays.partition("-")
    years = {t.year for frame in sites.values() for t in (frame.index[0], frame.index[-1])}
    try:
        return frozenset(public_holidays(country, range(min(years), max(years) + 1), subdivision or None))
    except (ValueError, NotImplementedError) as exc:
        raise MeasuredDataError(f"holidays: {holidays!r} is not a country (ISO code, e.g. US or US-CA) known to "
                                f"the holidays package") from exc


def evaluate_files(meter: Path, month: date, timezone: str, weather: Path | None = None,
                   weather_forecast: Path | None = None, site: Site | None = None, seed: int = 0,
                   holidays: str | None = None) -> MonthEvaluation:
    """:func:`~p2penergy.agents.month_evaluation.evaluate_month` on the files (see the module docstring)."""
    inputs = measured_inputs(meter, timezone, weather, weather_forecast, site, seed)
    return evaluate_month(inputs.sites, month, inputs.weather, seed, days_off(holidays, inputs.sites))
