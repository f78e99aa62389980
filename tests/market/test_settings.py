import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from p2penergy.market import MarketConfigError, MarketSettings

TOKYO = ZoneInfo("Asia/Tokyo")


def test_demonstration_defaults_are_the_published_rules():
    s = MarketSettings.demonstration()
    assert (s.currency, s.slot_minutes, s.timezone) == ("JPY", 30, "Asia/Tokyo")
    slot = datetime(2020, 8, 3, 12, 0, tzinfo=TOKYO)
    # opens 24 h before the slot starts, closes 10 min before it ends (MISSION.md)
    assert s.gate_open(slot) == datetime(2020, 8, 2, 12, 0, tzinfo=TOKYO)
    assert s.gate_close(slot) == datetime(2020, 8, 3, 12, 20, tzinfo=TOKYO)
    assert s.gate_is_open(slot, datetime(2020, 8, 2, 12, 0, tzinfo=TOKYO))
    assert not s.gate_is_open(slot, datetime(2020, 8, 3, 12, 20, tzinfo=TOKYO))
    assert not s.gate_is_open(slot, datetime(2020, 8, 2, 11, 59, tzinfo=TOKYO))
    assert (s.price_min_per_kwh, s.price_max_per_kwh) == (Decimal(0), Decimal(50))


def test_euro_15_minute_market_is_only_another_file(tmp_path):
    path = tmp_path / "eu.toml"
    path.write_text(
        '[market]\ncurrency = "EUR"\nslot_minutes = 15\ntimezone = "Europe/Berlin"\n'
        'gate_open_before_start_minutes = 1440\ngate_close_before_end_minutes = 5\n'
        'price_min_per_kwh = "0"\nprice_max_per_kwh = "0.5"\nprice_tick_per_kwh = "0.0001"\n'
    )
    s = MarketSettings.from_toml(path)
    berlin = ZoneInfo("Europe/Berlin")
    assert s.currency == "EUR" and s.slot_length == timedelta(minutes=15)
    assert s.is_slot_start(datetime(2024, 5, 1, 10, 45, tzinfo=berlin))
    assert not s.is_slot_start(datetime(2024, 5, 1, 10, 40, tzinfo=berlin))
    assert s.gate_close(datetime(2024, 5, 1, 10, 45, tzinfo=berlin)) == datetime(2024, 5, 1, 10, 55, tzinfo=berlin)


def test_shipped_euro_market_file_loads():
    from pathlib import Path

    s = MarketSettings.from_toml(Path(__file__).parents[2] / "markets" / "eu-15min.toml")
    assert (s.currency, s.slot_minutes) == ("EUR", 15)


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"currency": "yen"}, "currency"),
        ({"slot_minutes": 7}, "slot_minutes"),
        ({"slot_minutes": "30"}, "slot_minutes"),
        ({"price_max_per_kwh": "-1"}, "price_max_per_kwh"),
        ({"price_min_per_kwh": "0.005"}, "price_min_per_kwh"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"mechanism": "dutch"}, "mechanism"),
        ({"colour": "blue"}, "colour"),
        ({"gate_close_before_end_minutes": -5}, "gate_close_before_end_minutes"),
    ],
)
def test_bad_settings_name_the_field(table, field):
    with pytest.raises(MarketConfigError) as info:
        MarketSettings.from_mapping(table)
    assert info.value.field == field
    assert field in str(info.value)


def test_round_trip_through_mapping():
    s = MarketSettings.demonstration()
    assert MarketSettings.from_mapping(s.to_mapping()) == s


def test_tradable_slots_are_the_calendar_of_open_gates():
    m = MarketSettings.demonstration()
    tokyo = ZoneInfo("Asia/Tokyo")
    at = datetime(2020, 8, 3, 9, 5, tzinfo=tokyo)  # the 09:00 slot's gate closes at 09:20
    slots = m.tradable_slots(at)
    assert slots[0] == datetime(2020, 8, 3, 9, 0, tzinfo=tokyo) and slots[-1] == datetime(2020, 8, 4, 9, 0, tzinfo=tokyo)
    assert len(slots) == 49 and all(m.gate_is_open(s, at) for s in slots)
    later = m.tradable_slots(at + timedelta(minutes=20))  # 09:25: the 09:00 slot has closed
    assert later[0] == datetime(2020, 8, 3, 9, 30, tzinfo=tokyo) and len(later) == 48
    assert not m.gate_is_open(later[0] - m.slot_length, at + timedelta(minutes=20))


def test_tradable_slots_hold_both_0215s_of_an_autumn_night():
    from pathlib import Path

    eu = MarketSettings.from_toml(Path(__file__).parents[2] / "markets" / "eu-15min.toml")
    berlin = ZoneInfo("Europe/Berlin")
    slots = eu.tradable_slots(datetime(2020, 10, 24, 12, 0, tzinfo=berlin))
    local = [s.astimezone(berlin).strftime("%H:%M%z") for s in slots]
    assert "02:15+0200" in local and "02:15+0100" in local
    assert all(b - a == eu.slot_length for a, b in itertools.pairwise(slots))
