"""The FastAPI application of the live exchange: :func:`create_app` builds everything.

Routers: orders (submit, cancel, mine), market (public data and the event stream),
participants (registration, meters, my bill and certificates), and the dashboard. A
background thread closes each slot's book when its gate closes on the service's clock.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse

from p2penergy.ledger.commit_queue import Backoff
from p2penergy.ledger.keys import operator_key
from p2penergy.market import MarketSettings
from p2penergy.market.book import SiteLimitMap
from p2penergy.network.from_scenario import scenario_feeder, scenario_market_limits
from p2penergy.service import routes_account, routes_market, routes_orders
from p2penergy.service.billing import contracts_of
from p2penergy.service.clock import MarketClock
from p2penergy.service.commit import GroupCommit
from p2penergy.service.limits import RateLimiter
from p2penergy.service.live import LiveExchange, ServiceError
from p2penergy.service.meters import meter_bounds_of
from p2penergy.service.models import SignedOrderIn
from p2penergy.service.provenance import pv_devices_of
from p2penergy.service.routes_orders import accept_order
from p2penergy.service.settings import ServiceSettings

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: request bodies above ``max_bytes`` get 413 before any handler runs.

    A declared ``Content-Length`` is checked at once; a chunked body is read up to the limit
    and handed on in one piece (so the limit also holds without a declared length).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = _problem(413, "body", f"at most {self.max_bytes} bytes")
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await too_big(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await too_big(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        await self.app(scope, _replaying(b"".join(chunks), receive), send)


def _problem(status: int, field: str, message: str) -> JSONResponse:
    return JSONResponse({"field": field, "message": message}, status_code=status)


def problem_of(exc: ServiceError) -> JSONResponse:
    """The answer to a refusal: its ``Problem``, and ``Retry-After`` on a 429."""
    response = _problem(exc.status, exc.field, exc.message)
    if exc.retry_after_s is not None:  # whole seconds (RFC 9110), rounded up; the message is exact
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return response


def _json_content(scope: Scope) -> bool:
    """Whether FastAPI would read the request's body as JSON: no content type, or ``application/json``."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.split(b";")[0].strip().lower() == b"application/json"
    return True


def _replaying(body: bytes, receive: Any) -> Any:
    """An ASGI ``receive`` that hands the app ``body`` (already read by a middleware) as one
    message, then passes on to the real ``receive`` (a client's disconnect)."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class OrderFastPath:
    """ASGI middleware: a well-formed ``POST /api/orders`` goes straight to
    :func:`~p2penergy.service.routes_orders.accept_order`, without the router, its dependency
    resolution and its response validation (together about as much CPU as the exchange's own work
    per order: ``benchmarks/bench_service.py``). The same handling as the route: a body the model
    refuses, or anything but that method and path, goes on to FastAPI unchanged (the body replayed),
    so every refusal is FastAPI's as before; the answer is the route's ``OrderAck``, serialised by
    pydantic. It sits inside :class:`BodyLimit`."""

    def __init__(self, app: ASGIApp, live: LiveExchange, commits: GroupCommit) -> None:
        self.app = app
        self.live = live
        self.commits = commits

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/api/orders":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:  # what FastAPI does with a JSON body: json.loads, then the model in Python mode
            if not _json_content(scope):
                raise ValueError("not a JSON body")
            parsed = SignedOrderIn.model_validate(json.loads(body))
        except ValueError:  # json's, pydantic's ValidationError: FastAPI answers it, as for any request
            await self.app(scope, _replaying(body, receive), send)
            return
        try:
            ack = await accept_order(parsed, self.live, self.commits)
        except ServiceError as exc:
            await problem_of(exc)(scope, receive, send)
            return
        content = ack.__pydantic_serializer__.to_json(ack)
        await send({"type": "http.response.start", "status": 201, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})


def scenario_of(settings: ServiceSettings) -> Any:
    """The scenario (the shipped one unless ``settings.scenario``): its market and contracts."""
    from p2penergy.scenario.load import load_scenario

    return load_scenario(settings.scenario)


def market_settings_of(settings: ServiceSettings, scenario: Any) -> MarketSettings:
    market = scenario.market
    if settings.mechanism:
        market = dataclasses.replace(market, mechanism=settings.mechanism)
    return market


def site_limits_of(scenario: Any, market: MarketSettings) -> SiteLimitMap | None:
    """The CDA's per-site limits per slot when the scenario's ``[network] market_limits`` is on (None
    otherwise): the same limits ``p2penergy simulate`` matches within (``network/from_scenario.py``)."""
    if scenario.network is None or not scenario.network.market_limits or market.mechanism != "cda":
        return None  # no feeder to build (a feeder file is read only when it is needed)
    return scenario_market_limits(scenario, scenario_feeder(scenario), market.mechanism, market.slot_minutes)


def clock_of(settings: ServiceSettings, market: MarketSettings) -> MarketClock:
    if settings.clock == "real":
        return MarketClock.real()
    start = settings.clock_start or market.slot_start_of(datetime.now(UTC))
    return MarketClock.accelerated(start, settings.speed)


def create_app(settings: ServiceSettings, market: MarketSettings | None = None) -> FastAPI:
    """Open the journal (rebuilding the books if it has rows) and build the app."""
    scenario = scenario_of(settings)
    market = market or market_settings_of(settings, scenario)
    clock = clock_of(settings, market)
    keystore, password_file = settings.operator_keystore, settings.operator_password_file
    operator = operator_key(Path(keystore) if keystore else None, Path(password_file) if password_file else None)
    try:
        backoff = Backoff(settings.commit_retry_first_s, settings.commit_retry_factor, settings.commit_retry_max_s)
    except ValueError as exc:
        raise ValueError(f"commit_retry_{exc}") from exc
    ex = LiveExchange.open(settings.db_url, market, clock, chain_url=settings.chain_url, chain_id=settings.chain_id,
                           seed=settings.seed, operator=operator, backoff=backoff,
                           meter_grace=timedelta(seconds=settings.meter_grace_s),
                           meter_bounds=meter_bounds_of(scenario), site_limits=site_limits_of(scenario, market))
    ex.contracts = contracts_of(scenario)
    ex.pv_devices = pv_devices_of(scenario)
    ex.commit_pending()  # what a stop or crash left unsent: queued again (checked against the chain first)
    ex.max_skew = timedelta(seconds=settings.max_skew_s * ex.clock.speed)  # the journal's clock after a restart
    stop = threading.Event()

    def ticker() -> None:
        while not stop.wait(settings.tick_s):
            try:
                ex.close_due()  # never waits for the chain (commitments go to the chain-write queue)
            except ServiceError:
                continue  # journal unavailable: the next tick retries
            except Exception as exc:  # anything else: say so, and keep closing slots
                print(f"p2penergy serve: slot closer: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = threading.Thread(target=ticker, name="slot-closer", daemon=True)
        thread.start()
        try:
            yield
        finally:
            app.state.stopping = True
            stop.set()
            thread.join(timeout=5)
            ex.stop_chain_writes()
            ex.journal.close()

    # for generated clients (tests/service/test_generated_client.py): one schema per model, not an input and
    # an output variant under one name, and each operation's id is its handler's name (``submit_order``)
    app = FastAPI(title="p2penergy exchange", version="2", lifespan=lifespan, separate_input_output_schemas=False,
                  generate_unique_id_function=lambda route: route.name,
                  description="Live P2P electricity exchange: signed tagged orders, per-slot books, "
                              "public depth, trades and prices, private orders, bills and certificates.\n\n"
                              "Every signed request is an EIP-712 typed struct in the domain `GET /api/market` "
                              "announces (its `eip712_types` list each struct): a body's `signature` signs the "
                              "struct named by the operation's `x-eip712-primary-type`; private reads use the "
                              "`signedRead` scheme. Canonical forms, the nonce rule, the clock rule and test "
                              "vectors: docs/service.md, 'API for third parties'. Every refusal answers a "
                              "`Problem` (`field`, `message`).")
    app.state.live = ex
    app.state.settings = settings
    app.state.commits = GroupCommit(ex)
    limiter = RateLimiter(settings.rate_per_s, settings.burst, "participant")
    ex.charge = limiter.take  # every signed request, once its signature is verified (service/limits.py)
    app.state.limiter = limiter
    app.state.read_limiter = RateLimiter(settings.read_rate_per_s, settings.read_burst, "client address")
    app.state.stopping = False

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return problem_of(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        return _problem(422, ".".join(loc) or "body", str(first.get("msg", "invalid")))

    app.include_router(routes_orders.router)
    app.include_router(routes_market.router)
    app.include_router(routes_account.router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        html = resources.files("p2penergy.service").joinpath("dashboard.html").read_text(encoding="utf-8")
        return HTMLResponse(html)

    @app.get("/health", tags=["market"])
    async def health() -> dict[str, Any]:
        """Up; with a chain, the commit lag: slots closed but not yet committed on chain, the oldest of
        them, the last committed, queued writes, consecutive failures, the last error and when the next
        attempt is due (``commits`` is null without a chain)."""
        return {"status": "ok", "commits": ex.commit_lag()}

    app.add_middleware(OrderFastPath, live=ex, commits=app.state.commits)  # type: ignore[arg-type]
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)  # type: ignore[arg-type]  # outermost
    return app
