"""Small builders shared by the provenance tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from p2penergy.market import Tag, Trade

TZ = ZoneInfo("Asia/Tokyo")
T0 = datetime(2020, 8, 1, 10, 0, tzinfo=TZ)
SLOT = timedelta(minutes=30)


def slot(i: int) -> tuple[datetime, datetime]:
    """Start and end of the i-th 30-minute slot after 2020-08-01 10:00 JST."""
    return T0 + i * SLOT, T0 + (i + 1) * SLOT


def trade(seller: str, buyer: str, energy_wh: int, tag: Tag | None = None, *, start: datetime = T0,
          trade_id: str = "t1", preference_level: int = 0) -> Trade:
    return Trade(
        trade_id=trade_id, slot_start=start, buy_id=f"b-{trade_id}", sell_id=f"s-{trade_id}", buyer=buyer,
        seller=seller, energy_wh=energy_wh, price_per_kwh=Decimal("20"), premium_per_kwh=Decimal(0),
        tag=tag if tag is not None else Tag(), preference_level=preference_level,
        buyer_limit_per_kwh=Decimal("25"), seller_limit_per_kwh=Decimal("10"),
    )
