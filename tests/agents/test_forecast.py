"""Forecasters: hand-computed baselines, the learned model against them, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from p2penergy.agents.evaluation import day_ahead_issues, intraday_issues, nmae_table
from p2penergy.agents.forecast import (
    Forecaster,
    GradientBoostingForecaster,
    SameSlotYesterday,
    SevenDayMean,
    day_ahead_issue_time,
    rest_of_today_and_tomorrow,
    slots_of_day,
)
from p2penergy.agents.plan_input import AgentInputError, Battery, PlanInput
from p2penergy.agents.planner import plan
from p2penergy.agents.weather_forecast import WeatherForecastSource

from .synthetic_community import CUTOFF, END, TZ, make_community


def _tiny() -> pd.DataFrame:
    """4 days of 30-min slots; day d, slot j holds 100·d + j; day 3 is 'the future' (9999)."""
    index = pd.date_range(pd.Timestamp("2020-08-01", tz=TZ), periods=4 * 48, freq="30min")
    day, slot = np.divmod(np.arange(4 * 48), 48)
    load = np.where(day < 3, 100 * day + slot, 9999)
    return pd.DataFrame({"load_wh": load, "pv_wh": 0}, index=index)


def test_baselines_by_hand() -> None:
    # Issued at noon of day 2 for day 3: yesterday's slots j < 24 have ended (200 + j), later
    # ones fall back to the day before (100 + j). Seven-day mean over the days that exist:
    # j < 24: (200 + 100 + 0)/3 + j = 100 + j; j >= 24: (100 + 0)/2 + j = 50 + j.
    frame = _tiny()
    issued = pd.Timestamp("2020-08-03 12:00", tz=TZ).to_pydatetime()
    horizon = slots_of_day(pd.Timestamp("2020-08-04", tz=TZ), 30)
    j = np.arange(48)
    np.testing.assert_array_equal(SameSlotYesterday().predict(frame, issued, horizon), np.where(j < 24, 200, 100) + j)
    np.testing.assert_array_equal(SevenDayMean().predict(frame, issued, horizon), np.where(j < 24, 100, 50) + j)


def test_forecasters_follow_the_protocol(fitted) -> None:
    for f in (SameSlotYesterday(), SevenDayMean("pv_wh"), fitted["load_wh"]):
        assert isinstance(f, Forecaster)


def test_horizon_in_the_observed_past_is_rejected() -> None:
    frame = _tiny()
    issued = pd.Timestamp("2020-08-03 12:00", tz=TZ).to_pydatetime()
    past = slots_of_day(pd.Timestamp("2020-08-03", tz=TZ), 30)
    with pytest.raises(AgentInputError) as info:
        SameSlotYesterday().predict(frame, issued, past)
    assert info.value.field == "horizon"
    with pytest.raises(AgentInputError) as info:
        GradientBoostingForecaster().predict(frame, issued, rest_of_today_and_tomorrow(issued, 30))
    assert info.value.field == "forecaster"


def _baselines(target: str) -> dict[str, Forecaster]:
    return {"same slot yesterday": SameSlotYesterday(target), "7-day mean": SevenDayMean(target)}


@pytest.mark.parametrize("target", ["load_wh", "pv_wh"])
def test_learned_forecasts_beat_both_baselines_day_ahead(community, weather_source, fitted, target) -> None:
    _, sites, types = community
    table = nmae_table({**_baselines(target), "gbm": fitted[target]}, sites, types, weather_source,
                       day_ahead_issues(CUTOFF, END, 30), target)
    rows = ["all sum", "home sum", "home-pv sum"] if target == "load_wh" else list(table.index)
    for row in rows:
        best_baseline = min(table.loc[row, "same slot yesterday"], table.loc[row, "7-day mean"])
        assert table.loc[row, "gbm"] < best_baseline, (row, table.loc[row].to_dict())


@pytest.mark.parametrize("target", ["load_wh", "pv_wh"])
def test_learned_forecasts_beat_both_baselines_intraday(community, weather_source, fitted, target) -> None:
    _, sites, types = community
    issues = intraday_issues(CUTOFF, pd.Timestamp("2020-08-08", tz=TZ).to_pydatetime(), 30, every_slots=6)
    table = nmae_table({**_baselines(target), "gbm": fitted[target]}, sites, types, weather_source, issues, target)
    best_baseline = table.loc["all sum", ["same slot yesterday", "7-day mean"]].min()
    assert table.loc["all sum", "gbm"] < best_baseline


def _perturbed_after(sites: dict[str, pd.DataFrame], t: pd.Timestamp, rng: np.random.Generator):
    out = {}
    for name, frame in sites.items():
        frame = frame.copy()
        late = frame.index + pd.Timedelta(minutes=30) > t  # slots not over by t
        for col in ("load_wh", "pv_wh"):
            frame.loc[late, col] = rng.integers(0, 50_000, int(late.sum()))
        out[name] = frame
    return out


def test_no_look_ahead_in_forecasts(community, weather_source, fitted) -> None:
    # Forecasts issued at or before t (some mid-slot) must not change when every slot not
    # over by t is replaced by noise.
    _, sites, _ = community
    t = pd.Timestamp("2020-08-05 09:10", tz=TZ)
    changed = _perturbed_after(sites, t, np.random.default_rng(0))
    for issued in (t, t - pd.Timedelta(minutes=25), t - pd.Timedelta(hours=21)):
        horizon = rest_of_today_and_tomorrow(issued.to_pydatetime(), 30)
        wf = weather_source.issue_for(issued.to_pydatetime(), horizon)
        for target in ("load_wh", "pv_wh"):
            for f in (*_baselines(target).values(), fitted[target]):
                for name in sites:
                    before = f.predict(sites[name], issued.to_pydatetime(), horizon, wf)
                    after = f.predict(changed[name], issued.to_pydatetime(), horizon, wf)
                    np.testing.assert_array_equal(before, after)


def test_training_reads_only_the_past_and_is_deterministic(community, weather_source) -> None:
    # Walk-forward: two fits with the same seed and cutoff, one on data whose future was
    # replaced by noise, give the same model (identical forecasts).
    _, sites, _ = community
    cutoff = pd.Timestamp("2020-07-20", tz=TZ)
    changed = _perturbed_after(sites, cutoff, np.random.default_rng(1))
    a = GradientBoostingForecaster("pv_wh", n_estimators=20, seed=5).fit(sites, weather_source, cutoff.to_pydatetime())
    b = GradientBoostingForecaster("pv_wh", n_estimators=20, seed=5).fit(changed, weather_source,
                                                                        cutoff.to_pydatetime())
    issued = pd.Timestamp("2020-08-02 12:00", tz=TZ).to_pydatetime()
    horizon = rest_of_today_and_tomorrow(issued, 30)
    wf = weather_source.issue_for(issued, horizon)
    frames = [sites[s] for s in sorted(sites)]
    np.testing.assert_array_equal(a.predict_many(frames, issued, horizon, wf),
                                  b.predict_many(frames, issued, horizon, wf))
    assert a.n_training_rows == b.n_training_rows > 0


def test_slot_length_comes_from_the_data() -> None:
    # Hourly data: 24 slots a day, nothing assumes 48.
    weather, sites, _ = make_community(seed=2, homes=3, pv_homes=2, days=20, start="2020-07-01", slot_minutes=60)
    src = WeatherForecastSource(weather, rng_seed=1)
    issued = pd.Timestamp("2020-07-18 12:00", tz=TZ).to_pydatetime()
    model = GradientBoostingForecaster("load_wh", n_estimators=20).fit(sites, src, issued)
    horizon = slots_of_day(pd.Timestamp("2020-07-19", tz=TZ), 60)
    wf = src.issue_for(issued, horizon)
    for f in (model, SameSlotYesterday(), SevenDayMean()):
        out = f.predict(sites["house-01"], issued, horizon, wf)
        assert out.shape == (24,) and (out >= 0).all() and out.sum() > 0
    yesterday = sites["house-01"].loc["2020-07-18", "load_wh"].to_numpy()
    np.testing.assert_array_equal(SameSlotYesterday().predict(sites["house-01"], issued, horizon)[:12], yesterday[:12])


def test_pv_forecast_is_zero_at_night_and_for_sites_without_pv(community, weather_source, fitted) -> None:
    _, sites, types = community
    issued = pd.Timestamp("2020-08-03 12:00", tz=TZ).to_pydatetime()
    horizon = rest_of_today_and_tomorrow(issued, 30)
    wf = weather_source.issue_for(issued, horizon)
    no_pv = next(s for s, t in types.items() if t == "home")
    assert (fitted["pv_wh"].predict(sites[no_pv], issued, horizon, wf) == 0).all()
    pv = fitted["pv_wh"].predict(sites["house-01"], issued, horizon, wf)
    night = wf.loc[horizon, "clearsky_ghi_w_m2"].to_numpy() == 0
    assert (pv[night] == 0).all() and pv[~night].sum() > 0


def test_quarter_hours_across_a_dst_change() -> None:
    # A 15-min market in Europe/Berlin over the end of summer time (2020-10-25 has 25 h,
    # 100 slots): forecasts follow the horizon's slots, whatever their number per day.
    weather, sites, _ = make_community(seed=3, homes=2, pv_homes=1, days=16, start="2020-10-12", slot_minutes=15)
    berlin = "Europe/Berlin"
    weather = weather.tz_convert(berlin)
    sites = {k: v.tz_convert(berlin) for k, v in sites.items()}
    src = WeatherForecastSource(weather, rng_seed=1)
    issued = pd.Timestamp("2020-10-24 12:00", tz=berlin).to_pydatetime()
    model = GradientBoostingForecaster("pv_wh", n_estimators=10).fit(sites, src, issued)
    horizon = slots_of_day(pd.Timestamp("2020-10-25", tz=berlin), 15)
    assert len(horizon) == 100
    # from noon: 12 h × 4 of the 24th, then the 25 h of the 25th
    assert len(rest_of_today_and_tomorrow(issued, 15)) == 48 + 100
    assert day_ahead_issue_time(pd.Timestamp("2020-10-26", tz=berlin)) == pd.Timestamp("2020-10-25 12:00", tz=berlin)
    wf = src.issue_for(issued, horizon)
    for f in (model, SameSlotYesterday("pv_wh"), SevenDayMean("pv_wh")):
        out = f.predict(sites["house-01"], issued, horizon, wf)
        assert out.shape == (100,) and np.isfinite(out).all() and (out >= 0).all()


def test_no_look_ahead_from_data_to_plan(community, weather_source, fitted) -> None:
    # The whole numerical path of an agent — weather forecast, load and PV forecasts, plan —
    # made at t is the same when the site's data after t is replaced by noise.
    _, sites, _ = community
    t = pd.Timestamp("2020-08-06 17:30", tz=TZ)
    changed = _perturbed_after(sites, t, np.random.default_rng(2))

    def plan_at(frames: dict[str, pd.DataFrame]):
        horizon = rest_of_today_and_tomorrow(t.to_pydatetime(), 30)
        wf = weather_source.issue_for(t.to_pydatetime(), horizon)
        load = fitted["load_wh"].predict(frames["house-01"], t.to_pydatetime(), horizon, wf)
        pv = fitted["pv_wh"].predict(frames["house-01"], t.to_pydatetime(), horizon, wf)
        return plan(PlanInput(30, load, pv, 26.0, 8.5, 18.0, 15.0, p2p_buy_max_wh=500.0,
                              battery=Battery(capacity_wh=9800, power_w=3000, soc_wh=5000)))

    before, after = plan_at(sites), plan_at(changed)
    for name in ("grid_import_wh", "p2p_buy_wh", "p2p_sell_wh", "battery_charge_wh", "soc_wh"):
        np.testing.assert_array_equal(getattr(before, name), getattr(after, name))
    assert before.cost == after.cost
