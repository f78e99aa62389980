"""``p2penergy serve``: the live exchange over HTTP (FastAPI + uvicorn)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from p2penergy.cli.market import fail
from p2penergy.cli.operator import KeystoreOption, PasswordFileOption, load_operator


def service_settings(**values: object) -> object:
    """``ServiceSettings`` from options; a bad value fails naming the option."""
    from pydantic import ValidationError

    from p2penergy.service.settings import ServiceSettings

    try:
        return ServiceSettings(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(f"--{'-'.join(str(p) for p in first['loc']).replace('_', '-')}: {first['msg']}") from exc


def serve_command(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario TOML (default: shipped).")] = None,
    db: Annotated[str | None, typer.Option(help="Journal URL (default sqlite:///p2penergy-service.sqlite; "
                                                "postgresql+psycopg://...).")] = None,
    chain_url: Annotated[str | None, typer.Option(help="JSON-RPC node to commit closed slots to (needs the "
                                                       "operator's key: --operator-keystore).")] = None,
    operator_keystore: KeystoreOption = None,
    operator_password_file: PasswordFileOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    clock: Annotated[str, typer.Option(help="real | accelerated")] = "real",
    speed: Annotated[float, typer.Option(help="Accelerated clock: market seconds per wall second.")] = 60.0,
    clock_start: Annotated[str | None, typer.Option(help="Accelerated clock's start (ISO 8601 with offset).")] = None,
    admin_token: Annotated[str | None, typer.Option(envvar="P2PENERGY_ADMIN_TOKEN",
                                                    help="Bearer token that registers participants.")] = None,
    mechanism: Annotated[str | None, typer.Option(help="cda | pay-as-clear | pay-as-bid (default: scenario's)")] = None,
) -> None:
    """Run the exchange service: signed orders, per-slot books closing by the clock, dashboard at /."""
    import uvicorn

    from p2penergy.ledger.keys import describe_operator
    from p2penergy.service.app import create_app

    load_operator(operator_keystore, operator_password_file, chain_url)  # refuse at once, naming the option
    start = None
    if clock_start is not None:
        try:
            start = datetime.fromisoformat(clock_start)
        except ValueError as exc:
            raise fail(f"--clock-start: an ISO 8601 datetime with offset, got {clock_start!r}") from exc
    settings = service_settings(scenario=str(scenario) if scenario else None, db_url=db, chain_url=chain_url,
                                host=host, port=port, clock=clock, speed=speed, clock_start=start,
                                admin_token=admin_token, mechanism=mechanism,
                                operator_keystore=str(operator_keystore) if operator_keystore else None,
                                operator_password_file=str(operator_password_file) if operator_password_file else None)
    try:
        app = create_app(settings)  # type: ignore[arg-type]
    except (ValueError, RuntimeError) as exc:
        raise fail(str(exc).replace("db_url:", "--db:", 1)) from exc
    typer.echo(f"p2penergy exchange on http://{host}:{port}/ (dashboard), API docs at /docs", err=True)
    live = app.state.live
    if live.chain is not None:
        typer.echo(f"contract {live.chain.address} on {live.chain.kind}, {describe_operator(live.chain.operator)}",
                   err=True)
    if admin_token is None:
        typer.echo(f"admin token (registers participants): {settings.admin_token}", err=True)  # type: ignore[attr-defined]
    freeze_heap()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def freeze_heap() -> None:
    """Take what the service built before its first request — modules, the scenario, the books
    rebuilt from the journal: objects that live as long as the process — out of the garbage
    collector's full passes. Each full pass walks every tracked object with the event loop
    stopped: over the startup heap (~200,000 objects) it measured 0.9 s on the loaded 2-core
    machine, a stall every request in flight waits for (the p99 at 32 agents); after the freeze a
    pass walks only what came later (``benchmarks/bench_service.py``)."""
    import gc

    gc.collect()  # what is already garbage is freed, not frozen
    gc.freeze()
