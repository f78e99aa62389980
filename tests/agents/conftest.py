"""Shared, seeded data for the agents' tests (built once per session: forecasters are slow-ish)."""

from __future__ import annotations

import pytest

from p2penergy.agents.forecast import GradientBoostingForecaster
from p2penergy.agents.weather_forecast import WeatherForecastSource

from .synthetic_community import CUTOFF, make_community


@pytest.fixture(scope="session")
def community():
    """(weather, sites, site types): 8 homes (4 with PV) and an office, 2020-07-01 .. 2020-08-31."""
    return make_community(seed=7, homes=8, pv_homes=4, days=62, start="2020-07-01")


@pytest.fixture(scope="session")
def weather_source(community) -> WeatherForecastSource:
    return WeatherForecastSource(community[0], rng_seed=11)


@pytest.fixture(scope="session")
def fitted(community, weather_source) -> dict[str, GradientBoostingForecaster]:
    """One model per target, trained walk-forward on July only (before the evaluated August)."""
    sites = community[1]
    return {t: GradientBoostingForecaster(t, seed=3).fit(sites, weather_source, CUTOFF) for t in ("load_wh", "pv_wh")}
