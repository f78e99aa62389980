"""`p2penergy scenario show` and `export` through the real command."""

import pandas as pd
from typer.testing import CliRunner

from p2penergy.cli import app
from p2penergy.scenario import shipped_path

runner = CliRunner()


def test_show_prints_every_site_and_car():
    result = runner.invoke(app, ["scenario", "show", "--month", "2020-08"])
    assert result.exit_code == 0, result.output
    for name in ["office", *(f"house-{i:02d}" for i in range(1, 21)), *(f"car-{i:02d}" for i in range(1, 10))]:
        assert name in result.output
    assert "utility bill JPY" in result.output


def test_export_writes_parquet_and_csv(tmp_path):
    out = tmp_path / "x"
    result = runner.invoke(app, ["scenario", "export", str(shipped_path()), "--out", str(out),
                                 "--start", "2020-08-01", "--end", "2020-08-02"])
    assert result.exit_code == 0, result.output
    for name in ("weather", "sites", "cars"):
        assert (out / f"{name}.parquet").exists() and (out / f"{name}.csv").exists()
    sites = pd.read_parquet(out / "sites.parquet")
    assert len(sites) == 21 * 96 and set(sites.columns) == {"slot_start", "site", "load_wh", "pv_wh"}
    assert str(sites["slot_start"].dt.tz) == "Asia/Tokyo"
    cars = pd.read_csv(out / "cars.csv")
    assert len(cars) == 9 * 96 and set(cars["location"]) <= {"home", "office", "road"}


def test_bad_scenario_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.toml"
    text = shipped_path().read_text(encoding="utf-8").replace("contract_a = 30\nload_scale = 0.85",
                                                                 "contract_a = 7\nload_scale = 0.85")
    bad.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["scenario", "show", str(bad)])
    assert result.exit_code == 2
    assert "homes[0] (house-01).contract_a" in result.output
    result = runner.invoke(app, ["scenario", "show", "--month", "2021-01"])
    assert result.exit_code == 2 and "--month" in result.output


def test_simulate_refuses_an_unknown_baseline_export_credit():
    result = runner.invoke(app, ["simulate", "--days", "1", "--no-ledger", "--baseline-export-credit", "fit-48"])
    assert result.exit_code == 2
    assert "--baseline-export-credit: must be 'own-scheme', 'none' or a scheme" in result.output
