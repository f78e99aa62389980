"""A run with ``[network] market_limits = true``: no home's P2P purchases or sales in a slot pass
its limit (hosting capacity alone and equal share, network/hosting.py), and the limits bind on a
weak feeder with heavy PV; the ledger and the call auctions refuse the setting by name."""

from __future__ import annotations

import importlib.util
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from p2penergy.network.hosting import market_limits
from p2penergy.sim.simulate import SimulationOptions, scenario_feeder, simulate

EXAMPLES = Path(__file__).parents[2] / "examples"


def _weak_feeder_example():
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location("weak_feeder", EXAMPLES / "weak_feeder.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


def test_no_home_trades_past_its_limit_and_the_limits_bind():
    ex = _weak_feeder_example()
    scenario = ex.heavy_pv_scenario(network=ex.network_table(True))
    feeder = scenario_feeder(scenario)
    assert feeder is not None
    limits = market_limits(feeder, ex.HOMES, 30)
    sim = simulate(scenario, SimulationOptions(days=1, history_days=14, ledger=False))
    bought, sold = defaultdict(int), defaultdict(int)
    for t in sim.p2p.trades:
        bought[t.buyer, t.slot_start] += t.energy_wh
        sold[t.seller, t.slot_start] += t.energy_wh
    assert all(wh <= limits[s].import_wh for (s, _), wh in bought.items() if s in limits)
    assert all(wh <= limits[s].export_wh for (s, _), wh in sold.items() if s in limits)
    assert any(wh == limits[s].export_wh for (s, _), wh in sold.items() if s in limits)  # they bind


@pytest.mark.parametrize(("mechanism", "ledger", "message"), [
    ("cda", True, "ledger"), ("pay-as-clear", False, "cda only"),
])
def test_the_ledger_and_the_call_auctions_refuse_the_limits_by_name(mechanism, ledger, message):
    ex = _weak_feeder_example()
    scenario = ex.heavy_pv_scenario(network=ex.network_table(True))
    with pytest.raises(ValueError, match=f"network.market_limits.*{message}"):
        simulate(scenario, SimulationOptions(days=1, history_days=14, ledger=ledger, mechanism=mechanism))
