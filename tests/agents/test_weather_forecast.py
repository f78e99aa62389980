"""Synthetic weather forecasts: seeded, growing error, nothing read beyond the horizon."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from p2penergy.agents.plan_input import AgentInputError
from p2penergy.agents.weather_forecast import WeatherErrorModel, WeatherForecastSource, forecast_weather

from .synthetic_community import TZ, make_weather


@pytest.fixture(scope="module")
def weather() -> pd.DataFrame:
    return make_weather("2020-08-01", 10, 30, np.random.default_rng(1))


ISSUED = pd.Timestamp("2020-08-03 12:00", tz=TZ).to_pydatetime()


def test_same_seed_and_issue_time_give_the_same_forecast(weather) -> None:
    a = forecast_weather(weather, ISSUED, 96, rng_seed=5)
    b = forecast_weather(weather, ISSUED, 96, rng_seed=5)
    pd.testing.assert_frame_equal(a, b)
    c = forecast_weather(weather, ISSUED, 96, rng_seed=6)
    assert not np.allclose(a["temp_c"], c["temp_c"])
    later = forecast_weather(weather, ISSUED + pd.Timedelta(minutes=30), 96, rng_seed=5)
    assert not np.allclose(a["temp_c"].iloc[1:].to_numpy(), later["temp_c"].iloc[:-1].to_numpy())


def test_forecast_starts_at_the_current_slot_and_is_prefix_stable(weather) -> None:
    mid_slot = ISSUED + pd.Timedelta(minutes=10)
    short = forecast_weather(weather, mid_slot, 10, rng_seed=5)
    long = forecast_weather(weather, mid_slot, 96, rng_seed=5)
    assert short.index[0] == pd.Timestamp(ISSUED)
    pd.testing.assert_frame_equal(short, long.iloc[:10])


def test_clear_sky_is_exact_and_values_stay_physical(weather) -> None:
    f = forecast_weather(weather, ISSUED, 96, rng_seed=5)
    truth = weather.loc[f.index]
    np.testing.assert_array_equal(f["clearsky_ghi_w_m2"], truth["clearsky_ghi_w_m2"])
    assert (f["ghi_w_m2"] >= 0).all() and (f["ghi_w_m2"] <= 1.2 * f["clearsky_ghi_w_m2"] + 1e-9).all()
    assert f["cloud_index"].between(0, 1).all()
    assert (f.loc[f["clearsky_ghi_w_m2"] == 0, "ghi_w_m2"] == 0).all()


def test_error_grows_with_lead_time(weather) -> None:
    # Mean absolute temperature error over many issues: the first hour vs leads beyond 24 h.
    # With the default model σ(0.25 h) ≈ 0.42 °C and σ(>24 h) >= 1.5 °C.
    near, far = [], []
    for k in range(0, 48 * 5, 5):
        issued = pd.Timestamp("2020-08-01", tz=TZ) + pd.Timedelta(minutes=30 * k)
        f = forecast_weather(weather, issued.to_pydatetime(), 96, rng_seed=9)
        err = (f["temp_c"] - weather.loc[f.index, "temp_c"]).abs().to_numpy()
        near.append(err[:2])
        far.append(err[50:])
    assert np.mean(far) > 2.5 * np.mean(near)


def test_zero_error_model_returns_the_truth(weather) -> None:
    exact = WeatherErrorModel(0, 0, 0, 0)
    f = forecast_weather(weather, ISSUED, 48, rng_seed=1, error=exact)
    np.testing.assert_allclose(f.to_numpy(), weather.loc[f.index, f.columns].to_numpy(), atol=1e-9)


def test_truth_beyond_the_horizon_is_never_read(weather) -> None:
    f = forecast_weather(weather, ISSUED, 24, rng_seed=5)
    changed = weather.copy()
    changed.loc[changed.index > f.index[-1], :] = 999.0
    pd.testing.assert_frame_equal(f, forecast_weather(changed, ISSUED, 24, rng_seed=5))


def test_source_array_path_matches_the_frame_path(weather) -> None:
    src = WeatherForecastSource(weather, rng_seed=4)
    f = src.issue(ISSUED, 96, lookback_days=0)
    targets = f.index[[3, 10, 50]]
    arr = src.issue_on(pd.Timestamp(ISSUED).value, targets.as_unit("ns").asi8)
    np.testing.assert_allclose(arr.T, f.loc[targets].to_numpy())


def test_naive_times_are_rejected(weather) -> None:
    with pytest.raises(AgentInputError) as info:
        forecast_weather(weather, pd.Timestamp("2020-08-03 12:00").to_pydatetime(), 10, rng_seed=1)
    assert info.value.field == "issued_at"


def test_source_prepends_only_observed_weather(weather) -> None:
    # The frame handed to forecasters starts with the measured weather of the last 2 days
    # (slots starting in [t - 2 days, t) and over by t, equal to the truth), then the forecast.
    # Issued at 12:10: from 12:30 two days before to 11:30 today = 2 × 48 - 1 = 95 slots.
    src = WeatherForecastSource(weather, rng_seed=4)
    mid_slot = ISSUED + pd.Timedelta(minutes=10)
    f = src.issue(mid_slot, 10)
    past = f.index < pd.Timestamp(ISSUED)
    assert past.sum() == 95 and f.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(f[past], weather.loc[f.index[past], list(f.columns)].astype(float))
    pd.testing.assert_frame_equal(f[~past], src.issue(mid_slot, 10, lookback_days=0))


def test_repeated_issues_are_equal_and_independent(weather) -> None:
    # The source keeps the last issues (all agents of a slot ask for the same one); a caller
    # changing its copy changes nobody else's.
    src = WeatherForecastSource(weather, rng_seed=4)
    first = src.issue(ISSUED, 48)
    first.iloc[:, :] = -1.0
    again = src.issue(ISSUED, 48)
    assert (again["clearsky_ghi_w_m2"] >= 0).all()
    pd.testing.assert_frame_equal(again, WeatherForecastSource(weather, rng_seed=4).issue(ISSUED, 48))
