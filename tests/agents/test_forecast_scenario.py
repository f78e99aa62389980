"""The learned forecasters on the demonstration scenario's data (August 2020, trained on June–July).

Uses ``p2penergy.scenario`` only here, to get data; the agents' code depends on the column
names alone. Measured with these seeds (nMAE, day-ahead; see docs/agents.md): all sites'
load 0.19 vs 0.26 for the best baseline, homes' load 0.24 vs 0.25, PV 0.30 vs 0.32.
"""

from __future__ import annotations

import pandas as pd
import pytest

from p2penergy.agents.evaluation import day_ahead_issues, intraday_issues, nmae_table
from p2penergy.agents.forecast import GradientBoostingForecaster, SameSlotYesterday, SevenDayMean
from p2penergy.agents.weather_forecast import WeatherForecastSource
from p2penergy.scenario.generate import generate
from p2penergy.scenario.load import load_scenario

BASELINES = ("same slot yesterday", "7-day mean")


@pytest.fixture(scope="module")
def scenario():
    scenario = load_scenario()
    data = generate(scenario)
    types = {"office": "office"}
    for home in scenario.homes:
        types[home.id] = "home-pv" if data.sites[home.id]["pv_wh"].sum() > 0 else "home"
    business = data.business_day.groupby(data.business_day.index.date).first()
    days_off = frozenset(day for day, open_ in business.items() if not open_ and day.weekday() < 5)
    tz = data.index.tz
    cutoff = pd.Timestamp("2020-08-01", tz=tz).to_pydatetime()
    end = pd.Timestamp("2020-09-01", tz=tz).to_pydatetime()
    source = WeatherForecastSource(data.weather, rng_seed=1)
    models = {t: GradientBoostingForecaster(t, days_off=days_off).fit(data.sites, source, cutoff)
              for t in ("load_wh", "pv_wh")}
    return data.sites, types, source, models, cutoff, end


def _table(scenario, target: str, issues) -> pd.DataFrame:
    sites, types, source, models, _, _ = scenario
    forecasters = {BASELINES[0]: SameSlotYesterday(target), BASELINES[1]: SevenDayMean(target), "gbm": models[target]}
    return nmae_table(forecasters, sites, types, source, issues, target)


@pytest.mark.parametrize("target", ["load_wh", "pv_wh"])
def test_day_ahead_beats_both_baselines_on_every_aggregate_and_on_pv(scenario, target) -> None:
    _, _, _, _, cutoff, end = scenario
    table = _table(scenario, target, day_ahead_issues(cutoff, end, 30))
    rows = [r for r in table.index if r.endswith(" sum")] if target == "load_wh" else list(table.index)
    for row in rows:
        assert table.loc[row, "gbm"] < table.loc[row, list(BASELINES)].min(), (row, table.loc[row].to_dict())


def test_intraday_beats_both_baselines_for_the_homes_and_pv(scenario) -> None:
    # Intraday the model wins on the homes' sums and on PV. The community's sum is now the
    # extra-high-voltage office's (2 MW against the homes' few kW), whose load persists from one
    # business day to the next: there "same slot yesterday" is as good (measured nMAE 0.113 vs
    # the model's 0.122; day-ahead the model wins, 0.112 vs 0.158).
    _, _, _, _, cutoff, end = scenario
    issues = intraday_issues(cutoff, end, 30, every_slots=12)
    load = _table(scenario, "load_wh", issues)
    for row in ("home sum", "home-pv sum"):
        assert load.loc[row, "gbm"] < load.loc[row, list(BASELINES)].min(), row
    assert load.loc["all sum", "gbm"] < 1.15 * load.loc["all sum", list(BASELINES)].min()
    pv = _table(scenario, "pv_wh", issues)
    assert (pv["gbm"] < pv[list(BASELINES)].min(axis=1)).all()
