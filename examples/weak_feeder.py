"""Heavy PV on a weak feeder, the market without and with the feeder's limits (issue 17).

Run: ``python examples/weak_feeder.py [--days 7] [--only NAME ...]``. The shipped community with
8 kWp on every home (``examples/heavy_pv.py``) on ``examples/weak_feeder.json`` (a 50 kVA pole
transformer and 800 m of thin overhead line: ``examples/weak_feeder_build.py``), homes on
``h01``..``h20`` in scenario order, the office on the MV bus. The month's first ``--days`` run with
the same seed, without the ledger, in :data:`RUNS`: the CDA and the pay-as-clear call auction, each
unconstrained (``market_limits = false``) and within the feeder's limits (``market_limits = true``:
the CDA each home's limit at matching, the call auction each slot's linearised limits:
docs/network.md), and the call auction with export control (``export_control = true``: each home's
inverter curtails PV beyond its export limit), without and within its limits. Prints each
run's network figures (its baseline's too: export control changes the baseline's physics), the P2P
energy and the trades' welfare, the (home, slot) pairs whose P2P trades pass the home's CDA limit,
the PV curtailed, and the community's cost (every participant's utility bill, fuel and stores run
down, exact; P2P payments cancel out).
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
from p2penergy.market.trades import TradeSummary
from p2penergy.network.from_scenario import scenario_feeder
from p2penergy.network.hosting import market_limits
from p2penergy.report.files import results_json
from p2penergy.sim.simulate import SimulationOptions, simulate

FEEDER = Path(__file__).with_name("weak_feeder.json")
HOMES = [f"house-{i:02d}" for i in range(1, 21)]


RUNS = {  # name: (mechanism, market_limits, export_control)
    "cda": ("cda", False, False),
    "cda-limits": ("cda", True, False),
    "pay-as-clear": ("pay-as-clear", False, False),
    "pay-as-clear-limits": ("pay-as-clear", True, False),
    "pay-as-clear-export-control": ("pay-as-clear", False, True),
    "pay-as-clear-limits-export-control": ("pay-as-clear", True, True),
}


def network_table(limits: bool, export_control: bool = False) -> dict:
    sites: dict[str, str | int] = {h: f"h{i + 1:02d}" for i, h in enumerate(HOMES)}
    sites["office"] = "mv"
    return {"file": str(FEEDER), "sites": sites, "market_limits": limits, "export_control": export_control}


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


def run(mechanism: str, limits: bool, export_control: bool, days: int, site_limits: dict[str, SiteLimitsWh]) -> dict:
    sim = simulate(heavy_pv_scenario(network=network_table(limits, export_control)),
                   SimulationOptions(days=days, ledger=False, mechanism=mechanism))
    body = results_json(sim)
    # P2P payments cancel out: what the community pays the utility, for fuel, and for stores run down
    cost = sum(c.utility + c.stored_energy + c.fuel for c in sim.p2p_costs.values())
    return {"network_p2p": body["network"]["p2p"], "network_baseline": body["network"]["baseline"],
            "p2p_energy_kwh": body["kpis"]["p2p_energy_kwh"], "p2p_trades": body["kpis"]["p2p_trades"],
            "trades_welfare": float(TradeSummary.of(sim.p2p.trades).welfare),
            "home_slots_over_limits": over_limits(sim.p2p.trades, site_limits),
            "curtailed_kwh": {"baseline": curtailed_kwh(sim.baseline), "p2p": curtailed_kwh(sim.p2p)},
            "community_cost": float(round(cost, 2)),
            "timings_s": {k: round(v, 1) for k, v in sim.timings_s.items()}}


def curtailed_kwh(records) -> float:
    return round(sum(int(a.columns["curtailed_wh"].sum()) for a in records.accounts.values()) / 1000, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--only", nargs="*", choices=list(RUNS), default=list(RUNS))
    args = ap.parse_args()
    feeder = scenario_feeder(heavy_pv_scenario(network=network_table(True)))
    assert feeder is not None
    lim = market_limits(feeder, HOMES, 30)
    print("limits per half-hour slot (Wh, import / export):",
          ", ".join(f"{s} {v.import_wh}/{v.export_wh}" for s, v in lim.items()))
    out = {}
    for name in args.only:
        out[name] = run(*RUNS[name], args.days, lim)
        print(name, json.dumps(out[name]), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
