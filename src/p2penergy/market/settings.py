"""Market settings: currency, slot length, gate times, price band, tick and timezone.

Nothing here is a constant of the product: the demonstration's Japanese market
(JPY, 30-min slots, gate open 24 h before the slot, close 10 min before its end,
0–50 JPY/kWh, Asia/Tokyo) is one configuration, `MarketSettings.demonstration()`.
A 15-minute euro market is another file (see ``markets/eu-15min.toml``).

Time: a slot is identified by its start **instant**, carried as an aware datetime in UTC;
every slot and gate computation is done on instants (UTC), so a zone with daylight saving
time has 92- and 100-slot days, the two autumn 02:15s are two slots with two gates, and the
skipped spring hour has no slot. The market's ``timezone`` only says where slots align
(local midnight) and which local day a slot belongs to; local time is for display,
tariffs' time bands and calendars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from p2penergy.market.errors import MarketConfigError, OrderError
from p2penergy.market.grid_fees import GridFees
from p2penergy.textfile import InputFileError, parse_toml, read_text, toml_key_line

PAY_AS_CLEAR = "pay-as-clear"
PAY_AS_BID = "pay-as-bid"
MECHANISMS = ("cda", PAY_AS_CLEAR, PAY_AS_BID)
CALENDAR_START = datetime(1970, 1, 1, tzinfo=UTC)
"""The first instant of every market's calendar: signed times are unsigned Unix seconds and
microseconds (``ledger/signing.py``), so nothing before the epoch can be signed."""
CALENDAR_END = datetime(2200, 1, 1, tzinfo=UTC)
"""The end (exclusive) of every market's calendar (assumption: no market of this code trades past
2200; far enough from ``datetime``'s year-9999 limit that slot and gate arithmetic never overflows)."""
ALLOWED_SLOT_MINUTES = (5, 10, 15, 20, 30, 60)


@dataclass(frozen=True, slots=True)
class MarketSettings:
    """Rules of one market.

    Invariants: ``price_min_per_kwh < price_max_per_kwh``, both multiples of
    ``price_tick_per_kwh``; the gate closes after it opens and not after the slot ends.
    Slots are half-open ``[start, start + slot_minutes)`` aligned to the local midnight
    of ``timezone``; slot starts and gate times are returned as UTC datetimes (the slot's
    identity), whatever zone the argument was written in.
    """

    currency: str = "JPY"
    slot_minutes: int = 30
    gate_open_before_start: timedelta = timedelta(hours=24)
    gate_close_before_end: timedelta = timedelta(minutes=10)
    price_min_per_kwh: Decimal = Decimal("0")
    price_max_per_kwh: Decimal = Decimal("50")
    price_tick_per_kwh: Decimal = Decimal("0.01")
    timezone: str = "Asia/Tokyo"
    mechanism: str = "cda"
    name: str = "higashi-fuji-2020"
    grid_fees: GridFees = field(default_factory=GridFees)
    tz: ZoneInfo = field(init=False, repr=False, compare=False)
    # the tick as a fraction (numerator, denominator) and the band in ticks: exact integer checks per order
    _tick_ratio: tuple[int, int] = field(init=False, repr=False, compare=False)
    _band_ticks: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.currency, str) and self.currency.isalpha()
                and len(self.currency) == 3 and self.currency.isupper()):
            raise MarketConfigError("currency", f"an ISO 4217 code such as JPY or EUR, got {self.currency!r}")
        if self.slot_minutes not in ALLOWED_SLOT_MINUTES:
            raise MarketConfigError("slot_minutes", f"one of {ALLOWED_SLOT_MINUTES}, got {self.slot_minutes!r}")
        if self.mechanism not in MECHANISMS:
            raise MarketConfigError("mechanism", f"one of {MECHANISMS}, got {self.mechanism!r}")
        if self.price_tick_per_kwh <= 0:
            raise MarketConfigError("price_tick_per_kwh", "a positive decimal")
        for name in ("price_min_per_kwh", "price_max_per_kwh"):
            value = getattr(self, name)
            if value % self.price_tick_per_kwh != 0:
                raise MarketConfigError(name, f"a multiple of the tick {self.price_tick_per_kwh}, got {value}")
        if not self.price_min_per_kwh < self.price_max_per_kwh:
            raise MarketConfigError("price_max_per_kwh", "greater than price_min_per_kwh")
        if self.price_min_per_kwh < 0:
            raise MarketConfigError("price_min_per_kwh", "zero or more (negative prices are not supported)")
        slot = timedelta(minutes=self.slot_minutes)
        close = self.gate_close_before_end
        if close < timedelta(0) or close >= slot + self.gate_open_before_start:
            raise MarketConfigError(
                "gate_close_before_end_minutes", "zero or more, and the gate must close after it opens"
            )
        try:
            tz = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise MarketConfigError("timezone", f"an IANA zone such as Asia/Tokyo, got {self.timezone!r}") from exc
        object.__setattr__(self, "tz", tz)
        object.__setattr__(self, "_tick_ratio", self.price_tick_per_kwh.as_integer_ratio())
        object.__setattr__(self, "_band_ticks", (self.price_to_ticks(self.price_min_per_kwh),
                                                 self.price_to_ticks(self.price_max_per_kwh)))

    # -- construction -----------------------------------------------------------------
    @classmethod
    def demonstration(cls) -> MarketSettings:
        """The published rules of the 2019–2020 Higashi-Fuji exchange."""
        return cls()

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> MarketSettings:
        """Build from a ``[market]`` table; unknown keys are rejected by name."""
        known = {
            "name", "currency", "slot_minutes", "gate_open_before_start_minutes",
            "gate_close_before_end_minutes", "price_min_per_kwh", "price_max_per_kwh",
            "price_tick_per_kwh", "timezone", "mechanism", "grid_fees",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise MarketConfigError(unknown[0], f"a market setting, one of {', '.join(sorted(known))} (it is not one)")
        kwargs: dict[str, Any] = {}
        for key in ("name", "currency", "timezone", "mechanism"):
            if key in data:
                if not isinstance(data[key], str):
                    raise MarketConfigError(key, "a string")
                kwargs[key] = data[key]
        if "slot_minutes" in data:
            kwargs["slot_minutes"] = _int(data, "slot_minutes")
        if "gate_open_before_start_minutes" in data:
            kwargs["gate_open_before_start"] = timedelta(minutes=_int(data, "gate_open_before_start_minutes"))
        if "gate_close_before_end_minutes" in data:
            kwargs["gate_close_before_end"] = timedelta(minutes=_int(data, "gate_close_before_end_minutes"))
        for key in ("price_min_per_kwh", "price_max_per_kwh", "price_tick_per_kwh"):
            if key in data:
                kwargs[key] = _decimal(data, key)
        if "grid_fees" in data:
            kwargs["grid_fees"] = GridFees.from_mapping(data["grid_fees"])
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, path: str | Path) -> MarketSettings:
        """Read the ``[market]`` table of a TOML file (or the whole file if it has none)."""
        text = read_text(path)  # not UTF-8: InputFileError naming the line
        data = parse_toml(text, path)  # not TOML: likewise
        try:
            return cls.from_mapping(data.get("market", data))
        except MarketConfigError as exc:  # a bad key or value: the file, the line that sets it, the key
            key = f"market.{exc.field}" if "market" in data else exc.field
            raise InputFileError(path, toml_key_line(text, key), exc.field, exc.allowed) from None

    def to_mapping(self) -> dict[str, Any]:
        """The inverse of :meth:`from_mapping` (JSON/TOML friendly)."""
        return {
            "name": self.name,
            "currency": self.currency,
            "slot_minutes": self.slot_minutes,
            "gate_open_before_start_minutes": int(self.gate_open_before_start.total_seconds() // 60),
            "gate_close_before_end_minutes": int(self.gate_close_before_end.total_seconds() // 60),
            "price_min_per_kwh": str(self.price_min_per_kwh),
            "price_max_per_kwh": str(self.price_max_per_kwh),
            "price_tick_per_kwh": str(self.price_tick_per_kwh),
            "timezone": self.timezone,
            "mechanism": self.mechanism,
            # only when charged: a market without fees maps (and journals) as before
            **({"grid_fees": self.grid_fees.to_mapping()} if self.grid_fees.charged else {}),
        }

    # -- slots and gates ----------------------------------------------------------------
    @property
    def slot_length(self) -> timedelta:
        return timedelta(minutes=self.slot_minutes)

    def in_calendar(self, when: datetime) -> bool:
        """True if the aware instant ``when`` lies in the market's calendar
        ``[CALENDAR_START, CALENDAR_END)`` (a naive one is not)."""
        return when.tzinfo is not None and when.utcoffset() is not None and CALENDAR_START <= when < CALENDAR_END

    def calendar_text(self) -> str:
        """The calendar's bounds, for refusals."""
        return f"from {CALENDAR_START.date().isoformat()} until before {CALENDAR_END.date().isoformat()} (UTC)"

    def is_slot_start(self, when: datetime) -> bool:
        """True if ``when`` (aware, an existing local time in the market's calendar) is a slot boundary
        in the market's zone."""
        if not self.in_calendar(when) or not exists(when):
            return False
        local = when.astimezone(self.tz)
        minutes = local.hour * 60 + local.minute
        return local.second == 0 and local.microsecond == 0 and minutes % self.slot_minutes == 0

    def slot_start_of(self, when: datetime) -> datetime:
        """The start (UTC) of the slot containing the instant ``when``.

        Slots align to the local wall clock; the floor is taken on the instant, so the
        second 02:20 of an autumn night falls in the second 02:15 slot, not the first.
        """
        instant = to_utc(when, "when")
        local = instant.astimezone(self.tz)
        into = timedelta(minutes=(local.hour * 60 + local.minute) % self.slot_minutes, seconds=local.second,
                         microseconds=local.microsecond)
        return instant - into

    def slots_of_day(self, day: date) -> tuple[datetime, ...]:
        """The slot starts (UTC) of local calendar ``day``: 92, 96 or 100 quarter hours."""
        start, end = self.day_start(day), self.day_start(day + timedelta(days=1))
        n = (end - start) // self.slot_length
        return tuple(start + k * self.slot_length for k in range(n))

    def day_start(self, day: date) -> datetime:
        """The instant (UTC) local ``day`` begins: the first slot start at or after its midnight."""
        # a midnight skipped by a clock change reads as the old offset's midnight: the change's instant
        return self.slot_start_of(datetime.combine(day, time(0), tzinfo=self.tz).astimezone(UTC))

    def local_day(self, when: datetime) -> date:
        """The local calendar day of the instant ``when``."""
        return when.astimezone(self.tz).date()

    def local(self, when: datetime) -> datetime:
        """``when`` on the market's wall clock (for display, tariffs' bands and calendars only)."""
        return to_utc(when, "when").astimezone(self.tz)

    def gate_open(self, slot_start: datetime) -> datetime:
        """When the slot's book opens (UTC): ``gate_open_before_start`` of real time before it starts."""
        return to_utc(slot_start, "slot_start") - self.gate_open_before_start

    def gate_close(self, slot_start: datetime) -> datetime:
        """When the slot's book closes (UTC): ``gate_close_before_end`` before the slot's real end."""
        return to_utc(slot_start, "slot_start") + self.slot_length - self.gate_close_before_end

    def gate_is_open(self, slot_start: datetime, now: datetime) -> bool:
        """Gate window is half-open: ``gate_open <= now < gate_close``."""
        return self.gate_open(slot_start) <= to_utc(now, "now") < self.gate_close(slot_start)

    def tradable_slots(self, now: datetime) -> tuple[datetime, ...]:
        """The slot starts (UTC) whose gate is open at ``now``, in time order: the market's calendar
        of what can be traded at that instant (whether or not any book holds an order)."""
        now = to_utc(now, "now")
        slot, out = self.slot_start_of(now), []
        while self.gate_open(slot) <= now:
            if now < self.gate_close(slot):
                out.append(slot)
            slot += self.slot_length
        return tuple(out)

    # -- prices -----------------------------------------------------------------------
    @property
    def price_decimals(self) -> int:
        """Digits after the point of the price tick (0.01 → 2, 0.0001 → 4)."""
        return tick_decimals(self.price_tick_per_kwh)

    def price_to_ticks(self, price_per_kwh: Decimal) -> int:
        """Exact conversion; the caller has checked the price lies on the tick grid."""
        return int(price_per_kwh / self.price_tick_per_kwh)

    def ticks_on_grid(self, price_per_kwh: Decimal) -> int | None:
        """The price in ticks if it is a whole number of ticks, else ``None`` (exact, in integers)."""
        num, den = price_per_kwh.as_integer_ratio()
        tick_num, tick_den = self._tick_ratio
        ticks, rest = divmod(num * tick_den, den * tick_num)
        return None if rest else ticks

    @property
    def band_ticks(self) -> tuple[int, int]:
        """``price_min_per_kwh`` and ``price_max_per_kwh`` in ticks."""
        return self._band_ticks

    def ticks_to_price(self, ticks: int) -> Decimal:
        return self.price_tick_per_kwh * ticks

    def floor_to_tick(self, price_per_kwh: Decimal) -> Decimal:
        """Round down onto the tick grid (used for midpoints)."""
        steps = (price_per_kwh / self.price_tick_per_kwh).to_integral_value(rounding=ROUND_FLOOR)
        return steps * self.price_tick_per_kwh


def tick_decimals(tick: Decimal) -> int:
    """Digits after the point of a step: a price tick (0.01 → 2, 0.0001 → 4) or a currency's
    minor unit (JPY 1 → 0)."""
    return max(0, -int(tick.normalize().as_tuple().exponent))


def to_utc(when: datetime, field: str) -> datetime:
    """The instant ``when`` as an aware UTC datetime: the one form slots and gates are keyed by.

    Comparing or hashing datetimes of a zone with daylight saving time ignores ``fold``
    (the two autumn 02:15s compare equal), and adding to them is wall-clock arithmetic;
    UTC datetimes have neither problem. Raises :class:`OrderError` naming ``field`` for a
    naive datetime or a local time that does not exist (skipped by a clock change).
    """
    tz = when.tzinfo
    if tz is UTC:
        return when
    if tz is None or when.utcoffset() is None:
        raise OrderError(field, "a timezone-aware datetime (ISO 8601 with offset)")
    if not exists(when):
        raise OrderError(field, f"a time that exists in {tz}: {when.replace(tzinfo=None).isoformat()} "
                                "is skipped by a clock change")
    return when.astimezone(UTC)


def exists(when: datetime) -> bool:
    """False for an aware local time in a gap of its zone (e.g. 02:30 on a spring-forward night)."""
    tz: tzinfo | None = when.tzinfo
    if tz is None or tz is UTC or isinstance(tz, timezone):
        return True
    back = when.astimezone(UTC).astimezone(tz)
    return back.replace(tzinfo=None) == when.replace(tzinfo=None)


def _int(data: dict[str, Any], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise MarketConfigError(key, f"a whole number, got {value!r}")
    return value


def _decimal(data: dict[str, Any], key: str) -> Decimal:
    value = data[key]
    if isinstance(value, bool):
        raise MarketConfigError(key, f"a decimal number, got {value!r}")
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise MarketConfigError(key, f"a decimal number, got {value!r}") from exc
