"""Outages: the interval form of ``--outage``, ``[[outages]]`` in a scenario, the load's priorities."""

import tomllib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2penergy.outage import HOME_LOAD_SHARES, OFFICE_LOAD_SHARES, LoadShares, Outage, outage_mask, parse_outage
from p2penergy.scenario import ScenarioError, parse_scenario, shipped_path

JST = timezone(timedelta(hours=9))
NAIVE = datetime(2020, 8, 20, 13)  # noqa: DTZ001 - a start without its offset, on purpose


def test_the_issues_interval_is_a_day_from_1pm_local():
    o = parse_outage("2020-08-20T13:00+09:00/PT24H")
    assert o.start == datetime(2020, 8, 20, 4, 0, tzinfo=UTC)
    assert o.end == datetime(2020, 8, 21, 13, 0, tzinfo=JST)
    assert o.announced_hours is None and o.announced_at is None


def test_start_end_form_and_compound_durations():
    assert parse_outage("2020-08-20T13:00+09:00/2020-08-21T01:00+09:00").duration == timedelta(hours=12)
    assert parse_outage("2020-08-20T13:00+09:00/P1DT6H").duration == timedelta(hours=30)
    assert parse_outage("2020-08-20T13:00+09:00/PT90M").duration == timedelta(minutes=90)


def test_an_announced_outage_is_known_from_its_announcement_an_unannounced_one_from_its_start():
    o = parse_outage("2020-08-20T13:00+09:00/PT24H", announced_hours=24)
    assert o.announced_at == datetime(2020, 8, 19, 13, 0, tzinfo=JST)
    assert not o.known_at(datetime(2020, 8, 19, 12, 59, tzinfo=JST))
    assert o.known_at(datetime(2020, 8, 19, 13, 0, tzinfo=JST))
    silent = parse_outage("2020-08-20T13:00+09:00/PT24H")
    assert not silent.known_at(datetime(2020, 8, 20, 12, 59, tzinfo=JST))
    assert silent.known_at(datetime(2020, 8, 20, 13, 0, tzinfo=JST))


@pytest.mark.parametrize(("text", "announced", "names"), [
    ("2020-08-20T13:00+09:00", None, "START/DURATION"),
    ("2020-08-20T13:00/PT24H", None, "UTC offset"),
    ("20 Aug 13:00+09:00/PT24H", None, "the start"),
    ("2020-08-20T13:00+09:00/PT", None, "duration"),
    ("2020-08-20T13:00+09:00/24h", None, "the end"),
    ("2020-08-20T13:00+09:00/P40D", None, "outage.duration"),
    ("2020-08-20T13:00+09:00/2020-08-20T12:00+09:00", None, "outage.duration"),
    ("2020-08-20T13:00+09:00/PT24H", -1.0, "outage.announced_hours"),
])
def test_bad_specifications_name_the_field(text, announced, names):
    with pytest.raises(ValueError, match="--outage") as err:
        parse_outage(text, announced)
    assert names in str(err.value)


def test_outage_mask_covers_start_inclusive_end_exclusive():
    o = parse_outage("2020-08-20T13:00+09:00/PT1H")
    starts = [datetime(2020, 8, 20, 12, 30, tzinfo=JST) + timedelta(minutes=30 * k) for k in range(5)]
    assert outage_mask(starts, [o]).tolist() == [False, True, True, False, False]
    assert outage_mask(starts, []).tolist() == [False] * 5


@given(st.integers(0, 10**7))
def test_priority_split_adds_up_to_the_load(load_wh):
    for shares in (HOME_LOAD_SHARES, OFFICE_LOAD_SHARES):
        c, e, d = shares.split_wh(load_wh)
        assert c + e + d == load_wh and min(c, e, d) >= 0
        assert c <= load_wh * shares.critical + 1


def test_shares_are_checked():
    with pytest.raises(ValueError, match=r"load_shares\.critical"):
        LoadShares(critical=1.2, essential=0.0)
    with pytest.raises(ValueError, match=r"critical \+ essential"):
        LoadShares(critical=0.6, essential=0.6)
    assert 0 < HOME_LOAD_SHARES.deferrable < 1 and 0 < OFFICE_LOAD_SHARES.deferrable < 1


def _with_outages(outages):
    data = tomllib.loads(shipped_path().read_text(encoding="utf-8"))
    data["outages"] = outages
    return parse_scenario(data, "test.toml")


def test_scenario_outages_table():
    spec = _with_outages([{"start": datetime(2020, 8, 20, 13, tzinfo=JST), "duration_hours": 24,
                           "announced_hours": 24}])
    o = spec.outages[0].outage()
    assert o == Outage(datetime(2020, 8, 20, 13, tzinfo=JST), timedelta(hours=24), 24)


@pytest.mark.parametrize(("entry", "key"), [
    ({"start": NAIVE, "duration_hours": 24}, "outages[0].start"),
    ({"start": datetime(2020, 8, 20, 13, tzinfo=JST), "duration_hours": 0}, "outages[0].duration_hours"),
    ({"start": datetime(2020, 8, 20, 13, tzinfo=JST), "duration_hours": 2, "announced_hours": -3},
     "outages[0].announced_hours"),
    ({"start": datetime(2020, 8, 20, 13, tzinfo=JST), "hours": 2}, "outages[0]"),
])
def test_bad_scenario_outages_name_the_key(entry, key):
    with pytest.raises(ScenarioError) as err:
        _with_outages([entry])
    assert key in str(err.value)


def test_a_community_knows_its_islanded_slots(shipped):
    from p2penergy.scenario import generate
    from p2penergy.sim.build import build_community

    month = shipped.period.report_month
    data = generate(shipped, month, month + timedelta(days=2))
    outage = parse_outage("2020-08-01T13:00+09:00/PT6H")
    community = build_community(shipped, data, report_days=1, outages=(outage,))
    assert community.islanded_slots() == 12
    first = community.month.start + 26  # 13:00 local on the first day (half-hour slots)
    assert community.slot(first) == outage.start and community.islanded(first)
    assert not community.islanded(first - 1) and not community.islanded(first + 12)
    assert build_community(shipped, data, report_days=1).islanded_slots() == 0


@pytest.mark.parametrize(("args", "needle"), [
    (["--outage", "2020-08-20T13:00/PT24H"], "--outage: the start must have a UTC offset"),
    (["--outage", "2020-08-20T13:00+09:00/P99D"], "outage.duration"),
    (["--outage", "2020-08-20T13:00+09:00/PT24H", "--outage-announced-hours", "-2"], "outage.announced_hours"),
    (["--outage-announced-hours", "24"], "--outage-announced-hours: needs an --outage"),
])
def test_simulate_rejects_bad_outages_naming_the_option(args, needle, tmp_path):
    from typer.testing import CliRunner

    from p2penergy.cli import app

    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2, result.output[-500:]
    assert needle in result.stderr
