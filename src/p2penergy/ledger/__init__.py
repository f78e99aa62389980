"""The ledger: signed orders, a hash-chained journal, and one on-chain commitment per slot.

This package is at the edge (database, chain); the market core never imports it.
"""

from p2penergy.ledger.actions import Cancel, Modify
from p2penergy.ledger.audit import AuditReport, audit, open_run, prove_trade
from p2penergy.ledger.chain import Chain, ChainError
from p2penergy.ledger.journal import Journal, JournalRow
from p2penergy.ledger.keys import Key, derive_keys
from p2penergy.ledger.recorder import Ledger, SubmitResult
from p2penergy.ledger.replay import JournalMismatch, replay
from p2penergy.ledger.signing import Domain, ReplayError, SignatureError, Signed, SignedBatch, Verifier

__all__ = [
    "AuditReport", "Cancel", "Chain", "ChainError", "Domain", "Journal", "JournalMismatch", "JournalRow", "Key",
    "Ledger", "Modify", "ReplayError", "SignatureError", "Signed", "SignedBatch", "SubmitResult", "Verifier",
    "audit", "derive_keys", "open_run", "prove_trade", "replay",
]
