"""Request signatures besides the EIP-712 order actions: private reads and meter uploads.

Orders and cancels are EIP-712 structs (:mod:`p2penergy.ledger.signing`). Two more
things are signed with the participant's key, bound to the same EIP-712 domain:

* a **read** of private data (my orders, trades, bill, certificates): headers
  ``X-Participant``, ``X-Timestamp`` (Unix seconds, wall time) and ``X-Signature``
  (65-byte hex) over ``digest(keccak("p2penergy/read/v1" 0x00 participant 0x00 path 0x00 timestamp))``;
  the timestamp must be within the service's ``read_skew_s`` of its wall clock;
* a **meter reading** (`p2penergy.ledger.signing.meter_digest`, which the engine and the audit
  check): the signature covers the canonical JSON of the reading with its
  nonce (``digest(keccak("p2penergy/meter/v1" 0x00 json))``); nonces are the same
  strictly increasing sequence as the participant's order actions.
"""

from __future__ import annotations

from p2penergy.ledger.hashing import keccak
from p2penergy.ledger.keys import Key
from p2penergy.ledger.signing import Domain, sign_digest

READ_TAG = b"p2penergy/read/v1\x00"


def read_digest(domain: Domain, participant: str, path: str, timestamp: str) -> bytes:
    return domain.digest(keccak(READ_TAG + participant.encode() + b"\x00" + path.encode() + b"\x00"
                                + timestamp.encode()))


def read_headers(key: Key, domain: Domain, path: str, timestamp: float) -> dict[str, str]:
    """Headers that authenticate a private read of ``path`` (no query string) by ``key``."""
    ts = f"{timestamp:.3f}"
    sig = sign_digest(key.private_key, read_digest(domain, key.participant, path, ts))
    return {"X-Participant": key.participant, "X-Timestamp": ts, "X-Signature": "0x" + sig.hex()}

