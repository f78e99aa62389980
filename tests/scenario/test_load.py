"""The shipped scenario and the errors of malformed ones."""

import copy
import tomllib
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from p2penergy.scenario import HOME_TYPES, ScenarioError, load_scenario, parse_scenario, shipped_path
from p2penergy.textfile import InputFileError

ROOT = Path(__file__).resolve().parents[2]


def _data():
    return tomllib.loads(shipped_path().read_text(encoding="utf-8"))


def test_shipped_scenario_has_the_demonstrations_participants(shipped):
    counts = Counter(h.type for h in shipped.homes)
    assert counts == {"consumer": 6, "consumer_phv": 6, "pv_only": 2, "pv_battery": 3, "pv_phv": 2,
                      "pv_battery_phv": 1}
    assert set(counts) == set(HOME_TYPES)
    assert [h.id for h in shipped.homes] == [f"house-{i:02d}" for i in range(1, 21)]
    assert [c.id for c in shipped.cars] == [f"car-{i:02d}" for i in range(1, 10)]
    owners = Counter(shipped.home(c.owner).type for c in shipped.cars)
    assert owners == {"consumer_phv": 6, "pv_phv": 2, "pv_battery_phv": 1}
    assert shipped.office.id == "office" and shipped.office.pv is not None
    assert all(4.5 <= h.pv.kwp <= 5.5 for h in shipped.homes if h.pv)
    assert shipped.phv.battery_nominal_wh == 8800
    assert shipped.period.report_month == date(2020, 8, 1)
    assert shipped.period.start <= date(2020, 6, 1)
    assert shipped.market.currency == "JPY" and shipped.market.slot_minutes == 30
    assert shipped.emissions.grid_kg_co2_per_kwh == 0.45
    assert shipped.tariffs.retail_tariff().basic_charge(30) == 858


def test_repo_root_symlink_points_at_the_packaged_file():
    link = ROOT / "scenarios"
    assert link.is_symlink() and not Path(link.readlink()).is_absolute()
    assert (link / "higashi-fuji-2020.toml").read_bytes() == shipped_path().read_bytes()
    via_link, shipped = load_scenario(link / "higashi-fuji-2020.toml"), load_scenario()
    # the fields that differ, if any (a clean-clone run once failed here without saying which)
    assert via_link == shipped, {k: (getattr(via_link, k), getattr(shipped, k)) for k in type(shipped).model_fields
                                 if getattr(via_link, k) != getattr(shipped, k)}


def test_every_public_number_has_a_source_comment():
    text = shipped_path().read_text(encoding="utf-8")
    for needle in ("19.88", "26.48", "30.57", "286.00", "2.98", "8800", "68.2", "0.45", "35.2"):
        line = next(x for x in text.splitlines() if needle in x)
        idx = text.splitlines().index(line)
        context = "\n".join(text.splitlines()[max(0, idx - 4): idx + 1])
        assert "#" in context, needle


def _set(data, path, value):
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "key", "words"),
    [
        (("homes", 12, "pv", "kwp"), -1, "homes[12] (house-13).pv.kwp", "greater than 0"),
        (("homes", 12, "pv"), _DELETE, "homes[12] (house-13).pv", "required for a home of type pv_only"),
        (("homes", 0, "type"), "villa", "homes[0] (house-01).type", "consumer"),
        (("homes", 0, "colour"), "red", "homes[0] (house-01).colour", "unknown key"),
        (("homes", 3, "contract_a"), "forty", "homes[3] (house-04).contract_a", "integer"),
        (("cars", 2, "owner"), "house-99", "cars[2].owner", "'house-99' is not a home id"),
        (("market", "slot_minutes"), 7, "market.slot_minutes", "one of (5, 10, 15, 20, 30, 60)"),
        (("period", "end"), date(2020, 5, 1), "period.end", "not be before start"),
        (("tariffs", "retail", "basic_charge_per_10a"), _DELETE, "tariffs.retail.basic_charge_per_10a", "missing"),
        (("homes", 0, "buyback"), "fit-2030", "homes[0].buyback", "unknown scheme 'fit-2030'"),
        (("weather", "day_type_probabilities", "8"), [0.5, 0.5, 0.5, 0.5], "weather.day_type_probabilities.8",
         "sum to 1"),
        (("scenario", "seed"), -3, "scenario.seed", "greater than or equal to 0"),
        (("location", "holiday_country"), "XX", "location.holiday_country", "not known"),
        (("tariffs", "retail", "tiers"), [{"up_to_kwh": "120", "price_per_kwh": "19.88"}], "tariffs.retail.tiers",
         "unlimited"),
        (("tariffs", "retail", "fuel_adjustment"), "medium-voltage", "tariffs.retail.fuel_adjustment",
         "unknown schedule 'medium-voltage'"),
        (("homes", 12, "pv_connected"), date(2005, 6, 1), "homes[12].pv_connected", "no price for fiscal year 2005"),
        (("homes", 12, "buyback"), "post-fit", "homes[12] (house-13).buyback", "not both"),
        (("homes", 12, "pv_connected"), date(2021, 6, 1), "homes[12].pv_connected", "after"),
        (("baseline", "export_credit"), "fit", "baseline.export_credit", "must be 'own-scheme', 'none' or a scheme"),
    ],
)
def test_malformed_scenario_names_the_key(path, value, key, words):
    data = copy.deepcopy(_data())
    _set(data, path, value)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "bad.toml")
    assert info.value.key == key
    assert words in str(info.value)
    assert str(info.value).startswith("bad.toml: ")


def test_phv_type_without_car_is_refused():
    data = copy.deepcopy(_data())
    data["cars"] = [c for c in data["cars"] if c["owner"] != "house-20"]
    with pytest.raises(ScenarioError, match=r"homes\[19\]\.type: pv_battery_phv needs a car"):
        parse_scenario(data)


def test_unreadable_and_invalid_toml(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[scenario\nname = 1\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"bad\.toml: line 1: file: must be valid TOML"):
        load_scenario(bad)


def test_a_bad_key_in_a_file_is_named_with_its_line(tmp_path):
    text = shipped_path().read_text(encoding="utf-8")
    lines = text.splitlines()
    # the 13th home's inline PV table: the line is the one that writes `pv = {...}` in that [[homes]] block
    thirteenth = [n for n, line in enumerate(lines, start=1) if line == "[[homes]]"][12]
    pv_line = next(n for n, line in enumerate(lines, start=1) if n > thirteenth and line.startswith("pv = "))
    bad = tmp_path / "bad.toml"
    changed = lines[pv_line - 1].replace("kwp = 5.0", "kwp = -5.0")
    bad.write_text("\n".join([*lines[:pv_line - 1], changed, *lines[pv_line:]]) + "\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    assert info.value.line == pv_line and info.value.key.startswith("homes[12]")
    assert f"bad.toml: line {pv_line}: homes[12] (house-13).pv.kwp: " in str(info.value)


def test_shipped_tariffs_carry_tepcos_fuel_adjustment_for_august_2020(shipped):
    from decimal import Decimal

    from p2penergy.agents.trader import marginal_retail_per_kwh

    august = date(2020, 8, 1)
    retail = shipped.tariffs.retail_tariff()
    assert retail.fuel_adjustment_rate(august) == Decimal("-2.85")
    assert shipped.tariffs.fuel_adjustment_rates("extra-high-voltage")[-1].price_per_kwh == Decimal("-2.72")
    assert shipped.tariffs.office_tariff().fuel_adjustment_rate(august) < 0
    # the agents' price of the next utility kWh includes it (first tier 19.88 + 2.98 − 2.85)
    assert marginal_retail_per_kwh(retail, august, 0) == Decimal("20.01")


def test_prosumers_are_credited_by_the_year_their_pv_was_connected(shipped):
    """Each PV home has a connection date; in August 2020 its FIT price is that of its fiscal year,
    or the post-FIT price once its ten years are over."""
    from decimal import Decimal

    august = date(2020, 8, 1)
    pv_homes = [h for h in shipped.homes if h.pv is not None]
    assert all(h.pv_connected is not None and h.buyback is None for h in pv_homes)
    credit = {h.id: shipped.home_buyback(h, august) for h in pv_homes}
    fy2012 = [h for h in pv_homes if shipped.tariffs.fit_schedule().fiscal_year(h.pv_connected) == 2012]
    assert fy2012 and all(credit[h.id].price_per_kwh == Decimal(42) for h in fy2012)
    before = [h for h in pv_homes if h.pv_connected < date(2010, 8, 1)]
    assert before and all(credit[h.id].scheme == "post-fit" and credit[h.id].price_per_kwh == Decimal("8.5")
                          for h in before)
    assert len({c.price_per_kwh for c in credit.values()}) >= 4
    assert shipped.home_buyback(shipped.home("house-01"), august) is None
    prices = shipped.tariffs.fit_schedule().prices
    assert dict(prices)[2009] == Decimal(48) and dict(prices)[2019] == Decimal(24)


def test_the_baseline_export_credit_can_be_overridden_and_is_checked(shipped):
    from decimal import Decimal

    from p2penergy.tariffs import Buyback, ExportCredit

    assert shipped.baseline_export_credit() == ExportCredit.own()
    assert shipped.with_baseline_export_credit("none").baseline_export_credit() == ExportCredit.none()
    post_fit = shipped.with_baseline_export_credit("post-fit").baseline_export_credit()
    assert post_fit == ExportCredit.scheme(Buyback("post-fit", Decimal("8.5")))
    with pytest.raises(ValueError, match=r"^--baseline-export-credit: must be 'own-scheme', 'none' or a scheme"):
        shipped.with_baseline_export_credit("fit", "--baseline-export-credit")
