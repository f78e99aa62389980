"""``p2penergy forecast``: how well the agents' forecasters do on measured sites."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from p2penergy.cli.output import fail, wide_console

if TYPE_CHECKING:  # imported when the command runs, not to parse its arguments (tests/cli/test_startup.py)
    from p2penergy.agents.month_evaluation import MonthEvaluation

app = typer.Typer(no_args_is_help=True, help="Forecast accuracy on measured data.")


@app.command("evaluate")
def evaluate_command(
    meter: Annotated[Path, typer.Option(help="Meter CSV: timestamp, [site,] load_wh|load_kwh[, pv_wh|pv_kwh].")],
    test_month: Annotated[str, typer.Option(help="Month to forecast day-ahead, YYYY-MM; fit on all before.")],
    timezone: Annotated[str, typer.Option(help="IANA zone of the sites' clocks (local days, stamps without offset).")],
    weather: Annotated[Path | None, typer.Option(help="Measured-weather CSV: timestamp, temp_c, "
                                                      "ghi_w_m2 (or dni_w_m2 and dhi_w_m2).")] = None,
    weather_forecast: Annotated[Path | None, typer.Option(help="Weather-forecast CSV: issued_at, timestamp, "
                                                               "temp_c, ghi_w_m2 (or dni_w_m2, dhi_w_m2).")] = None,
    latitude: Annotated[float | None, typer.Option(help="Site latitude [°N], for the weather files.")] = None,
    longitude: Annotated[float | None, typer.Option(help="Site longitude [°E], for the weather files.")] = None,
    altitude_m: Annotated[float, typer.Option(help="Site altitude [m].")] = 0.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result as JSON to this file.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the forecasters (and synthetic weather forecasts).")] = 0,
    holidays: Annotated[str | None, typer.Option(help="Country (ISO code, e.g. US, or US-CA with a subdivision) "
                                                      "whose public holidays are days off to the forecasters.")] = None,
) -> None:
    """Fit on every slot before the test month, forecast each of its days the day before at noon,
    and print nMAE per site and for the sum of the sites for the agents' model and the baselines."""
    from p2penergy.agents.month_evaluation import evaluate_month
    from p2penergy.agents.plan_input import AgentInputError
    from p2penergy.assets.pv import Site
    from p2penergy.formats.measured_inputs import WEATHER_KINDS, days_off, measured_inputs
    from p2penergy.scenario.measured import MeasuredDataError

    try:
        month = date.fromisoformat(f"{test_month}-01")
    except ValueError as exc:
        raise fail(f"--test-month: must be YYYY-MM, got {test_month!r}") from exc
    site = None
    if weather is not None or weather_forecast is not None:
        if latitude is None or longitude is None:
            raise fail("--latitude and --longitude: needed with --weather or --weather-forecast (pvlib's clear sky)")
        try:
            site = Site(latitude, longitude, altitude_m, timezone)
            site.location()
        except ValueError as exc:
            raise fail(f"--latitude/--longitude: {exc}") from exc
    try:
        inputs = measured_inputs(meter, timezone, weather, weather_forecast, site, seed)
        result = evaluate_month(inputs.sites, month, inputs.weather, seed, days_off(holidays, inputs.sites))
    except (MeasuredDataError, AgentInputError) as exc:
        raise fail(str(exc)) from exc
    print_evaluation(result, f"weather: {WEATHER_KINDS[inputs.weather_kind]}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def print_evaluation(result: MonthEvaluation, note: str = "") -> None:
    from rich.table import Table

    from p2penergy.agents.month_evaluation import DAY_AHEAD_ISSUE_HOUR, MODELS

    console = wide_console()
    table = Table(title=f"Day-ahead nMAE [%], {result.month:%Y-%m} ({result.days} days, issued "
                       f"{DAY_AHEAD_ISSUE_HOUR:g} h the day before)", caption=note or None)
    table.add_column("site")
    for target in ("load", "pv"):
        for model in MODELS:
            table.add_column(f"{target} {model}", justify="right")
        if target in result.choices:
            table.add_column(f"{target}: selected is")
    rows = [*result.sites.items(), ("sum of sites", result.sum)]
    for name, values in rows:
        cells = []
        for target in ("load", "pv"):
            cells += [_pct(values.get(target, {}).get(m)) for m in MODELS]
            if target in result.choices:
                cells.append(result.choices[target].get(name, ""))
        table.add_row(name, *cells)
    console.print(table)
    if not result.coverage:
        console.print("quantile coverage: absent (the agents' forecaster gives no quantiles)")
    for target, scores in result.coverage.items():
        levels = list(scores["coverage"])
        below = ", ".join(f"{lv}: {100 * scores['coverage'][lv]:.1f} %" for lv in levels)
        pinball = "/".join(f"{scores['pinball_wh'][lv]:.0f}" for lv in levels)
        point = "/".join(f"{scores['pinball_point_wh'][lv]:.0f}" for lv in levels)
        console.print(f"{target} quantiles — actual at or below {below}; inside {levels[0]}–{levels[-1]}: "
                      f"{100 * scores['interval']:.1f} %; pinball loss {pinball} Wh (point forecast: {point} Wh)")


@app.command("citylearn")
def citylearn_command(
    directory: Annotated[Path, typer.Argument(help="Folder with CityLearn 2022 Building_N.csv and weather.csv.")],
    out: Annotated[Path, typer.Argument(help="Folder to write meter.csv and weather.csv into.")],
    buildings: Annotated[str, typer.Option(help="Building numbers, comma-separated.")] = "1,2,3,4,5,6,7,8",
) -> None:
    """Convert the CityLearn 2022 homes (Fontana, CA) to the meter and weather CSVs (UTC offsets)."""
    from p2penergy.formats.citylearn import FONTANA, write_citylearn

    try:
        numbers = [int(b) for b in buildings.split(",")]
        paths = write_citylearn(directory, out, numbers)
    except ValueError as exc:
        raise fail(f"{exc}") from exc
    print("\n".join(str(p) for p in paths))
    print(f"site: --timezone {FONTANA.timezone} --latitude {FONTANA.latitude} --longitude {FONTANA.longitude} "
          f"--altitude-m {FONTANA.altitude_m:g}")
