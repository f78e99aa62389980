"""The office's business-day forecast in the week after a closure (issue 13).

The default month's peak day (17 August 2020) is the first business day after the Obon closure
(10 August a public holiday, 11–14 August closed, then a weekend): its afternoon was forecast
12–15 % low the morning it came, because the features measured it against the closed days
before it ("a week before the target" was a closed day for that whole week, and the load scale
was the mean of the last 24 h, closed). Here an office built with the scenario's own load model
(``assets.office_load``, the shipped scenario's sizes) on the synthetic weather of the agents'
tests, closed the same days, trained on June–July as the agents are: the afternoons of the
business week after the closure must be forecast without a bias beyond an ordinary week's.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from p2penergy.agents.forecast import SelectedForecaster, rest_of_today_and_tomorrow
from p2penergy.agents.weather_forecast import WeatherForecastSource
from p2penergy.assets.office_load import OfficeLoadSpec, office_load_wh
from p2penergy.assets.profiles import business_days

from .synthetic_community import TZ, make_weather

SPEC = OfficeLoadSpec(base_w=1_000_000, peak_w=1_800_000, cooling_w_per_k=40_000, open_hour=8.0,
                      close_hour=18.5, noise_sd=0.02)  # the shipped scenario's [office]
CLOSURE = frozenset({date(2020, 8, 10), *(date(2020, 8, d) for d in range(11, 15))})  # as the scenario's August
DAYS_OFF = CLOSURE | {date(2020, 7, 23), date(2020, 7, 24)}  # with July's two public holidays
WEEK_AFTER = [date(2020, 8, d) for d in range(17, 22)]  # the business days whose week-before day was closed
PEAK_HOURS = (10, 17)  # local hours of the business-day afternoon (the midday bump is at 13:30)
ISSUES = {"day before, 12:00": -12, "same day, 06:00": 6}  # hours from the target day's midnight
BIAS_POINTS = 2.5
"""How far (percentage points) the week after the closure's mean error may lie from the ordinary
business days' mean error: the ordinary days' own errors spread by about ±3 % (weather forecast
errors on 40 kW/K of cooling, 2 % load noise)."""


@pytest.fixture(scope="module")
def office():
    weather = make_weather("2020-06-01", 92, 30, np.random.default_rng(5))
    open_day = business_days(weather.index.normalize(), set(DAYS_OFF))
    load = office_load_wh(weather.index, weather["temp_c"].to_numpy(), open_day, SPEC, 30, np.random.default_rng(6))
    frame = pd.DataFrame({"load_wh": load, "pv_wh": 0}, index=weather.index)
    source = WeatherForecastSource(weather, rng_seed=11)
    cutoff = pd.Timestamp("2020-08-01", tz=TZ).to_pydatetime()
    model = SelectedForecaster("load_wh", days_off=DAYS_OFF, seed=0).fit({"office": frame}, source, cutoff)
    return frame, source, model


def peak_hours_error(office, day: date, hours_before: int) -> float:
    """Mean relative error (forecast − actual) / actual over the day's afternoon slots, for a
    forecast issued ``hours_before`` hours from the day's midnight (negative: the day before)."""
    frame, source, model = office
    midnight = pd.Timestamp(day, tz=TZ)
    issued = (midnight + pd.Timedelta(hours=hours_before)).to_pydatetime()
    horizon = rest_of_today_and_tomorrow(issued, 30)
    forecast = pd.Series(model.predict(frame, issued, horizon, source.issue(issued, len(horizon)), site="office"),
                         index=horizon)
    hour = forecast.index.hour
    wanted = (forecast.index.normalize() == midnight) & (hour >= PEAK_HOURS[0]) & (hour < PEAK_HOURS[1])
    actual = frame["load_wh"].reindex(forecast.index[wanted]).to_numpy(dtype=float)
    return float(np.mean((forecast[wanted].to_numpy() - actual) / actual))


@pytest.mark.parametrize("issue", ISSUES)
def test_the_week_after_a_closure_is_forecast_without_extra_bias(office, issue) -> None:
    august = [date(2020, 8, 1) + timedelta(days=k) for k in range(31)]
    ordinary = [d for d in august if d.weekday() < 5 and d not in DAYS_OFF and d not in WEEK_AFTER]
    usual = 100 * np.mean([peak_hours_error(office, d, ISSUES[issue]) for d in ordinary])
    after = 100 * np.mean([peak_hours_error(office, d, ISSUES[issue]) for d in WEEK_AFTER])
    # measured before the fix (the closed days as the week-before lag and the scale): after −5.1 % (day
    # before) / −5.2 % (same day), ordinary days −1.0 % / −1.0 %; with it −0.6 % / −0.3 % against −0.8 % / −0.2 %
    assert abs(after - usual) < BIAS_POINTS, (issue, round(after, 1), round(usual, 1))
