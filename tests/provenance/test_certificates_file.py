"""certificates.csv round trip and its errors; the export command on a real run folder."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from p2penergy.cli import app
from p2penergy.formats.certificates_file import CertificateFileError, read_certificates, write_certificates
from p2penergy.market import Tag
from p2penergy.provenance import EVENT_FIELDS, DeviceOutput, Registry, SiteSlot, StorageFlow

from .builders import slot, trade


def run_events():
    reg = Registry()
    s0, e0 = slot(0)
    s1, e1 = slot(1)
    pv = DeviceOutput("office-pv", "solar", "c-Si", 50000, 5000)
    a = reg.settle_slot(s0, e0, [
        SiteSlot("office", "office", (pv,), 3000, grid_export_wh=1000),
        SiteSlot("car-1", "office", storage=(StorageFlow("car-1-bat", charge_wh=1000, kind="phv"),)),
    ], [trade("office", "car-1", 1000, Tag.of(source="solar", producer="office"))])
    b = reg.settle_slot(s1, e1, [
        SiteSlot("car-1", "home", storage=(StorageFlow("car-1-bat", drive_wh=1000, kind="phv"),)),
    ], [])
    return [*a.events, *b.events]


def test_round_trip_is_exact(tmp_path):
    events = run_events()
    path = write_certificates(tmp_path / "run", events)
    assert path.name == "certificates.csv"
    assert read_certificates(tmp_path / "run") == events


def test_bad_file_names_line_and_field(tmp_path):
    path = write_certificates(tmp_path, run_events())
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",1000,", ",many,", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CertificateFileError, match=r"line 3: (serial_first|energy_wh)"):
        read_certificates(tmp_path)
    path.write_text("kind,slot_start\n")
    with pytest.raises(CertificateFileError, match="line 1: header"):
        read_certificates(tmp_path)
    with pytest.raises(CertificateFileError, match="readable"):
        read_certificates(tmp_path / "missing")


def test_cli_exports_a_participant_as_csv_and_json(tmp_path):
    write_certificates(tmp_path, run_events())
    runner = CliRunner()
    out = runner.invoke(app, ["certificates", str(tmp_path), "--participant", "car-1"])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(out.stdout.splitlines()))
    assert tuple(rows[0]) == EVENT_FIELDS
    assert {r["kind"] for r in rows} == {"transfer", "trade", "store", "release", "cancel", "meter"}
    assert all("car-1" in (r["from_holder"], r["to_holder"]) for r in rows)
    out = runner.invoke(app, ["certificates", str(tmp_path), "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == run_events()


def test_cli_summary_reports_renewable_driving(tmp_path):
    write_certificates(tmp_path, run_events())
    out = CliRunner().invoke(app, ["certificates", str(tmp_path), "--summary", "--format", "json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert body["renewable_driving"]["total"] == {"matched_wh": 1000, "use_wh": 1000, "score": 1.0}
    assert body["preferences"]["car-1"]["met"] is True
    target = tmp_path / "summary.csv"
    out = CliRunner().invoke(app, ["certificates", str(tmp_path), "--summary", "--output", str(target)])
    assert out.exit_code == 0, out.output
    assert "renewable_driving" in target.read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "xml"], "--format"),
    (["--participant", "nobody"], "--participant"),
])
def test_cli_errors(tmp_path, args, message):
    write_certificates(tmp_path, run_events())
    out = CliRunner().invoke(app, ["certificates", str(tmp_path), *args])
    assert out.exit_code == 2
    assert message in out.output


def test_cli_missing_run_folder(tmp_path):
    out = CliRunner().invoke(app, ["certificates", str(tmp_path / "nope")])
    assert out.exit_code == 2
    assert "certificates.csv" in out.output


def test_cli_writes_a_self_contained_sankey(tmp_path):
    write_certificates(tmp_path, run_events())
    target = tmp_path / "flows.html"
    out = CliRunner().invoke(app, ["certificates", str(tmp_path), "--summary", "--format", "json",
                                   "--sankey", str(target)])
    assert out.exit_code == 0, out.output
    html = target.read_text(encoding="utf-8")
    assert '"type":"sankey"' in html
    assert '"label":["solar \\u00b7 office","storage","car-1","office","grid export"]' in html
    assert '<script src="https://cdn.plot.ly' not in html  # plotly.js is embedded, not fetched


def test_cli_sankey_is_by_participant_type_with_a_per_site_view(tmp_path):
    write_certificates(tmp_path, run_events())
    types = {"office": {"type": "office"}, "car-1": {"type": "car"}}
    (tmp_path / "results.json").write_text(json.dumps({"participants": types}), encoding="utf-8")
    by_type, per_site = tmp_path / "types.html", tmp_path / "sites.html"
    out = CliRunner().invoke(app, ["certificates", str(tmp_path), "--summary", "--format", "json",
                                   "--sankey", str(by_type)])
    assert out.exit_code == 0, out.output
    assert '"label":["solar \\u00b7 office","storage","car","office","grid export"]' in by_type.read_text("utf-8")
    out = CliRunner().invoke(app, ["certificates", str(tmp_path), "--summary", "--format", "json",
                                   "--sankey", str(per_site), "--per-site"])
    assert out.exit_code == 0, out.output
    assert '"label":["solar \\u00b7 office","storage","car-1","office","grid export"]' in per_site.read_text("utf-8")


def test_cli_sankey_names_a_participant_without_a_type(tmp_path):
    write_certificates(tmp_path, run_events())
    (tmp_path / "results.json").write_text(json.dumps({"participants": {"office": {"type": "office"}}}),
                                           encoding="utf-8")
    out = CliRunner().invoke(app, ["certificates", str(tmp_path), "--sankey", str(tmp_path / "s.html")])
    assert out.exit_code == 2
    assert "car-1" in out.output and "--per-site" in out.output
