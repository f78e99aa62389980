"""The ``p2penergy`` command. Each subcommand group lives in its own module and only
parses, calls one function of the core, and formats.

Start-up: a command module imports at its top only what its options need (typer, the standard
library, option names); the core, numerical, chain, web, database libraries and rich are imported
inside the command that uses them, so ``p2penergy --help`` and every ``--help`` stay fast
(``tests/cli/test_startup.py`` checks the imports, ``benchmarks/bench_startup.py`` the time). Help is
click's plain layout: typer's rich help panels import markdown and traceback rendering on every run.
"""

from __future__ import annotations

import typer

from p2penergy.cli import agent, audit, certificates, forecast, market, operator, scenario, serve, simulate, sweep
from p2penergy.cli.output import ReportingGroup

HELP_MAX_WIDTH = 120
"""Widest help text [characters]: click's default caps it at 80 even on a wider terminal, which cuts
the command list's descriptions short; 120 is the project's line length."""

app = typer.Typer(cls=ReportingGroup, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  context_settings={"max_content_width": HELP_MAX_WIDTH}, help="Peer-to-peer electricity trading.")
app.add_typer(market.app, name="market")
app.add_typer(scenario.app, name="scenario")
app.add_typer(operator.app, name="operator")
app.add_typer(forecast.app, name="forecast")
app.command("simulate")(simulate.simulate_command)
app.command("sweep")(sweep.sweep_command)
app.command("certificates", help="Certificates of origin of a simulation run.")(certificates.certificates)
app.command("serve")(serve.serve_command)
app.command("agent")(agent.agent_command)
app.command("demo")(agent.demo_command)
app.command("audit", help="Audit a run's journal and signatures against its on-chain commitments.")(audit.audit_command)


def main() -> None:
    app()
