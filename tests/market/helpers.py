"""Small builders shared by the market tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from p2penergy.market import Order, Requirement, Tag

TOKYO = ZoneInfo("Asia/Tokyo")
SLOT = datetime(2020, 8, 3, 12, 0, tzinfo=TOKYO)
T0 = SLOT - timedelta(hours=2)


def at(minutes: int) -> datetime:
    """A submission time ``minutes`` after T0 (inside the gate of SLOT)."""
    return T0 + timedelta(minutes=minutes)


def sell(oid: str, wh: int, price: str, t: int = 0, who: str | None = None, slot: datetime = SLOT,
         **attrs: str) -> Order:
    return Order(oid, who or f"p-{oid}", "sell", slot, wh, Decimal(price), at(t), Tag.of(attrs))


def buy(oid: str, wh: int, price: str, t: int = 0, who: str | None = None, slot: datetime = SLOT,
        reqs: tuple[Requirement, ...] = ()) -> Order:
    return Order(oid, who or f"p-{oid}", "buy", slot, wh, Decimal(price), at(t), requirements=reqs)


def req(premium: str = "0", **match: str | list[str]) -> Requirement:
    return Requirement.of(match, premium)
