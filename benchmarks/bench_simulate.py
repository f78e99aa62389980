"""The main job's speed: the demonstration month, split by stage, against its budget.

Run: ``python benchmarks/bench_simulate.py [--days N] [--no-ledger]``. Prints one table: the
seconds of each stage for the full run with the ledger on the embedded chain and, in the same
process, the same month without the ledger (``--no-ledger``: that run only). Budget (issue 16):
the month in ≤ 60 s with the ledger, ≤ 30 s without, on the 2-core machine when idle.

Stages are the time spent inside the functions that do each job, each call's own time (a call
nested in another stage's is that stage's, not both):

* data: scenario generation and the community's build; learning: fitting the forecasters;
* forecasting: the sites' load and PV forecasts and the cars' trip forecasts at each step;
* planning: each agent's plan input and LP (with ``--plan-workers N``: in the main thread, and a
  turn's wait for its plan made ahead; the plans made in the other threads are not counted);
  agents (pricing, orders): the rest of an agent's step;
* matching: the exchange (submit, cancel, close, book queries);
* provenance: certificates (the registry's settlement and the sites it settles);
* ledger: signing, verification, journal, meters' rows, commits (setup included); the chain's own
  wait is shown inside it;
* physics/billing: meters and devices per slot, the baseline month and both months' bills;
* other: the loop and hooks around them (total minus the stages).

The machine is shared: a figure measured while others work is slower by their load. So each run
also times a fixed pure-Python reference workload (600,000 rounds of dict, integer and string work,
then a sort; the same every run) just before and just after it; ``total / reference`` (their mean) reads as
a ratio that moves much less with load than seconds do. That ratio still follows the load of the moments
the reference ran (measured 2026-12-02 at load average 4–7: 117× and 281× for the same code), so the table
also gives the run's CPU time (this process's threads and the embedded chain's worker process): the
seconds of work done, which others' load changes much less than elapsed time (it still grows somewhat
when two jobs share a core's caches).

Across the stages, the table also gives the seconds spent inside the two compiled libraries whose
answers the bills depend on (every thread, each call timed whole): HiGHS solving the agents' linear
programmes (``Highs.run``) and LightGBM predicting and training the forecasters (``Booster.predict``,
``lightgbm.train``). Their sum is work no change to this project's Python can remove while the bills
stay the same to the yen; ``total − compiled`` is the Python (and NumPy) the run's design spends.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import p2penergy.agents.plan_pool as plan_pool_module
import p2penergy.agents.trader as trader_module
import p2penergy.sim.simulate as simulate_module
from p2penergy.agents.gateway import SiteForecasts, SiteGateway
from p2penergy.agents.trader import TradingAgent
from p2penergy.agents.trip_forecast import CommuteCalendar
from p2penergy.ledger.engine import Engine
from p2penergy.ledger.wallets import Wallets
from p2penergy.market import CallMarket, ContinuousMarket
from p2penergy.provenance import Registry
from p2penergy.scenario.load import load_scenario
from p2penergy.sim.provenance_hook import ProvenanceHook
from p2penergy.sim.simulate import SimulationOptions, simulate

STAGES = ("data", "learning", "forecasting", "planning", "agents (pricing, orders)", "matching", "provenance",
          "ledger", "physics/billing")
_EXCHANGE_METHODS = ("submit", "cancel", "modify", "close", "remaining_wh", "best_bid")


class StageClock:
    """Exclusive time per stage of wrapped functions (main thread only; a nested call's time is
    its own stage's and is taken out of its caller's)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._children: list[float] = []
        self._thread = threading.get_ident()

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self._thread:
                return fn(*args, **kwargs)
            start = time.perf_counter()
            self._children.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                inner = self._children.pop()
                spent = time.perf_counter() - start
                self.seconds[stage] += spent - inner
                if self._children:
                    self._children[-1] += spent

        return timed


class NativeClock:
    """Seconds inside compiled solver and model calls, in every thread (calls may run in a pool)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.perf_counter() - start
                with self._lock:
                    self.seconds[name] += spent
                    self.calls[name] += 1

        return timed


NATIVE = ("HiGHS solve", "LightGBM predict", "LightGBM training")


@contextmanager
def timed_native(clock: NativeClock) -> Iterator[None]:
    """Wrap HiGHS's ``run`` and LightGBM's ``predict``/``train`` with ``clock`` for the duration."""
    import highspy
    import lightgbm

    targets = [("HiGHS solve", highspy.Highs, "run"), ("LightGBM predict", lightgbm.Booster, "predict"),
               ("LightGBM training", lightgbm, "train")]
    saved = []
    for name, owner, attr in targets:
        original = getattr(owner, attr)
        saved.append((owner, attr, owner.__dict__.get(attr) if isinstance(owner, type) else original))
        setattr(owner, attr, clock.wrap(name, original))
    try:
        yield
    finally:
        for owner, attr, original in reversed(saved):
            if original is None:
                delattr(owner, attr)  # the method was inherited (highspy.Highs.run is _Highs.run)
            else:
                setattr(owner, attr, original)


def _targets() -> list[tuple[str, object, str]]:
    """(stage, owner, attribute) of every function timed."""
    targets: list[tuple[str, object, str]] = [
        ("data", simulate_module, "generate"), ("data", simulate_module, "build_community"),
        ("learning", simulate_module, "fit_forecasters"),
        ("forecasting", SiteForecasts, "of"), ("forecasting", CommuteCalendar, "predict"),
        ("planning", trader_module, "plan"), ("planning", TradingAgent, "plan_input"),
        ("planning", plan_pool_module._Chunk, "plan"),  # a turn waiting for its plan made ahead
        ("agents (pricing, orders)", TradingAgent, "act"),
        ("provenance", Registry, "settle_slot"), ("provenance", ProvenanceHook, "sites"),
        ("ledger", simulate_module, "create_run_engine"), ("ledger", Wallets, "add"), ("ledger", Wallets, "sign"),
        ("ledger", Engine, "register"), ("ledger", Engine, "apply"), ("ledger", Engine, "close_slot"),
        ("ledger", Engine, "record_meter"), ("ledger", Engine, "settle_slot"), ("ledger", Engine, "commit_slot"),
        ("ledger", Engine, "close"),
        ("physics/billing", SiteGateway, "meter"), ("physics/billing", simulate_module, "run_baseline"),
        ("physics/billing", simulate_module, "month_costs"),
    ]
    for market in (ContinuousMarket, CallMarket):
        targets += [("matching", market, name) for name in _EXCHANGE_METHODS]
    return targets


@contextmanager
def timed_stages(clock: StageClock) -> Iterator[None]:
    """Wrap every target with ``clock`` for the duration."""
    saved = []
    for stage, owner, name in _targets():
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        saved.append((owner, name, original))
        setattr(owner, name, clock.wrap(stage, original))
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def reference_workload() -> float:
    """Seconds of a fixed pure-Python workload (the same every run: no I/O, no randomness)."""
    start = time.perf_counter()
    table: dict[str, int] = {}
    acc = 0
    for i in range(600_000):
        key = f"k{i % 5_000}"
        table[key] = table.get(key, 0) + (i * 7919) % 104_729
        acc ^= hash(key) & 0xFFFF
    rows = sorted(table.items(), key=lambda kv: (kv[1], kv[0]))
    acc += sum(v for _, v in rows[:100]) + len(rows)
    if acc < 0:  # keeps the work from being optimised away in any interpreter
        raise AssertionError
    return time.perf_counter() - start


def cpu_seconds() -> float:
    """CPU seconds used so far by this process (all threads) and its finished child processes."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run(ledger: bool, days: int | None, plan_workers: int = 1, forecasts_ahead: bool = False
        ) -> tuple[float, dict[str, float], int, float, float, float, NativeClock]:
    """(total s, stage s, trades, chain wait s, reference workload s around it, CPU s, compiled calls)
    of one run."""
    folder = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    clock = StageClock()
    native = NativeClock()
    before = reference_workload()
    try:
        with timed_stages(clock), timed_native(native):
            start, cpu_start = time.perf_counter(), cpu_seconds()
            sim = simulate(load_scenario(), SimulationOptions(ledger=ledger, run_dir=folder, days=days,
                                                               plan_workers=plan_workers,
                                                               forecasts_ahead=forecasts_ahead))
            total, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        stages = {stage: clock.seconds.get(stage, 0.0) for stage in STAGES}
        stages["other (loop, hooks)"] = total - sum(stages.values())
        reference = (before + reference_workload()) / 2
        return (total, stages, len(sim.p2p.trades), sim.timings_s.get("chain (within p2p month)", 0.0), reference,
                cpu, native)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=None, help="only the month's first N days")
    parser.add_argument("--no-ledger", action="store_true", help="only the run without the ledger")
    parser.add_argument("--plan-workers", type=int, default=1,
                        help="threads making each step's plans ahead (agents/plan_pool.py; 1: none)")
    parser.add_argument("--forecasts-ahead", action="store_true",
                        help="the next step's forecasts in a thread while the agents act (sim/loop.py)")
    args = parser.parse_args()
    runs = {}
    if not args.no_ledger:
        runs["with ledger"] = run(True, args.days, args.plan_workers, args.forecasts_ahead)
    runs["without ledger"] = run(False, args.days, args.plan_workers, args.forecasts_ahead)
    period = "August 2020" if args.days is None else f"{args.days} days of August 2020"
    if args.plan_workers > 1:
        period += f", plans made ahead in {args.plan_workers} threads"
    if args.forecasts_ahead:
        period += ", forecasts made ahead in a thread"
    table = Table(title=f"p2penergy simulate, {period} (budget for the month: 60 s with the ledger, "
                        "30 s without, idle 2-core machine)")
    table.add_column("stage")
    for name in runs:
        table.add_column(f"{name}, s", justify="right")
    for stage in [*STAGES, "other (loop, hooks)"]:
        table.add_row(stage, *(f"{r[1][stage]:.1f}" for r in runs.values()))
        if stage == "ledger" and "with ledger" in runs:
            table.add_row("  of which waiting for the chain", f"{runs['with ledger'][3]:.1f}",
                          *(["-"] * (len(runs) - 1)))
    table.add_row("total", *(f"{r[0]:.1f}" for r in runs.values()))
    for name in NATIVE:
        table.add_row(f"  in {name} (calls)",
                      *(f"{r[6].seconds[name]:.1f} ({r[6].calls[name]:,})" for r in runs.values()))
    table.add_row("  total − compiled (the Python and NumPy)",
                  *(f"{r[0] - sum(r[6].seconds.values()):.1f}" for r in runs.values()))
    table.add_row("reference workload (pure Python), s", *(f"{r[4]:.2f}" for r in runs.values()))
    table.add_row("total / reference", *(f"{r[0] / r[4]:.0f}x" for r in runs.values()))
    table.add_row("CPU time (process and chain worker), s", *(f"{r[5]:.1f}" for r in runs.values()))
    table.add_row("trades", *(str(r[2]) for r in runs.values()))
    Console().print(table)


if __name__ == "__main__":
    main()
