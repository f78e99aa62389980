"""Measured smart-meter CSVs replace the generator for a site."""

import tomllib
from datetime import date

import pytest

from p2penergy.formats.community import write_community
from p2penergy.scenario import MeasuredDataError, generate, parse_scenario, shipped_path


def _short(tmp_path, **home_extra):
    data = tomllib.loads(shipped_path().read_text(encoding="utf-8"))
    data["period"] = {"start": date(2020, 8, 1), "end": date(2020, 8, 3), "report_month": "2020-08"}
    data["homes"][0].update(home_extra)
    return parse_scenario(data, base_dir=tmp_path)


def test_exported_sites_csv_round_trips_as_measured_input(tmp_path):
    scenario = _short(tmp_path)
    original = generate(scenario)
    write_community(original, tmp_path / "out")
    # house-01 now reads house-02's exported series as its measurements
    sites = (tmp_path / "out" / "sites.csv").read_text(encoding="utf-8").splitlines()
    rows = [sites[0]] + [r.replace(",house-02,", ",house-01,") for r in sites[1:] if ",house-02," in r]
    (tmp_path / "meter.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    replaced = generate(_short(tmp_path, measured_csv="meter.csv"))
    assert "house-01" in replaced.measured
    assert replaced.sites["house-01"].equals(original.sites["house-02"])
    assert replaced.sites["house-03"].equals(original.sites["house-03"])


def test_missing_slot_is_named(tmp_path):
    scenario = _short(tmp_path, measured_csv="meter.csv")
    lines = ["timestamp,load_wh"] + [f"2020-08-01T{h:02d}:{m:02d}:00+09:00,100" for h in range(24) for m in (0, 30)]
    (tmp_path / "meter.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(MeasuredDataError, match=r"no value for slot 2020-08-02T00:00:00\+09:00"):
        generate(scenario)


def test_bad_columns_and_values(tmp_path):
    scenario = _short(tmp_path, measured_csv="meter.csv")
    (tmp_path / "meter.csv").write_text("time,load\n", encoding="utf-8")
    with pytest.raises(MeasuredDataError, match="missing column 'timestamp'"):
        generate(scenario)
    lines = ["timestamp,load_wh"] + [f"2020-08-0{d}T{h:02d}:{m:02d}:00+09:00,-5"
                                     for d in (1, 2, 3) for h in range(24) for m in (0, 30)]
    (tmp_path / "meter.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(MeasuredDataError, match=r"meter.csv: line 2: column 'load_wh': must be >= 0, got '-5'"):
        generate(scenario)


def test_kwh_fractions_become_whole_wh_keeping_the_total(tmp_path):
    scenario = _short(tmp_path, measured_csv="meter.csv")
    rows = ["timestamp,load_kwh,pv_kwh"] + [f"2020-08-0{d}T{h:02d}:{m:02d}:00+09:00,0.0004,0.0012"
                                            for d in (1, 2, 3) for h in range(24) for m in (0, 30)]
    (tmp_path / "meter.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    site = generate(scenario).sites["house-01"]
    # 0.4 Wh a slot: slot-by-slot rounding would give 0 Wh; the running total keeps 144 × 0.4 Wh
    assert site["load_wh"].sum() == round(144 * 0.4)
    assert site["pv_wh"].sum() == round(144 * 1.2)
    assert set(site["load_wh"]) == {0, 1}


def test_hourly_meter_spreads_over_half_hour_slots(tmp_path):
    scenario = _short(tmp_path, measured_csv="meter.csv")
    rows = ["timestamp,load_wh"] + [f"2020-08-0{d}T{h:02d}:00:00+09:00,{100 * h}" for d in (1, 2, 3) for h in range(24)]
    (tmp_path / "meter.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    site = generate(scenario).sites["house-01"]
    assert site["load_wh"].iloc[2:6].tolist() == [50, 50, 100, 100]
    assert site["load_wh"].sum() == 3 * sum(100 * h for h in range(24))


def test_quarter_hour_meter_sums_into_half_hour_slots(tmp_path):
    scenario = _short(tmp_path, measured_csv="meter.csv")
    rows = ["timestamp,load_wh"] + [f"2020-08-0{d}T{h:02d}:{m:02d}:00+09:00,{m + 1}" for d in (1, 2, 3)
                                    for h in range(24) for m in (0, 15, 30, 45)]
    (tmp_path / "meter.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    site = generate(scenario).sites["house-01"]
    assert site["load_wh"].iloc[:2].tolist() == [1 + 16, 31 + 46]
    (tmp_path / "meter.csv").write_text("\n".join(rows[:-1]) + "\n", encoding="utf-8")  # the last quarter missing
    with pytest.raises(MeasuredDataError, match=r"no value for slot 2020-08-03T23:30:00\+09:00"):
        generate(scenario)
