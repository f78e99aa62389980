"""``p2penergy demo --live --duration`` end to end: a real process serving on a real socket, the scenario's
agents trading over HTTP on the accelerated clock, a bounded run that exits 0 and leaves a journal that
checks out — on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import pytest
from tests.service.conftest import free_port, verified_rows
from typer.testing import CliRunner

from p2penergy.cli import app
from p2penergy.ledger.journal import Journal
from p2penergy.ledger.replay import settings_of
from p2penergy.scenario.load import load_scenario
from p2penergy.service.launch import ServiceThread
from p2penergy.service.settings import ServiceSettings

DURATION_MIN = 0.5  # wall minutes of trading
SPEED = 300.0  # market seconds per wall second (the demo's default): 0.5 min = 2.5 market hours = 5 slots


def test_a_bounded_live_demo_exits_0_and_leaves_a_journal_that_checks_out(db_url: str, tmp_path: Path):
    port = free_port()
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "p2penergy", "demo", "--live", "--duration", str(DURATION_MIN), "--no-browser",
         "--db", db_url, "--port", str(port), "--speed", str(SPEED), "--forecaster", "seven-day-mean"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    wall_s = time.monotonic() - began
    assert done.returncode == 0, done.stderr[-3000:]
    assert wall_s >= DURATION_MIN * 60  # it traded for its duration, then stopped by itself
    stopped = datetime.fromisoformat(re.search(r"stopped at market time (\S+):", done.stderr).group(1))

    rows = verified_rows(db_url)  # the hash chain verifies
    kinds = Counter(r.kind for r in rows)
    scenario = load_scenario()
    assert kinds["participant"] == len(scenario.homes) + 1 + len(scenario.cars)  # every home, the office, every car
    assert kinds["order"] > 0 and kinds["close"] > 0
    assert f"journal: {len(rows)} rows" in done.stdout  # its summary is the journal's
    assert "check it with: p2penergy audit --db" in done.stdout
    # the accelerated clock ran for at least the duration, from the scenario's report month's 2nd day, 06:00
    start = datetime.combine(scenario.period.report_month + timedelta(days=1), dtime(6), scenario.market.tz)
    assert stopped - start >= timedelta(minutes=DURATION_MIN * SPEED)
    # what was due is closed: every book with orders whose gate closed before the stop has its close row,
    journal = Journal(db_url)
    try:
        market = settings_of(journal)
        closed = {datetime.fromisoformat(json.loads(r.body)["slot_start"]) for r in rows if r.kind == "close"}
        traded_slots = {datetime.fromisoformat(json.loads(r.body)["action"]["slot_start"])
                        for r in rows if r.kind == "order"}
        due = {s for s in traded_slots if market.gate_close(s) <= stopped}
        assert due and due <= closed
        # and committed: every closed slot whose delivery ended the meter grace before the stop has its commit
        grace = timedelta(seconds=ServiceSettings.model_fields["meter_grace_s"].default)
        committed = {datetime.fromisoformat(json.loads(r.body)["slot_start"]) for r in rows if r.kind == "commit"}
        to_commit = {s for s in closed if s + market.slot_length + grace <= stopped}
        assert to_commit and to_commit <= committed
    finally:
        journal.close()
    audited = CliRunner().invoke(app, ["audit", "--db", db_url])  # what the demo's last line tells one to run
    assert audited.exit_code == 0, audited.output
    assert f"audit passed: {len(rows)} journal rows" in audited.output
    assert f"{kinds['trade']} trades replayed" in audited.output


def test_bad_options_are_refused_before_anything_starts():
    runner = CliRunner()
    for args, field in ((["--duration", "0"], "--duration"), (["--duration", "-1"], "--duration"),
                        (["--db", "no-such-scheme"], "--db"), (["--forecaster", "crystal-ball"], "--forecaster"),
                        (["--day", "yesterday"], "--day")):
        result = runner.invoke(app, ["demo", "--live", "--no-browser", *args])
        assert result.exit_code == 2, (args, result.output)
        assert field in result.output
    result = runner.invoke(app, ["demo", "--no-browser", "--duration", "1"])
    assert result.exit_code == 2 and "--live" in result.output


def test_a_service_thread_on_a_port_in_use_fails_naming_the_port():
    async def nothing(scope, receive, send) -> None:  # the smallest ASGI app
        return None

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match=rf"port: .*127\.0\.0\.1:{port}"):
            ServiceThread(nothing, port=port).start()
    with ServiceThread(nothing, port=0) as service:  # port 0: a free one, read back from the socket
        assert service.port > 0 and service.url == f"http://127.0.0.1:{service.port}"
