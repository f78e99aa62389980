"""Heavy PV on a weak feeder, the market without and with the feeder's limits (issue 17).

Run: ``python examples/weak_feeder.py [--days 7]``. The shipped community with 8 kWp on every home
(``examples/heavy_pv.py``) on ``examples/weak_feeder.json`` (a 50 kVA pole transformer and 800 m of
thin overhead line: ``examples/weak_feeder_build.py``), homes on ``h01``..``h20`` in scenario order,
the office on the MV bus. The month's first ``--days`` run twice with the same seed: the
unconstrained CDA (``market_limits = false``) and the CDA within each home's limits
(``market_limits = true``: docs/network.md, "Limits the CDA respects"). Prints each run's network
figures, the P2P energy, the (home, slot) pairs whose P2P trades pass the home's limit, and the
community's cost (every participant's utility bill, fuel and stores run down, exact; P2P payments
cancel out): the welfare the limits cost is the difference.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from heavy_pv import heavy_pv_scenario

from p2penergy.market.book import SiteLimitsWh
from p2penergy.network.hosting import market_limits
from p2penergy.report.files import results_json
from p2penergy.sim.simulate import SimulationOptions, scenario_feeder, simulate

FEEDER = Path(__file__).with_name("weak_feeder.json")
HOMES = [f"house-{i:02d}" for i in range(1, 21)]


def network_table(limits: bool) -> dict:
    sites: dict[str, str | int] = {h: f"h{i + 1:02d}" for i, h in enumerate(HOMES)}
    sites["office"] = "mv"
    return {"file": str(FEEDER), "sites": sites, "market_limits": limits}


def over_limits(trades: list, limits: dict[str, SiteLimitsWh]) -> dict[str, int]:
    """(home, slot) pairs whose P2P purchases or sales in the slot pass the home's limit."""
    bought: dict[tuple[str, object], int] = defaultdict(int)
    sold: dict[tuple[str, object], int] = defaultdict(int)
    for t in trades:
        bought[t.buyer, t.slot_start] += t.energy_wh
        sold[t.seller, t.slot_start] += t.energy_wh
    return {"import": sum(1 for (s, _), wh in bought.items() if s in limits and wh > limits[s].import_wh),
            "export": sum(1 for (s, _), wh in sold.items() if s in limits and wh > limits[s].export_wh),
            "at_export_limit": sum(1 for (s, _), wh in sold.items() if s in limits and wh == limits[s].export_wh)}


def run(limits: bool, days: int, site_limits: dict[str, SiteLimitsWh]) -> dict:
    sim = simulate(heavy_pv_scenario(network=network_table(limits)), SimulationOptions(days=days, ledger=False))
    body = results_json(sim)
    # P2P payments cancel out: what the community pays the utility, for fuel, and for stores run down
    cost = sum(c.utility + c.stored_energy + c.fuel for c in sim.p2p_costs.values())
    return {"network_p2p": body["network"]["p2p"], "network_baseline": body["network"]["baseline"],
            "p2p_energy_kwh": body["kpis"]["p2p_energy_kwh"], "p2p_trades": body["kpis"]["p2p_trades"],
            "home_slots_over_limits": over_limits(sim.p2p.trades, site_limits),
            "community_cost": float(round(cost, 2))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=7)
    args = ap.parse_args()
    feeder = scenario_feeder(heavy_pv_scenario(network=network_table(True)))
    assert feeder is not None
    lim = market_limits(feeder, HOMES, 30)
    print("limits per half-hour slot (Wh, import / export):",
          ", ".join(f"{s} {v.import_wh}/{v.export_wh}" for s, v in lim.items()))
    out = {"unconstrained": run(False, args.days, lim), "constrained": run(True, args.days, lim)}
    out["welfare_cost_of_limits"] = round(out["constrained"]["community_cost"]
                                          - out["unconstrained"]["community_cost"], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
