"""Slot identity and gate arithmetic across both 2020 DST changes on the shipped euro market.

``markets/eu-15min.toml`` names its zone (Europe/Berlin): on 29 March 2020 the clocks jump
from 02:00 to 03:00 (a 92-slot day), on 25 October 2020 they go back from 03:00 to 02:00,
so the wall times 02:00–02:59 happen twice (a 100-slot day). Every slot is identified by
its UTC start; each has its own book and its own gate.
"""

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from p2penergy.market import CallMarket, ContinuousMarket, MarketSettings, Order, OrderError, OrderRejected, Tag

EU = MarketSettings.from_toml(Path(__file__).parents[2] / "markets" / "eu-15min.toml")
ZONE = ZoneInfo(EU.timezone)
SPRING, AUTUMN = date(2020, 3, 29), date(2020, 10, 25)


def local(d: date, hour: int, minute: int, fold: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=ZONE, fold=fold)


# the two autumn 02:15 slots: first at 00:15 UTC (summer time), second at 01:15 UTC (winter time)
# (Python never finds a local time in a repeated hour equal to a datetime of another zone,
# PEP 495, so results are compared with the UTC instants)
FIRST, SECOND = local(AUTUMN, 2, 15), local(AUTUMN, 2, 15, fold=1)
FIRST_UTC, SECOND_UTC = datetime(2020, 10, 25, 0, 15, tzinfo=UTC), datetime(2020, 10, 25, 1, 15, tzinfo=UTC)


def order(oid: str, side: str, slot: datetime, now: datetime, price: str = "0.10", wh: int = 500) -> Order:
    return Order(oid, f"p-{oid}", side, slot, wh, Decimal(price), now, Tag.of({"source": "solar"}) if side == "sell"
                 else Tag())


def test_the_file_names_a_zone_with_both_changes():
    assert EU.timezone == "Europe/Berlin" and EU.slot_minutes == 15
    assert (FIRST.astimezone(UTC), SECOND.astimezone(UTC)) == (FIRST_UTC, SECOND_UTC)


@pytest.mark.parametrize(("day", "count"), [(SPRING, 92), (AUTUMN, 100), (date(2020, 10, 24), 96)])
def test_days_have_92_96_100_slots_each_a_distinct_utc_instant(day, count):
    slots = EU.slots_of_day(day)
    assert len(slots) == count == len(set(slots))
    assert all(s.tzinfo is UTC for s in slots)
    assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(slots))
    assert slots[0] == local(day, 0, 0).astimezone(UTC)
    assert slots[-1] + EU.slot_length == local(day + timedelta(days=1), 0, 0).astimezone(UTC)
    assert all(EU.is_slot_start(s) and EU.slot_start_of(s + timedelta(minutes=7)) == s for s in slots)
    assert len({s.isoformat() for s in slots}) == count


@pytest.mark.parametrize("day", [SPRING, AUTUMN])
def test_every_gate_opens_a_day_before_and_closes_ten_minutes_after_the_start(day):
    for s in EU.slots_of_day(day):
        assert EU.gate_open(s) == s - timedelta(days=1)  # 24 h of real time, not of wall time
        assert EU.gate_close(s) == s + timedelta(minutes=10)
        assert EU.gate_open(s) < s < EU.gate_close(s)


def test_the_two_autumn_0215_slots_are_distinct_with_their_own_gates():
    assert EU.is_slot_start(FIRST) and EU.is_slot_start(SECOND)
    assert EU.slot_start_of(FIRST) != EU.slot_start_of(SECOND)
    assert EU.slot_start_of(local(AUTUMN, 2, 20, fold=1)) == SECOND_UTC
    assert EU.slot_start_of(local(AUTUMN, 2, 20)) == FIRST_UTC
    assert EU.gate_close(FIRST) == datetime(2020, 10, 25, 0, 25, tzinfo=UTC)
    assert EU.gate_close(SECOND) == datetime(2020, 10, 25, 1, 25, tzinfo=UTC)
    assert EU.gate_is_open(SECOND, local(AUTUMN, 2, 20, fold=1))  # the second 02:20, before its gate closes
    assert not EU.gate_is_open(FIRST, local(AUTUMN, 2, 20, fold=1))
    assert EU.gate_is_open(FIRST, local(AUTUMN, 2, 20))


@pytest.mark.parametrize("kind", [ContinuousMarket, CallMarket])
def test_exchange_keeps_two_books_for_the_two_autumn_0215_slots(kind):
    m = kind(EU)
    before = local(AUTUMN, 1, 0)
    assert m.submit(order("s1", "sell", FIRST, before, "0.10")) == []
    assert m.submit(order("s2", "sell", SECOND, before, "0.20")) == []
    # a buy for the second slot at 0.15 must not take the first slot's cheaper energy
    assert m.submit(order("b2", "buy", SECOND, before, "0.15")) == []
    assert m.remaining_wh("s1") == 500 and m.remaining_wh("b2") == 500
    first = m.close(FIRST)
    assert first.slot_start == FIRST_UTC and [o.order_id for o, _ in first.unfilled] == ["s1"]
    # the second 02:15's book is still open after the first one closed (00:25 UTC) ...
    made = m.submit(order("b3", "buy", SECOND, local(AUTUMN, 2, 14, fold=1), "0.20", wh=200))
    assert sum(t.energy_wh for t in made) == (200 if kind is ContinuousMarket else 0)
    # ... and takes orders until 01:25 UTC (the second 02:25), not after
    with pytest.raises(OrderRejected, match="submitted_at"):
        m.submit(order("late", "buy", SECOND, local(AUTUMN, 2, 25, fold=1)))
    second = m.close(SECOND)
    assert second.slot_start == SECOND_UTC
    assert sum(t.energy_wh for t in (*made, *second.trades)) == 200
    assert all(t.slot_start == SECOND_UTC for t in (*made, *second.trades))
    assert {o.order_id for o, _ in second.unfilled} == {"s2", "b2"}
    # closing one does not close the other: the first is closed, a late order for it is refused
    with pytest.raises(OrderRejected):
        m.submit(order("late1", "sell", FIRST, local(AUTUMN, 2, 0, fold=1)))


def test_cda_trades_of_the_two_autumn_slots_carry_distinct_utc_slot_starts():
    m = ContinuousMarket(EU)
    before = local(AUTUMN, 1, 0)
    m.submit(order("s1", "sell", FIRST, before, "0.10"))
    m.submit(order("s2", "sell", SECOND, before, "0.10"))
    t1 = m.submit(order("b1", "buy", FIRST, before, "0.10"))
    t2 = m.submit(order("b2", "buy", SECOND, before, "0.10"))
    assert [t.sell_id for t in t1] == ["s1"] and [t.sell_id for t in t2] == ["s2"]
    assert t1[0].slot_start != t2[0].slot_start
    assert (t1[0].slot_start.isoformat(), t2[0].slot_start.isoformat()) == (
        "2020-10-25T00:15:00+00:00", "2020-10-25T01:15:00+00:00")
    assert m.book(SECOND).slot_start == t2[0].slot_start and m.book(FIRST).slot_start == t1[0].slot_start


def test_orders_are_keyed_by_their_utc_instant_whatever_offset_they_are_written_in():
    m = ContinuousMarket(EU)
    written = datetime.fromisoformat("2020-10-25T02:15:00+01:00")  # the second 02:15, as a client writes it
    m.submit(order("s", "sell", written, local(AUTUMN, 1, 0)))
    trades = m.submit(order("b", "buy", SECOND, local(AUTUMN, 1, 0)))
    assert [t.sell_id for t in trades] == ["s"]
    assert m.submit(order("b1", "buy", FIRST, local(AUTUMN, 1, 0))) == []


def test_no_book_for_the_skipped_spring_hour():
    skipped = local(SPRING, 2, 15)  # does not exist: 01:59 CET is followed by 03:00 CEST
    assert not EU.is_slot_start(skipped)
    with pytest.raises(OrderError) as info:
        order("x", "sell", skipped, local(SPRING, 1, 0))
    assert info.value.field == "slot_start" and "2020-03-29T02:15" in str(info.value)
    slots = EU.slots_of_day(SPRING)
    assert local(SPRING, 1, 45) in slots and local(SPRING, 3, 0) in slots
    assert [s for s in slots if s.astimezone(ZONE).hour == 2] == []
    assert EU.slot_start_of(local(SPRING, 1, 45).astimezone(UTC) + timedelta(minutes=15)) == local(SPRING, 3, 0)
    with pytest.raises(OrderError, match="skipped"):  # wall-clock arithmetic lands in the gap
        EU.slot_start_of(local(SPRING, 1, 45) + timedelta(minutes=15))
    # the 01:45 slot's gate closes 10 minutes after it starts (01:55 CET), the next slot is 03:00 CEST
    assert EU.gate_close(local(SPRING, 1, 45)) == datetime(2020, 3, 29, 0, 55, tzinfo=UTC)


def test_spring_slots_trade_across_the_jump():
    m = ContinuousMarket(EU)
    now = local(SPRING, 1, 50)  # 00:50 UTC
    three = local(SPRING, 3, 0)  # 01:00 UTC, the slot right after 01:45 CET
    m.submit(order("s", "sell", three, now))
    assert [t.energy_wh for t in m.submit(order("b", "buy", three, now))] == [500]
    closed = m.close(local(SPRING, 1, 45))
    assert closed.unfilled == () and m.remaining_wh("s") == 0


def test_times_in_a_gap_are_refused_with_the_field_named():
    with pytest.raises(OrderError) as info:
        order("x", "sell", local(SPRING, 3, 0), local(SPRING, 2, 30))
    assert info.value.field == "submitted_at"


def test_tokyo_market_unchanged():
    s = MarketSettings.demonstration()
    tokyo = ZoneInfo("Asia/Tokyo")
    slots = s.slots_of_day(date(2020, 8, 3))
    assert len(slots) == 48 and slots[0] == datetime(2020, 8, 3, tzinfo=tokyo)
    assert s.gate_close(datetime(2020, 8, 3, 12, 0, tzinfo=tokyo)) == datetime(2020, 8, 3, 12, 20, tzinfo=tokyo)
