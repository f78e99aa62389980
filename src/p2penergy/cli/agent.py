"""``p2penergy agent`` and ``p2penergy demo --live``: the simulation's agents against a live service."""

from __future__ import annotations

import threading
import time
import webbrowser
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from p2penergy.cli.market import fail


def agent_command(
    site: Annotated[str, typer.Option(help="Participant id in the scenario (house-07, office, car-03, ...).")],
    url: Annotated[str, typer.Option(help="The exchange service, e.g. http://127.0.0.1:8000")],
    scenario: Annotated[Path | None, typer.Option(help="Scenario TOML (default: the shipped one).")] = None,
    key: Annotated[str | None, typer.Option(envvar="P2PENERGY_AGENT_KEY",
                                            help="Private key hex (default: derived from the scenario seed).")] = None,
    admin_token: Annotated[str | None, typer.Option(envvar="P2PENERGY_ADMIN_TOKEN",
                                                    help="Register the site's address first with this token.")] = None,
    forecaster: Annotated[str, typer.Option(help="gbm | seven-day-mean")] = "gbm",
    replan_slots: Annotated[int, typer.Option(min=1, help="Act every N slots.")] = 4,
    slots: Annotated[int | None, typer.Option(min=1, help="Stop after N slots (default: run until Ctrl-C).")] = None,
) -> None:
    """Run one site's trading agent (the simulation's agent and gateway) against the service at URL."""
    import httpx

    from p2penergy.ledger.keys import Key
    from p2penergy.service.live_agents import fit_kit, make_runners, prepare_community, run

    try:
        now_time = datetime.fromisoformat(httpx.get(f"{url.rstrip('/')}/api/market", timeout=10).json()["now"])
        community = prepare_community(str(scenario) if scenario else None, now_time)
    except (httpx.HTTPError, ValueError) as exc:
        raise fail(f"--url / --scenario: {exc}") from exc
    if site not in community.participants:
        raise fail(f"--site: one of {', '.join(community.participants)}; got {site!r}")
    k = Key.from_hex(site, key) if key else Key.derive(community.seed, site)
    if admin_token:
        register(url, {site: k}, admin_token)
    kit = fit_kit(community, [site], now_time, forecaster)
    runners = make_runners(url, community, kit, {site: k}, replan_slots=replan_slots)
    typer.echo(f"agent {site} ({k.address}) trading on {url}", err=True)
    stop = threading.Event()
    try:
        run(runners, stop, max_slots=slots)
    except KeyboardInterrupt:
        stop.set()
    bill = runners[0].access.bill()
    typer.echo(f"{site}: bought {bill['bought_wh']} Wh for {bill['paid']}, sold {bill['sold_wh']} Wh for "
               f"{bill['received']} {bill['currency']}")


def register(url: str, keys: dict[str, object], admin_token: str) -> None:
    import httpx

    with httpx.Client(base_url=url, timeout=10) as c:
        for pid, k in keys.items():
            r = c.post("/api/participants", json={"participant": pid, "address": k.address},  # type: ignore[attr-defined]
                       headers={"Authorization": f"Bearer {admin_token}"})
            if r.status_code >= 400:
                raise fail(f"registering {pid}: HTTP {r.status_code} {r.text}")


def demo_command(
    live: Annotated[bool, typer.Option("--live", help="Start the service and every agent on an accelerated clock.")]
    = False,
    scenario: Annotated[Path | None, typer.Argument(help="Scenario TOML (default: the shipped one).")] = None,
    port: Annotated[int, typer.Option(help="Port of the service.")] = 8000,
    db: Annotated[str | None, typer.Option(help="Journal URL (default: a new SQLite file in a temp folder).")] = None,
    speed: Annotated[float, typer.Option(help="Market seconds per wall second.")] = 300.0,
    day: Annotated[str | None, typer.Option(help="Market date to start (default: the report month's 2nd day).")]
    = None,
    forecaster: Annotated[str, typer.Option(help="gbm | seven-day-mean")] = "gbm",
    slots: Annotated[int | None, typer.Option(min=1, help="Stop after N slots (default: until Ctrl-C).")] = None,
    browser: Annotated[bool, typer.Option(help="Open the dashboard in a browser.")] = True,
) -> None:
    """A live demonstration: the exchange service and all the scenario's agents, dashboard at http://127.0.0.1:PORT/."""
    if not live:
        raise fail("--live: the only demo is the live one (the simulation is `p2penergy simulate`)")
    import secrets
    import tempfile

    import uvicorn

    from p2penergy.scenario.load import load_scenario
    from p2penergy.service.app import create_app
    from p2penergy.service.live_agents import fit_kit, make_runners, prepare_community, run
    from p2penergy.service.settings import ServiceSettings

    spec = load_scenario(scenario)
    tz = spec.market.tz
    first = (datetime.fromisoformat(day) if day else datetime.combine(spec.period.report_month, datetime.min.time())
             + timedelta(days=1))
    start = first.replace(tzinfo=tz) if first.tzinfo is None else first
    start = start.replace(hour=6)
    token = secrets.token_hex(16)
    folder = tempfile.mkdtemp(prefix="p2penergy-demo-")
    settings = ServiceSettings(scenario=str(scenario) if scenario else None,
                               db_url=db or f"sqlite:///{folder}/journal.sqlite", port=port, clock="accelerated",
                               speed=speed, clock_start=start, admin_token=token)
    typer.echo("preparing data and forecasters ...", err=True)
    community = prepare_community(settings.scenario, start)
    from p2penergy.ledger.keys import derive_keys

    keys = derive_keys(community.seed, list(community.participants))
    kit = fit_kit(community, list(community.participants), start, forecaster)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    register(url, dict(keys), token)
    runners = make_runners(url, community, kit, dict(keys))
    typer.echo(f"dashboard: {url}/   API: {url}/docs   journal: {settings.db_url}", err=True)
    if browser:
        webbrowser.open(f"{url}/")
    stop = threading.Event()
    try:
        run(runners, stop, max_slots=slots)
    except KeyboardInterrupt:
        stop.set()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
