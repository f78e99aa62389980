"""Local midnights by offset arithmetic (a speed path: pandas' ``normalize`` localises wall times
for ``ZoneInfo`` zones at some ms a call) must be pandas' own, midnights it refuses included."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from p2penergy.agents.forecast_features import horizon_midnights_ns, local_calendar, local_midnights_ns
from p2penergy.agents.weather_forecast import index_ns


def _normalized(index: pd.DatetimeIndex) -> np.ndarray | type[Exception]:
    try:
        return index_ns(index.normalize())
    except Exception as exc:  # pandas refuses an ambiguous or skipped midnight
        return type(exc)


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "Europe/Berlin", "Europe/London", "America/Santiago",
                                  "Asia/Beirut", "Australia/Lord_Howe", "UTC"])
@pytest.mark.parametrize("start", ["2020-03-27", "2020-10-23", "2020-08-01", "2019-09-06", "2020-04-03"])
def test_local_midnights_are_pandas_normalize(zone: str, start: str) -> None:
    """Horizons of two days every 7 slots through days with clock changes (Berlin and London at
    02:00/01:00, Santiago and Beirut at midnight: pandas refuses those, and so must the helper)."""
    index = pd.date_range(start, periods=96 * 6, freq="15min", tz="UTC").tz_convert(ZoneInfo(zone))
    for a in range(0, len(index) - 192, 7):
        horizon = index[a:a + 192]
        want = _normalized(horizon)
        try:
            got: np.ndarray | type[Exception] = horizon_midnights_ns(horizon)
        except Exception as exc:
            got = type(exc)
        if isinstance(want, type) or isinstance(got, type):
            assert got == want
        else:
            assert np.array_equal(got, want)


def test_local_midnights_over_a_year_of_issue_times() -> None:
    """Training's issue times span months: across both of Berlin's clock changes of a year."""
    tz = ZoneInfo("Europe/Berlin")
    index = pd.date_range("2019-12-01", "2020-12-01", freq="3h", tz="UTC").tz_convert(tz)
    assert np.array_equal(local_midnights_ns(index_ns(index), tz), _normalized(index))


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "Europe/Berlin", "America/Santiago", "Australia/Lord_Howe"])
@pytest.mark.parametrize("span", [("2019-12-01", "2020-12-01", "3h"), ("2020-02-01", "2020-11-30", "1h"),
                                  ("2020-03-27", "2020-03-31", "15min"), ("2020-08-01", "2020-08-03", "30min")])
def test_local_calendar_is_pandas_wall_clock(zone: str, span: tuple[str, str, str]) -> None:
    """Hour, weekday and date of every instant as pandas' wall clock gives them; a span whose two ends
    share an offset but holds two clock changes between them (Berlin from February to November) too."""
    tz = ZoneInfo(zone)
    start, end, freq = span
    index = pd.date_range(start, end, freq=freq, tz="UTC").tz_convert(tz)
    hour, weekday, day = local_calendar(index_ns(index), tz)
    wall = index.tz_localize(None)
    assert np.array_equal(hour, wall.hour + wall.minute / 60)
    assert np.array_equal(weekday, wall.weekday)
    assert np.array_equal(day, (wall.normalize() - pd.Timestamp("1970-01-01")).days)
