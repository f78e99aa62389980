"""``p2penergy audit``: check a journal — a run folder's or a live service's (``--db URL``) — and its
on-chain commitments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

# One command registered as a group (cli/__init__ adds every area with add_typer): interspersed args let
# options follow RUN_DIR.


def audit_command(
    run_dir: Annotated[Path | None, typer.Argument(help="Run folder holding ledger.json and the journal.")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Journal database URL: a live service's, or instead of "
                                                         "RUN_DIR's (SQLite or PostgreSQL).")] = None,
    chain_url: Annotated[str | None, typer.Option("--chain-url", help="JSON-RPC node holding the contract.")] = None,
    prove: Annotated[str | None, typer.Option("--prove", metavar="TRADE_ID",
                                              help="Print the Merkle proof of one trade.")] = None,
    no_replay: Annotated[bool, typer.Option("--no-replay", help="Skip rebuilding the books.")] = False,
) -> None:
    """Check the hash chain, every signature and nonce, every slot's Merkle roots against the chain, and
    replay the books through the exchange engine.

    Exits 1 naming the first mismatch (a malformed row is a mismatch naming it); 2 if the journal or
    its chain cannot be opened.
    """
    from p2penergy.ledger.audit import audit, open_run, prove_trade
    from p2penergy.ledger.chain import ChainError
    from p2penergy.ledger.journal import JournalError

    if run_dir is None and db is None:
        raise typer.BadParameter("give RUN_DIR or --db URL")
    try:
        journal, chain = open_run(run_dir, db, chain_url)
    except (FileNotFoundError, ValueError, ChainError, JournalError) as exc:
        typer.echo(f"audit FAILED: cannot open the journal: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        report = audit(journal, chain, check_replay=not no_replay)
        if report.ok:
            readings = f", {report.signed_readings} signed readings" if report.signed_readings else ""
            slots = (f"{report.slots_committed} slots match the chain" if chain is not None
                     else f"{report.slots_committed} slots committed in the journal")
            typer.echo(f"audit passed: {report.rows} journal rows, {report.signed_actions} signed actions"
                       f"{readings}, {slots}, {report.trades_replayed} trades replayed")
            for note in report.notes:
                typer.echo(f"note: {note}")
        else:
            typer.echo(f"audit FAILED: {report.error}", err=True)
        if prove is not None:
            try:
                typer.echo(json.dumps(prove_trade(journal, chain, prove), indent=1))
            except KeyError as exc:
                typer.echo(f"--prove: {exc.args[0]}", err=True)
                raise typer.Exit(2) from exc
    finally:
        journal.close()
        if chain is not None:
            chain.close()
    if not report.ok:
        raise typer.Exit(1)
