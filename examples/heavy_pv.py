"""The shipped community with heavy PV (issue 17): every home with 8 kWp on the shipped feeder.

Run: ``python examples/heavy_pv.py [--days 7] [--out DIR]``. Consumer homes become PV homes of the
same kind (``consumer`` -> ``pv_only``, ``consumer_phv`` -> ``pv_phv``, selling under the post-FIT
scheme), every home's PV is 8 kWp (south, 30°), the rest is the shipped scenario. Prints both runs'
network figures (``results.json`` ``network``) and each site's hosting capacity on the feeder.
The market here does not respect the network's limits (``market_limits`` off): this shows what an
unconstrained market does to the shipped feeder; examples/weak_feeder.py compares both on a weak one.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path

from p2penergy.network.from_scenario import scenario_feeder
from p2penergy.network.hosting import hosting_capacity
from p2penergy.report.files import results_json
from p2penergy.scenario import shipped_path
from p2penergy.scenario.load import parse_scenario
from p2penergy.sim.simulate import SimulationOptions, simulate

KWP = 8.0
NEW_TYPE = {"consumer": "pv_only", "consumer_phv": "pv_phv"}


def heavy_pv_scenario(kwp: float = KWP, network: dict | None = None):
    """The shipped scenario with every home at ``kwp``; ``network``: a ``[network]`` table in place
    of the shipped one (examples/weak_feeder.py)."""
    data = tomllib.loads(shipped_path().read_text(encoding="utf-8"))
    if network is not None:
        data["network"] = network
    data["scenario"]["name"] = "higashi-fuji-heavy-pv"
    for home in data["homes"]:
        if home["type"] in NEW_TYPE:
            home["type"] = NEW_TYPE[home["type"]]
            home["buyback"] = "post-fit"
        home["pv"] = {**home.get("pv", {"tilt_deg": 30, "azimuth_deg": 180}), "kwp": kwp}
    return parse_scenario(data, "heavy-pv")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    scenario = heavy_pv_scenario()
    feeder = scenario_feeder(scenario)
    assert feeder is not None
    limits = hosting_capacity(feeder, [h.id for h in scenario.homes])
    print("hosting capacity (kW, export / import, each home alone):",
          ", ".join(f"{s} {v.export_w / 1000:.1f}/{v.import_w / 1000:.1f}" for s, v in limits.items()))
    sim = simulate(scenario, SimulationOptions(days=args.days, ledger=False))
    body = results_json(sim)
    print(json.dumps({"network": body["network"], "p2p_energy_kwh": body["kpis"]["p2p_energy_kwh"],
                      "groups": {k: v["improvement"] for k, v in body["groups"].items()}}, indent=2))
    if args.out is not None:
        from p2penergy.report.files import write_run
        from p2penergy.report.html import render_report

        write_run(sim, args.out, render_report(sim))


if __name__ == "__main__":
    main()
