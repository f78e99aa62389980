"""Rebuild the books and balances from the journal alone.

Replaying feeds every journaled order, modify, cancel and close, in journal order, to a
fresh exchange built from the genesis row's market settings. The exchange is
deterministic, so it must produce exactly the journaled trades (same ids, prices,
energy, tags); any difference is reported as the first mismatching trade.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from p2penergy.ledger.actions import Cancel, Order, action_from_dict
from p2penergy.ledger.journal import Journal
from p2penergy.ledger.recorder import trade_to_dict
from p2penergy.market import Exchange, MarketSettings, Trade, make_exchange


class JournalMismatch(ValueError):
    """Replaying the journal does not give what the journal says happened."""


@dataclass(slots=True)
class Balance:
    """One participant's P2P totals: Wh bought and sold, money paid and received (market currency)."""

    bought_wh: int = 0
    sold_wh: int = 0
    paid: Decimal = Decimal(0)
    received: Decimal = Decimal(0)


@dataclass(slots=True)
class Replayed:
    exchange: Exchange
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


def replay(journal: Journal) -> Replayed:
    """Rebuild the exchange and every trade; raise :class:`JournalMismatch` on the first difference."""
    exchange = make_exchange(settings_of(journal))
    out = Replayed(exchange)
    produced: list[Trade] = []
    next_expected = 0
    for row in journal.rows(kinds=("order", "modify", "cancel", "close", "trade")):
        body = json.loads(row.body)
        if row.kind == "trade":
            if next_expected >= len(produced):
                raise JournalMismatch(f"journal row {row.seq}: trade {row.ref} was not produced by replaying "
                                      "the orders")
            got = trade_to_dict(produced[next_expected])
            if got != body:
                raise JournalMismatch(f"journal row {row.seq}: trade {row.ref} differs from the replayed trade "
                                      f"{got['trade_id']}: journal {body} != replay {got}")
            next_expected += 1
            continue
        if row.kind == "close":
            produced += exchange.close(datetime.fromisoformat(body["slot_start"])).trades
            continue
        action = action_from_dict(row.kind, body["action"])
        try:
            if isinstance(action, Order):
                produced += exchange.submit(action)
            elif isinstance(action, Cancel):
                exchange.cancel(action.order_id, action.participant, action.cancelled_at)
            else:
                produced += exchange.modify(action.order_id, action.participant, action.energy_wh,
                                            action.price_per_kwh, action.modified_at)
        except Exception as exc:
            raise JournalMismatch(f"journal row {row.seq}: {row.kind} {row.ref} is refused on replay: {exc}") from exc
    if next_expected != len(produced):
        extra = produced[next_expected]
        raise JournalMismatch(f"replay produced trade {extra.trade_id} that the journal does not hold")
    out.trades = produced
    out.balances = balances_of(produced)
    return out
