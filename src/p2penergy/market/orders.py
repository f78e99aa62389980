"""Orders: one side of one delivery slot, integer Wh, a limit price per kWh.

Invariants of a valid :class:`Order`: ``energy_wh > 0``; datetimes are instants, held in
UTC (an order written with any offset, or in a local zone, is converted on construction);
a sell order carries a :class:`Tag` and no requirements; a buy order carries
requirements (possibly none, meaning "any energy") and no tag. Checks that depend on
the market (price band, tick, slot alignment) are in :func:`check_against`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from operator import attrgetter

from p2penergy.market.errors import OrderError
from p2penergy.market.settings import MarketSettings, to_utc
from p2penergy.market.tags import UNTAGGED, Requirement, Tag, preference_level

BUY = "buy"
SELL = "sell"
SIDES = (BUY, SELL)


@dataclass(frozen=True, slots=True)
class Order:
    """A limit order. ``price_per_kwh`` is in the market's currency per kWh.

    For a buy order it is the limit for energy meeting its least-preferred
    requirement with zero premium; each requirement's premium adds to it.
    """

    order_id: str
    participant: str
    side: str
    slot_start: datetime
    energy_wh: int
    price_per_kwh: Decimal
    submitted_at: datetime
    tag: Tag = UNTAGGED
    requirements: tuple[Requirement, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.order_id, str) or not self.order_id:
            raise OrderError("id", "a non-empty string")
        if not isinstance(self.participant, str) or not self.participant:
            raise OrderError("participant", "a non-empty string")
        if self.side not in SIDES:
            raise OrderError("side", f"'buy' or 'sell', got {self.side!r}")
        if type(self.energy_wh) is not int or self.energy_wh <= 0:
            raise OrderError("energy_wh", f"a whole number of Wh greater than 0, got {self.energy_wh!r}")
        if not isinstance(self.price_per_kwh, Decimal) or not self.price_per_kwh.is_finite():
            raise OrderError("price_per_kwh", f"a finite Decimal, got {self.price_per_kwh!r}")
        for name in ("slot_start", "submitted_at"):
            value = getattr(self, name)
            if not isinstance(value, datetime):
                raise OrderError(name, "a timezone-aware datetime (ISO 8601 with offset)")
            if value.tzinfo is not UTC:
                object.__setattr__(self, name, to_utc(value, name))  # instants, keyed and compared in UTC
        if self.side == SELL and self.requirements:
            raise OrderError("requirements", "empty on a sell order (sell orders carry attributes)")
        if self.side == BUY and self.tag:
            raise OrderError("attributes", "empty on a buy order (buy orders carry requirements)")

    @property
    def is_buy(self) -> bool:
        return self.side == BUY

    def limit_for(self, tag: Tag) -> Decimal | None:
        """A buy order's limit price for energy with ``tag``; ``None`` if not accepted.

        The limit is ``price_per_kwh`` plus the premium of the first requirement ``tag``
        meets. For a sell order, its own price.
        """
        if self.side == SELL:
            return self.price_per_kwh
        level = preference_level(self.requirements, tag)
        if level is None:
            return None
        if not self.requirements:
            return self.price_per_kwh
        return self.price_per_kwh + self.requirements[level].premium_per_kwh


def check_against(order: Order, settings: MarketSettings) -> int:
    """Check ``order`` against the market's rules; return its price in ticks.

    Raises :class:`OrderError` naming the field. Every limit the order can reach
    (price plus any premium) must lie in the price band. The price is checked first
    (:func:`price_ticks`), then the slot (:func:`check_slot`).
    """
    ticks = price_ticks(order, settings)
    check_slot(order.slot_start, settings)
    return ticks


def price_ticks(order: Order, settings: MarketSettings) -> int:
    """Check ``order``'s price and premiums against the market's tick and band; return the
    price in ticks. Every limit the order can reach (price plus any premium) must lie in the band."""
    price = order.price_per_kwh
    ticks = checked_ticks(price, settings)
    max_ticks = settings.band_ticks[1]
    for requirement in order.requirements:
        premium = requirement.premium_per_kwh
        premium_ticks = settings.ticks_on_grid(premium)
        if premium_ticks is None:
            raise OrderError("requirements.premium_per_kwh", f"a multiple of {settings.price_tick_per_kwh}, "
                                                             f"got {premium}")
        if ticks + premium_ticks > max_ticks:
            raise OrderError(
                "requirements.premium_per_kwh",
                f"such that price + premium <= {settings.price_max_per_kwh} {settings.currency}/kWh, "
                f"got {price} + {premium}",
            )
    return ticks


def checked_ticks(price_per_kwh: Decimal, settings: MarketSettings) -> int:
    """A limit price in ticks, checked to lie on the tick grid and in the price band."""
    ticks = settings.ticks_on_grid(price_per_kwh)
    if ticks is None:
        raise OrderError("price_per_kwh", f"a multiple of {settings.price_tick_per_kwh} {settings.currency}/kWh, "
                                          f"got {price_per_kwh}")
    min_ticks, max_ticks = settings.band_ticks
    if not min_ticks <= ticks <= max_ticks:
        raise OrderError(
            "price_per_kwh",
            f"between {settings.price_min_per_kwh} and {settings.price_max_per_kwh} "
            f"{settings.currency}/kWh, got {price_per_kwh}",
        )
    return ticks


def check_slot(slot_start: datetime, settings: MarketSettings) -> None:
    """Check that ``slot_start`` is a slot of the market's calendar, on its slot grid."""
    if not settings.in_calendar(slot_start):
        raise OrderError("slot_start", f"a slot in the market's calendar, {settings.calendar_text()}; "
                                       f"got {slot_start.isoformat()}")
    if not settings.is_slot_start(slot_start):
        raise OrderError(
            "slot_start", f"the start of a {settings.slot_minutes}-minute slot in {settings.timezone}"
        )


def priority_order(orders: Sequence[Order]) -> list[Order]:
    """Submission order: by ``submitted_at``, then ``order_id``.

    Two stable sorts, by id and then by time, give the order of one sort by ``(time, id)`` at
    about two thirds of its cost (no key tuples; a book's times are mostly in order already)."""
    ranked = sorted(orders, key=attrgetter("order_id"))
    ranked.sort(key=attrgetter("submitted_at"))
    return ranked
