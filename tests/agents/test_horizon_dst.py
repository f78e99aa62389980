"""Agents' horizons ("the rest of today and tomorrow") end at the real local midnight across DST.

Europe/Berlin, 15-minute slots: 28 March 2020 has 96 slots and 29 March 92 (spring
forward); 24 October 96 and 25 October 100 (fall back).
"""

from datetime import UTC, datetime

import pandas as pd
import pytest

from p2penergy.agents.forecast import rest_of_today_and_tomorrow
from p2penergy.agents.gateway import horizon_for
from p2penergy.community import utc_starts

BERLIN = "Europe/Berlin"
INDEX = pd.date_range(pd.Timestamp("2020-03-27", tz=BERLIN), pd.Timestamp("2020-11-01", tz=BERLIN), freq="15min",
                      inclusive="left")


@pytest.mark.parametrize(("day", "slots"), [("2020-03-28", 96 + 92), ("2020-10-24", 96 + 100),
                                            ("2020-10-25", 100 + 96), ("2020-08-03", 96 + 96)])
def test_horizon_from_midnight_covers_today_and_tomorrow_exactly(day, slots):
    i = int(INDEX.get_loc(pd.Timestamp(day, tz=BERLIN)))
    horizon = horizon_for(INDEX, i, INDEX.tz)
    assert len(horizon) == slots
    end = horizon[-1] + pd.Timedelta(minutes=15)
    assert end == pd.Timestamp(day, tz=BERLIN) + pd.DateOffset(days=2)  # two calendar days later
    assert end.hour == 0 and end.minute == 0


def test_rest_of_today_and_tomorrow_from_the_second_0220():
    second = datetime(2020, 10, 25, 1, 20, tzinfo=UTC)  # 02:20 winter time, the repeated hour
    horizon = rest_of_today_and_tomorrow(second, 15, BERLIN)
    assert horizon[0] == pd.Timestamp("2020-10-25 01:15", tz="UTC")  # the second 02:15, not the first
    assert horizon[-1] == pd.Timestamp("2020-10-26 23:45", tz=BERLIN)
    assert len(horizon) == 100 - 13 + 96  # 13 slots of the 25th are over (00:00 … the second 02:00)


def test_observation_slot_starts_are_distinct_utc_instants():
    i = int(INDEX.get_loc(pd.Timestamp("2020-10-25", tz=BERLIN)))
    horizon = horizon_for(INDEX, i, INDEX.tz)
    starts = utc_starts(horizon)
    assert len(set(starts)) == len(starts) == 196 and all(s.tzinfo is UTC for s in starts)
