"""The Python API for notebooks: :func:`simulate` and :func:`sweep` return pandas DataFrames.

Both read the same settings as a sweep file (docs/sweep.md) and run the same code as
``p2penergy simulate`` and ``p2penergy sweep``: one simulation entry point
(:func:`p2penergy.sim.simulate.simulate`). Imported lazily by ``import p2penergy``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def simulate(scenario: str | Path | None = None, *, days: int | None = None, seed: int | None = None,
             mechanism: str | None = None, agents: str = "demonstration", green: bool = False,
             period: str | None = None, history_days: int | None = None, first_day: int | None = None,
             baseline_export_credit: str | None = None, community: dict[str, Any] | None = None,
             settings: dict[str, Any] | None = None, out: str | Path | None = None,
             forecast_workers: int = 1, plan_workers: int = 1) -> pd.DataFrame:
    """One run; one row per group (the columns of a sweep's ``results.parquet``).

    ``scenario``: a shipped scenario's name or a scenario file (default: the shipped one);
    ``period``: report month ``"YYYY-MM"``; ``community``: generator settings (``homes``,
    ``shares``); ``settings``: scenario settings by dotted path (``{"market.slot_minutes": 60}``);
    ``out``: write the run folder there (``results.json``, ``report.html``, CSVs). No ledger.
    ``forecast_workers``: split each step's forecasts across that many processes; ``plan_workers``: make
    each step's plans ahead in that many (both: the same results)."""
    from p2penergy.report.files import results_json, write_run
    from p2penergy.scenario.load import parse_scenario
    from p2penergy.sim.simulate import simulate as run
    from p2penergy.sweeps.point import rows_of, simulation_options
    from p2penergy.sweeps.spec import parse_sweep

    options = {"days": days, "seed": seed, "mechanism": mechanism, "agents": agents, "green": green,
               "period": period, "history_days": history_days, "first_day": first_day,
               "baseline_export_credit": baseline_export_credit}
    data: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    if scenario is not None:
        data["scenario"] = str(scenario)
    if community:
        data["community"] = community
    if settings:
        data["points"] = [dict(settings)]
    point = parse_sweep(data, "simulate()", Path.cwd()).points[0]
    started = time.perf_counter()
    sim = run(parse_scenario(point.scenario_data, point.label, point.base_dir),
              simulation_options(point, forecast_workers=forecast_workers, plan_workers=plan_workers))
    doc = results_json(sim)
    if out is not None:
        from p2penergy.report.html import render_report

        write_run(sim, Path(out), render_report(sim))
    import pandas as pd

    from p2penergy.sweeps.runner import money_types

    return money_types(pd.DataFrame(rows_of(point, doc, Path(out) if out is not None else None,
                                            time.perf_counter() - started)))


def sweep(spec: str | Path | dict[str, Any], out: str | Path | None = None, *, workers: int | None = None,
          scheduler: str | None = None, client: Any = None) -> pd.DataFrame:
    """Run a sweep (a sweep file, or the same settings as a dict) on Dask; one row per point and group.

    ``out``: the sweep's folder (default ``sweeps/<file name>``, or ``sweeps/sweep`` for a dict);
    points already done there are not run again. ``workers``: local worker processes;
    ``scheduler``: a running cluster's address; ``client``: an existing ``distributed.Client``.
    The frame's ``attrs`` hold ``out`` and ``failed`` (point → error)."""
    from p2penergy.sweeps.runner import run_sweep
    from p2penergy.sweeps.spec import load_sweep, parse_sweep

    if isinstance(spec, dict):
        parsed = parse_sweep(spec, "sweep()", Path.cwd())
        folder = Path(out) if out is not None else Path("sweeps") / "sweep"
    else:
        parsed = load_sweep(spec)
        folder = Path(out) if out is not None else Path("sweeps") / Path(spec).stem
    result = run_sweep(parsed, folder, workers=workers, scheduler=scheduler, client=client)
    frame = result.frame
    frame.attrs.update({"out": str(result.out), "failed": dict(result.failed)})
    return frame
