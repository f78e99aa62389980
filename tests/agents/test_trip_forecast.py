"""The commuter calendar: a car's trips forecast from its own past, never from its future."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from p2penergy.agents.forecast import rest_of_today_and_tomorrow
from p2penergy.agents.plan_input import AgentInputError
from p2penergy.agents.trip_forecast import HOME, OFFICE, ROAD, CommuteCalendar, plan_view
from p2penergy.assets.car import CommuteSpec, PhvSpec, commute
from p2penergy.community import LOCATION_CODES

TOKYO = ZoneInfo("Asia/Tokyo")
INDEX = pd.date_range("2020-06-01", "2020-09-01", freq="30min", tz=TOKYO, inclusive="left")
DAYS = INDEX.normalize().unique()
BUSINESS = np.array([d.weekday() < 5 for d in DAYS])
PHV = PhvSpec()
USUAL = CommuteSpec(one_way_km=12, depart_hour=7.5)


def trips(spec: CommuteSpec, seed: int, index: pd.DatetimeIndex = INDEX) -> pd.DataFrame:
    """A car's metered history as its gateway keeps it: location codes and driving energy."""
    days = index.normalize().unique()
    frame = commute(index, np.array([d.weekday() < 5 for d in days]), spec, PHV, 30, np.random.default_rng(seed))
    codes = frame["location"].map(LOCATION_CODES).to_numpy(dtype=np.int64)
    return pd.DataFrame({"location": codes, "drive_wh": frame["drive_wh"].to_numpy()}, index=index)


def at(day: date, hour: float) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=TOKYO) + timedelta(hours=hour)


def slot_of(horizon: pd.DatetimeIndex, when: datetime) -> int:
    return int(horizon.get_loc(pd.Timestamp(when)))


def test_learns_the_commute_from_past_weeks():
    history = trips(USUAL, seed=1)
    issued = at(date(2020, 8, 3), 0)  # Monday 00:00: today a business day, tomorrow too
    horizon = rest_of_today_and_tomorrow(issued, 30)
    fc = CommuteCalendar().predict(history, issued, horizon)
    noon, night = slot_of(horizon, at(date(2020, 8, 3), 12)), slot_of(horizon, at(date(2020, 8, 3), 2))
    assert fc.p_office[noon] >= 0.85 and fc.location[noon] == OFFICE
    assert fc.p_home[night] == 1.0 and fc.location[night] == HOME
    # leaving home about 07:30 ± 15 min: the departure slots are uncertain, so planned away
    assert 0.2 < fc.p_road[slot_of(horizon, at(date(2020, 8, 3), 7.5))] < 0.9
    assert fc.location[slot_of(horizon, at(date(2020, 8, 3), 7.5))] == ROAD
    # the day's driving (24 km, 2 legs) sits in the first slots of the away blocks: what 90 % of the
    # past business days drove there, more than the mean (errands, and days of leave below it)
    day = slice(0, 48)
    leg = USUAL.one_way_km * PHV.wh_per_km
    assert 2 * leg * 0.9 < fc.expected_drive_wh[day].sum() < fc.drive_wh[day].sum() < 2 * leg * 1.6
    first_away = int(np.flatnonzero(fc.location[day] == ROAD)[0])
    assert fc.location[first_away - 1] == HOME and fc.drive_wh[first_away] >= leg
    totals = [CommuteCalendar(trip_energy_quantile=q).predict(history, issued, horizon).drive_wh[day].sum()
              for q in (0.0, 0.5, 0.9, 1.0)]
    assert totals == sorted(totals) and totals[0] < totals[-1]


def test_days_off_have_their_own_calendar():
    history = trips(USUAL, seed=2)
    issued = at(date(2020, 8, 8), 0)  # Saturday
    horizon = rest_of_today_and_tomorrow(issued, 30)
    fc = CommuteCalendar().predict(history, issued, horizon)
    assert fc.p_office.max() == 0.0  # never at the office at the weekend
    off = CommuteCalendar(days_off=frozenset({date(2020, 8, 10)}))  # Monday a holiday (e.g. Obon)
    monday = at(date(2020, 8, 10), 0)
    fc = off.predict(history, monday, rest_of_today_and_tomorrow(monday, 30))
    assert fc.p_office[:48].max() == 0.0 and fc.p_office[48 + 24] > 0.8  # Tuesday: work again


def test_never_reads_the_future():
    history = trips(USUAL, seed=3)
    issued = at(date(2020, 8, 5), 13.5)
    horizon = rest_of_today_and_tomorrow(issued, 30)
    changed = history.copy()
    future = changed.index >= pd.Timestamp(issued) - pd.Timedelta(minutes=0)
    changed.loc[future, "location"] = ROAD
    changed.loc[future, "drive_wh"] = 5000
    a = CommuteCalendar().predict(history, issued, horizon)
    b = CommuteCalendar().predict(changed, issued, horizon)
    for field in ("p_home", "p_office", "p_road", "expected_drive_wh", "location", "drive_wh"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    # the slot that is still running is not read either
    running = changed.copy()
    running.loc[pd.Timestamp(issued) - pd.Timedelta(minutes=30), "location"] = HOME
    c = CommuteCalendar().predict(running, issued - timedelta(minutes=1), horizon)
    d = CommuteCalendar().predict(history, issued - timedelta(minutes=1), horizon)
    assert np.array_equal(c.location, d.location)


def test_after_a_change_of_routine_the_forecast_follows_the_past_then_learns():
    """From Monday 10 August the driver starts at 10:00 instead of 07:30: the forecast for that day,
    issued the night before or at its start, is the old routine (the past); weeks later, the new."""
    change = date(2020, 8, 10)
    longer = pd.date_range("2020-06-01", "2020-10-01", freq="30min", tz=TOKYO, inclusive="left")
    old = trips(USUAL, seed=4, index=longer)
    late = trips(CommuteSpec(one_way_km=12, depart_hour=10.0, leave_hour=19.5), seed=5, index=longer)
    cut = pd.Timestamp(at(change, 0))
    history = pd.concat([old[old.index < cut], late[late.index >= cut]])
    assert not history.equals(old)
    for issued in (at(change, -2), at(change, 0)):  # Sunday 22:00, Monday 00:00
        horizon = rest_of_today_and_tomorrow(issued, 30)
        with_change = CommuteCalendar().predict(history, issued, horizon)
        without = CommuteCalendar().predict(old, issued, horizon)
        assert np.array_equal(with_change.location, without.location)  # only the past counts
        eight = slot_of(horizon, at(change, 8.5))
        assert with_change.location[eight] != HOME  # the old routine: gone by 08:30
    # two weeks into the new routine the old one no longer holds; four weeks in, the new one does
    two_weeks = at(date(2020, 8, 24), 0)
    fc = CommuteCalendar().predict(history, two_weeks, rest_of_today_and_tomorrow(two_weeks, 30))
    assert 0.4 < fc.p_home[17] < 0.8  # 08:30: at home on the 10 new days of the 20 business days
    issued = at(date(2020, 9, 7), 0)
    horizon = rest_of_today_and_tomorrow(issued, 30)
    fc = CommuteCalendar().predict(history, issued, horizon)
    assert fc.location[slot_of(horizon, at(date(2020, 9, 7), 8.5))] == HOME
    assert fc.location[slot_of(horizon, at(date(2020, 9, 7), 12))] == OFFICE


def test_today_follows_where_the_car_is_now():
    history = trips(USUAL, seed=6)
    day = date(2020, 8, 12)  # Wednesday
    # still at home at 10:00 (a day of leave): the car is taken to stay at home today
    absent = history.copy()
    absent.loc[(absent.index >= pd.Timestamp(at(day, 0))) & (absent.index < pd.Timestamp(at(day, 10))),
               ["location", "drive_wh"]] = [HOME, 0]
    issued = at(day, 10)
    horizon = rest_of_today_and_tomorrow(issued, 30)
    fc = CommuteCalendar().predict(absent, issued, horizon)
    today = slice(0, slot_of(horizon, at(day, 23.5)) + 1)
    assert (fc.location[today] == HOME).all() and fc.drive_wh[today].sum() == 0
    assert (fc.location[today.stop:] == OFFICE).any()  # tomorrow: the usual calendar
    # at the office at 15:00: it stays until about the usual time, then drives home
    issued = at(day, 15)
    horizon = rest_of_today_and_tomorrow(issued, 30)
    at_work = history.copy()
    at_work.loc[pd.Timestamp(at(day, 14.5)), "location"] = OFFICE
    fc = CommuteCalendar().predict(at_work, issued, horizon)
    assert fc.location[0] == OFFICE and fc.p_office[0] > 0.9
    evening = slot_of(horizon, at(day, 18.5))
    assert fc.location[evening] == ROAD and fc.drive_wh[: slot_of(horizon, at(day, 23.5))].sum() > 0


def test_plan_view_puts_each_blocks_expected_energy_in_its_first_slot():
    p_home = np.array([1.0, 0.9, 0.5, 0.1, 0.0, 0.0, 0.3, 0.95, 1.0])
    p_office = np.array([0.0, 0.0, 0.0, 0.0, 0.9, 0.9, 0.1, 0.0, 0.0])
    p_road = 1 - p_home - p_office
    energy = np.array([0.0, 100, 500, 600, 20, 10, 700, 50, 0])
    fc = plan_view(p_home, p_office, p_road, energy, 0.8)
    assert fc.location.tolist() == [HOME, HOME, ROAD, ROAD, OFFICE, OFFICE, ROAD, HOME, HOME]
    # parked slots' energy goes to the nearest block: slots 1 and 4 to the block at 2, slots 5 and 7 to 6
    assert fc.drive_wh.tolist() == [0, 0, 100 + 500 + 600 + 20, 0, 0, 0, 10 + 700 + 50, 0, 0]
    # a tie goes to the earlier block
    tie = plan_view(np.array([0.0, 1, 0]), np.zeros(3), np.array([1.0, 0, 1]), np.array([5.0, 7, 3]), 0.8)
    assert tie.drive_wh.tolist() == [12, 0, 3]
    assert plan_view(p_home, p_office, p_road, energy, 0.95).location[1] == ROAD


def test_bad_input_names_the_field():
    history = trips(USUAL, seed=7)
    issued = at(date(2020, 8, 3), 0)
    horizon = rest_of_today_and_tomorrow(issued, 30)
    with pytest.raises(AgentInputError, match="history"):
        CommuteCalendar().predict(history.drop(columns="drive_wh"), issued, horizon)
    with pytest.raises(AgentInputError, match="issued_at"):
        CommuteCalendar().predict(history, issued.replace(tzinfo=None), horizon)
    with pytest.raises(AgentInputError, match="horizon"):
        CommuteCalendar().predict(history, issued, horizon.tz_localize(None))
    with pytest.raises(AgentInputError, match="parked_probability"):
        CommuteCalendar(parked_probability=0.4)
    with pytest.raises(AgentInputError, match="window_days"):
        CommuteCalendar(window_days=0)
    with pytest.raises(AgentInputError, match="trip_energy_quantile"):
        CommuteCalendar(trip_energy_quantile=1.5)


def test_a_slot_near_a_usual_departure_is_less_surely_parked():
    p_home = np.array([1.0, 1, 1, 1, 0.9, 0.5, 0.0, 0.0])
    p_office = np.array([0.0, 0, 0, 0, 0, 0, 0.95, 0.95])
    fc = plan_view(p_home, p_office, 1 - p_home - p_office, np.zeros(8), 0.8, margin_slots=2)
    assert fc.location.tolist() == [HOME, HOME, HOME, HOME, HOME, ROAD, OFFICE, OFFICE]
    assert fc.parked_probability.tolist() == [1.0, 1.0, 0.9, 0.5, 0.0, 1.0, 0.95, 0.95]
    # on the scenario's commute: the night is sure, the hours before leaving at 07:30 are not
    history = trips(USUAL, seed=8)
    issued = at(date(2020, 8, 3), 0)
    horizon = rest_of_today_and_tomorrow(issued, 30)
    fc = CommuteCalendar().predict(history, issued, horizon)
    assert fc.parked_probability[slot_of(horizon, at(date(2020, 8, 3), 2))] == 1.0
    assert fc.parked_probability[slot_of(horizon, at(date(2020, 8, 3), 6))] < 0.8


def test_at_home_on_a_day_off_a_car_may_still_go_out():
    """Few past Saturdays and Sundays saw the car home at 13:30, but not so few that it is an unusual
    day: the rest of the day keeps the calendar's trips (and their energy), it does not stay put."""
    index = pd.date_range("2020-07-01", "2020-08-10", freq="30min", tz=TOKYO, inclusive="left")
    location = np.zeros(len(index), dtype=np.int64)
    drive = np.zeros(len(index))
    hour = index.hour + index.minute / 60
    weekend = np.asarray(index.weekday >= 5)
    day_no = np.asarray((index.normalize() - index[0].normalize()).days)
    late = weekend & (day_no % 4 == 0)  # a quarter of the weekend days: out 16:00-17:00 only
    early = weekend & ~late  # the others: out 11:00-15:00
    for mask, out, back in ((early, 11, 15), (late, 16, 17)):
        away = mask & (hour >= out) & (hour < back)
        location[away] = ROAD
        drive[mask & (hour == out)] = 2000
    history = pd.DataFrame({"location": location, "drive_wh": drive}, index=index)
    saturday = date(2020, 8, 8)
    history.loc[pd.Timestamp(at(saturday, 0)):, ["location", "drive_wh"]] = [HOME, 0]  # home so far today
    issued = at(saturday, 13.5)
    horizon = rest_of_today_and_tomorrow(issued, 30)
    fc = CommuteCalendar().predict(history, issued, horizon)
    today = slice(0, slot_of(horizon, at(saturday, 23.5)) + 1)
    assert fc.drive_wh[today].sum() > 0 and (fc.location[today] == ROAD).any()
