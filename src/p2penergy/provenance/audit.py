"""Audit of certificate events: what an independent checker of a run's file verifies.

:func:`audit` returns a list of problems (empty when the events are sound):

* every certificate that moves was issued: its serials lie inside its issuance;
* no serial reaches more than one end (cancel, export to grid, storage loss) — so no
  certificate is claimed twice, and none is both claimed and sold to the grid;
* per slot and participant, consumption claims never exceed metered consumption and
  driving claims never exceed metered driving;
* issued serials are unique (one issuance per device and production slot).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

TERMINAL = ("cancel", "export", "loss")


def _base(e: Mapping[str, Any]) -> str:
    return f"{e['device']}@{e['production_start']}"


def audit(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Problems found in ``events`` (see the module docstring); ``[]`` if none."""
    issued: dict[str, int] = {}
    ends: dict[str, list[tuple[int, int, str]]] = {}
    moved: list[Mapping[str, Any]] = []
    claims: dict[tuple[str, str, str], int] = {}
    meters: dict[tuple[str, str, str], int] = {}
    problems: list[str] = []
    for e in events:
        kind = e["kind"]
        if kind == "issue":
            base = _base(e)
            if base in issued:
                problems.append(f"{base}: issued twice")
            issued[base] = e["energy_wh"]
        elif kind in ("meter",):
            meters[(e["slot_start"], e["from_holder"], "consumption")] = e["energy_wh"]
            meters[(e["slot_start"], e["from_holder"], "driving")] = e["drive_wh"] or 0
        if e["cert_id"] is None:
            continue
        moved.append(e)
        if kind in TERMINAL:
            first = e["serial_first"]
            ends.setdefault(_base(e), []).append((first, first + e["energy_wh"] - 1, e["cert_id"]))
        if kind == "cancel":
            key = (e["slot_start"], e["from_holder"], e["purpose"])
            claims[key] = claims.get(key, 0) + e["energy_wh"]
    for e in moved:
        size = issued.get(_base(e))
        if size is None:
            problems.append(f"{e['cert_id']}: {e['kind']} of a certificate never issued")
        elif e["serial_first"] < 0 or e["energy_wh"] < 1 or e["serial_first"] + e["energy_wh"] > size:
            problems.append(f"{e['cert_id']}: serials outside the {size} Wh issued")
    for ranges in ends.values():
        ranges.sort()
        reach, holder = -1, ""
        for first, last, cert_id in ranges:
            if first <= reach:
                problems.append(f"{cert_id}: overlaps {holder} (a certificate ended twice)")
            if last > reach:
                reach, holder = last, cert_id
    for key, wh in sorted(claims.items()):
        metered = meters.get(key, 0)
        if wh > metered:
            slot, who, purpose = key
            problems.append(f"{who} at {slot}: claimed {wh} Wh for {purpose}, metered {metered} Wh")
    return problems
