"""Shared terminal output of the CLI: errors and wide tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    import click
    from rich.console import Console


def fail(message: str) -> typer.Exit:
    """Print ``message`` to standard error, unwrapped (so paths and field names stay whole);
    the caller raises the returned exit (code 2)."""
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


class ReportingGroup(TyperGroup):
    """The ``p2penergy`` command group: an unusable input file (:class:`InputFileError`, raised by
    whichever reader met it, however deep) ends any command with :func:`fail`'s one line and exit
    code 2 — the one place that reports it, so no command needs its own ``except``."""

    def invoke(self, ctx: click.Context) -> Any:
        from p2penergy.textfile import InputFileError  # imported by any command that reads a file, anyway

        try:
            return super().invoke(ctx)
        except InputFileError as exc:
            raise fail(str(exc)) from exc


def wide_console() -> Console:
    """A console that does not squeeze tables when output is piped."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)
