"""Dependencies injected into the routers: the live exchange, the caller's identity, limits."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from p2penergy.ledger.signing import SignatureError, micros, read_digest, recover
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


ADMIN_TOKEN = HTTPBearer(scheme_name="adminToken", auto_error=False,
                         description="The operator's admin token (`--admin-token`, `P2PENERGY_ADMIN_TOKEN`): "
                                     "`Authorization: Bearer <token>`.")
SIGNED_READ = APIKeyHeader(
    name="X-Signature", scheme_name="signedRead", auto_error=False,
    description="A private read signed by the participant: the EIP-712 struct `Read(address participant,string path,"
                "string query,uint64 timestampUs)` in the domain of `GET /api/market`, over the request's path and "
                "raw query string, with `X-Participant` (the id) and `X-Timestamp` (Unix microseconds on the "
                "exchange's clock) beside `X-Signature` (65-byte r||s||v hex). docs/service.md, "
                "'API for third parties'.")


async def admin(request: Request,
                credentials: Annotated[HTTPAuthorizationCredentials | None, Security(ADMIN_TOKEN)] = None) -> None:
    """Only the bearer of the service's admin token."""
    token = request.app.state.settings.admin_token
    given = credentials.credentials.strip() if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ServiceError(401, "authorization", "'Bearer <admin token>' is required (the operator's requests: "
                                                 "registration, everyone's bills)")


async def reader(request: Request,
                 x_participant: Annotated[str | None, Header(description="the reader's participant id")] = None,
                 x_timestamp: Annotated[str | None, Header(
                     description="the read's time, Unix microseconds on the exchange's clock (signed as "
                                 "`timestampUs`)")] = None,
                 x_signature: Annotated[str | None, Security(SIGNED_READ)] = None) -> str:
    """The participant whose signed ``Read`` (EIP-712, see service.auth) authenticates this private read."""
    ex: LiveExchange = request.app.state.live
    if not (x_participant and x_timestamp and x_signature):
        raise ServiceError(401, "X-Signature", "private reads need X-Participant, X-Timestamp and X-Signature")
    if not x_timestamp.isdigit() or len(x_timestamp) > 19:
        raise ServiceError(401, "X-Timestamp", "Unix microseconds on the exchange's clock (a whole number)")
    ts = int(x_timestamp)
    now = ex.clock.now()
    if abs(micros(now) - ts) > ex.max_skew // timedelta(microseconds=1):
        raise ServiceError(401, "X-Timestamp", f"within {ex.max_skew} of the exchange's clock {now.isoformat()}")
    if x_participant not in ex.addresses:
        raise ServiceError(401, "X-Participant", f"{x_participant!r} is not registered")
    signer = ex.verifier.address(x_participant)
    try:
        sig = bytes.fromhex(x_signature.removeprefix("0x"))
        who = recover(read_digest(ex.domain, signer, request.url.path, request.url.query, ts), sig)
    except (ValueError, SignatureError) as exc:
        raise ServiceError(401, "X-Signature", str(exc)) from exc
    if who != signer:
        raise ServiceError(401, "X-Signature", f"not made by {x_participant!r}'s registered key over this Read "
                                               "(path, query string, timestamp)")
    if ex.charge is not None:
        ex.charge(x_participant)  # the verified participant's budget, as every signed request
    return x_participant


Reader = Annotated[str, Depends(reader)]
