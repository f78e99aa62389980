"""Run a sweep's points as tasks on Dask distributed and gather the results table.

A ``LocalCluster`` of worker processes (one thread each: a point is one single-threaded
simulation) by default, or an existing cluster by its scheduler address. Points already done in
the output folder for the same configuration (content hash) are not run again. A worker that
dies mid-task has its point run again on another worker (Dask's scheduler does so, up to
``distributed.scheduler.allowed-failures`` times); a point that fails is reported with its error
and the sweep goes on.

With workers on several machines, the output folder must be a path every worker sees (a shared
file system): each worker writes its points' run folders there.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from p2penergy.sweeps.point import FAILED, ROW_COLUMNS, failed_rows, finished, point_dir, run_point
from p2penergy.sweeps.spec import Point, Sweep

RESULTS = "results"
COMPARE = "compare.html"
# A point is a task of its own key, so the dashboard and the scheduler's logs name it.
TASK_PREFIX = "p2penergy-point-"
MONEY_COLUMNS = ("baseline_balance", "p2p_balance", "savings")

Progress = Callable[[int, int, Point, dict[str, Any]], None]


@dataclass(slots=True)
class SweepResult:
    """What a sweep wrote: the results table, and which points ran now, were reused or failed."""

    frame: pd.DataFrame
    out: Path
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def default_workers() -> int:
    """One worker process per core (a point is single-threaded)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def run_sweep(sweep: Sweep, out: str | Path, workers: int | None = None, scheduler: str | None = None,
              progress: Progress | None = None, client: Any = None) -> SweepResult:
    """Run every point of ``sweep`` not yet done in ``out``; write the results table and comparison.

    ``workers``: size of the local cluster (default: one per core, at most one per point);
    ``scheduler``: address of a running Dask scheduler instead (``tcp://host:8786``);
    ``client``: an existing ``distributed.Client`` (the notebook's), used as it is."""
    if workers is not None and scheduler is not None:
        raise ValueError("workers: give a number of local workers or a scheduler address, not both")
    if workers is not None and workers < 1:
        raise ValueError(f"workers: must be at least 1, got {workers}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(
        {"source": sweep.source, "scenario": sweep.scenario, "axes": list(sweep.axes),
         "points": [{"point": p.short, "key": p.key, "label": p.label, "values": p.values} for p in sweep.points]},
        indent=1, default=str), encoding="utf-8")
    result = SweepResult(pd.DataFrame(), out)
    rows: dict[str, list[dict[str, Any]]] = {}
    pending: list[Point] = []
    for point in sweep.points:
        done = finished(out, point)
        if done is None:
            pending.append(point)
        else:
            rows[point.key] = done
            result.reused.append(point.short)
    if pending:
        outcomes = _run_on_cluster(pending, out, sweep, workers, scheduler, client, progress, len(sweep.points))
        for point in pending:
            outcome = outcomes[point.key]
            rows[point.key] = outcome["rows"]
            if outcome["status"] == "ok":
                result.ran.append(point.short)
            else:
                result.failed[point.short] = outcome["error"]
    result.frame = results_frame(sweep, [r for p in sweep.points for r in rows[p.key]])
    write_results(result.frame, out)
    from p2penergy.sweeps.compare import render_compare

    _write_text(out / COMPARE, render_compare(result.frame, sweep.axes))
    return result


def _run_on_cluster(points: list[Point], out: Path, sweep: Sweep, workers: int | None, scheduler: str | None,
                    client: Any, progress: Progress | None, total: int) -> dict[str, dict[str, Any]]:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    own_client = client is None
    if client is None:
        if scheduler is not None:
            client = Client(scheduler)
        else:
            n = min(workers or default_workers(), len(points))
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   silence_logs=logging.ERROR)
            client = Client(cluster)
    outcomes: dict[str, dict[str, Any]] = {}
    futures = {}
    try:
        for point in points:
            fut = client.submit(run_point, point, str(out), sweep.ledger, sweep.report, sweep.forecast_workers,
                                sweep.plan_workers, key=f"{TASK_PREFIX}{point.short}", pure=False)
            futures[fut.key] = (fut, point)
        done = total - len(points)
        for fut in as_completed([f for f, _ in futures.values()]):
            point = futures[fut.key][1]
            try:
                outcome = fut.result()
            except Exception as exc:  # the task never returned: e.g. its workers kept dying (KilledWorker)
                error = f"{type(exc).__name__}: {exc}"
                folder = point_dir(out, point)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / FAILED).write_text(json.dumps({"key": point.key, "error": error}), encoding="utf-8")
                outcome = {"status": "failed", "key": point.key, "error": error, "rows": failed_rows(point, error)}
            outcomes[point.key] = outcome
            done += 1
            if progress is not None:
                progress(done, total, point, outcome)
    except BaseException:
        for fut, _ in futures.values():
            fut.cancel()
        raise
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
    return outcomes


def results_frame(sweep: Sweep, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The table: the fixed columns, then the axes, the KPIs, the run folder and run time."""
    frame = pd.DataFrame(rows)
    axes = [a for a in sweep.axes if a not in ROW_COLUMNS]
    kpis = sorted(c for c in frame.columns if c.startswith("kpi."))
    order = [*ROW_COLUMNS, *axes, *kpis, "run_dir", "elapsed_s"]
    for col in order:
        if col not in frame.columns:
            frame[col] = None
    return money_types(frame[order + [c for c in frame.columns if c not in order]])


def money_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Money columns as nullable integers when every amount is whole (yen beside a failed point's
    empty cells), else as decimals (cents): one column type for a sweep with or without failures."""
    for col in MONEY_COLUMNS:
        values = [v for v in frame[col] if v is not None and not pd.isna(v)]
        if values and all(float(v).is_integer() for v in values):
            frame[col] = frame[col].astype("Int64")
    return frame


def write_results(frame: pd.DataFrame, out: Path) -> None:
    """``results.parquet`` and ``results.csv``, each written whole or not at all."""
    parquet = out / f"{RESULTS}.parquet"
    tmp = parquet.with_suffix(".parquet.tmp")
    _for_parquet(frame).to_parquet(tmp, index=False)
    tmp.replace(parquet)
    _write_text(out / f"{RESULTS}.csv", frame.to_csv(index=False))


def _for_parquet(frame: pd.DataFrame) -> pd.DataFrame:
    """Parquet needs one type per column: an axis whose values mix types is written as text."""
    fixed = frame.copy()
    for col in fixed.columns:
        kinds = {type(v) for v in fixed[col] if v is not None and not (isinstance(v, float) and pd.isna(v))}
        if len(kinds) > 1 and not kinds <= {int, float}:
            fixed[col] = [None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v) for v in fixed[col]]
    return fixed


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
