"""The sweep file and the community generator: points, their hashes, and errors naming the field.
No simulation runs here (cheap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2penergy.scenario.load import load_scenario, parse_scenario
from p2penergy.scenario.synthetic import CommunityError, generate_community, resolve_shares, type_counts
from p2penergy.sweeps.spec import SweepError, load_sweep, parse_sweep
from p2penergy.textfile import InputFileError

EXAMPLE = Path(__file__).parents[2] / "examples" / "sweep.toml"


def _error(data: dict, match: str) -> SweepError:
    with pytest.raises(SweepError) as info:
        parse_sweep(data, "s.toml")
    assert info.value.key == match, str(info.value)
    return info.value


def test_grid_expands_every_combination_with_dotted_settings() -> None:
    sweep = parse_sweep({"scenario": "higashi-fuji-2020", "days": 2,
                         "axes": {"seed": [1, 2], "mechanism": ["cda", "pay-as-clear"],
                                  "market": {"slot_minutes": [30, 60]}}})
    assert sweep.axes == ("seed", "mechanism", "market.slot_minutes")
    assert len(sweep.points) == 8
    assert len({p.key for p in sweep.points}) == 8
    p = sweep.points[-1]
    assert p.values == {"seed": 2, "mechanism": "pay-as-clear", "market.slot_minutes": 60}
    assert p.options["days"] == 2 and p.options["seed"] == 2 and p.options["mechanism"] == "pay-as-clear"
    assert p.scenario_data["market"]["slot_minutes"] == 60
    assert parse_scenario(p.scenario_data).market.slot_minutes == 60


def test_point_hash_is_the_configuration_not_the_file() -> None:
    """The same configuration reached by a grid or by a list of points has the same hash (resume
    works across sweep files); any setting changes it, the base scenario's content too."""
    grid = parse_sweep({"days": 1, "axes": {"seed": [3]}}).points[0]
    listed = parse_sweep({"points": [{"seed": 3, "days": 1}]}).points[0]
    assert grid.key == listed.key
    assert parse_sweep({"days": 2, "axes": {"seed": [3]}}).points[0].key != grid.key
    other = parse_sweep({"days": 1, "axes": {"seed": [3], "market.price_max_per_kwh": ["60"]}}).points[0]
    assert other.key != grid.key
    # the scenario's own seed is the default seed: naming it changes nothing
    default = parse_sweep({"days": 1}).points[0]
    assert default.key == parse_sweep({"days": 1, "seed": load_scenario().scenario.seed}).points[0].key


@pytest.mark.parametrize(("data", "key", "words"), [
    ({"dayz": 2}, "dayz", "unknown key"),
    ({"axes": {"seed": 1}}, "axes.seed", "non-empty list"),
    ({"axes": {"mechanism": ["cda", "dutch"]}}, "axes.mechanism[1]", "cda, pay-as-clear, pay-as-bid"),
    ({"axes": {"agents": ["smart"]}}, "axes.agents[0]", "demonstration"),
    ({"axes": {"period": ["2020/08"]}}, "axes.period[0]", "YYYY-MM"),
    ({"axes": {"colour": ["red"]}}, "axes.colour", "unknown axis"),
    ({"axes": {"market.slot_minute": [30]}}, "axes.market.slot_minute[0]", "slot_minute"),
    ({"axes": {"market.slot_minutes": [30, 7]}}, "axes.market.slot_minutes[1]", "slot_minutes"),
    ({"axes": {"homes[2].pv.kwp": [-1.0]}}, "axes.homes[2].pv.kwp[0]", "kwp"),
    ({"axes": {"community.homes": [10, 0]}}, "axes.community.homes[1]", "1 to"),
    ({"community": {"shares": {"pv_only": 1.5}}}, "community.shares.pv_only", "0 to 1"),
    ({"axes": {"seed": [1, 1]}}, "axes", "same configuration"),
    ({"points": [{"seed": 1}], "axes": {"seed": [2]}}, "points[0].seed", "one place"),
    ({"days": 0}, "days", "1 to 31"),
    ({"scenario": "nowhere"}, "scenario", "neither a shipped scenario"),
    ({"baseline_export_credit": "gift"}, "baseline_export_credit", "own-scheme"),
    ({"forecast_workers": 0}, "forecast_workers", "at least 1"),
    ({"plan_workers": True}, "plan_workers", "whole number"),
])
def test_bad_sweep_files_name_the_field(data: dict, key: str, words: str) -> None:
    error = _error(data, key)
    assert words in str(error), str(error)
    assert str(error).startswith("s.toml: ")


def test_sweep_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("days = 1\nseed = = 2\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"bad\.toml: line 2: file: must be valid TOML"):
        load_sweep(bad)
    with pytest.raises(SweepError, match=r"missing\.toml: cannot read"):
        load_sweep(tmp_path / "missing.toml")
    assert len(load_sweep(EXAMPLE).points) == 3


def test_generator_keeps_the_demonstrations_mix_and_gives_each_phv_home_a_car() -> None:
    base = _base()
    data = generate_community(base, {"homes": 100})
    scenario = parse_scenario(data)
    types = [h.type for h in scenario.homes]
    assert len(types) == 100 and len({h.id for h in scenario.homes}) == 100
    # the demonstration's 20 homes: 6 consumers, 6 consumers with PHV, 2 PV, 3 PV + battery, 2 PV + PHV, 1 all
    assert [types.count(t) for t in ("consumer", "consumer_phv", "pv_only", "pv_battery", "pv_phv",
                                     "pv_battery_phv")] == [30, 30, 10, 15, 10, 5]
    assert len(scenario.cars) == 45
    assert sorted(c.owner for c in scenario.cars) == sorted(h.id for h in scenario.homes if h.type.endswith("_phv"))
    assert scenario.office.chargers.count == 45
    assert generate_community(base, {"homes": 20})["homes"][0]["id"] == "house-001"


def test_given_shares_keep_the_other_types_proportions() -> None:
    base = _base()
    shares = resolve_shares(base, {"pv_battery": 0.5})
    assert shares["pv_battery"] == 0.5
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["consumer"] == pytest.approx(0.5 * 6 / 17)
    assert type_counts(7, {"consumer": 0.5, "pv_only": 0.5}) == {"consumer": 4, "pv_only": 3}
    assert sum(type_counts(501, shares).values()) == 501
    with pytest.raises(CommunityError, match="more than 1"):
        resolve_shares(base, {"pv_battery": 0.7, "consumer": 0.5})


def _base() -> dict:
    import tomllib

    from p2penergy.scenario.load import shipped_path

    return tomllib.loads(shipped_path().read_text(encoding="utf-8"))


def test_forecast_and_plan_workers_do_not_change_a_point_s_hash() -> None:
    # splitting the forecasts and planning ahead give the same results, so a sweep resumes across them
    split = parse_sweep({"days": 1, "forecast_workers": 3, "plan_workers": 2, "axes": {"seed": [3]}})
    assert (split.forecast_workers, split.plan_workers) == (3, 2)
    assert split.points[0].key == parse_sweep({"days": 1, "axes": {"seed": [3]}}).points[0].key
