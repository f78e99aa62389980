"""Seeded weather: day-type frequencies follow the month's probabilities; heat waves warm."""

from datetime import date

import numpy as np
import pandas as pd

from p2penergy.assets.weather import DayType, HeatWave, WeatherParams, day_types, simulate

TYPES = (DayType("clear", 0.85, 0.05, 0.1), DayType("overcast", 0.3, 0.05, 0.3))


def _params(probs, waves=()):
    return WeatherParams({m: 25.0 for m in range(1, 13)}, 8.0, TYPES, {m: probs for m in range(1, 13)},
                         persistence=0.5, heat_waves=waves)


def test_day_type_frequencies_match_probabilities():
    days = pd.date_range("2020-01-01", periods=2000, freq="D", tz="Asia/Tokyo")
    types = day_types(days, _params((0.7, 0.3)), np.random.default_rng(3))
    # long-run share of clear days is the month's probability; ±0.05 is > 4 sd for 2000 correlated days
    assert abs((types == 0).mean() - 0.7) < 0.05


def test_simulated_weather_bounds_and_heat_wave():
    index = pd.date_range("2020-08-01", periods=31 * 48, freq="30min", tz="Asia/Tokyo")
    cs = np.where((index.hour >= 6) & (index.hour < 18), 800.0, 0.0)
    wave = HeatWave(date(2020, 8, 10), date(2020, 8, 20), 4.0)
    hot = simulate(index, cs, _params((0.5, 0.5), (wave,)), np.random.default_rng(1))
    calm = simulate(index, cs, _params((0.5, 0.5)), np.random.default_rng(1))
    assert ((hot["cloud_index"] >= 0) & (hot["cloud_index"] <= 1)).all()
    assert (hot["ghi_w_m2"] <= hot["clearsky_ghi_w_m2"] + 1e-9).all()
    assert (hot.loc[cs == 0, "ghi_w_m2"] == 0).all()
    inside = (index >= "2020-08-10") & (index < "2020-08-21")
    diff = hot["temp_c"] - calm["temp_c"]
    assert np.allclose(diff[inside], 4.0) and np.allclose(diff[index < "2020-08-09"], 0.0)
    # daily range: afternoon warmer than dawn
    assert hot.between_time("13:00", "15:00")["temp_c"].mean() > hot.between_time("04:00", "06:00")["temp_c"].mean() + 3
