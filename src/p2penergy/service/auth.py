"""Signed requests besides orders, cancels and modifies: private reads and meter readings.

Both are EIP-712 structs of :mod:`p2penergy.ledger.signing` in the exchange's domain
(``docs/service.md#signing-what-and-how`` states the rules once):

* a **read** of private data (my orders, trades, bill, certificates, nonce) is a ``Read``
  struct over the request's path and its raw query string (what follows ``?``, exactly as
  sent; empty when none) at a time on the exchange's clock; headers ``X-Participant``,
  ``X-Timestamp`` (Unix microseconds) and ``X-Signature`` (65-byte hex) carry it;
* a **meter reading** is a ``MeterReading`` struct carrying a nonce of the participant's one
  nonce sequence (the engine and the audit check it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from p2penergy.ledger.keys import Key
from p2penergy.ledger.signing import Domain, meter_digest, micros, read_digest, sign_digest


def read_headers(key: Key, domain: Domain, path: str, now: datetime, query: str = "") -> dict[str, str]:
    """Headers that authenticate ``key``'s read of ``path`` with raw ``query`` at ``now`` (exchange clock)."""
    ts = micros(now)
    sig = sign_digest(key.private_key, read_digest(domain, key.address, path, query, ts))
    return {"X-Participant": key.participant, "X-Timestamp": str(ts), "X-Signature": "0x" + sig.hex()}


def signed_reading(key: Key, domain: Domain, slot_start: datetime, values: dict[str, int],
                   nonce: int) -> dict[str, Any]:
    """The body of ``POST /api/meter``: ``key``'s reading of a slot, signed."""
    sig = sign_digest(key.private_key, meter_digest(domain, key.address, slot_start, values, nonce))
    return {"participant": key.participant, "slot_start": slot_start.isoformat(), "values": values, "nonce": nonce,
            "signature": "0x" + sig.hex()}
