"""Rebuild the books and balances from the journal alone.

Replaying feeds every journalled action and close, in journal order and at the time the
exchange applied it, through the same engine that applied it live
(:meth:`p2penergy.ledger.engine.Engine.open`). The exchange is deterministic, so it must
produce exactly the journalled trades, self-trade cancels and refusals (same ids, prices,
energy, tags, reasons); the first difference is reported naming its row.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from p2penergy.ledger.engine import Engine, JournalMismatch, Listener
from p2penergy.ledger.journal import Journal
from p2penergy.ledger.order_scope import ScopedExchange
from p2penergy.market import MarketSettings, Trade

__all__ = ["Balance", "JournalMismatch", "Replayed", "balances_of", "certificate_events", "replay", "settings_of"]


@dataclass(slots=True)
class Balance:
    """One participant's P2P totals: Wh bought and sold, money paid and received (market currency)."""

    bought_wh: int = 0
    sold_wh: int = 0
    paid: Decimal = Decimal(0)
    received: Decimal = Decimal(0)


@dataclass(slots=True)
class Replayed:
    exchange: ScopedExchange
    trades: list[Trade] = field(default_factory=list)
    balances: dict[str, Balance] = field(default_factory=dict)


def balances_of(trades: list[Trade]) -> dict[str, Balance]:
    out: dict[str, Balance] = defaultdict(Balance)
    for t in trades:
        out[t.buyer].bought_wh += t.energy_wh
        out[t.buyer].paid += t.amount
        out[t.seller].sold_wh += t.energy_wh
        out[t.seller].received += t.amount
    return dict(out)


def settings_of(journal: Journal) -> MarketSettings:
    first = next(journal.rows(kinds=("genesis",)), None)
    if first is None:
        raise JournalMismatch("journal: no genesis row")
    return MarketSettings.from_mapping(json.loads(first.body)["market"])


class _Trades(Listener):
    def __init__(self) -> None:
        self.trades: list[Trade] = []

    def on_trades(self, trades: list[Trade]) -> None:
        self.trades += trades


def replay(journal: Journal) -> Replayed:
    """Rebuild the exchange and every trade; raise :class:`JournalMismatch` on the first difference."""
    collected = _Trades()
    engine = Engine.open(journal, listener=collected)
    return Replayed(engine.exchange, collected.trades, balances_of(collected.trades))


def certificate_events(db_url: str) -> list[dict[str, Any]]:
    """The certificate events a journal holds (a live service's or a run's), in journal order,
    each with every field of :data:`p2penergy.provenance.EVENT_FIELDS` (unused ones ``None``).
    Raises ``ValueError`` naming a row that is not an event."""
    from p2penergy.provenance import EVENT_FIELDS

    journal = Journal(db_url, create=False)
    try:
        out = []
        for row in journal.rows(kinds=("certificate",)):
            try:
                event = json.loads(row.body)
                out.append({f: event.get(f) for f in EVENT_FIELDS})
            except (ValueError, AttributeError) as exc:
                raise ValueError(f"journal row {row.seq} (certificate): not a certificate event ({exc})") from exc
        return out
    finally:
        journal.close()
