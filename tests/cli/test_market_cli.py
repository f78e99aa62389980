"""The order-file CLI, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "orders.csv"
HEADER = "id,participant,side,slot_start,energy_wh,price_per_kwh,submitted_at,attributes,requirements"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "p2penergy", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("mechanism", ["cda", "pay-as-clear", "pay-as-bid"])
def test_example_file_clears_as_json(mechanism):
    out = run("market", "clear", str(EXAMPLE), "--mechanism", mechanism, "--json")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    trades = body["trades"]
    assert trades and {"buy_id", "sell_id", "energy_wh", "price_per_kwh", "premium_per_kwh"} <= set(trades[0])
    assert body["summary"]["volume_wh"] == sum(t["energy_wh"] for t in trades)
    if mechanism == "pay-as-clear":
        assert "clearing_price_per_kwh" in body["summary"]
    else:
        assert "clearing_price_per_kwh" not in body["summary"]


def test_cda_example_has_the_documented_trades():
    body = json.loads(run("market", "clear", str(EXAMPLE), "--json").stdout)
    got = [(t["buy_id"], t["sell_id"], t["energy_wh"], t["price_per_kwh"]) for t in body["trades"]]
    # b1 prefers house-07 (s1 @12); b2 wants solar: rest of s1 @12 then office s3 @14;
    # b3 takes anything at <= 11: the battery offer s2 @10.5
    assert got == [("b1", "s1", 800, 12.0), ("b2", "s1", 700, 12.0), ("b2", "s3", 1800, 14.0), ("b3", "s2", 1000, 10.5)]


def test_human_output_has_summary():
    out = run("market", "clear", str(EXAMPLE), "--mechanism", "pay-as-clear")
    assert out.returncode == 0
    assert "volume-weighted price" in out.stdout and "welfare" in out.stdout


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ("x,h,sell,2020-08-03T12:00:00+09:00,0,10,2020-08-03T10:00:00+09:00,,", "line 3: energy_wh"),
        ("x,h,sell,2020-08-03T12:00:00+09:00,100,51,2020-08-03T10:00:00+09:00,,", "line 3: price_per_kwh"),
        ("x,h,buy,2020-08-03T12:00:00,100,10,2020-08-03T10:00:00+09:00,,", "line 3: slot_start"),
        ("x,h,sell,2020-08-03T12:00:00+09:00,100,10,2020-08-03T10:00:00+09:00,{bad,", "line 3: attributes"),
        ('x,h,buy,2020-08-03T12:00:00+09:00,100,10,2020-08-03T10:00:00+09:00,,"[{""match"":{""colour"":""x""}}]"',
         "line 3: requirements.match"),
        ("x,h,sell,2020-08-03T12:00:00+09:00,100,10,2020-08-03T12:25:00+09:00,,", "line 3: submitted_at"),
        ("ok,h,sell,2020-08-03T12:00:00+09:00,100,10,2020-08-03T10:00:00+09:00,,", "line 3: id"),
    ],
)
def test_bad_row_names_line_and_field_and_prints_nothing(tmp_path, row, needle):
    f = tmp_path / "orders.csv"
    f.write_text(f"{HEADER}\nok,h,buy,2020-08-03T12:00:00+09:00,100,20,2020-08-03T09:00:00+09:00,,\n{row}\n")
    out = run("market", "clear", str(f), "--json")
    assert out.returncode == 2
    assert out.stdout == ""
    assert needle in " ".join(out.stderr.split())


def test_bad_header(tmp_path):
    f = tmp_path / "orders.csv"
    f.write_text("id,side\n")
    out = run("market", "clear", str(f))
    assert out.returncode == 2 and "line 1: header" in " ".join(out.stderr.split())


def test_euro_market_file(tmp_path):
    f = tmp_path / "orders.csv"
    f.write_text(
        f"{HEADER}\n"
        "s,a,sell,2024-05-01T10:45:00+02:00,250,0.1200,2024-05-01T10:00:00+02:00,,\n"
        "b,b,buy,2024-05-01T10:45:00+02:00,250,0.1500,2024-05-01T10:01:00+02:00,,\n"
    )
    body = json.loads(run("market", "clear", str(f), "--market", str(ROOT / "markets" / "eu-15min.toml"), "--json").stdout)
    assert body["summary"]["currency"] == "EUR"
    assert body["trades"][0]["price_per_kwh"] == 0.12
