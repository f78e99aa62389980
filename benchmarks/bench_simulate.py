"""The main job's speed: the demonstration month, split by stage, against the 120 s budget.

Run: ``python benchmarks/bench_simulate.py [--days N] [--no-ledger]``. Prints one table: the
seconds of each stage (data generation, learning, baseline, ledger setup, the P2P month with
the chain's share inside it, settlement) for the full run with the ledger on the embedded
chain, and in the same process a baseline: the same month without the ledger, so the
ledger's (signing, journal, chain) cost is the difference.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from p2penergy.scenario.load import load_scenario
from p2penergy.sim.simulate import SimulationOptions, simulate


def run(ledger: bool, days: int | None) -> tuple[float, dict[str, float], int]:
    folder = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    try:
        start = time.perf_counter()
        sim = simulate(load_scenario(), SimulationOptions(ledger=ledger, run_dir=folder, days=days))
        return time.perf_counter() - start, sim.timings_s, len(sim.p2p.trades)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=None, help="only the month's first N days")
    args = parser.parse_args()
    with_ledger = run(True, args.days)
    without = run(False, args.days)
    table = Table(title=f"p2penergy simulate, {'August 2020' if args.days is None else f'{args.days} days'} "
                        "(budget: 120 s for the month with the ledger)")
    table.add_column("stage")
    table.add_column("with ledger, s", justify="right")
    table.add_column("without ledger (baseline), s", justify="right")
    stages = list(dict.fromkeys([*with_ledger[1], *without[1]]))
    for stage in stages:
        a, b = with_ledger[1].get(stage), without[1].get(stage)
        table.add_row(stage, f"{a:.1f}" if a is not None else "-", f"{b:.1f}" if b is not None else "-")
    table.add_row("total", f"{with_ledger[0]:.1f}", f"{without[0]:.1f}")
    table.add_row("ratio to baseline", f"{with_ledger[0] / without[0]:.2f}x", "1.00x")
    chain = with_ledger[1].get("chain (within p2p month)", 0.0)
    table.add_row("chain share of the run", f"{chain / with_ledger[0]:.0%}", "-")
    table.add_row("trades", str(with_ledger[2]), str(without[2]))
    Console().print(table)


if __name__ == "__main__":
    main()
