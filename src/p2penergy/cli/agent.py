"""``p2penergy agent`` and ``p2penergy demo --live``: the simulation's agents against a live service."""

from __future__ import annotations

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
    import threading

    import httpx

    from p2penergy.ledger.keys import Key
    from p2penergy.scenario.load import ScenarioError, load_scenario
    from p2penergy.service.live_agents import fit_kit, make_runners, prepare_community, run

    try:
        load_scenario(scenario)  # a bad file is named before the service is asked anything
    except ScenarioError as exc:
        raise fail(str(exc)) from exc
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
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port of the service (0: a free one).")] = 8000,
    db: Annotated[str | None, typer.Option(help="Journal URL (default: a new SQLite file in a temp folder).")] = None,
    speed: Annotated[float, typer.Option(help="Market seconds per wall second.")] = 300.0,
    day: Annotated[str | None, typer.Option(help="Market date to start (default: the report month's 2nd day).")]
    = None,
    forecaster: Annotated[str, typer.Option(help="gbm | seven-day-mean")] = "gbm",
    slots: Annotated[int | None, typer.Option(min=1, help="Stop after N slots (default: until Ctrl-C).")] = None,
    duration: Annotated[float | None, typer.Option(
        metavar="MINUTES", help="Stop after MINUTES of trading (wall clock; fractions allowed), close and commit "
                                "what is due and exit 0 (default: until Ctrl-C).")] = None,
    browser: Annotated[bool, typer.Option(help="Open the dashboard in a browser.")] = True,
) -> None:
    """A live demonstration: the exchange service and all the scenario's agents, dashboard at http://127.0.0.1:PORT/.

    It ends after --duration minutes or --slots slots (or on Ctrl-C): the agents stop, every book
    whose gate has closed is closed and what is due is committed, the journal is flushed, and the
    command prints what the journal holds (check it with ``p2penergy audit --db URL``).
    """
    if not live:
        raise fail("--live: the only demo is the live one (the simulation is `p2penergy simulate`)")
    if duration is not None and not 0 < duration < float("inf"):
        raise fail(f"--duration: minutes greater than 0 (fractions allowed), got {duration}")
    import secrets
    import tempfile
    import threading
    import webbrowser

    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    from p2penergy.cli.serve import service_settings
    from p2penergy.ledger.keys import derive_keys
    from p2penergy.scenario.load import ScenarioError, load_scenario
    from p2penergy.service.app import create_app
    from p2penergy.service.launch import ServiceThread
    from p2penergy.service.live_agents import FORECASTERS, fit_kit, make_runners, prepare_community, run

    if forecaster not in FORECASTERS:
        raise fail(f"--forecaster: one of {', '.join(FORECASTERS)}, got {forecaster!r}")
    try:
        spec = load_scenario(scenario)
        first = (datetime.fromisoformat(day) if day else datetime.combine(spec.period.report_month,
                                                                         datetime.min.time()) + timedelta(days=1))
    except ScenarioError as exc:
        raise fail(str(exc)) from exc
    except ValueError as exc:
        raise fail(f"--day: a date as YYYY-MM-DD, got {day!r}") from exc
    start = (first.replace(tzinfo=spec.market.tz) if first.tzinfo is None else first).replace(hour=6)
    token = secrets.token_hex(16)
    db_url = db or f"sqlite:///{tempfile.mkdtemp(prefix='p2penergy-demo-')}/journal.sqlite"
    try:
        shown = make_url(db_url).render_as_string(hide_password=True)  # printed: never a database password
    except ArgumentError as exc:
        raise fail(f"--db: a database URL such as sqlite:///journal.sqlite or postgresql+psycopg://..., "
                   f"got {db!r}") from exc
    settings = service_settings(scenario=str(scenario) if scenario else None, db_url=db_url, port=port,
                                clock="accelerated", speed=speed, clock_start=start, admin_token=token)
    typer.echo("preparing data and forecasters ...", err=True)
    try:
        community = prepare_community(settings.scenario, start)  # type: ignore[attr-defined]
    except ValueError as exc:
        raise fail(f"--day: {exc}") from exc
    keys = derive_keys(community.seed, list(community.participants))
    kit = fit_kit(community, list(community.participants), start, forecaster)
    try:
        app = create_app(settings)  # type: ignore[arg-type]
        service = ServiceThread(app, port=port).start()
    except (ValueError, RuntimeError) as exc:
        raise fail(str(exc).replace("db_url:", "--db:", 1).replace("port:", "--port:", 1)) from exc
    exchange = app.state.live
    try:
        url = service.url
        register(url, dict(keys), token)
        runners = make_runners(url, community, kit, dict(keys))
        typer.echo(f"dashboard: {url}/   API: {url}/docs   journal: {shown}", err=True)
        if browser:
            webbrowser.open(f"{url}/")
        stop = threading.Event()
        timer = threading.Timer(duration * 60, stop.set) if duration is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            run(runners, stop, max_slots=slots)
        except KeyboardInterrupt:
            stop.set()
        finally:
            if timer is not None:
                timer.cancel()
        now = exchange.now()
        closed = exchange.close_due(now)  # books whose gate closed since the last tick, and the commits due
        exchange.commit_pending()
        errors = sum(len(r.errors) for r in runners)
    finally:
        service.stop()  # the app's shutdown flushes and closes the journal
    typer.echo(f"stopped at market time {now.astimezone(spec.market.tz).isoformat()}: {len(closed)} books closed "
               f"at the end; {errors} agent actions refused or failed (logged, retried at their next step)",
               err=True)
    typer.echo(journal_summary(db_url))
    typer.echo(f"check it with: p2penergy audit --db {shown}")


def journal_summary(db_url: str) -> str:
    """One line: how many rows of each kind the journal at ``db_url`` holds."""
    from collections import Counter

    from p2penergy.ledger.journal import Journal

    journal = Journal(db_url)
    try:
        kinds = Counter(row.kind for row in journal.rows())
    finally:
        journal.close()
    return f"journal: {sum(kinds.values())} rows (" + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")"
