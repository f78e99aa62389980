"""A forecasting step for many sites at once equals the per-site computation on whole histories.

The batched path (``site_batches``: sites stacked into one ``(sites, rows)`` array per grid, cut to
the ``READ_DAYS`` a forecast reads) must give the features and forecasts that one site at a time
gives on its whole, uncut history (the training path's 1-d arrays), on random data: NaNs, zeros,
histories shorter than the cut, several grids in one call, days off, any issue time.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from p2penergy.agents.forecast import (
    SameSlotYesterday,
    SelectedForecaster,
    SevenDayMean,
    SevenDayMedian,
    rest_of_today_and_tomorrow,
)
from p2penergy.agents.forecast_features import (
    READ_DAYS,
    SiteSeries,
    day_off_flags,
    features,
    horizon_ns,
    lag_ns,
    local_calendar,
    row_day_off,
    same_day_type_values,
    same_slot_mean,
    same_slot_median,
    same_slot_yesterday,
    site_batches,
    view_of,
    weather_lookup,
    weather_table,
)

from .synthetic_community import CUTOFF

TOLERANCE_WH = 1e-9


def _random_sites(rng: np.random.Generator, issued: pd.Timestamp, target: str) -> list[pd.DataFrame]:
    """Sites on three grids (different first slots), some shorter than the cut, with NaN and zero
    runs; each frame's rows end at the issue time or later (later rows must not be read)."""
    frames = []
    for k in range(9):
        days = int(rng.choice([2, 5, READ_DAYS - 1, READ_DAYS + 3, 60]))
        start = issued.normalize() - pd.Timedelta(days=days) + pd.Timedelta(minutes=30 * (k % 3))
        index = pd.date_range(start, issued + pd.Timedelta(days=int(rng.integers(0, 3))), freq="30min")
        values = rng.gamma(2.0, 150.0, len(index))
        values[rng.random(len(index)) < 0.02] = np.nan
        values[rng.random(len(index)) < 0.05] = 0.0
        other = "pv_wh" if target == "load_wh" else "load_wh"
        frames.append(pd.DataFrame({target: values, other: 1.0}, index=index))
    return frames


def _one_site(frame: pd.DataFrame, target: str, issued_ns: int, target_ns: np.ndarray,
              table: object, days_off: frozenset[date]):
    """Features, scale and baselines of one site on its whole history (no batching, no cut)."""
    series = SiteSeries.from_frame(frame, target)
    view = view_of(series, issued_ns, target_ns)
    hour, weekday, day = local_calendar(target_ns, series.tz)
    off = day_off_flags(weekday, day, days_off)
    same_type = same_day_type_values(view, row_day_off(series, days_off), off, hour)
    x, scale = features(view, target, (hour, weekday), weather_lookup(table, target_ns),
                        weather_lookup(table, lag_ns(series, view)), off, same_type)
    rules = (same_slot_mean(view), same_slot_median(view), same_slot_yesterday(view))
    return x, scale, rules


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("target", ["load_wh", "pv_wh"])
def test_batched_features_and_baselines_equal_one_site_at_a_time(seed: int, target: str) -> None:
    rng = np.random.default_rng(seed)
    issued = pd.Timestamp(CUTOFF) + pd.Timedelta(days=int(rng.integers(0, 30)), minutes=int(rng.integers(0, 1440)))
    frames = _random_sites(rng, issued, target)
    horizon = rest_of_today_and_tomorrow(issued.to_pydatetime(), 30)
    target_ns = horizon_ns(horizon)
    weather = pd.DataFrame(rng.random((len(horizon) + 200, 4)) * [30, 900, 1000, 1],
                           columns=["temp_c", "ghi_w_m2", "clearsky_ghi_w_m2", "cloud_index"],
                           index=pd.date_range(horizon[0] - pd.Timedelta(days=4), periods=len(horizon) + 200,
                                               freq="30min"))
    table = weather_table(weather)
    days_off = frozenset(issued.date() - timedelta(days=int(d)) for d in rng.integers(0, 20, 4))
    batches = site_batches(frames, target, issued.value, target_ns)
    assert len(batches) >= 2  # several grids in one call
    assert all(b.series.values.shape[1] <= READ_DAYS * 48 for b in batches)  # cut to what is read
    seen = np.zeros(len(frames), dtype=bool)
    hour, weekday, day = local_calendar(target_ns, batches[0].series.tz)
    off = day_off_flags(weekday, day, days_off)
    for batch in batches:
        same_type = same_day_type_values(batch.view, row_day_off(batch.series, days_off), off, hour)
        x, scale = features(batch.view, target, (hour, weekday), weather_lookup(table, target_ns),
                            weather_lookup(table, lag_ns(batch.series, batch.view)), off, same_type)
        rules = (same_slot_mean(batch.view), same_slot_median(batch.view), same_slot_yesterday(batch.view))
        for row, k in enumerate(batch.members):
            seen[k] = True
            x1, scale1, rules1 = _one_site(frames[k], target, issued.value, target_ns, table, days_off)
            np.testing.assert_allclose(x[row], x1, rtol=0, atol=TOLERANCE_WH, equal_nan=True)
            np.testing.assert_allclose(scale[row], scale1, rtol=0, atol=TOLERANCE_WH, equal_nan=True)
            for a, b in zip(rules, rules1, strict=True):
                np.testing.assert_allclose(a[row], b, rtol=0, atol=TOLERANCE_WH, equal_nan=True)
    assert seen.all()
    # the baselines' many-site call gives each site's own answer
    for cls in (SevenDayMean, SevenDayMedian, SameSlotYesterday):
        many = cls(target).predict_many(frames, issued.to_pydatetime(), horizon)
        for k, frame in enumerate(frames):
            np.testing.assert_allclose(many[k], cls(target).predict(frame, issued.to_pydatetime(), horizon),
                                       rtol=0, atol=TOLERANCE_WH)


@pytest.mark.parametrize("target", ["load_wh", "pv_wh"])
def test_a_forecasting_step_for_all_sites_equals_each_site_alone(community, weather_source, fitted,
                                                                  target) -> None:
    # every candidate in use (a choice per site), sites on two grids: the step's one call for all
    # sites gives each site what the model gives it alone on its whole history (the session's
    # fitted model stands in for the selection's: prediction is what is tested)
    forecaster = SelectedForecaster(target, gbm=fitted[target])
    sites = community[1]
    ids = sorted(sites)
    for k, name in enumerate(ids):
        forecaster.selected_[name] = ("gbm", "blend", "blend_median", "seven_day_median", "seven_day_mean",
                                      "yesterday")[k % 6]
    rng = np.random.default_rng(1)
    for _ in range(3):
        issued = (pd.Timestamp(CUTOFF) + pd.Timedelta(days=int(rng.integers(0, 12)),
                                                      minutes=30 * int(rng.integers(0, 48)))).to_pydatetime()
        horizon = rest_of_today_and_tomorrow(issued, 30)
        wf = weather_source.issue_for(issued, horizon)
        frames = [sites[i].iloc[(k % 2) * 3:] for k, i in enumerate(ids)]  # two first slots: two batches
        many = forecaster.predict_many(frames, issued, horizon, wf, sites=ids)
        table = weather_table(wf)
        gbm = forecaster.gbm
        assert gbm is not None
        for k, name in enumerate(ids):
            x, scale, (mean7, median7, yesterday) = _one_site(frames[k], target, pd.Timestamp(issued).value,
                                                              horizon_ns(horizon), table, gbm.days_off)
            model = np.clip(gbm._raw(x), 0.0, None) * scale
            if target == "pv_wh":
                clear = weather_lookup(table, horizon_ns(horizon))[2]
                model[np.isfinite(clear) & ~(clear > 0)] = 0.0
            fill = {n: np.nan_to_num(v, nan=0.0).clip(min=0.0)
                    for n, v in (("seven_day_mean", mean7), ("seven_day_median", median7), ("yesterday", yesterday))}
            expected = {"gbm": model, "blend": 0.5 * (model + fill["seven_day_mean"]),
                        "blend_median": 0.5 * (model + fill["seven_day_median"]), **fill}[forecaster.selected_[name]]
            np.testing.assert_allclose(many[k], expected, rtol=0, atol=TOLERANCE_WH)
