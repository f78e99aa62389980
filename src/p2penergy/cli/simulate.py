"""``p2penergy simulate``: the demonstration reproduction (the product's main job)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from p2penergy.cli.operator import KeystoreOption, PasswordFileOption, load_operator
from p2penergy.cli.output import fail, wide_console

if TYPE_CHECKING:  # imported when the command runs, not to parse its arguments (tests/cli/test_startup.py)
    from p2penergy.sim.simulate import Simulation


def simulate_command(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario TOML (default: the shipped one).")] = None,
    period: Annotated[str | None, typer.Option(help="Report month YYYY-MM (default: the scenario's, 2020-08).")] = None,
    mechanism: Annotated[str, typer.Option(help="cda | pay-as-clear | pay-as-bid")] = "cda",
    out: Annotated[Path | None, typer.Option(help="Output folder (default: runs/<scenario>-<period>).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of data, agents, market (default: scenario's).")] = None,
    agents: Annotated[str, typer.Option(
        help="demonstration | best | point-forecasts (forecasts and fixed hedge before issue 14)")] = "demonstration",
    chain_url: Annotated[str | None, typer.Option(help="JSON-RPC node for slot commits (default: in-process); needs "
                                                       "the operator's key: --operator-keystore.")] = None,
    operator_keystore: KeystoreOption = None,
    operator_password_file: PasswordFileOption = None,
    db: Annotated[str | None, typer.Option(help="Journal database URL (default: OUT/journal.sqlite).")] = None,
    ledger: Annotated[bool, typer.Option(help="Sign, journal and commit every slot on chain.")] = True,
    days: Annotated[int | None, typer.Option(help="Only the first N days of the month (quick runs).")] = None,
    green: Annotated[bool, typer.Option(help="Agents prefer renewable energy (bounded extra cost).")] = False,
    baseline_export_credit: Annotated[str | None, typer.Option(
        help="How the baseline credits homes' exports: own-scheme | none | a buyback scheme (e.g. post-fit); "
             "default: the scenario's [baseline] export_credit.")] = None,
    outage: Annotated[list[str] | None, typer.Option(
        help="A grid outage as an ISO 8601 interval START/DURATION, e.g. 2020-08-20T13:00+09:00/PT24H "
             "(repeatable; the community runs as an island through it).")] = None,
    outage_announced_hours: Annotated[float | None, typer.Option(
        help="Hours before it starts that each --outage is announced (agents prepare from then); "
             "default: unannounced.")] = None,
    plan_workers: Annotated[int, typer.Option(
        help="Make each step's plans ahead in this many threads, each used where the agent's turn plans "
             "alike (the same results; 1: every agent plans in its turn).")] = 1,
) -> None:
    """Simulate a month of P2P trading and report savings per group against the utility-only baseline."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from p2penergy.ledger.chain import ChainError
    from p2penergy.ledger.keys import describe_operator
    from p2penergy.scenario.load import ScenarioError, load_scenario
    from p2penergy.sim.simulate import AGENT_MODES, SimulationOptions, simulate

    if mechanism not in ("cda", "pay-as-clear", "pay-as-bid"):
        raise fail(f"--mechanism: must be cda, pay-as-clear or pay-as-bid, got {mechanism!r}")
    if agents not in AGENT_MODES:
        raise fail(f"--agents: must be one of {', '.join(AGENT_MODES)}, got {agents!r}")
    operator = load_operator(operator_keystore, operator_password_file, chain_url) if ledger else None
    month = None
    if period is not None:
        try:
            month = date.fromisoformat(f"{period}-01")
        except ValueError as exc:
            raise fail(f"--period: must be a month as YYYY-MM, got {period!r}") from exc
    try:
        spec = load_scenario(scenario)
    except ScenarioError as exc:
        raise fail(str(exc)) from exc
    if plan_workers < 1:
        raise fail(f"--plan-workers: must be at least 1, got {plan_workers}")
    if days is not None and not 1 <= days <= 31:
        raise fail(f"--days: must be between 1 and 31, got {days}")
    if baseline_export_credit is not None:
        try:
            spec.with_baseline_export_credit(baseline_export_credit, "--baseline-export-credit")
        except ValueError as exc:
            raise fail(str(exc)) from exc
    from p2penergy.outage import parse_outage

    outages = []
    for text in outage or []:
        try:
            outages.append(parse_outage(text, outage_announced_hours))
        except ValueError as exc:
            raise fail(str(exc)) from exc
    if outage_announced_hours is not None and not outages:
        raise fail("--outage-announced-hours: needs an --outage to announce")
    report_month = month or spec.period.report_month
    folder = out or Path("runs") / f"{spec.scenario.name}-{report_month:%Y-%m}-{mechanism}-{agents}"
    options = SimulationOptions(mechanism=mechanism, period=month, seed=seed, agents=agents, ledger=ledger,
                                run_dir=folder, chain_url=chain_url, db_url=db, days=days,
                                green=green, operator=operator,
                                baseline_export_credit=baseline_export_credit, outages=tuple(outages),
                                plan_workers=plan_workers)
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]simulating[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("slots", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            sim = simulate(spec, options, progress=progress)
        except (ValueError, ConnectionError, ChainError) as exc:
            raise fail(str(exc)) from exc
    from p2penergy.report.files import write_run
    from p2penergy.report.html import render_report

    write_run(sim, folder, render_report(sim))
    print_results(sim)
    Console().print(f"\nwritten: {folder}/results.json, {folder}/report.html, per-participant CSVs, certificates"
                    + (", journal and chain log (check with: p2penergy audit " + str(folder) + ")" if ledger else ""))
    if ledger:
        Console().print(describe_operator(operator) if operator is not None else
                        "operator: demonstration key derived from the seed (embedded chain only: anyone with the "
                        "seed can sign as the operator)", highlight=False)


def print_results(sim: Simulation) -> None:
    """The savings table and the key figures (the same texts as report.html and results.json)."""
    from rich.table import Table

    from p2penergy.report.figures import FLOW_COLUMNS, FigureStyle, flow_rows, key_figures
    from p2penergy.sim.results import DEMONSTRATION_PCT, GROUP_LABELS, NOT_APPLICABLE, flows

    console = wide_console()
    style = FigureStyle.of(sim.community.settings)
    cur = style.currency
    demo = sim.reproduces_demonstration
    table = Table(title=f"Electricity-charge balance vs buying only from the utility, "
                        f"{sim.community.report_month:%B %Y} ({sim.options.mechanism}, {sim.options.agents} agents)")
    columns = ["group", "members", f"baseline {cur}", f"P2P {cur}", "improvement",
               *(["demonstration"] if demo else []), f"fuel {cur} (baseline → P2P)"]
    for col in columns:
        table.add_column(col, justify="left" if col == "group" else "right")
    for name, g in sim.groups.items():
        published = DEMONSTRATION_PCT.get(name)
        row = [GROUP_LABELS.get(name, name), str(len(g.members)), style.money(g.baseline_balance, unit=False),
               style.money(g.p2p_balance, unit=False), g.improvement_text]
        if demo:
            row.append(f"{published:.1f} %" if published is not None else "")
        row.append(f"{style.money(g.baseline_fuel, unit=False)} → {style.money(g.p2p_fuel, unit=False)}")
        table.add_row(*row)
    console.print(table)
    console.print("balance = paid for electricity − earned selling it (utility and P2P), fuel not included; "
                  "energy batteries and cars end with less than they started counts at the price of putting it back; "
                  f"{NOT_APPLICABLE} where the baseline balance is not positive", soft_wrap=True)
    console.print(f"baseline: utility only, exports credited: {sim.community.baseline_export_credit.label}",
                  soft_wrap=True)
    kp = Table(title="Key figures", show_header=False)
    for label, text in key_figures(sim):
        kp.add_row(label, text)
    kp.add_row("run time", ", ".join(f"{s} {t:.1f} s" for s, t in sim.timings_s.items()))
    console.print(kp)
    rows = flow_rows(flows(sim.community, sim.p2p.trades), style)
    if rows:
        ft = Table(title="P2P flows between participant types")
        for col in FLOW_COLUMNS:
            ft.add_column(col, justify="left" if col.endswith("type") else "right")
        for row in rows:
            ft.add_row(*row)
        console.print(ft)
