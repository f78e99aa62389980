"""``p2penergy sweep``: many runs over a grid of settings, on a Dask cluster (docs/sweep.md)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from p2penergy.cli.output import fail


def sweep_command(
    sweep_file: Annotated[Path, typer.Argument(metavar="SWEEP.toml", help="Sweep file: a base scenario and its axes.")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: sweeps/<file name>).")] = None,
    workers: Annotated[int | None, typer.Option(help="Local worker processes (default: one per core).")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Address of a running Dask scheduler "
                                                       "(tcp://host:8786) instead of local workers.")] = None,
) -> None:
    """Run every point of a sweep (each a simulation) on Dask; write results.parquet/.csv and compare.html."""
    from rich.console import Console

    from p2penergy.sweeps.spec import SweepError, load_sweep

    if workers is not None and scheduler is not None:
        raise fail("--workers and --scheduler: give one of them (local workers or a running cluster)")
    if workers is not None and workers < 1:
        raise fail(f"--workers: must be at least 1, got {workers}")
    try:
        sweep = load_sweep(sweep_file)
    except SweepError as exc:
        raise fail(str(exc)) from exc
    folder = out or Path("sweeps") / sweep_file.stem
    console = Console(stderr=True, highlight=False)
    console.print(f"sweep: {len(sweep.points)} points ({', '.join(sweep.axes) or 'no axes'}) → {folder}")

    def progress(done: int, total: int, point: Any, outcome: dict[str, Any]) -> None:
        status = "done" if outcome["status"] == "ok" else f"FAILED: {outcome['error']}"
        console.print(f"[{done}/{total}] {point.label}: {status}")

    from p2penergy.sweeps.runner import run_sweep

    # SIGTERM (a batch system's stop, `kill`) stops the sweep as Ctrl-C does: the running points are
    # cancelled and the local cluster's processes shut down; points done so far stay done, and the
    # same command resumes with the rest
    main = threading.current_thread() is threading.main_thread()  # only the main thread handles signals
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        result = run_sweep(sweep, folder, workers=workers, scheduler=scheduler, progress=progress)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from exc
    except KeyboardInterrupt:
        console.print(f"sweep interrupted: points done so far are kept in {folder}/points/; "
                      "run the same command again to resume")
        raise typer.Exit(code=130) from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    out_console = Console(highlight=False)
    out_console.print(f"points: {len(result.ran)} run, {len(result.reused)} already done, {len(result.failed)} failed")
    for short, error in result.failed.items():
        out_console.print(f"failed {short}: {error}")
    out_console.print(f"written: {folder}/results.parquet, {folder}/results.csv, {folder}/compare.html, "
                      f"run folders in {folder}/points/")
    if result.failed:
        raise typer.Exit(code=1)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
