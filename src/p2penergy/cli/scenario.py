"""``p2penergy scenario``: show a scenario's community and export its generated series."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from p2penergy.cli.output import fail, wide_console

if TYPE_CHECKING:  # imported when a command runs, not to parse its arguments (tests/cli/test_startup.py)
    from p2penergy.scenario import CommunityData, Scenario

app = typer.Typer(no_args_is_help=True, help="The community as data: scenario files and their series.")

ScenarioArg = Annotated[Path | None, typer.Argument(help="Scenario TOML (default: the shipped higashi-fuji-2020).")]


def _load(path: Path | None) -> Scenario:
    from p2penergy.scenario.load import ScenarioError, load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as exc:
        raise fail(str(exc)) from exc


def _generate(scenario: Scenario, start: date | None = None, end: date | None = None) -> CommunityData:
    from p2penergy.scenario import MeasuredDataError, generate

    try:
        return generate(scenario, start, end)
    except (MeasuredDataError, ValueError) as exc:
        raise fail(str(exc)) from exc


def _month(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(f"{text}-01")
    except ValueError as exc:
        raise fail(f"--month: must be YYYY-MM, got {text!r}") from exc


@app.command("show")
def show(
    scenario_path: ScenarioArg = None,
    month: Annotated[str | None, typer.Option(help="Month to total, YYYY-MM (default: the report month).")] = None,
) -> None:
    """Print the sites with their month's load, PV, car energy and utility-only bill."""
    import numpy as np
    from rich.table import Table

    from p2penergy.tariffs import home_bill, office_bill

    scenario = _load(scenario_path)
    first = _month(month) or scenario.period.report_month
    if not scenario.period.start.replace(day=1) <= first <= scenario.period.end:
        raise fail(f"--month: must lie in the period {scenario.period.start}..{scenario.period.end}")
    data = _generate(scenario).month(first)
    cur = scenario.market.currency
    cars_of: dict[str, list[str]] = {}
    for car in scenario.cars:
        cars_of.setdefault(car.owner or "-", []).append(car.id)
    table = Table(title=f"{scenario.scenario.name}: {first:%Y-%m} ({len(data.index)} slots of "
                        f"{scenario.market.slot_minutes} min)")
    for column in ("site", "type", "PV kWp", "battery kWh", "contract", "load kWh", "PV kWh", "peak kW",
                   "cars", "car drive kWh", f"utility bill {cur}"):
        table.add_column(column, justify="left" if column in ("site", "type", "cars", "contract") else "right")
    slot_h = scenario.market.slot_minutes / 60
    tariffs = scenario.tariffs
    rows = [(scenario.office.id, "office", scenario.office.pv, None, f"{scenario.office.contract_kw} kW")]
    rows += [(h.id, h.type, h.pv, h.battery, f"{h.contract_a} A") for h in scenario.homes]
    for site_id, kind, pv, battery, contract in rows:
        frame = data.sites[site_id]
        load, pv_wh = frame["load_wh"].to_numpy(), frame["pv_wh"].to_numpy()
        imp = np.clip(load - pv_wh, 0, None).tolist()
        exp = np.clip(pv_wh - load, 0, None).tolist()
        if kind == "office":
            starts = [t.to_pydatetime() for t in data.index.tz_convert(scenario.market.tz)]
            bill = office_bill(site_id, first, imp, exp, scenario.office_contract(), scenario.market.slot_minutes,
                               tariffs.buyback_scheme(tariffs.office.buyback), cur, rounding=tariffs.rounding,
                               slot_starts=starts)
        else:
            home = scenario.home(site_id)
            bill = home_bill(site_id, first, imp, exp, tariffs.retail_tariff(), home.contract_a,
                             scenario.home_buyback(home, first), cur, rounding=tariffs.rounding)
        car_ids = cars_of.get(site_id, [])
        drive = sum(int(data.cars[c]["drive_wh"].sum()) for c in car_ids)
        table.add_row(
            site_id + (" (measured)" if site_id in data.measured else ""), kind,
            f"{pv.kwp:.1f}" if pv else "-", f"{battery.capacity_wh / 1000:.1f}" if battery else "-", contract,
            f"{load.sum() / 1000:,.1f}", f"{pv_wh.sum() / 1000:,.1f}", f"{load.max() / 1000 / slot_h:.1f}",
            ", ".join(car_ids) or "-", f"{drive / 1000:,.1f}" if car_ids else "-", f"{bill.total:,}",
        )
    console = wide_console()
    console.print(table)
    cars = Table(title="Cars")
    for column in ("car", "owner", "one-way km", "days at office", "km driven", "drive kWh", "slots home/office/road"):
        cars.add_column(column, justify="left" if column in ("car", "owner") else "right")
    for car in scenario.cars:
        frame = data.cars[car.id]
        counts = frame["location"].value_counts()
        office_days = frame.index[frame["location"] == "office"].normalize().nunique()
        cars.add_row(car.id, car.owner or "-", f"{car.one_way_km:g}", str(office_days),
                     f"{frame['drive_km'].sum():,.0f}", f"{frame['drive_wh'].sum() / 1000:,.1f}",
                     f"{counts.get('home', 0)}/{counts.get('office', 0)}/{counts.get('road', 0)}")
    console.print(cars)
    console.print(f"utility bill: what each site would pay buying only from the utility, no battery or car "
                  f"(tariffs of the scenario, {cur}). Grid factor {scenario.emissions.grid_kg_co2_per_kwh} kg-CO2/kWh.",
                  highlight=False)


@app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="Directory to write into (created).")],
    scenario_path: ScenarioArg = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (default: the period's).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (default: the period's).")] = None,
) -> None:
    """Write weather, sites and cars series as Parquet and CSV."""
    from p2penergy.formats.community import write_community

    scenario = _load(scenario_path)
    days: list[date | None] = []
    for name, text in (("--start", start), ("--end", end)):
        try:
            days.append(date.fromisoformat(text) if text else None)
        except ValueError as exc:
            raise fail(f"{name}: must be YYYY-MM-DD, got {text!r}") from exc
    data = _generate(scenario, days[0], days[1])
    try:
        written = write_community(data, out)
    except OSError as exc:
        raise fail(f"--out: cannot write to {out} ({exc.strerror})") from exc
    for path in written:
        typer.echo(str(path))
