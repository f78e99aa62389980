"""Agents benchmark: planning time per LP and forecaster fit/predict time.

Run: ``python benchmarks/bench_agents.py [--repeats 200] [--only-year]``. Prints these tables:

* Planner: median and 95th-percentile time of one ``plan()`` for the agent types over a
  "rest of today and tomorrow" horizon of 96 slots (30 min), with a baseline measured in
  the same run: the same call on a 1-slot horizon (the fixed cost of building and
  solving any LP through highspy).
* A year of 20 homes (the synthetic community of ``tests/agents``, 30-min slots): fitting the
  agents' forecasters (``SelectedForecaster``, load and PV: two gradient-boosting fits each plus
  the validation) against one plain gradient-boosting fit measured in the same run, and one
  forecasting step for 21 sites (load and PV, point and quantiles) against the 7-day mean's.
  Targets (issue 14): fit ≤ 30 s, step ≤ 20 ms.
* Forecasters on the demonstration scenario (``p2penergy.scenario``; a synthetic
  community if it is not installed): training time on June–July, one site's forecast
  and all 21 sites' forecasts (``predict_many``) for one issue time, against the naive
  baselines measured in the same run; and an estimate of August's total for 30 agents.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from p2penergy.agents.forecast import (
    GradientBoostingForecaster,
    SameSlotYesterday,
    SelectedForecaster,
    SevenDayMean,
    rest_of_today_and_tomorrow,
)
from p2penergy.agents.plan_input import Battery, Car, DemandCharge, PlanInput
from p2penergy.agents.planner import plan
from p2penergy.agents.weather_forecast import WeatherForecastSource

N = 96


def _times(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _inputs(n: int) -> dict[str, PlanInput]:
    t = np.arange(n) % 48
    sun = np.clip(np.sin((t - 12) / 24 * np.pi), 0, None)
    load = 250 + 300 * np.exp(-((t - 39) ** 2) / 20)
    prices = {"retail_price_per_kwh": 26.5, "buyback_price_per_kwh": 8.5,
              "p2p_buy_price_per_kwh": 18 + 4 * sun, "p2p_sell_price_per_kwh": 16 + 4 * sun,
              "p2p_buy_max_wh": 600.0, "p2p_sell_max_wh": 1500.0}
    parked = ~((t >= 16) & (t < 38))
    drive = np.where(t == 16, 3000.0, 0.0) * ~parked
    car = Car(usable_wh=7000, charge_power_w=3000, discharge_power_w=3000, soc_wh=4000, parked=parked,
              drive_wh=drive, soc_min_wh=500)
    at_office = (t >= 17) & (t < 37)
    car_at_office = Car(usable_wh=7000, charge_power_w=3000, discharge_power_w=3000, soc_wh=3000, parked=at_office,
                        drive_wh=np.where(t == 37, 3000.0, 0.0), soc_min_wh=500)
    bat = Battery(capacity_wh=9800, power_w=3000, soc_wh=4000, soc_min_wh=1000)
    office_load = 8000 + 12000 * ((t >= 16) & (t < 38))
    return {
        "home, consumer": PlanInput(30, load, np.zeros(n), **prices),
        "home, PV + battery": PlanInput(30, load, 2500 * sun, battery=bat, **prices),
        "home, PV + battery + PHV": PlanInput(30, load, 2500 * sun, battery=bat, cars=(car,), **prices),
        "home, PV + battery, green": PlanInput(30, load, 2500 * sun, battery=bat, mode="green",
                                               renewable_wh=400.0, renewable_premium_per_kwh=2.0,
                                               green_max_extra_cost=20.0, **prices),
        "office, PV + demand charge + V2B": PlanInput(
            30, office_load, 25000 * sun, v2b_max_wh=np.where(at_office, 6000.0, 0.0), v2b_price_per_kwh=20.0,
            demand_charge=DemandCharge(price_per_kw=1800.0, peak_so_far_w=30000.0), **prices),
        "car (PHV) at the office": PlanInput(30, np.zeros(n), np.zeros(n), cars=(car_at_office,),
                                             grid_export_max_wh=0.0, **prices),
    }


def bench_planner(console: Console, repeats: int) -> float:
    table = Table(title=f"plan(): one LP over {N} slots (HiGHS, 1 thread), {repeats} runs")
    for col in ("agent", "median ms", "p95 ms", "x baseline"):
        table.add_column(col, justify="right" if col != "agent" else "left")
    tiny = _inputs(1)["home, PV + battery + PHV"]
    base = statistics.median(_times(lambda: plan(tiny), repeats))
    table.add_row("baseline: same home, 1-slot horizon", f"{base * 1e3:.2f}", "", "1.0")
    medians = []
    for name, inp in _inputs(N).items():
        ts = _times(lambda inp=inp: plan(inp), repeats)
        med = statistics.median(ts)
        medians.append(med)
        table.add_row(name, f"{med * 1e3:.2f}", f"{np.percentile(ts, 95) * 1e3:.2f}", f"{med / base:.1f}")
    console.print(table)
    return statistics.mean(medians)


def _community() -> tuple[pd.DataFrame, dict[str, pd.DataFrame], str]:
    try:
        from p2penergy.scenario.generate import generate
        from p2penergy.scenario.load import load_scenario
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "agents"))
        from synthetic_community import make_community  # type: ignore[import-not-found]

        weather, sites, _ = make_community(homes=20, pv_homes=8, days=92, start="2020-06-01")
        return weather, sites, "synthetic community (tests/agents)"
    data = generate(load_scenario())
    return data.weather, data.sites, "scenario higashi-fuji-2020"


def bench_forecasters(console: Console, repeats: int, plan_s: float) -> None:
    weather, sites, source = _community()
    tz = weather.index.tz
    src = WeatherForecastSource(weather, rng_seed=1)
    cutoff = pd.Timestamp("2020-08-01", tz=tz).to_pydatetime()
    issued = pd.Timestamp("2020-08-05 12:00", tz=tz).to_pydatetime()
    horizon = rest_of_today_and_tomorrow(issued, 30)
    wf = src.issue_for(issued, horizon)
    frames = list(sites.values())
    one = sites["office"]

    table = Table(title=f"Forecasters on the {source}: {len(sites)} sites, horizon {len(horizon)} slots")
    for col in ("forecaster", "fit s", "predict 1 site ms", f"predict {len(frames)} sites ms"):
        table.add_column(col, justify="right" if col != "forecaster" else "left")
    reps = max(repeats // 4, 10)
    for cls in (SameSlotYesterday, SevenDayMean):
        f = cls("load_wh")
        t1 = statistics.median(_times(lambda f=f: f.predict(one, issued, horizon, wf), reps))
        tn = statistics.median(_times(lambda f=f: [f.predict(x, issued, horizon, wf) for x in frames], reps))
        table.add_row(f"baseline: {cls.__name__}", "0", f"{t1 * 1e3:.2f}", f"{tn * 1e3:.1f}")
    per_slot = 0.0
    for target in ("load_wh", "pv_wh"):
        t0 = time.perf_counter()
        g = GradientBoostingForecaster(target).fit(sites, src, cutoff)
        fit_s = time.perf_counter() - t0
        t1 = statistics.median(_times(lambda g=g: g.predict(one, issued, horizon, wf), reps))
        tn = statistics.median(_times(lambda g=g: g.predict_many(frames, issued, horizon, wf), reps))
        per_slot += tn
        table.add_row(f"LightGBM {target} ({g.n_training_rows} rows)", f"{fit_s:.1f}", f"{t1 * 1e3:.2f}",
                      f"{tn * 1e3:.1f}")
    later = iter(pd.Timestamp(issued) + pd.Timedelta(minutes=30 * k) for k in range(1, 10 * reps))
    weather_s = statistics.median(_times(lambda: src.issue_for(next(later).to_pydatetime(), horizon), reps))
    table.add_row("weather forecast, new issue time (cached per issue)", "", f"{weather_s * 1e3:.2f}", "")
    console.print(table)
    slots = 31 * 48
    console.print(
        f"August estimate, re-forecasting and re-planning every slot: forecasts {slots} × "
        f"{(per_slot + weather_s) * 1e3:.1f} ms = {slots * (per_slot + weather_s):.0f} s; "
        f"plans 30 agents × {slots} × {plan_s * 1e3:.2f} ms = {30 * slots * plan_s:.0f} s "
        f"(re-plan every 4th slot: {30 * slots * plan_s / 4:.0f} s)."
    )


def _synthetic(**kwargs: object) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "agents"))
    from synthetic_community import make_community  # type: ignore[import-not-found]

    weather, sites, _ = make_community(**kwargs)
    return weather, sites


def bench_year(console: Console, repeats: int) -> None:
    weather, sites = _synthetic(homes=20, pv_homes=8, days=366, start="2019-08-01")
    tz = weather.index.tz
    src = WeatherForecastSource(weather, rng_seed=1)
    cutoff = pd.Timestamp("2020-07-31", tz=tz).to_pydatetime()
    homes = {k: v for k, v in sites.items() if k != "office"}
    pv_homes = {k: v for k, v in homes.items() if v["pv_wh"].sum() > 0}
    table = Table(title=f"A year of {len(homes)} homes ({len(pv_homes)} with PV), 30-min slots: fit "
                  "(wall and this process's CPU seconds: on a shared machine CPU time is the steadier)")
    for col in ("fit", "wall s", "CPU s", "x baseline (CPU)"):
        table.add_column(col, justify="right" if col != "fit" else "left")
    t0, c0 = time.perf_counter(), time.process_time()
    plain = GradientBoostingForecaster("load_wh").fit(homes, src, cutoff)
    base, base_cpu = time.perf_counter() - t0, time.process_time() - c0
    table.add_row(f"baseline: one GradientBoostingForecaster, load ({plain.n_training_rows} rows)", f"{base:.1f}",
                  f"{base_cpu:.1f}", "1.0")
    t0, c0 = time.perf_counter(), time.process_time()
    load = SelectedForecaster("load_wh").fit(homes, src, cutoff)
    pv = SelectedForecaster("pv_wh").fit(pv_homes, src, cutoff)
    both, both_cpu = time.perf_counter() - t0, time.process_time() - c0
    table.add_row("SelectedForecaster, load and PV (target ≤ 30 s)", f"{both:.1f}", f"{both_cpu:.1f}",
                  f"{both_cpu / base_cpu:.1f}")
    console.print(table)

    issued = pd.Timestamp("2020-07-31 12:00", tz=tz).to_pydatetime()
    horizon = rest_of_today_and_tomorrow(issued, 30)
    wf = src.issue_for(issued, horizon)
    ids = sorted(sites)
    frames = [sites[i] for i in ids]
    pv_ids = [i for i in ids if i in pv_homes]
    pv_frames = [sites[i] for i in pv_ids]

    def step() -> None:
        point = load.predict_many(frames, issued, horizon, wf, sites=ids)
        load.quantiles_of(point, horizon, ids)
        pv_point = pv.predict_many(pv_frames, issued, horizon, wf, sites=pv_ids)
        pv.quantiles_of(pv_point, horizon, pv_ids)

    def site_by_site() -> None:  # the same step asked one site at a time (one model call each)
        for i, f in zip(ids, frames, strict=True):
            point = load.predict(f, issued, horizon, wf, site=i)
            load.quantiles_of(point[None], horizon, [i])
        for i, f in zip(pv_ids, pv_frames, strict=True):
            pv_point = pv.predict(f, issued, horizon, wf, site=i)
            pv.quantiles_of(pv_point[None], horizon, [i])

    def naive() -> None:
        for f in frames:
            SevenDayMean("load_wh").predict(f, issued, horizon)
        for f in pv_frames:
            SevenDayMean("pv_wh").predict(f, issued, horizon)

    # the model's own cost: LightGBM on exactly the rows the step puts to it (captured from one step)
    rows: dict[str, np.ndarray] = {}

    def spy(name: str, raw: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
        def call(x: np.ndarray) -> np.ndarray:
            rows[name] = x
            return raw(x)
        return call

    for name, model in (("load", load.gbm), ("pv", pv.gbm)):
        assert model is not None
        model._raw = spy(name, model._raw)  # type: ignore[method-assign]
    step()
    for model in (load.gbm, pv.gbm):
        del model.__dict__["_raw"]
    assert load.gbm is not None and pv.gbm is not None

    def model_only() -> None:
        load.gbm._raw(rows["load"])
        pv.gbm._raw(rows["pv"])

    reps = max(repeats // 4, 10)
    table = Table(title=f"One forecasting step: {len(ids)} sites, load and PV, horizon {len(horizon)} slots, "
                  f"a year of history each (load average {os.getloadavg()[0]:.1f} at the start)")
    for col in ("forecast", "median ms", "p95 ms", "x baseline"):
        table.add_column(col, justify="right" if col != "forecast" else "left")
    table.add_column("CPU ms (mean)", justify="right")
    c0 = time.process_time()
    base_ts = _times(model_only, reps)
    b, b_cpu = statistics.median(base_ts), (time.process_time() - c0) / (reps + 1)
    table.add_row(f"baseline: LightGBM alone on the step's rows ({len(rows['load'])} load, {len(rows['pv'])} PV)",
                  f"{b * 1e3:.1f}", f"{np.percentile(base_ts, 95) * 1e3:.1f}", "1.0", f"{b_cpu * 1e3:.1f}")
    for label, fn in (("7-day mean, one call per site", naive),
                      ("SelectedForecaster: point + quantiles, all sites in one call (target ≤ 20 ms)", step),
                      ("SelectedForecaster: the same, one call per site", site_by_site)):
        c0 = time.process_time()
        ts = _times(fn, reps)
        m, m_cpu = statistics.median(ts), (time.process_time() - c0) / (reps + 1)
        table.add_row(label, f"{m * 1e3:.1f}", f"{np.percentile(ts, 95) * 1e3:.1f}", f"{m / b:.2f}",
                      f"{m_cpu * 1e3:.1f}")
    console.print(table)
    console.print(f"selected (load): {dict(sorted(load.selected_.items()))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--only-year", action="store_true", help="only the year-of-20-homes tables")
    args = parser.parse_args()
    console = Console()
    bench_year(console, args.repeats)
    if args.only_year:
        return
    plan_s = bench_planner(console, args.repeats)
    bench_forecasters(console, args.repeats, plan_s)


if __name__ == "__main__":
    main()
