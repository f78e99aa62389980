"""Granular certificates of origin, in whole Wh, as bundles of consecutive serials.

A device's metered production in one slot is issued as one bundle of ``energy_wh``
one-Wh certificates with serials ``0 .. energy_wh - 1``. A bundle's id names the device,
the production slot and its serial range: ``{device}@{production_start}#{first}-{last}``
(inclusive), so every single Wh has a unique, deterministic id and a bundle split into
parts (a trade taking 300 of 1,000 Wh) yields parts whose ranges are disjoint and cover
the original exactly. A certificate released from storage keeps its serials and its
production attributes (device, source, production slot); only ``origin`` becomes
``"storage"`` and ``storage_id`` / ``storage_kind`` / ``released_at`` say where it was held.

Energy without a certificate (grid imports, energy a battery held before records began)
is an :class:`Uncertified` lot: it counts in energy balances but can never be claimed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from operator import attrgetter

from p2penergy.market import RENEWABLE_SOURCES

PRODUCTION = "production"
"""``origin`` of a certificate issued for a device's metered generation."""
STORAGE = "storage"
"""``origin`` of a certificate released from a battery or car battery."""

GRID = "grid"
"""Holder that receives certificates of exported energy; ``reason`` of grid-charged lots."""

GENERATION_SOURCES = RENEWABLE_SOURCES
"""Sources a generating device may declare (storage and grid are not generation)."""
STORAGE_KINDS = ("battery", "phv")
"""Kinds of storage; a storage's kind is the ``source`` attribute its sell orders carry."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """A bundle of ``energy_wh`` consecutive 1-Wh certificates of one device and slot.

    Serials run from ``first_serial`` to ``first_serial + energy_wh - 1``. Invariant:
    ``energy_wh >= 1``. ``capacity_w`` is the device's rated power (W).
    """

    device: str
    site: str
    producer: str
    source: str
    technology: str
    capacity_w: int
    production_start: datetime
    production_end: datetime
    issuer: str
    first_serial: int
    energy_wh: int
    origin: str = PRODUCTION
    storage_id: str | None = None
    storage_kind: str | None = None
    released_at: datetime | None = None

    @property
    def base_id(self) -> str:
        """Id of the device-slot issuance this bundle belongs to."""
        return f"{self.device}@{self.production_start.isoformat()}"

    @property
    def last_serial(self) -> int:
        return self.first_serial + self.energy_wh - 1

    @property
    def cert_id(self) -> str:
        return f"{self.base_id}#{self.first_serial}-{self.last_serial}"

    @property
    def renewable(self) -> bool:
        return self.source in RENEWABLE_SOURCES


_CERT_FIELDS = tuple(f.name for f in fields(Certificate))
_SERIAL = _CERT_FIELDS.index("first_serial")
if _CERT_FIELDS[_SERIAL + 1] != "energy_wh":  # pragma: no cover - split builds parts positionally
    raise ImportError("Certificate: energy_wh must follow first_serial")
_UP_TO_SERIAL = attrgetter(*_CERT_FIELDS[:_SERIAL])
_AFTER_ENERGY = attrgetter(*_CERT_FIELDS[_SERIAL + 2:])


@dataclass(frozen=True, slots=True)
class Uncertified:
    """Energy without a certificate (``reason``: ``"grid"`` or ``"initial"``), in Wh."""

    energy_wh: int
    reason: str = GRID


Lot = Certificate | Uncertified
"""What a storage pool or a participant holds: a certificate bundle or uncertified energy."""


def split(lot: Lot, energy_wh: int) -> tuple[Lot, Lot | None]:
    """The first ``energy_wh`` Wh of ``lot`` and the rest (``None`` if nothing is left).

    ``0 < energy_wh <= lot.energy_wh``; a certificate's parts keep consecutive serials.
    """
    if energy_wh >= lot.energy_wh:
        return lot, None
    if isinstance(lot, Uncertified):
        return Uncertified(energy_wh, lot.reason), Uncertified(lot.energy_wh - energy_wh, lot.reason)
    # dataclasses.replace, built directly (a trade's or a claim's part of every bundle it splits)
    head_fields = _UP_TO_SERIAL(lot)
    after = _AFTER_ENERGY(lot)
    head = Certificate(*head_fields, lot.first_serial, energy_wh, *after)
    tail = Certificate(*head_fields, lot.first_serial + energy_wh, lot.energy_wh - energy_wh, *after)
    return head, tail


def take(lots: list[Lot], energy_wh: int) -> tuple[list[Lot], list[Lot], int]:
    """Take up to ``energy_wh`` from the front of ``lots``: ``(taken, rest, missing_wh)``."""
    taken: list[Lot] = []
    need = energy_wh
    index = 0
    while need > 0 and index < len(lots):
        head, tail = split(lots[index], need)
        taken.append(head)
        need -= head.energy_wh
        if tail is not None:
            return taken, [tail, *lots[index + 1:]], 0
        index += 1
    return taken, lots[index:], need


def released(cert: Certificate, storage_id: str, storage_kind: str, at: datetime) -> Certificate:
    """``cert`` as released from storage ``storage_id`` in the slot starting ``at``."""
    return replace(cert, origin=STORAGE, storage_id=storage_id, storage_kind=storage_kind, released_at=at)
