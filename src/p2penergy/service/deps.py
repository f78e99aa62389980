"""Dependencies injected into the routers: the live exchange, the caller's identity, limits."""

from __future__ import annotations

import hmac
import time
from typing import Annotated

from fastapi import Depends, Header, Request

from p2penergy.ledger.signing import SignatureError, recover
from p2penergy.service.auth import read_digest
from p2penergy.service.commit import GroupCommit
from p2penergy.service.live import LiveExchange, ServiceError
from p2penergy.service.settings import ServiceSettings


async def live(request: Request) -> LiveExchange:
    return request.app.state.live  # type: ignore[no-any-return]


async def settings(request: Request) -> ServiceSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


Live = Annotated[LiveExchange, Depends(live)]


async def commits(request: Request) -> GroupCommit:
    return request.app.state.commits  # type: ignore[no-any-return]


Commits = Annotated[GroupCommit, Depends(commits)]


async def public(request: Request) -> None:
    """A public read: charged to the client's network address (429 over its token bucket)."""
    client = request.client
    request.app.state.read_limiter.take(client.host if client is not None else "unknown")


async def admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """Only the bearer of the service's admin token."""
    token = request.app.state.settings.admin_token
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ServiceError(401, "authorization", "'Bearer <admin token>' is required to register participants")


async def reader(request: Request, x_participant: Annotated[str | None, Header()] = None,
           x_timestamp: Annotated[str | None, Header()] = None,
           x_signature: Annotated[str | None, Header()] = None) -> str:
    """The participant whose signed headers authenticate this private read (see service.auth)."""
    ex: LiveExchange = request.app.state.live
    if not (x_participant and x_timestamp and x_signature):
        raise ServiceError(401, "X-Signature", "private reads need X-Participant, X-Timestamp and X-Signature")
    try:
        ts = float(x_timestamp)
    except ValueError:
        raise ServiceError(401, "X-Timestamp", "Unix seconds") from None
    skew = request.app.state.settings.read_skew_s
    if not abs(time.time() - ts) <= skew:
        raise ServiceError(401, "X-Timestamp", f"within {skew:g} s of the service's wall clock")
    if x_participant not in ex.addresses:
        raise ServiceError(401, "X-Participant", f"{x_participant!r} is not registered")
    try:
        sig = bytes.fromhex(x_signature.removeprefix("0x"))
        who = recover(read_digest(ex.domain, x_participant, request.url.path, x_timestamp), sig)
    except (ValueError, SignatureError) as exc:
        raise ServiceError(401, "X-Signature", str(exc)) from exc
    if who != ex.verifier.address(x_participant):
        raise ServiceError(401, "X-Signature", f"not made by {x_participant!r}'s registered key for this path")
    if ex.charge is not None:
        ex.charge(x_participant)  # the verified participant's budget, as every signed request
    return x_participant


Reader = Annotated[str, Depends(reader)]
