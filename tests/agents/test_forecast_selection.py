"""Per-site model selection by walk-forward validation, and conformal quantile forecasts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from p2penergy.agents.agent_forecasters import fit_agent_forecasters
from p2penergy.agents.evaluation import day_ahead_issues, nmae_table, pinball_loss, quantile_scores
from p2penergy.agents.forecast import (
    CANDIDATES,
    GradientBoostingForecaster,
    SelectedForecaster,
    SevenDayMean,
    SevenDayMedian,
    slots_of_day,
)
from p2penergy.agents.plan_input import AgentInputError

from .synthetic_community import CUTOFF, END, TZ
from .test_forecast import _perturbed_after


@pytest.fixture(scope="module")
def selected(community, weather_source) -> dict[str, SelectedForecaster]:
    sites = community[1]
    return {t: SelectedForecaster(t, seed=3, validation_days=10).fit(sites, weather_source, CUTOFF)
            for t in ("load_wh", "pv_wh")}


def test_each_site_gets_the_model_with_the_lowest_validation_error(community, selected) -> None:
    _, sites, _ = community
    for target, model in selected.items():
        assert model.validation_days_ == 10
        with_energy = [s for s in sites if target == "load_wh" or sites[s]["pv_wh"].sum() > 0]
        assert sorted(model.selected_) == sorted(with_energy)
        for site, choice in model.selected_.items():
            scores = model.validation_nmae_[site]
            assert set(scores) == set(CANDIDATES) and scores[choice] == min(scores.values())
        assert model.default_ in CANDIDATES


@pytest.mark.parametrize("target", ["load_wh", "pv_wh"])
def test_selected_forecasts_are_never_worse_than_the_seven_day_mean(community, weather_source, selected,
                                                                   target) -> None:
    # Out of sample (August, after the cutoff): per site type and for the sum.
    _, sites, types = community
    table = nmae_table({"7-day mean": SevenDayMean(target), "selected": selected[target]}, sites, types,
                       weather_source, day_ahead_issues(CUTOFF, END, 30), target)
    for row in table.index:
        assert table.loc[row, "selected"] <= table.loc[row, "7-day mean"], (row, table.loc[row].to_dict())


def test_validation_reads_only_the_past(community, weather_source, selected) -> None:
    # Everything at or after the cutoff replaced by noise: same choices, same forecasts.
    _, sites, _ = community
    changed = _perturbed_after(sites, pd.Timestamp(CUTOFF), np.random.default_rng(4))
    again = SelectedForecaster("load_wh", seed=3, validation_days=10).fit(changed, weather_source, CUTOFF)
    assert again.selected_ == selected["load_wh"].selected_
    issued = pd.Timestamp(CUTOFF) - pd.Timedelta(hours=12)
    horizon = slots_of_day(pd.Timestamp(CUTOFF), 30)
    wf = weather_source.issue_for(issued.to_pydatetime(), horizon)
    names = sorted(sites)
    a = selected["load_wh"].predict_many([sites[s] for s in names], issued.to_pydatetime(), horizon, wf, sites=names)
    b = again.predict_many([changed[s] for s in names], issued.to_pydatetime(), horizon, wf, sites=names)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(selected["load_wh"].quantiles_of(a, horizon, names), again.quantiles_of(b, horizon, names))


def test_a_site_not_seen_in_fit_uses_the_pooled_choice(community, weather_source, selected) -> None:
    _, sites, _ = community
    model = selected["load_wh"]
    issued = pd.Timestamp("2020-08-03 12:00", tz=TZ).to_pydatetime()
    horizon = slots_of_day(pd.Timestamp("2020-08-04", tz=TZ), 30)
    wf = weather_source.issue_for(issued, horizon)
    frame = sites["house-01"]
    unnamed = model.predict(frame, issued, horizon, wf)
    assert model.choice(None) == model.choice("someone-else") == model.default_
    if model.default_ == "seven_day_median":
        np.testing.assert_array_equal(unnamed, SevenDayMedian().predict(frame, issued, horizon))
    # no offsets for an unknown site: its quantiles are its point forecast
    np.testing.assert_array_equal(model.quantiles_of(unnamed[None], horizon, ["someone-else"])[0],
                                  np.repeat(unnamed[None], len(model.quantiles), axis=0))
    with pytest.raises(AgentInputError) as info:
        model.predict_many([frame], issued, horizon, wf, sites=["a", "b"])
    assert info.value.field == "sites"


@pytest.mark.parametrize("target", ["load_wh", "pv_wh"])
def test_quantiles_cover_the_actuals_and_beat_the_point_forecast_in_pinball_loss(
        community, weather_source, selected, target) -> None:
    # August, out of sample: each outer quantile's pinball loss is below the point forecast's; for
    # load the 10–90 % interval holds most actuals but not all and each level's share below is
    # near the level. (PV's errors come day by day with the weather: ten validation days are ten
    # samples, too few to calibrate its tails — measured 36 % below its 10 % quantile here.)
    _, sites, _ = community
    scores = quantile_scores(selected[target], sites, weather_source, day_ahead_issues(CUTOFF, END, 30), target)
    assert scores["levels"] == [0.1, 0.5, 0.9]
    for level in (0.1, 0.9):
        assert scores["pinball_wh"][level] < scores["pinball_point_wh"][level], scores
        if target == "load_wh":
            assert abs(scores["coverage"][level] - level) < 0.15, scores
    if target == "load_wh":
        assert 0.6 <= scores["interval"] <= 0.95, scores


def test_quantiles_are_ordered_and_not_negative(community, weather_source, selected) -> None:
    _, sites, _ = community
    names = sorted(sites)
    issued = pd.Timestamp("2020-08-05 07:30", tz=TZ).to_pydatetime()
    horizon = slots_of_day(pd.Timestamp("2020-08-06", tz=TZ), 30)
    wf = weather_source.issue_for(issued, horizon)
    for model in selected.values():
        point = model.predict_many([sites[s] for s in names], issued, horizon, wf, sites=names)
        q = model.quantiles_of(point, horizon, names)
        assert q.shape == (len(names), 3, len(horizon))
        assert (q >= 0).all() and (np.diff(q, axis=1) >= 0).all()


def test_load_intervals_grow_with_the_forecast_and_pv_intervals_are_in_wh(community, selected) -> None:
    # a hotter day's higher load forecast gets proportionally wider load intervals (errors as a share
    # of the forecast); PV's offsets are Wh per hour of day, the same whatever the forecast
    names = sorted(community[1])
    horizon = slots_of_day(pd.Timestamp("2020-08-06", tz=TZ), 30)
    site = next(n for n in names if n in selected["pv_wh"].selected_)
    point = np.full((1, len(horizon)), 4000.0)  # well above the floor (a tenth of the mean)
    for target, factor in (("load_wh", 2.0), ("pv_wh", 1.0)):
        model = selected[target]
        assert model.interval_scale == ("forecast" if target == "load_wh" else "absolute")
        spread = np.diff(model.quantiles_of(point, horizon, [site])[0], axis=0)
        wider = np.diff(model.quantiles_of(2 * point, horizon, [site])[0], axis=0)
        assert spread.sum() > 0
        np.testing.assert_allclose(wider, factor * spread)


def test_pinball_loss_by_hand() -> None:
    # τ = 0.9: under-forecast by 10 costs 9, over-forecast by 10 costs 1
    assert pinball_loss(np.array([0.0, 20.0]), np.array([10.0, 10.0]), 0.9) == pytest.approx(5.0)


def test_bad_settings_name_the_field() -> None:
    for kwargs, name in (({"quantiles": (0.5, 0.1)}, "quantiles"), ({"validation_days": 0}, "validation_days"),
                         ({"target": "x"}, "target"), ({"interval_scale": "log"}, "interval_scale"),
                         ({"interval_floor_share": 0.0}, "interval_floor_share")):
        with pytest.raises(AgentInputError) as info:
            SelectedForecaster(**kwargs)
        assert info.value.field == name


def test_the_agents_forecaster_is_named_or_refused(community) -> None:
    with pytest.raises(AgentInputError) as info:
        fit_agent_forecasters(community[1], None, CUTOFF, 0, forecaster="seven_day")
    assert info.value.field == "forecaster"


def test_the_final_model_fitted_beside_the_validation_is_the_sequential_one(community, weather_source) -> None:
    """The final model is fitted in a thread while the inner one is validated: the same model as
    fitted alone on the same rows."""
    sites = community[1]
    fitted = SelectedForecaster("load_wh", seed=3, validation_days=10,
                                gbm=GradientBoostingForecaster("load_wh", n_estimators=30, seed=3, objective="l1"))
    fitted.fit(sites, weather_source, CUTOFF)
    assert fitted.gbm is not None and fitted.validation_days_ == 10
    alone = dataclasses.replace(fitted.gbm).fit(sites, weather_source, CUTOFF)
    assert fitted.gbm._model.model_to_string() == alone._model.model_to_string()  # type: ignore[attr-defined]
