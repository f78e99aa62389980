"""The ledger: the exchange engine, signed orders, a hash-chained journal, one on-chain commitment per slot.

This package is at the edge (database, chain); the market core never imports it.

The names below are imported from their modules on first use (PEP 562), so importing one light
module of the package (the command line reads :mod:`p2penergy.ledger.keys`'s option names to
parse its arguments) does not load the chain client (web3) and the database (SQLAlchemy).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULE_OF = {
    "Cancel": "actions", "Modify": "actions",
    "AuditReport": "audit", "audit": "audit", "open_run": "audit", "prove_trade": "audit",
    "Chain": "chain", "ChainError": "chain",
    "Applied": "engine", "Engine": "engine", "JournalMismatch": "engine", "Listener": "engine",
    "Rejection": "engine", "SelfTradeCancel": "engine",
    "Journal": "journal", "JournalRow": "journal",
    "Key": "keys", "derive_keys": "keys",
    "replay": "replay",
    "create_run_engine": "run_folder",
    "Domain": "signing", "ReplayError": "signing", "SignatureError": "signing", "Signed": "signing",
    "SignedBatch": "signing", "Verifier": "signing",
    "Wallets": "wallets",
}
"""Each public name of the package → the module (of this package) that defines it."""

__all__ = [
    "Applied", "AuditReport", "Cancel", "Chain", "ChainError", "Domain", "Engine", "Journal", "JournalMismatch",
    "JournalRow", "Key", "Listener", "Modify", "Rejection", "ReplayError", "SelfTradeCancel", "SignatureError",
    "Signed", "SignedBatch", "Verifier", "Wallets", "audit", "create_run_engine", "derive_keys", "open_run",
    "prove_trade", "replay",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


class _Ledger(types.ModuleType):
    """The package's module type. ``audit`` and ``replay`` each name both a module and its function;
    the package's ``audit`` and ``replay`` are the functions (as ``from p2penergy.ledger import audit``
    always gave), even after the module (:mod:`p2penergy.ledger.audit`, :mod:`p2penergy.ledger.replay`)
    is imported, which would otherwise set the package's attribute to the module."""

    @property
    def audit(self) -> Any:
        from p2penergy.ledger.audit import audit

        return audit

    @audit.setter
    def audit(self, module: types.ModuleType) -> None:
        """The import system records the submodule here; it stays reachable in ``sys.modules``."""

    @property
    def replay(self) -> Any:
        from p2penergy.ledger.replay import replay

        return replay

    @replay.setter
    def replay(self, module: types.ModuleType) -> None:
        """As for ``audit``."""


sys.modules[__name__].__class__ = _Ledger
