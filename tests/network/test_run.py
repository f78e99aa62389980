"""A scenario without ``[network]`` runs as before: no feeder, no power flow, ``network: null``."""

from __future__ import annotations

from p2penergy.report.figures import key_figures
from p2penergy.report.files import results_json
from p2penergy.scenario.load import load_scenario
from p2penergy.sim.simulate import SimulationOptions, simulate


def test_no_feeder_no_power_flow():
    scenario = load_scenario()
    sim = simulate(scenario.model_copy(update={"network": None}), SimulationOptions(days=1, history_days=14,
                                                                                     ledger=False))
    assert sim.network is None
    assert "feeder" not in sim.timings_s and "power flow" not in sim.timings_s
    assert results_json(sim)["network"] is None
    assert not any(label.startswith("feeder") for label, _ in key_figures(sim))
