"""``p2penergy certificates RUN_DIR``: export a run's certificate events, or their metrics."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from p2penergy.cli.output import fail

if TYPE_CHECKING:  # imported when the command runs, not to parse its arguments (tests/cli/test_startup.py)
    from p2penergy.provenance.metrics import Summary


def certificates(
    run_dir: Annotated[Path | None, typer.Argument(help="A run folder holding certificates.csv.")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Read the certificate events of a journal instead: a "
                                                         "live service's (or a run's), by URL.")] = None,
    participant: Annotated[str | None, typer.Option(help="Only events where this participant is a party.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv | json")] = "csv",
    summary: Annotated[bool, typer.Option("--summary", help="Print metrics instead of events.")] = False,
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of standard output.")] = None,
    sankey: Annotated[Path | None, typer.Option(help="Also write a Sankey diagram of the flows (HTML).")] = None,
    per_site: Annotated[bool, typer.Option("--per-site", help="Sankey: one node per site, not per participant "
                                                              "type.")] = False,
) -> None:
    """Export certificate events (issue, transfer, store, release, cancel, export, loss, meter, trade).

    ``--sankey`` draws participants by type (office, consumer, prosumer, car; from the run's
    results.json) or, with ``--per-site`` (or without results.json), one node per site."""
    from rich.console import Console

    from p2penergy.formats.certificates_file import CertificateFileError, read_certificates
    from p2penergy.provenance.metrics import summarize
    from p2penergy.provenance.sankey import sankey_data, sankey_figure

    if fmt not in ("csv", "json"):
        raise fail(f"--format: must be csv or json, got {fmt!r}")
    if (run_dir is None) == (db is None):
        raise fail("give RUN_DIR or --db URL (one of them)")
    if db is not None:
        from p2penergy.ledger.journal import JournalError
        from p2penergy.ledger.replay import certificate_events

        try:
            events = certificate_events(db)
        except (JournalError, ValueError) as exc:
            raise fail(f"--db: {exc}") from exc
        source = db
    else:
        try:
            events = read_certificates(run_dir)
        except CertificateFileError as exc:
            raise fail(str(exc)) from exc
        source = str(run_dir)
    if participant is not None:
        events = [e for e in events if participant in (e["from_holder"], e["to_holder"])]
        if not events:
            raise fail(f"--participant: no events for {participant!r} in {source}")
    if sankey is not None:
        types = None if per_site or run_dir is None else participant_types(run_dir)
        if types is None and not per_site and run_dir is not None:
            Console(stderr=True).print(f"note: {run_dir / 'results.json'} gives no participant types; "
                                       "the Sankey has one node per site", highlight=False)
        try:
            data = sankey_data(events, group=types)
        except ValueError as exc:
            raise fail(f"--sankey: {exc} in {source} (or use --per-site)") from exc
        view = "per site" if types is None else "by participant type"
        name = run_dir.name if run_dir is not None else "live exchange"
        figure = sankey_figure(data, title=f"Where the energy came from (kWh, {view}): {name}")
        try:
            figure.write_html(sankey, include_plotlyjs=True)  # self-contained: works offline
        except OSError as exc:
            raise fail(f"--sankey: cannot write {sankey} ({exc.strerror})") from exc
    if summary:
        result = summarize(events)
        if fmt == "json":
            text = json.dumps(summary_json(result), indent=2)
        elif output is None:
            print_summary(result)
            return
        else:
            text = summary_csv(result)
    else:
        text = json.dumps(events) if fmt == "json" else events_csv(events)
    if output is None:
        typer.echo(text, nl=False) if fmt == "csv" else typer.echo(text)
    else:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def participant_types(run_dir: Path) -> dict[str, str] | None:
    """Participant → type from the run's ``results.json`` (``participants.*.type``), if it has them."""
    try:
        body = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    participants = body.get("participants") if isinstance(body, dict) else None
    if not isinstance(participants, dict):
        return None
    types = {pid: p.get("type") for pid, p in participants.items() if isinstance(p, dict)}
    return types if types and all(isinstance(t, str) for t in types.values()) else None


def events_csv(events: list[dict[str, Any]]) -> str:
    from p2penergy.provenance import EVENT_FIELDS

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EVENT_FIELDS)
    writer.writerows(["" if e[f] is None else e[f] for f in EVENT_FIELDS] for e in events)
    return buffer.getvalue()


def summary_json(s: Summary) -> dict[str, Any]:
    def score(sc: Any) -> dict[str, Any]:
        return {"matched_wh": sc.matched_wh, "use_wh": sc.use_wh, "score": sc.value}

    return {
        "matching_30min": {"community": score(s.matching_slot.community),
                           "participants": {p: score(v) for p, v in s.matching_slot.participants.items()}},
        "matching_hourly": {"community": score(s.matching_hour.community),
                            "participants": {p: score(v) for p, v in s.matching_hour.participants.items()}},
        "renewable_driving": {"total": score(s.driving.total),
                              "participants": {p: score(v) for p, v in s.driving.participants.items()}},
        "energy_per_tag": {t: {"traded_wh": v.traded_wh, "certified_wh": v.certified_wh,
                               "shortfall_wh": v.shortfall_wh} for t, v in s.per_tag.items()},
        "use_by_source_wh": {p: dict(v) for p, v in s.by_source.items()},
        "preferences": {b: {"traded_wh": v.traded_wh, "first_choice_wh": v.first_choice_wh,
                            "certified_wh": v.certified_wh, "met": v.met} for b, v in s.preferences.items()},
    }


def _rows(s: Summary) -> list[tuple[str, str, str, str]]:
    """(participant, metric, value, detail) rows of the summary."""
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    rows = [("community", "matching_30min", pct(s.matching_slot.community.value),
             f"{s.matching_slot.community.matched_wh}/{s.matching_slot.community.use_wh} Wh"),
            ("community", "matching_hourly", pct(s.matching_hour.community.value),
             f"{s.matching_hour.community.matched_wh}/{s.matching_hour.community.use_wh} Wh"),
            ("cars", "renewable_driving", pct(s.driving.total.value),
             f"{s.driving.total.matched_wh}/{s.driving.total.use_wh} Wh")]
    for p, sc in s.matching_slot.participants.items():
        rows.append((p, "matching_30min", pct(sc.value), f"{sc.matched_wh}/{sc.use_wh} Wh"))
        hour = s.matching_hour.participants[p]
        rows.append((p, "matching_hourly", pct(hour.value), f"{hour.matched_wh}/{hour.use_wh} Wh"))
    for p, sc in s.driving.participants.items():
        rows.append((p, "renewable_driving", pct(sc.value), f"{sc.matched_wh}/{sc.use_wh} Wh"))
    for t, te in s.per_tag.items():
        rows.append((t, "tag_traded_wh", str(te.traded_wh), f"certified {te.certified_wh} Wh"))
    for b, po in s.preferences.items():
        rows.append((b, "preferences_met", str(po.met),
                     f"first choice {po.first_choice_wh}/{po.traded_wh} Wh, certified {po.certified_wh} Wh"))
    return rows


def summary_csv(s: Summary) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("subject", "metric", "value", "detail"))
    writer.writerows(_rows(s))
    return buffer.getvalue()


def print_summary(s: Summary) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if Console().is_terminal else Console(width=160)
    table = Table(title="Certificates of origin: metrics")
    for column in ("subject", "metric", "value", "detail"):
        table.add_column(column)
    for row in _rows(s):
        table.add_row(*row)
    console.print(table)
