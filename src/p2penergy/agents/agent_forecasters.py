"""The load and PV forecasters the agents use, fitted in one place.

The simulation (:func:`p2penergy.sim.simulate.fit_forecasters`), the live agents
(:func:`p2penergy.service.live_agents.fit_kit`) and ``p2penergy forecast evaluate`` (its
``selected`` model) all call :func:`fit_agent_forecasters`, so what is evaluated is what
trades. A better model for the agents is swapped in here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

import pandas as pd

from p2penergy.agents.forecast import Forecaster, GradientBoostingForecaster, SelectedForecaster, SevenDayMean
from p2penergy.agents.plan_input import AgentInputError
from p2penergy.agents.weather_forecast import WeatherForecastSource

AGENT_FORECASTERS = ("selected", "gradient_boosting")
"""What the agents forecast with: ``selected`` (per site the best of gradient boosting, its blends and
the baselines, with quantile forecasts: the default) or ``gradient_boosting`` (one gradient-boosting
model per target for every site, mean loss, point forecasts only: the agents' forecaster before
issue 14, kept for the ablation of what the per-site choice and the quantiles earn)."""


def has_pv_before(frame: pd.DataFrame, cutoff: datetime | None) -> bool:
    """Whether a site produced any PV energy before ``cutoff`` (all of ``frame`` if None)."""
    if "pv_wh" not in frame.columns:
        return False
    pv = frame["pv_wh"] if cutoff is None else frame["pv_wh"][frame.index < pd.Timestamp(cutoff)]
    return bool((pv > 0).any())


def fit_agent_forecasters(
    history: Mapping[str, pd.DataFrame],
    weather: WeatherForecastSource | None,
    cutoff: datetime | None,
    seed: int,
    days_off: frozenset[date] = frozenset(),
    pv_sites: frozenset[str] | None = None,
    forecaster: str = "selected",
) -> tuple[Forecaster, Forecaster]:
    """(load, PV) forecasters fitted on the slots of ``history`` before ``cutoff``.

    ``history``: site id → frame of ``load_wh`` and ``pv_wh`` per slot; ``pv_sites``: the sites
    with panels (default: those with PV energy before the cutoff). Without any PV site the PV
    forecaster is the 7-day same-slot mean (it forecasts zero for a site without PV). Each is a
    :class:`~p2penergy.agents.forecast.SelectedForecaster`: per site the best of gradient boosting,
    its blends and the baselines on the weeks before the cutoff, with quantile forecasts
    (``forecaster``: one of :data:`AGENT_FORECASTERS`).
    """
    if forecaster not in AGENT_FORECASTERS:
        raise AgentInputError("forecaster", f"one of {', '.join(AGENT_FORECASTERS)}, got {forecaster!r}")
    model = SelectedForecaster if forecaster == "selected" else GradientBoostingForecaster
    load = model(target="load_wh", seed=seed, days_off=days_off).fit(history, weather, cutoff=cutoff)
    chosen = pv_sites if pv_sites is not None else frozenset(
        s for s, frame in history.items() if has_pv_before(frame, cutoff))
    pv_history = {s: frame for s, frame in history.items() if s in chosen}
    pv: Forecaster = (model(target="pv_wh", seed=seed, days_off=days_off).fit(
        pv_history, weather, cutoff=cutoff) if pv_history else SevenDayMean(target="pv_wh"))
    return load, pv
