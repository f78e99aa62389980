"""The ledger: the exchange engine, signed orders, a hash-chained journal, one on-chain commitment per slot.

This package is at the edge (database, chain); the market core never imports it.
"""

from p2penergy.ledger.actions import Cancel, Modify
from p2penergy.ledger.audit import AuditReport, audit, open_run, prove_trade
from p2penergy.ledger.chain import Chain, ChainError
from p2penergy.ledger.engine import Applied, Engine, JournalMismatch, Listener, Rejection, SelfTradeCancel
from p2penergy.ledger.journal import Journal, JournalRow
from p2penergy.ledger.keys import Key, derive_keys
from p2penergy.ledger.replay import replay
from p2penergy.ledger.run_folder import create_run_engine
from p2penergy.ledger.signing import Domain, ReplayError, SignatureError, Signed, SignedBatch, Verifier
from p2penergy.ledger.wallets import Wallets

__all__ = [
    "Applied", "AuditReport", "Cancel", "Chain", "ChainError", "Domain", "Engine", "Journal", "JournalMismatch",
    "JournalRow", "Key", "Listener", "Modify", "Rejection", "ReplayError", "SelfTradeCancel", "SignatureError",
    "Signed", "SignedBatch", "Verifier", "Wallets", "audit", "create_run_engine", "derive_keys", "open_run",
    "prove_trade", "replay",
]
