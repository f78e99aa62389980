"""nMAE and the report table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from p2penergy.agents.evaluation import day_ahead_issues, intraday_issues, nmae, nmae_table
from p2penergy.agents.forecast import SameSlotYesterday, SevenDayMean

from .synthetic_community import TZ


def test_nmae_by_hand() -> None:
    # |1-2| + |2-2| + |3-2| = 2 over 2 + 2 + 2 = 6
    assert nmae(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])) == 2 / 6
    assert math.isnan(nmae(np.zeros(3), np.zeros(3)))


def test_issue_schedules() -> None:
    start = pd.Timestamp("2020-08-01", tz=TZ).to_pydatetime()
    end = pd.Timestamp("2020-08-03", tz=TZ).to_pydatetime()
    da = day_ahead_issues(start, end, 30)
    assert [pd.Timestamp(t).strftime("%m-%d %H:%M") for t, _ in da] == ["07-31 12:00", "08-01 12:00"]
    assert all(len(h) == 48 for _, h in da)
    intra = intraday_issues(start, end, 30, every_slots=12)
    assert len(intra) == 8 and [len(h) for _, h in intra[:4]] == [48, 36, 24, 12]


def test_table_has_a_row_per_type_and_aggregate(community, weather_source) -> None:
    _, sites, types = community
    start = pd.Timestamp("2020-08-01", tz=TZ).to_pydatetime()
    end = pd.Timestamp("2020-08-04", tz=TZ).to_pydatetime()
    table = nmae_table({"yesterday": SameSlotYesterday("pv_wh"), "7d": SevenDayMean("pv_wh")}, sites, types,
                       weather_source, day_ahead_issues(start, end, 30), "pv_wh")
    # homes without PV have no PV rows; the rest have a pooled and a summed row each
    assert list(table.index) == ["home-pv", "home-pv sum", "office", "office sum", "all sum"]
    assert table.loc["home-pv", "sites"] == 4 and table.loc["all sum", "sites"] == 5
    assert (table[["yesterday", "7d"]] > 0).all().all()
