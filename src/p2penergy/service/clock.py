"""The service's market clock: wall time, or an accelerated clock that survives restarts.

An accelerated clock maps wall time to market time as
``market = start + (wall - wall_origin) * speed``; ``start`` and ``wall_origin`` are
stored in the journal's metadata, so after a crash the clock resumes where it would have
been, never going back (the exchange refuses orders whose time runs backwards through a
closed gate).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class MarketClock:
    """``speed`` market seconds per wall second from ``start`` at Unix wall time ``wall_origin``."""

    start: datetime | None = None
    wall_origin: float = 0.0
    speed: float = 1.0

    @classmethod
    def real(cls) -> MarketClock:
        return cls()

    @classmethod
    def accelerated(cls, start: datetime, speed: float, wall_origin: float | None = None) -> MarketClock:
        if start.tzinfo is None:
            raise ValueError("clock_start: a timezone-aware datetime")
        if speed <= 0:
            raise ValueError(f"speed: greater than 0, got {speed}")
        return cls(start, time.time() if wall_origin is None else wall_origin, speed)

    @property
    def is_real(self) -> bool:
        return self.start is None

    def now(self) -> datetime:
        """Market time now (aware, UTC)."""
        if self.start is None:
            return datetime.now(UTC)
        return (self.start + timedelta(seconds=(time.time() - self.wall_origin) * self.speed)).astimezone(UTC)

    def market_seconds(self, wall_seconds: float) -> float:
        return wall_seconds * self.speed

    def as_meta(self) -> dict[str, object]:
        if self.start is None:
            return {"kind": "real"}
        return {"kind": "accelerated", "start": self.start.isoformat(), "wall_origin": self.wall_origin,
                "speed": self.speed}

    @classmethod
    def from_meta(cls, meta: dict[str, object]) -> MarketClock:
        if meta.get("kind") != "accelerated":
            return cls.real()
        return cls(datetime.fromisoformat(str(meta["start"])), float(meta["wall_origin"]),  # type: ignore[arg-type]
                   float(meta["speed"]))  # type: ignore[arg-type]
