"""One point of a sweep, run where Dask puts it: the one simulation entry point
(:func:`p2penergy.sim.simulate.simulate`), its run folder, and its rows of the results table.

A point's folder is ``DIR/points/<hash>/``: ``point.json`` (its configuration), the run folder's
files (``results.json``, ``report.html``, per-participant CSVs, certificates) and, written last,
``done.json`` with its rows: a point is done exactly when ``done.json`` holds its hash. A
failure writes ``failed.json`` instead (the error and traceback); a later run of the sweep
tries it again.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from datetime import date
from pathlib import Path
from typing import Any

from p2penergy.sweeps.spec import Point

DONE = "done.json"
FAILED = "failed.json"
POINT = "point.json"
POINTS_DIR = "points"
# columns of every row, in order, before the axes' and the KPIs' (docs/sweep.md)
ROW_COLUMNS = ("point", "label", "status", "error", "scenario", "currency", "period", "days", "mechanism", "agents",
               "green", "seed", "participants", "group", "members", "baseline_balance", "p2p_balance", "savings",
               "improvement_pct")


def point_dir(out: Path, point: Point) -> Path:
    return Path(out) / POINTS_DIR / point.short


def finished(out: Path, point: Point) -> list[dict[str, Any]] | None:
    """The rows of ``point`` when it is done in ``out`` with this very configuration, else ``None``."""
    path = point_dir(out, point) / DONE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc["rows"] if doc.get("key") == point.key else None


def run_point(point: Point, out: str, ledger: bool = False, report: bool = True,
              forecast_workers: int = 1, plan_workers: int = 1) -> dict[str, Any]:
    """Run ``point`` and write its folder under ``out``; returns ``{"status", "rows", ...}``
    (``forecast_workers``: its forecasting steps split across that many tasks on the cluster;
    ``plan_workers``: its planning steps made ahead in that many).

    Runs in a Dask worker (or in process). Never raises for a failing simulation: the error
    comes back as the point's result, so the sweep goes on."""
    folder = point_dir(Path(out), point)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (DONE, FAILED):
        (folder / stale).unlink(missing_ok=True)
    (folder / POINT).write_text(json.dumps({"key": point.key, "label": point.label, "values": point.values,
                                            "options": point.options, "scenario": point.scenario_data},
                                           indent=1, default=str), encoding="utf-8")
    started = time.perf_counter()
    where = f"{socket.gethostname()} pid {os.getpid()}"
    try:
        doc = simulate_point(point, folder, ledger, report, forecast_workers, plan_workers)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        failure = {"key": point.key, "error": error, "traceback": traceback.format_exc(), "worker": where}
        _write_atomic(folder / FAILED, failure)
        return {"status": "failed", "key": point.key, "error": error, "rows": failed_rows(point, error),
                "worker": where, "elapsed_s": time.perf_counter() - started}
    elapsed = time.perf_counter() - started
    rows = rows_of(point, doc, folder, elapsed)
    _write_atomic(folder / DONE, {"key": point.key, "rows": rows, "worker": where})
    return {"status": "ok", "key": point.key, "rows": rows, "worker": where, "elapsed_s": elapsed}


def simulate_point(point: Point, folder: Path, ledger: bool = False, report: bool = True,
                   forecast_workers: int = 1, plan_workers: int = 1) -> dict[str, Any]:
    """The point's simulation, written as a run folder; returns its ``results.json`` document."""
    from p2penergy.report.files import results_json, write_run
    from p2penergy.scenario.load import parse_scenario
    from p2penergy.sim.simulate import simulate

    scenario = parse_scenario(point.scenario_data, point.label, point.base_dir)
    sim = simulate(scenario, simulation_options(point, folder if ledger else None, ledger, forecast_workers,
                                                plan_workers))
    html = None
    if report:
        from p2penergy.report.html import render_report

        html = render_report(sim)
    write_run(sim, folder, html)
    return results_json(sim)


def simulation_options(point: Point, run_dir: Path | None = None, ledger: bool = False,
                       forecast_workers: int = 1, plan_workers: int = 1) -> Any:
    """The :class:`SimulationOptions` of a point (also what a single run of it uses)."""
    from p2penergy.sim.simulate import SimulationOptions

    o = point.options
    period = date.fromisoformat(f"{o['period']}-01") if o["period"] else None
    return SimulationOptions(mechanism=o["mechanism"], period=period, ledger=ledger, run_dir=run_dir, seed=o["seed"],
                             agents=o["agents"], history_days=o["history_days"], days=o["days"],
                             first_day=o["first_day"], green=o["green"],
                             baseline_export_credit=o["baseline_export_credit"], forecast_workers=forecast_workers,
                             plan_workers=plan_workers)


def rows_of(point: Point | None, doc: dict[str, Any], folder: Path | None, elapsed_s: float | None,
            days: int | None = None) -> list[dict[str, Any]]:
    """One row per group of a run's ``results.json`` document (money as in it: rounded to the
    currency's minor unit), with the point's settings and the run's KPIs (``kpi.<name>``)."""
    options = point.options if point is not None else {}
    base = {
        "point": point.short if point is not None else "", "label": point.label if point is not None else "",
        "status": "ok", "error": "", "scenario": doc["scenario"], "currency": doc["currency"], "period": doc["period"],
        "days": options.get("days", days), "mechanism": doc["mechanism"], "agents": doc["agents"],
        "green": options.get("green", False), "seed": doc["scenario_seed"], "participants": len(doc["participants"]),
    }
    axes = {name: _cell(v) for name, v in (point.values if point is not None else {}).items()}
    kpis = {f"kpi.{k}": v for k, v in doc["kpis"].items()}
    rows = []
    for name, g in doc["groups"].items():
        savings = g["baseline_balance"] - g["p2p_balance"]
        rows.append({**base, "group": name, "members": len(g["members"]), "baseline_balance": g["baseline_balance"],
                     "p2p_balance": g["p2p_balance"], "savings": _money(savings),
                     "improvement_pct": g["improvement_pct"],
                     **axes, **kpis, "run_dir": str(folder) if folder is not None else "",
                     "elapsed_s": round(elapsed_s, 1) if elapsed_s is not None else None})
    return rows


def failed_rows(point: Point, error: str) -> list[dict[str, Any]]:
    """The one row of a point that did not finish: its settings and its error."""
    o = point.options
    return [{"point": point.short, "label": point.label, "status": "failed", "error": error,
             "scenario": point.scenario_data.get("scenario", {}).get("name", ""), "period": o["period"] or "",
             "days": o["days"], "mechanism": o["mechanism"], "agents": o["agents"], "green": o["green"],
             "seed": o["seed"], **{name: _cell(v) for name, v in point.values.items()}}]


def _cell(value: Any) -> Any:
    """An axis value as a table cell: scalars as they are, tables and lists as compact JSON."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


def _money(value: float | int) -> float | int:
    # results.json money is exact to the minor unit; a difference of two such numbers stays so
    return value if isinstance(value, int) else round(value, 6)


def _write_atomic(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)
