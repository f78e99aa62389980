"""Certificate events as flat, plain dicts: one schema for the journal, files and metrics.

Every event has exactly the keys of :data:`EVENT_FIELDS` (unused ones are ``None``);
values are ``str``, ``int`` or ``None``; times are ISO 8601 with offset. ``kind`` is one of

========== ================================================ =============== ===============
kind       meaning                                          from_holder     to_holder
========== ================================================ =============== ===============
issue      certificates issued for metered production       —               producer
transfer   a P2P trade moves certificates to the buyer      seller          buyer
store      certificates enter a storage's origin pool       participant     storage id
release    certificates leave storage (origin → storage)    storage id      participant
cancel     claimed against consumption (``purpose``:         participant     —
           ``consumption``, or ``driving`` from a car)
export     certificates of energy sold to the utility        participant     ``grid``
           (``purpose``: ``surplus``; ``unmatched`` for a
           seller's certificates its tagged sales did not
           take)
loss       certificates of energy lost inside storage       storage id      ``loss``
meter      a participant's metered use: ``energy_wh`` =     participant     —
           consumption, ``drive_wh`` = driving
trade      a trade: ``energy_wh`` traded, ``certified_wh``  seller          buyer
           delivered with certificates, ``tag``,
           ``preference_level``
========== ================================================ =============== ===============

A certificate event names one bundle: ``cert_id`` = ``{device}@{production_start}#{first}-{last}``,
``serial_first`` and ``energy_wh`` give its serial range.
"""

from __future__ import annotations

from typing import Any

from p2penergy.provenance.certificates import Certificate

EVENT_FIELDS = (
    "kind", "slot_start", "slot_end", "cert_id", "serial_first", "energy_wh",
    "device", "site", "producer", "source", "technology", "capacity_w",
    "production_start", "production_end", "origin", "storage_id", "issuer",
    "from_holder", "to_holder", "purpose", "trade_id", "tag", "preference_level",
    "certified_wh", "drive_wh",
)
INT_FIELDS = ("serial_first", "energy_wh", "capacity_w", "preference_level", "certified_wh", "drive_wh")
KINDS = ("issue", "transfer", "store", "release", "cancel", "export", "loss", "meter", "trade")

Event = dict[str, Any]

_BLANK: Event = dict.fromkeys(EVENT_FIELDS)


class EventLog:
    """Builds the events of one slot; ``slot_start`` / ``slot_end`` are ISO strings."""

    __slots__ = ("events", "slot_end", "slot_start")

    def __init__(self, slot_start: str, slot_end: str) -> None:
        self.slot_start = slot_start
        self.slot_end = slot_end
        self.events: list[Event] = []

    def cert(self, kind: str, cert: Certificate, from_holder: str | None, to_holder: str | None,
             purpose: str | None = None, trade_id: str | None = None, tag: str | None = None) -> None:
        start = cert.production_start.isoformat()
        # every key of EVENT_FIELDS, in its order (what _BLANK.copy() and an update give; built at once)
        self.events.append({
            "kind": kind, "slot_start": self.slot_start, "slot_end": self.slot_end,
            "cert_id": f"{cert.device}@{start}#{cert.first_serial}-{cert.first_serial + cert.energy_wh - 1}",
            "serial_first": cert.first_serial, "energy_wh": cert.energy_wh, "device": cert.device,
            "site": cert.site, "producer": cert.producer, "source": cert.source, "technology": cert.technology,
            "capacity_w": cert.capacity_w, "production_start": start,
            "production_end": cert.production_end.isoformat(), "origin": cert.origin,
            "storage_id": cert.storage_id, "issuer": cert.issuer, "from_holder": from_holder,
            "to_holder": to_holder, "purpose": purpose, "trade_id": trade_id, "tag": tag,
            "preference_level": None, "certified_wh": None, "drive_wh": None,
        })

    def record(self, kind: str, **values: Any) -> None:
        event = _BLANK.copy()
        event.update(kind=kind, slot_start=self.slot_start, slot_end=self.slot_end, **values)
        self.events.append(event)
