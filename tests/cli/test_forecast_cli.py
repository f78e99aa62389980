"""``p2penergy forecast evaluate`` refuses bad input in one line naming the file, line and column
(or the option), exit code 2, before any fitting."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from p2penergy.cli import app

HEADER = "timestamp,site,load_kwh"


def _rows(days: int = 3) -> list[str]:
    return [f"2017-06-{d:02d}T{h:02d}:00:00-07:00,home,0.5" for d in range(1, days + 1) for h in range(24)]


def _run(tmp_path, meter_lines, *extra):
    (tmp_path / "meter.csv").write_text("\n".join(meter_lines) + "\n", encoding="utf-8")
    return CliRunner().invoke(app, ["forecast", "evaluate", "--meter", str(tmp_path / "meter.csv"),
                                    "--test-month", "2017-06", "--timezone", "America/Los_Angeles", *extra])


@pytest.mark.parametrize(("lines", "extra", "needles"), [
    ([HEADER, *_rows()[:5], "2017-06-01T05:00:00-07:00,home,lots"], (), ("meter.csv", "line 7", "'load_kwh'")),
    ([HEADER, "2017-06-01T00:00,home,1", "2017-06-01T00:00,home,1"], (), ("meter.csv", "line 3", "same slot as line 2")),
    ([HEADER, *_rows()], ("--weather", "w.csv"), ("--latitude",)),
    ([HEADER, *_rows()], ("--holidays", "XX"), ("holidays", "'XX'")),
    ([HEADER, *_rows()[:30], *_rows()[31:]], (), ("site 'home'", "slots missing after 2017-06-02T05:00:00-07:00")),
    ([HEADER, *_rows()], (), ("test month 2017-06",)),
])
def test_bad_input_is_one_line_naming_it(tmp_path, lines, extra, needles):
    result = _run(tmp_path, lines, *extra)
    assert result.exit_code == 2, result.output
    message = result.stderr.strip().splitlines()
    assert len(message) == 1, result.stderr
    for needle in needles:
        assert needle in message[0], message[0]
