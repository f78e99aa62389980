"""Every command that reads a file answers a bad one — wrong encoding, wrong format, a wrong key
or value — with one line on standard error naming the file, the line where the format has
lines, and the field, and exit code 2; never a traceback.

The commands run in process through the ``p2penergy`` app (typer's runner, as the other in-process
CLI tests do: a subprocess per case would cost seconds of imports each); the entry point
(``p2penergy.cli:main``) only calls this app, so an exception other than the exit is a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from p2penergy.cli import app
from p2penergy.provenance import EVENT_FIELDS
from p2penergy.scenario import shipped_path

ROOT = Path(__file__).parents[2]
ORDERS_HEADER = "id,participant,side,slot_start,energy_wh,price_per_kwh,submitted_at,attributes,requirements"
ORDER_ROW = "s1,house-07,sell,2020-08-03T12:00:00+09:00,800,12,2020-08-03T10:00:00+09:00,,"
LATIN1 = "Mühle".encode("latin-1")  # 0xfc: not UTF-8
SHIPPED = shipped_path().read_text(encoding="utf-8")
SHORT_PERIOD = ('start = 2020-06-01       # assumption: three months of history for the agents to learn from\n'
                'end = 2020-08-31')


def _scenario(text: str = SHIPPED) -> str:
    """The shipped scenario over three days (generation stays quick)."""
    assert SHORT_PERIOD in text
    return text.replace(SHORT_PERIOD, "start = 2020-08-01\nend = 2020-08-03")


def _replace(old: str, new: str) -> str:
    text = _scenario()
    assert old in text
    return text.replace(old, new, 1)


def _meter_rows(value: str = "100") -> list[str]:
    return ["timestamp,load_wh"] + [f"2020-08-0{d}T{h:02d}:{m:02d}:00+09:00,{value}"
                                    for d in (1, 2, 3) for h in range(24) for m in (0, 30)]


@dataclass(frozen=True)
class Case:
    """``files`` (name → bytes) are written to a folder; ``args`` name them relative to it."""

    id: str
    args: tuple[str, ...]
    files: dict[str, bytes]
    bad_file: str  # the file the message must name
    needles: tuple[str, ...]  # line and field the message must name


def _scenario_cases(command: Callable[[str], tuple[str, ...]], name: str) -> list[Case]:
    base = _scenario()
    return [
        Case(f"{name}-scenario-encoding", command("s.toml"),
             {"s.toml": base.encode().replace(b'"higashi-fuji-2020"', b'"' + LATIN1 + b'"', 1)},
             "s.toml", ("line 10", "encoding", "UTF-8")),
        Case(f"{name}-scenario-toml", command("s.toml"), {"s.toml": b"[scenario]\nname = = 1\n"},
             "s.toml", ("line 2", "valid TOML")),
        Case(f"{name}-scenario-unknown-key", command("s.toml"),
             {"s.toml": _replace("[scenario]\n", "[scenario]\ncolour = \"red\"\n").encode()},
             "s.toml", ("line 10", "scenario.colour", "unknown key")),
        Case(f"{name}-scenario-value", command("s.toml"),
             {"s.toml": _replace("slot_minutes = 30", "slot_minutes = 7").encode()},
             "s.toml", ("line 32", "market.slot_minutes")),
    ]


def _cases() -> list[Case]:
    cases: list[Case] = []
    orders = (ORDERS_HEADER + "\n" + ORDER_ROW + "\n").encode()
    clear = ("market", "clear", "o.csv")
    cases += [
        Case("market-clear-orders-encoding", clear,
             {"o.csv": (ORDERS_HEADER + "\n").encode() + ORDER_ROW.replace("house-07", "M").encode() + b"\n"
              + ORDER_ROW.replace("s1,house-07", "s2,").encode() + LATIN1 + b"\n"},
             "o.csv", ("line 3", "encoding", "UTF-8")),
        Case("market-clear-orders-format", clear, {"o.csv": b"\x00\x01PK\x03\x04 binary"},
             "o.csv", ("line 1", "header")),
        Case("market-clear-orders-value", clear, {"o.csv": orders.replace(b",800,", b",ten,")},
             "o.csv", ("line 2", "energy_wh")),
        Case("market-clear-market-encoding", (*clear, "--market", "m.toml"),
             {"o.csv": orders, "m.toml": b'name = "' + LATIN1 + b'"\n'}, "m.toml", ("line 1", "encoding")),
        Case("market-clear-market-toml", (*clear, "--market", "m.toml"),
             {"o.csv": orders, "m.toml": b"[market]\nslot_minutes = = 30\n"}, "m.toml", ("line 2", "valid TOML")),
        Case("market-clear-market-unknown-key", (*clear, "--market", "m.toml"),
             {"o.csv": orders, "m.toml": b"[market]\ncolour = 1\n"}, "m.toml",
             ("line 2", "colour", "a market setting, one of")),
        Case("market-clear-market-value", (*clear, "--market", "m.toml"),
             {"o.csv": orders, "m.toml": b"# 15-minute market\nslot_minutes = 7\n"}, "m.toml",
             ("line 2", "slot_minutes")),
    ]
    cases += _scenario_cases(lambda f: ("scenario", "show", f), "scenario-show")
    cases += _scenario_cases(lambda f: ("scenario", "export", f, "--out", "out"), "scenario-export")
    cases += _scenario_cases(lambda f: ("simulate", f, "--days", "1", "--no-ledger", "--out", "run"), "simulate")
    cases += _scenario_cases(lambda f: ("serve", f, "--db", "sqlite:///j.sqlite", "--port", "1"), "serve")
    cases += _scenario_cases(lambda f: ("demo", "--live", f, "--no-browser"), "demo")
    cases += _scenario_cases(lambda f: ("agent", "--site", "house-01", "--url", "http://127.0.0.1:9",
                                        "--scenario", f), "agent")
    # measured meter data named by a scenario
    metered = _replace("[office]\n", '[office]\nmeasured_csv = "meter.csv"\n').encode()
    export = ("scenario", "export", "s.toml", "--out", "out")
    meter = "\n".join(_meter_rows()).encode() + b"\n"
    cases += [
        Case("meter-encoding", export, {"s.toml": metered, "meter.csv": meter.replace(b"load_wh", b"load_wh,n\xfc", 1)},
             "meter.csv", ("line 1", "encoding")),
        Case("meter-format", export, {"s.toml": metered, "meter.csv": b"\x00\x01\x02"}, "meter.csv", ("timestamp",)),
        Case("meter-value", export, {"s.toml": metered, "meter.csv": meter.replace(b",100\n", b",lots\n", 1)},
             "meter.csv", ("line 2", "load_wh")),
    ]
    # a run folder's certificates and ledger
    good_event = ",".join("" for _ in EVENT_FIELDS)
    header = ",".join(EVENT_FIELDS).encode()
    cases += [
        Case("certificates-encoding", ("certificates", "run"),
             {"run/certificates.csv": header + b"\n" + good_event.encode() + b"\xfc\n"},
             "certificates.csv", ("line 2", "encoding")),
        Case("certificates-format", ("certificates", "run"), {"run/certificates.csv": b"{}\n"},
             "certificates.csv", ("line 1", "header")),
        Case("audit-encoding", ("audit", "run"), {"run/ledger.json": b'{"journal": "' + LATIN1 + b'"}'},
             "ledger.json", ("line 1", "encoding")),
        Case("audit-format", ("audit", "run"), {"run/ledger.json": b"journal: x\n"}, "ledger.json", ("line 1",)),
        Case("audit-value", ("audit", "run"), {"run/ledger.json": b'{"journal": 5}\n'}, "ledger.json", ("journal",)),
    ]
    # keystores and password files
    keystore = json.dumps({"address": "00" * 20, "crypto": {}, "version": 3}).encode()
    ks = ("simulate", "s.toml", "--days", "1", "--out", "run", "--operator-keystore", "k.json",
          "--operator-password-file", "pw")
    cases += [
        Case("keystore-encoding", ks, {"k.json": b'{"address": "' + LATIN1 + b'"}', "pw": b"secret\n"},
             "k.json", ("line 1", "encoding")),
        Case("keystore-format", ks, {"k.json": b"not json", "pw": b"secret\n"}, "k.json", ("line 1", "JSON")),
        Case("keystore-value", ks, {"k.json": keystore, "pw": b"secret\n"}, "k.json", ("crypto.kdf",)),
        Case("password-encoding", ks, {"k.json": keystore, "pw": LATIN1 + b"\n"}, "pw", ("line 1", "encoding")),
        Case("rotate-new-keystore-encoding",
             ("operator", "rotate", "--chain-url", "http://127.0.0.1:9", "--new-keystore", "k.json",
              "--contract", "0x" + "00" * 20),
             {"k.json": b'{"address": "' + LATIN1 + b'"}'}, "k.json", ("line 1", "encoding")),
        Case("rotate-new-keystore-value",
             ("operator", "rotate", "--chain-url", "http://127.0.0.1:9", "--new-keystore", "k.json",
              "--contract", "0x" + "00" * 20),
             {"k.json": b'{"address": "0x12"}'}, "k.json", ("address",)),
        Case("new-keystore-password-encoding", ("operator", "new-keystore", "new.json", "--password-file", "pw"),
             {"pw": LATIN1}, "pw", ("line 1", "encoding")),
    ]
    # a sweep file, and the meter and weather files of a forecast evaluation
    sweep = ("sweep", "w.toml", "--out", "out")
    evaluate = ("forecast", "evaluate", "--meter", "meter.csv", "--test-month", "2020-08", "--timezone", "Asia/Tokyo")
    cases += [
        Case("sweep-encoding", sweep, {"w.toml": b'scenario = "' + LATIN1 + b'"\n'}, "w.toml", ("line 1", "encoding")),
        Case("sweep-toml", sweep, {"w.toml": b"[axes\n"}, "w.toml", ("line 1", "valid TOML")),
        Case("sweep-unknown-key", sweep, {"w.toml": b"colour = 1\n"}, "w.toml", ("colour", "unknown key")),
        Case("forecast-meter-encoding", evaluate, {"meter.csv": meter.replace(b"load_wh", b"load_wh,n\xfc", 1)},
             "meter.csv", ("line 1", "encoding")),
        Case("forecast-meter-value", evaluate, {"meter.csv": meter.replace(b",100\n", b",lots\n", 1)},
             "meter.csv", ("line 2", "load_wh")),
        Case("forecast-weather-encoding", (*evaluate, "--weather", "weather.csv", "--latitude", "35", "--longitude",
                                           "139"),
             {"meter.csv": meter, "weather.csv": b"timestamp,temp_c,ghi_w_m2\n" + LATIN1 + b"\n"},
             "weather.csv", ("line 2", "encoding")),
    ]
    return cases


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_file_gets_one_line_and_exit_2(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, content in case.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    monkeypatch.chdir(tmp_path)
    for var in ("P2PENERGY_OPERATOR_KEY", "P2PENERGY_OPERATOR_KEYSTORE", "P2PENERGY_OPERATOR_PASSWORD",
                "P2PENERGY_OPERATOR_PASSWORD_FILE", "P2PENERGY_ADMIN_TOKEN", "P2PENERGY_AGENT_KEY"):
        monkeypatch.delenv(var, raising=False)
    result = CliRunner().invoke(app, list(case.args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"crashed: {type(result.exception).__name__}: {str(result.exception)[:300]}")
    assert result.exit_code == 2, result.output[-500:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert case.bad_file in lines[0], lines[0]
    for needle in case.needles:
        assert needle in lines[0], lines[0]
    print(lines[0])

