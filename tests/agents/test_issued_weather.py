"""Issued weather forecasts (from a file) feed the forecasters exactly as the synthetic ones do:
fitting reads the latest issue before each training issue time and the measured past, and the
predictions use the file's numbers, not the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from p2penergy.agents.forecast import GradientBoostingForecaster
from p2penergy.agents.issued_weather import IssuedWeatherForecasts
from p2penergy.agents.weather_forecast import WEATHER_COLUMNS

from .synthetic_community import CUTOFF


def _issued(weather: pd.DataFrame, warm_c: float) -> pd.DataFrame:
    """Daily issues at 09:00 for the next 48 h: the truth, temperature shifted by ``warm_c``."""
    rows = []
    for issue in pd.date_range(weather.index[0].normalize() + pd.Timedelta(hours=9), weather.index[-1], freq="D"):
        part = weather[(weather.index >= issue.floor("h")) & (weather.index < issue + pd.Timedelta(hours=48))]
        rows.append(part[list(WEATHER_COLUMNS)].assign(issued_at=issue, temp_c=part["temp_c"] + warm_c)
                    .rename_axis("slot_start").reset_index())
    return pd.concat(rows, ignore_index=True)


def test_issued_forecasts_train_and_feed_the_forecaster(community):
    weather, sites, _ = community
    two = {name: sites[name] for name in sorted(sites)[:2]}  # two homes keep it quick
    step = weather.index[1] - weather.index[0]
    source = IssuedWeatherForecasts(_issued(weather, 3.0), step, weather)
    model = GradientBoostingForecaster("load_wh", n_estimators=30, sample_fraction=0.1, seed=1)
    model.fit(two, source, CUTOFF)
    assert model.n_training_rows > 1000
    issued_at = pd.Timestamp(CUTOFF) + pd.Timedelta(hours=12)
    horizon = pd.date_range(pd.Timestamp(CUTOFF) + pd.Timedelta(days=1), periods=48, freq=step)
    frame = source.issue_for(issued_at.to_pydatetime(), horizon)
    truth = weather.loc[horizon, "temp_c"].to_numpy()
    np.testing.assert_allclose(frame.loc[horizon, "temp_c"].to_numpy(), truth + 3.0)  # the 09:00 issue's numbers
    observed = frame[frame.index < issued_at]
    assert len(observed) > 0 and (observed.index + step <= issued_at).all()  # the measured past: ended slots only
    np.testing.assert_allclose(observed["temp_c"], weather.loc[observed.index, "temp_c"])
    forecast = model.predict_many(list(two.values()), issued_at.to_pydatetime(), horizon, frame)
    assert forecast.shape == (2, 48) and np.isfinite(forecast).all() and (forecast >= 0).all()
    cold = model.predict_many(list(two.values()), issued_at.to_pydatetime(), horizon,
                              frame.assign(temp_c=frame["temp_c"] - 10))
    assert not np.allclose(cold, forecast)  # the model reads the issued temperature
