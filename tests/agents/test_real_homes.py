"""``p2penergy forecast evaluate`` on real homes: CityLearn 2022 homes 1 and 2 (Fontana, CA),
converted by the project's CityLearn reader, fitted on June 2017 and tested day-ahead on July.

The data are read from ``shared/data/`` beside the repository (or beside one of its parent
folders, as for a git worktree); without them the test fails saying where it looked."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from p2penergy.agents.month_evaluation import MODELS
from p2penergy.cli import app
from p2penergy.formats.citylearn import FONTANA, citylearn_tables

DATA_SET = "citylearn-2022-homes-1-8"
ROOT = Path(__file__).resolve().parents[2]


def shared_data(name: str) -> Path:
    places = [parent / "shared" / "data" / name for parent in ROOT.parents]
    for place in places:
        if (place / "weather.csv").is_file():
            return place
    pytest.fail(f"real-data set {name!r} not found; looked in {', '.join(str(p) for p in places[:3])}: "
                "the tests need ../shared/data/ beside the repository (never copied into it)")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    meter, weather = citylearn_tables(shared_data(DATA_SET), buildings=[1, 2])
    keep = lambda table: table[table["timestamp"] >= "2017-06-01"]  # noqa: E731 (ISO strings, one offset)
    folder = tmp_path_factory.mktemp("homes")
    keep(meter).to_csv(folder / "meter.csv", index=False)
    keep(weather).to_csv(folder / "weather.csv", index=False)
    out = folder / "result.json"
    result = CliRunner().invoke(app, [
        "forecast", "evaluate", "--meter", str(folder / "meter.csv"), "--weather", str(folder / "weather.csv"),
        "--test-month", "2017-07", "--timezone", FONTANA.timezone, "--latitude", str(FONTANA.latitude),
        "--longitude", str(FONTANA.longitude), "--json", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text(encoding="utf-8")), keep(meter), result.output


def _yesterday_nmae(series: pd.Series) -> float:
    """The same-slot-yesterday baseline worked out by hand: issued at noon the day before, a slot
    before noon takes the previous day's value, a later one the value two days before."""
    hourly = series.set_axis(pd.DatetimeIndex(series.index).tz_convert(FONTANA.timezone))
    july = hourly[hourly.index >= pd.Timestamp("2017-07-01", tz=FONTANA.timezone)]
    forecast = np.where(july.index.hour < 12, hourly.shift(24)[july.index], hourly.shift(48)[july.index])
    return float(np.abs(forecast - july.to_numpy()).sum() / np.abs(july.to_numpy()).sum())


def test_json_has_every_site_target_and_model(evaluated):
    body, _, _ = evaluated
    assert set(body) == {"sites", "sum", "coverage"}
    assert set(body["sites"]) == {"building-1", "building-2"}
    for block in [*body["sites"].values(), body["sum"]]:
        assert set(block) == {"load", "pv"}
        for target in ("load", "pv"):
            assert set(MODELS) <= set(block[target])
            assert all(0.02 < v < 2 and math.isfinite(v) for v in block[target].values())


def test_baseline_matches_a_hand_computation_on_the_raw_rows(evaluated):
    body, meter, _ = evaluated
    frame = meter.assign(timestamp=pd.to_datetime(meter["timestamp"], utc=True))
    loads = {site: rows.set_index("timestamp")["load_kwh"] for site, rows in frame.groupby("site")}
    for site, series in loads.items():
        assert body["sites"][site]["load"]["yesterday"] == pytest.approx(_yesterday_nmae(series), rel=1e-9)
    assert body["sum"]["load"]["yesterday"] == pytest.approx(_yesterday_nmae(sum(loads.values())), rel=1e-9)
    pv = frame[frame["site"] == "building-1"].set_index("timestamp")["pv_wh"]
    assert body["sites"]["building-1"]["pv"]["yesterday"] == pytest.approx(_yesterday_nmae(pv), rel=1e-9)


def test_summed_homes_are_easier_and_coverage_is_only_reported_when_there_are_quantiles(evaluated):
    body, _, output = evaluated
    per_home = [body["sites"][s]["load"]["seven_day_mean"] for s in body["sites"]]
    assert body["sum"]["load"]["seven_day_mean"] < max(per_home)  # errors of two homes partly cancel
    assert "building-1" in output and "sum of sites" in output
    if body["coverage"]:  # the agents' forecaster gives quantiles: every target is scored
        assert set(body["coverage"]) == {"load", "pv"}
        for scores in body["coverage"].values():
            low, mid, high = (scores["coverage"][level] for level in ("0.1", "0.5", "0.9"))
            assert 0 < low < mid < high < 1
            assert scores["interval"] == pytest.approx(high - low, abs=0.05)  # ties at 0 Wh aside
        assert "actual at or below 0.1:" in output
    else:
        assert "quantile coverage: absent" in output
