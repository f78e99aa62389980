"""What one slot's certificate settlement returns: :class:`SlotProvenance` and its parts (Wh)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from p2penergy.market import RENEWABLE_SOURCES
from p2penergy.provenance.events import Event


@dataclass(frozen=True, slots=True)
class Balance:
    """Certificate balance of one slot, in Wh (certified energy only).

    ``claimed_wh`` counts consumption and driving cancellations; ``exported_wh`` what went
    to the grid; ``storage_*_wh`` the certified Wh in all pools; ``loss_wh`` certified Wh
    lost in storage. ``shortfall_wh`` (traded Wh delivered without certificates) and
    ``untracked_wh`` (storage withdrawals beyond what a pool held) are uncertified energy,
    reported for information.
    """

    issued_wh: int
    claimed_wh: int
    exported_wh: int
    storage_start_wh: int
    storage_end_wh: int
    loss_wh: int
    shortfall_wh: int
    untracked_wh: int

    @property
    def storage_change_wh(self) -> int:
        return self.storage_end_wh - self.storage_start_wh

    @property
    def holds(self) -> bool:
        """``issued = claimed + exported + Δstorage + losses``, to the Wh."""
        return self.issued_wh == self.claimed_wh + self.exported_wh + self.storage_change_wh + self.loss_wh


@dataclass(frozen=True, slots=True)
class TradeProvenance:
    """How many of a trade's Wh came with certificates of its tag."""

    trade_id: str
    seller: str
    buyer: str
    energy_wh: int
    certified_wh: int
    tag: str
    preference_level: int

    @property
    def shortfall_wh(self) -> int:
        return self.energy_wh - self.certified_wh


@dataclass(frozen=True, slots=True)
class ParticipantProvenance:
    """A participant's slot: metered use and the certificates it claimed, by source (Wh)."""

    participant: str
    consumption_wh: int
    drive_wh: int
    claimed_wh_by_source: Mapping[str, int]
    drive_claimed_wh_by_source: Mapping[str, int]
    exported_wh: int
    clean_exported_wh: int

    @property
    def claimed_wh(self) -> int:
        return sum(self.claimed_wh_by_source.values()) + sum(self.drive_claimed_wh_by_source.values())

    @property
    def clean_claimed_wh(self) -> int:
        return sum(wh for s, wh in self.claimed_wh_by_source.items() if s in RENEWABLE_SOURCES) + sum(
            wh for s, wh in self.drive_claimed_wh_by_source.items() if s in RENEWABLE_SOURCES)


@dataclass(frozen=True, slots=True)
class DeviceClaim:
    """Wh of device ``device_id``'s production in the slot starting ``production_start``
    issued and claimed in this settlement slot (claims of earlier production come via storage)."""

    device_id: str
    production_start: datetime
    issued_wh: int
    claimed_wh: int


@dataclass(frozen=True, slots=True)
class SlotProvenance:
    """Everything one slot's settlement produced.

    ``events``: plain dicts for the journal (:mod:`p2penergy.provenance.events`).
    ``devices``: per generating device ``(device_id, issued_wh, claimed_wh)`` for the
    on-chain check — issued this slot, and claimed this slot (of any production slot);
    ``device_claims`` splits the claims by production slot.
    """

    slot_start: datetime
    slot_end: datetime
    events: tuple[Event, ...]
    devices: tuple[tuple[str, int, int], ...]
    device_claims: tuple[DeviceClaim, ...]
    participants: Mapping[str, ParticipantProvenance]
    trades: tuple[TradeProvenance, ...]
    balance: Balance

    def claimed_by_source(self) -> dict[str, dict[str, int]]:
        """Per participant, Wh claimed (consumption and driving) by source."""
        out: dict[str, dict[str, int]] = {}
        for p, pp in self.participants.items():
            merged = dict(pp.claimed_wh_by_source)
            for s, wh in pp.drive_claimed_wh_by_source.items():
                merged[s] = merged.get(s, 0) + wh
            out[p] = merged
        return out
