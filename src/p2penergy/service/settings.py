"""Settings of the live exchange service (environment ``P2PENERGY_*`` or arguments).

Nothing is built at import time: :func:`p2penergy.service.app.create_app` builds the
exchange, journal and chain from a :class:`ServiceSettings`.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from p2penergy.ledger.commit_queue import RETRY_FACTOR, RETRY_FIRST_S, RETRY_MAX_S


class ServiceSettings(BaseSettings):
    """What one service instance runs.

    ``db_url``: the journal (SQLite file by default; ``postgresql+psycopg://...``).
    ``chain_url``: a JSON-RPC node to commit each closed slot to (none: journal only); it needs the
    contract operator's own key: ``operator_keystore`` (an encrypted Ethereum JSON keystore, its
    password in ``operator_password_file`` or ``$P2PENERGY_OPERATOR_PASSWORD``) or
    ``$P2PENERGY_OPERATOR_KEY`` (see ``p2penergy.ledger.keys``).
    ``clock``: ``real`` (wall time) or ``accelerated`` (market time starts at
    ``clock_start`` and runs ``speed`` times faster than wall time; survives restarts).
    ``admin_token``: bearer token that may register participants (default: a random one, printed by
    ``p2penergy serve``).
    ``commit_retry_first_s`` / ``commit_retry_factor`` / ``commit_retry_max_s``: backoff of chain writes
    while the node does not answer (see ``ledger/commit_queue.py``).
    ``rate_per_s`` / ``burst``: token bucket of signed requests per participant (charged once the
    signature is verified). ``read_rate_per_s`` / ``read_burst``: token bucket of public reads per
    client address (see ``service/limits.py``).
    ``max_body_bytes``: larger request bodies get 413. ``max_skew_s``: how far (wall
    seconds, scaled by the clock's speed) a signed time (an action's, a read's) may be from the exchange's clock.
    ``meter_grace_s``: market seconds after a slot's end that its meter readings are awaited
    before the slot is settled and committed (see ``service/live.py``).
    """

    model_config = SettingsConfigDict(env_prefix="P2PENERGY_", extra="forbid")

    scenario: str | None = None
    db_url: str = "sqlite:///p2penergy-service.sqlite"
    chain_url: str | None = None
    operator_keystore: str | None = None
    operator_password_file: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    clock: Literal["real", "accelerated"] = "real"
    speed: float = Field(60.0, gt=0)
    clock_start: datetime | None = None
    admin_token: str = Field(default_factory=lambda: secrets.token_urlsafe(24), min_length=8)
    mechanism: str | None = None
    chain_id: int = Field(31337, ge=1)
    rate_per_s: float = Field(500.0, gt=0)
    burst: int = Field(1000, ge=1)
    # public reads per client address (assumption: the dashboard polls ~6 endpoints a second and an
    # agent reads the depth of its horizon's slots each replan; 200/s leaves room for a gateway running
    # several agents and caps one poller at ~5 % of the ~4,000 req/s the service answers /health with)
    read_rate_per_s: float = Field(200.0, gt=0)
    read_burst: int = Field(400, ge=1)
    max_body_bytes: int = Field(16_384, ge=256)
    max_skew_s: float = Field(30.0, gt=0)
    tick_s: float = Field(0.25, gt=0)
    commit_retry_first_s: float = Field(RETRY_FIRST_S, gt=0)
    commit_retry_factor: float = Field(RETRY_FACTOR, ge=1)
    commit_retry_max_s: float = Field(RETRY_MAX_S, gt=0)
    meter_grace_s: float = Field(900.0, ge=0)
    seed: int = 0

    @field_validator("clock_start")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("clock_start: a timezone-aware ISO 8601 datetime")
        return value
