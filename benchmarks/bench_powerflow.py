"""Power-flow benchmark (issue 17): a month of slots on the shipped feeder in one power-grid-model
batch, against pandapower's Newton–Raphson slot by slot on the same network in the same run.

Run: ``python benchmarks/bench_powerflow.py [--slots 1488] [--reference-slots 48] [--runs 3]``.
The month's draws are seeded random net powers (homes −8..+6 kW, the office 1–2 MW: what the
solver sees; the figures do not depend on where they came from). pandapower solves
``--reference-slots`` of them (it takes about 0.1 s a slot); its month is that time per slot
times the month's slots. The table gives medians over ``--runs``, the batch's ratio to the
reference month, the largest voltage difference on the reference slots, and the load (``uptime``)
at start and end. Target: a month (1,488 half-hour slots) in ≤ 30 s (issue 17).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from p2penergy.network.feeder import BAND_PRESETS, kerber_community_feeder
from p2penergy.network.powerflow import flows, pandapower_flows

HOMES = [f"house-{i:02d}" for i in range(1, 21)]
SITES = ["office", *HOMES]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slots", type=int, default=1488, help="slots of the month (31 days of 48)")
    ap.add_argument("--reference-slots", type=int, default=48, help="slots pandapower solves one by one")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=17)
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    feeder = kerber_community_feeder(HOMES, "office", BAND_PRESETS["japan"])
    rng = np.random.default_rng(args.seed)
    p = rng.uniform(-8000, 6000, (args.slots, len(SITES)))
    p[:, 0] = rng.uniform(1e6, 2e6, args.slots)
    ref_p = p[: args.reference_slots]
    batch_s, ref_s = [], []
    diff = 0.0
    for _ in range(args.runs):
        t = time.perf_counter()
        month = flows(feeder, SITES, p)
        batch_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        ref = pandapower_flows(feeder, SITES, ref_p)
        ref_s.append(time.perf_counter() - t)
        diff = max(diff, float(np.abs(month.v_pu[: args.reference_slots] - ref.v_pu).max()))
    batch = statistics.median(batch_s)
    per_slot = statistics.median(ref_s) / args.reference_slots
    ref_month = per_slot * args.slots
    table = Table(title=f"Power flow of {args.slots} slots on the shipped feeder ({len(feeder.net.bus)} buses, "
                        f"{len(feeder.net.line)} lines, 1 transformer)")
    for col in ("solver", "month s", "per slot ms", "ratio to pandapower NR"):
        table.add_column(col, justify="left" if col == "solver" else "right")
    table.add_row("power-grid-model batch (NR)", f"{batch:.3f}", f"{batch / args.slots * 1000:.3f}",
                  f"{batch / ref_month:.4f}")
    table.add_row(f"pandapower runpp NR per slot ({args.reference_slots} slots, scaled)", f"{ref_month:.1f}",
                  f"{per_slot * 1000:.1f}", "1")
    console = Console()
    console.print(table)
    console.print(f"largest voltage difference on the reference slots: {diff:.2e} p.u.; "
                  f"load average {load_start:.1f} -> {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
