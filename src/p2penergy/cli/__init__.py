"""The ``p2penergy`` command. Each subcommand group lives in its own module and only
parses, calls one function of the core, and formats."""

from __future__ import annotations

import typer

from p2penergy.cli import audit, market

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Peer-to-peer electricity trading.")
app.add_typer(market.app, name="market")
app.add_typer(audit.app, name="audit", help="Audit a run's journal against its on-chain commitments.")


def main() -> None:
    app()
