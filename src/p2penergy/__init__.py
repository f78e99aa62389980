"""p2penergy: peer-to-peer electricity trading — exchange, provenance, agents and ledger.

``p2penergy.simulate(...)`` and ``p2penergy.sweep(...)`` (notebooks; :mod:`p2penergy.api`) are
imported on first use, so ``import p2penergy`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "simulate", "sweep"]


def __getattr__(name: str) -> Any:
    if name in ("simulate", "sweep"):
        from p2penergy import api

        return getattr(api, name)
    raise AttributeError(f"module 'p2penergy' has no attribute {name!r}")
