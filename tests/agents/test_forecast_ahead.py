"""A step's forecasts computed ahead in a thread (SiteForecasts with expected readings): used only
when the meters read what was assumed, and then the same forecasts as computed at the step."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from p2penergy.agents.forecast import GradientBoostingForecaster
from p2penergy.agents.gateway import ForecastKit, SiteForecasts, SlotGrid, forecast_sites, site_gateways
from p2penergy.agents.trader import AgentConfig
from p2penergy.agents.weather_forecast import WeatherForecastSource
from p2penergy.scenario.generate import generate
from p2penergy.scenario.load import load_scenario
from p2penergy.sim.build import build_community
from p2penergy.sim.meters import ScenarioMeter, expected_readings


@pytest.fixture(scope="module")
def shipped():
    scenario = load_scenario()
    return build_community(scenario, generate(scenario, date(2020, 7, 12), date(2020, 8, 3)), report_days=2)


def _step(shipped, forecasts: SiteForecasts, expected_mistake: str | None = None):
    """Two planning steps of all sites (4 slots apart, the meters reading the scenario in between):
    the forecasts each returns."""
    grid = SlotGrid(shipped.index, shipped.settings.tz, shipped.settings.slot_minutes)
    start = shipped.month.start
    gws = site_gateways(shipped, grid, start, forecasts, AgentConfig(), 4)
    sites = [g for g in gws.values() if g.participant.kind != "car"]
    out = []
    for k in range(9):
        slot = grid.starts[start + k]
        if k % 4 == 0:
            out.append({g.participant.id: forecasts.of(g, slot, grid.horizon(start + k)) for g in sites})
        for g in sites:
            g.meter(slot, 0, 0, ScenarioMeter(g.participant, grid))
    forecasts.close()  # the step after the last one is being computed ahead
    return out


def _kit(shipped) -> ForecastKit:
    history = {p.id: pd.DataFrame({"load_wh": p.load_wh, "pv_wh": p.pv_wh}, index=shipped.index)
               for p in shipped.participants.values() if p.kind != "car"}
    cutoff = shipped.slot(shipped.month.start)
    weather = WeatherForecastSource(shipped.weather, 1)
    load = GradientBoostingForecaster("load_wh", n_estimators=20).fit(history, weather, cutoff)
    pv = GradientBoostingForecaster("pv_wh", n_estimators=20).fit(history, weather, cutoff)
    return ForecastKit(load, pv, weather)


def _same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for site in x:
            assert np.array_equal(x[site].load_wh, y[site].load_wh)
            assert np.array_equal(x[site].pv_wh, y[site].pv_wh)


def test_forecasts_computed_ahead_are_used_only_when_the_meters_read_what_was_assumed(shipped) -> None:
    kit = _kit(shipped)
    plain = _step(shipped, SiteForecasts(kit))
    ahead = SiteForecasts(kit, expected=expected_readings(shipped))
    _same(_step(shipped, ahead), plain)
    assert (ahead.ahead_used, ahead.ahead_dropped) == (2, 0)  # the second and third steps

    right = expected_readings(shipped)

    def wrong(site: str, start: int, stop: int) -> np.ndarray | None:
        rows = right(site, start, stop)
        if rows is not None and site == "house-03":
            rows = rows.copy()
            rows[-1, 0] += 1  # one Wh more in the last slot than the meter will read
        return rows

    mistaken = SiteForecasts(kit, expected=wrong)
    _same(_step(shipped, mistaken), plain)
    assert (mistaken.ahead_used, mistaken.ahead_dropped) == (0, 2)


def test_forecasts_ahead_with_a_failing_runner_are_computed_again(shipped) -> None:
    kit = _kit(shipped)
    calls = []

    def flaky(kit, histories, now, horizon):
        calls.append(now)
        if len(calls) == 2:  # the first computed ahead
            raise RuntimeError("lost")
        return forecast_sites(kit, histories, now, horizon)

    forecasts = SiteForecasts(kit, flaky, expected=expected_readings(shipped))
    _same(_step(shipped, forecasts), _step(shipped, SiteForecasts(kit)))
    assert (forecasts.ahead_used, forecasts.ahead_dropped) == (1, 1)
