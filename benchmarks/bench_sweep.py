"""Sweeps and community size: cost per participant-month at 20, 100 and 500 homes, and a
16-point sweep on 1 and on 2 local Dask workers (speed-up as a ratio, measured in the same run).

Run: ``python benchmarks/bench_sweep.py [--days 1] [--sizes 20,100,500] [--points 16] [--plan-sizes 20,100]
[--skip-size] [--skip-speedup] [--skip-plan]``. Prints three tables.

*Per participant-month*: one run per size of a community generated in the demonstration's mix
(scenario/synthetic.py), ``--days`` days of August 2020 after ``--history-days`` days of learning,
no ledger, in this process. Each stage's seconds are divided by the participants (homes, cars
and the office) and scaled to a 31-day month by the days it covers: the P2P stage (agents,
exchange, physics) and data generation by the reported days, learning per run (it is done
once per run, whatever the month's length). The target is flat: the same cost per
participant-month at every size.

*Speed-up*: the same 16 points (examples/sweep.toml's community, 4 seeds × 2 mechanisms × 2
agent modes, ``--days`` each) into fresh folders with a local cluster of 1 and then 2 workers,
wall time including the cluster's start; speed-up = time with 1 / time with 2 (ideal 2.0 on an
idle 2-core machine).

*Plans made ahead*: at each of ``--plan-sizes`` homes (the same generated community, ``--days``
days, no ledger, CDA, no feeder), one run planning every agent in its turn and one with ``plan_workers = 2``
(agents/plan_pool.py): the P2P stage's seconds (per slot and per participant-month), the share of
plans made ahead that were used, and the ratio of the P2P stage against the first run's. The bills
of the two runs are checked equal.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

MONTH_DAYS = 31  # August


def per_participant(sizes: list[int], days: int, history_days: int) -> Table:
    from p2penergy.scenario.load import parse_scenario
    from p2penergy.sim.simulate import simulate
    from p2penergy.sweeps.point import simulation_options
    from p2penergy.sweeps.spec import parse_sweep

    table = Table(title=f"cost per participant-month (s), {days} day(s) of August 2020 per size, "
                        f"{history_days} days of learning, no ledger")
    for col in ("homes", "participants", "run s", "data s", "learning s", "P2P s", "P2P per participant-month",
                "data per participant-month", "learning per participant (per run)", "whole month per participant"):
        table.add_column(col, justify="right")
    for homes in sizes:
        point = parse_sweep({"days": days, "history_days": history_days, "community": {"homes": homes}}).points[0]
        scenario = parse_scenario(point.scenario_data, point.label, point.base_dir)
        start = time.perf_counter()
        sim = simulate(scenario, simulation_options(point))
        total = time.perf_counter() - start
        n = len(sim.community.participants)
        t = sim.timings_s
        p2p = t.get("p2p month", 0.0) + t.get("baseline", 0.0) + t.get("settlement", 0.0)
        scale = MONTH_DAYS / days
        p2p_pm = p2p / n * scale
        data_pm = t.get("data", 0.0) / n * scale
        learn_pp = t.get("learning", 0.0) / n
        table.add_row(str(homes), str(n), f"{total:.1f}", f"{t.get('data', 0.0):.1f}", f"{t.get('learning', 0.0):.1f}",
                      f"{p2p:.1f}", f"{p2p_pm:.3f}", f"{data_pm:.3f}", f"{learn_pp:.3f}",
                      f"{p2p_pm + data_pm + learn_pp:.3f}")
        Console().print(f"  {homes} homes: {total:.1f} s", highlight=False)
    return table


def speedup(points: int, days: int, history_days: int) -> Table:
    from p2penergy.sweeps.runner import run_sweep
    from p2penergy.sweeps.spec import parse_sweep

    seeds = max(1, points // 4)
    spec = {"days": days, "history_days": history_days, "community": {"homes": 6},
            "axes": {"seed": list(range(1, seeds + 1)), "mechanism": ["cda", "pay-as-clear"],
                     "agents": ["demonstration", "best"]}}
    sweep = parse_sweep(spec)
    table = Table(title=f"{len(sweep.points)}-point sweep ({days} day(s), 6 homes each), local Dask cluster")
    for col in ("workers", "wall s (cluster start included)", "points/min", "speed-up"):
        table.add_column(col, justify="right")
    walls: dict[int, float] = {}
    for workers in (1, 2):
        out = Path(tempfile.mkdtemp(prefix=f"bench-sweep-{workers}-"))
        try:
            start = time.perf_counter()
            result = run_sweep(sweep, out, workers=workers)
            walls[workers] = time.perf_counter() - start
            assert not result.failed and len(result.ran) == len(sweep.points), result.failed
        finally:
            shutil.rmtree(out, ignore_errors=True)
        ratio = walls[1] / walls[workers]
        table.add_row(str(workers), f"{walls[workers]:.1f}", f"{len(sweep.points) / walls[workers] * 60:.1f}",
                      f"{ratio:.2f}x")
        Console().print(f"  {workers} worker(s): {walls[workers]:.1f} s", highlight=False)
    return table


def planning_ahead(sizes: list[int], days: int, history_days: int) -> Table:
    from p2penergy.scenario.load import parse_scenario
    from p2penergy.sim.simulate import simulate
    from p2penergy.sweeps.point import simulation_options
    from p2penergy.sweeps.spec import parse_sweep

    table = Table(title=f"plans made ahead (plan_workers), CDA, {days} day(s) of August 2020, no ledger")
    for col in ("homes", "participants", "plan_workers", "P2P s", "P2P ms per slot", "P2P per participant-month s",
                "plans made ahead", "used", "P2P vs in turn"):
        table.add_column(col, justify="right")
    for homes in sizes:
        point = parse_sweep({"days": days, "history_days": history_days, "community": {"homes": homes}}).points[0]
        # without the shipped feeder (20 house connections: it refuses another size); no power flow is measured
        scenario = parse_scenario(point.scenario_data, point.label, point.base_dir).model_copy(update={"network": None})
        first = None
        for workers in (1, 2):
            sim = simulate(scenario, simulation_options(point, plan_workers=workers))
            p2p = sim.timings_s.get("p2p month", 0.0)
            n = len(sim.community.participants)
            slots = sim.community.month.stop - sim.community.month.start
            if first is None:
                first = sim
            elif sim.p2p_costs != first.p2p_costs or sim.p2p.trades != first.p2p.trades:
                raise AssertionError(f"{homes} homes: plans made ahead changed the bills")
            base = first.timings_s.get("p2p month", 0.0)
            s = sim.speculation
            table.add_row(str(homes), str(n), str(workers), f"{p2p:.1f}", f"{p2p / slots * 1000:.0f}",
                          f"{p2p / n * MONTH_DAYS / days:.1f}", str(s.planned_ahead),
                          f"{s.used_share:.1%}" if s.planned_ahead else "-", f"{p2p / base:.2f}")
            Console().print(f"  {homes} homes, plan_workers {workers}: P2P {p2p:.1f} s", highlight=False)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--history-days", type=int, default=14)
    parser.add_argument("--sizes", default="20,100,500")
    parser.add_argument("--points", type=int, default=16)
    parser.add_argument("--skip-size", action="store_true")
    parser.add_argument("--skip-speedup", action="store_true")
    parser.add_argument("--plan-sizes", default="20,100")
    parser.add_argument("--skip-plan", action="store_true")
    args = parser.parse_args()
    console = Console(width=200)  # the tables stay whole when piped to a file
    console.print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start", highlight=False)
    tables = []
    if not args.skip_size:
        tables.append(per_participant([int(s) for s in args.sizes.split(",")], args.days, args.history_days))
    if not args.skip_speedup:
        tables.append(speedup(args.points, args.days, args.history_days))
    if not args.skip_plan:
        tables.append(planning_ahead([int(s) for s in args.plan_sizes.split(",")], args.days, args.history_days))
    for table in tables:
        console.print(table)
    console.print(f"load average at the end {os.getloadavg()[0]:.1f}", highlight=False)


if __name__ == "__main__":
    main()
