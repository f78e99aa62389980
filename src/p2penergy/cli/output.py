"""Shared terminal output of the CLI: errors and wide tables."""

from __future__ import annotations

import typer
from rich.console import Console


def fail(message: str) -> typer.Exit:
    """Print ``message`` to standard error, unwrapped (so paths and field names stay whole);
    the caller raises the returned exit (code 2)."""
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


def wide_console() -> Console:
    """A console that does not squeeze tables when output is piped."""
    console = Console()
    return console if console.is_terminal else Console(width=160)
