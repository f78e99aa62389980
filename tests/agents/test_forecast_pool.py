"""A run whose forecasting steps are split across processes equals the unsplit run to the yen
(issue 15: within one community, forecasting runs in parallel with identical results)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

import p2penergy
from p2penergy.agents.forecast import SelectedForecaster, rest_of_today_and_tomorrow
from p2penergy.agents.forecast_features import READ_DAYS
from p2penergy.agents.forecast_pool import (
    ProcessForecastWorkers,
    chunks_of,
    recent_history,
    split_forecast_sites,
)
from p2penergy.agents.gateway import ForecastKit, forecast_sites
from p2penergy.agents.weather_forecast import WeatherForecastSource

from .synthetic_community import CUTOFF, make_community


class _PickledChunks:
    """Each chunk forecast from pickled copies of the forecasters and the chunk, as a worker process
    receives them (the process pool itself runs in the simulation test below)."""

    workers = 3

    def __init__(self, kit: ForecastKit) -> None:
        self.kit = kit

    def forecast(self, chunks, now, horizon, weather):
        return [forecast_sites(pickle.loads(pickle.dumps(self.kit)), pickle.loads(pickle.dumps(chunk)), now,
                               horizon, weather) for chunk in chunks]

    def close(self) -> None:
        pass


def test_a_split_step_gives_every_site_the_unsplit_forecast() -> None:
    weather, sites, _ = make_community(seed=3, homes=5, pv_homes=3, days=40, start="2020-07-01")
    source = WeatherForecastSource(weather, rng_seed=2)
    gbm_load, gbm_pv = (SelectedForecaster(t, validation_days=1).gbm for t in ("load_wh", "pv_wh"))
    assert gbm_load is not None and gbm_pv is not None
    for gbm in (gbm_load, gbm_pv):
        gbm.n_estimators = 10  # a small model: the split is what is tested
    load = SelectedForecaster("load_wh", gbm=gbm_load.fit(sites, source, CUTOFF))
    pv = SelectedForecaster("pv_wh", gbm=gbm_pv.fit(sites, source, CUTOFF))
    load.selected_ = {"house-01": "blend", "house-02": "seven_day_median"}  # the others use the default model
    kit = ForecastKit(load, pv, source)
    now = (pd.Timestamp(CUTOFF) + pd.Timedelta(days=3, hours=9, minutes=30)).to_pydatetime()
    horizon = rest_of_today_and_tomorrow(now, 30)
    histories = {name: (frame[frame.index < pd.Timestamp(now)], frame["pv_wh"].sum() > 0)
                 for name, frame in sites.items()}
    cut = recent_history(histories["office"][0], now)
    assert len(cut) == READ_DAYS * 48 and cut.index[-1] < pd.Timestamp(now)
    assert [list(c) for c in chunks_of(histories, 3, now)] == [sorted(sites)[:2], sorted(sites)[2:4],
                                                               sorted(sites)[4:]]
    whole = forecast_sites(kit, histories, now, horizon)
    split = split_forecast_sites(kit, histories, now, horizon, _PickledChunks(kit))
    assert list(split) == list(whole)
    for name, forecast in whole.items():
        for field in ("load_wh", "pv_wh", "load_quantiles_wh", "pv_quantiles_wh"):
            np.testing.assert_array_equal(getattr(split[name], field), getattr(forecast, field))


    with pytest.raises(ValueError, match="forecast_workers"):
        ProcessForecastWorkers(kit, 1)


def test_a_run_with_its_forecasts_split_across_two_processes_equals_the_unsplit_run(tmp_path) -> None:
    runs = {w: p2penergy.simulate(days=1, history_days=8, community={"homes": 4}, forecast_workers=w,
                                  out=tmp_path / str(w)) for w in (1, 2)}
    columns = ["group", "members", "baseline_balance", "p2p_balance", "savings", "improvement_pct"]
    pd.testing.assert_frame_equal(runs[2][columns], runs[1][columns])
    one, two = (json.loads((tmp_path / str(w) / "results.json").read_text()) for w in (1, 2))
    assert one["participants"] == two["participants"]
    assert (tmp_path / "1" / "trades.csv").read_text() == (tmp_path / "2" / "trades.csv").read_text()
