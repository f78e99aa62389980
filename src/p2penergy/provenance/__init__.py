"""Provenance: granular certificates of origin per slot, from generator through storage to consumer.

Pure and deterministic: no clock, no I/O. Imports only :mod:`p2penergy.market`.
"""

from p2penergy.provenance.certificates import PRODUCTION, STORAGE, Certificate, Uncertified
from p2penergy.provenance.events import EVENT_FIELDS, INT_FIELDS, KINDS, Event
from p2penergy.provenance.metering import DeviceOutput, ProvenanceError, SiteSlot, StorageFlow
from p2penergy.provenance.records import (
    Balance,
    DeviceClaim,
    ParticipantProvenance,
    SlotProvenance,
    TradeProvenance,
)
from p2penergy.provenance.registry import DEFAULT_ISSUER, Registry
from p2penergy.provenance.storage import OriginPool

__all__ = [
    "DEFAULT_ISSUER", "EVENT_FIELDS", "INT_FIELDS", "KINDS", "PRODUCTION", "STORAGE", "Balance", "Certificate",
    "DeviceClaim", "DeviceOutput", "Event", "OriginPool", "ParticipantProvenance", "ProvenanceError", "Registry",
    "SiteSlot", "SlotProvenance", "StorageFlow", "TradeProvenance", "Uncertified",
]
