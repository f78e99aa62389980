"""Reads of the live exchange's state: open orders, order status, depth, meters."""

from __future__ import annotations

import threading
from datetime import datetime
from decimal import Decimal
from typing import Any

from p2penergy.ledger.journal import Journal
from p2penergy.ledger.order_scope import ScopedExchange
from p2penergy.market import MarketSettings, Order, Trade

METER_FIELDS = ("load_wh", "pv_wh", "grid_import_wh", "grid_export_wh", "soc_wh")


class LiveQueries:
    """What :class:`~p2penergy.service.live.LiveExchange` answers without changing anything."""

    lock: threading.RLock
    settings: MarketSettings
    exchange: ScopedExchange
    journal: Journal
    chain: Any
    orders: dict[tuple[str, str], Order]  # (participant, order id): ids are each participant's own
    mine: dict[str, list[str]]
    cancelled: set[tuple[str, str]]
    closed: set[datetime]
    slot_orders: dict[datetime, set[tuple[str, str]]]
    readings: dict[str, dict[datetime, dict[str, int]]]
    trades: list[Trade]
    committed: set[int]
    clock: Any

    def _flush(self) -> None: ...

    def meter_totals(self, participant: str, month: tuple[int, int] | None = None) -> dict[str, int]:
        """Sums of a participant's readings (of one local ``(year, month)`` if given); ``soc_wh``: the latest.

        A slot uploaded again replaces its earlier reading.
        """
        totals = dict.fromkeys(METER_FIELDS, 0)
        for slot, values in sorted(self.readings.get(participant, {}).items()):
            local = slot.astimezone(self.settings.tz)
            if month is not None and (local.year, local.month) != month:
                continue
            for name, value in values.items():
                totals[name] = value if name == "soc_wh" else totals[name] + value
        return totals

    def open_orders(self, participant: str) -> list[tuple[Order, int]]:
        with self.lock:
            out = []
            for oid in self.mine.get(participant, ()):
                order = self.orders[participant, oid]
                if order.slot_start in self.closed:
                    continue
                left = self.exchange.remaining_wh(oid, participant)
                if left > 0:
                    out.append((order, left))
            return out

    def status_of(self, participant: str, order_id: str) -> tuple[str, int]:
        """Status and open Wh of ``participant``'s order ``order_id``."""
        left = self.exchange.remaining_wh(order_id, participant)
        if (participant, order_id) in self.cancelled:
            return "cancelled", 0
        if left > 0:
            return "open", left
        order = self.orders[participant, order_id]
        return ("expired" if order.slot_start in self.closed else "filled"), 0

    def depth(self, slot_start: datetime) -> dict[str, list[tuple[Decimal, int]]]:
        """Per side, ``(price, Wh)`` levels, best first; buy prices are base prices."""
        with self.lock:
            levels: dict[str, dict[Decimal, int]] = {"buy": {}, "sell": {}}
            for pid, oid in self.slot_orders.get(slot_start, ()):
                left = self.exchange.remaining_wh(oid, pid)
                if left > 0:
                    o = self.orders[pid, oid]
                    side = levels[o.side]
                    price = self.settings.ticks_to_price(self.settings.price_to_ticks(o.price_per_kwh))
                    side[price] = side.get(price, 0) + left
            return {"buy": sorted(levels["buy"].items(), reverse=True), "sell": sorted(levels["sell"].items())}

    def open_slots(self) -> list[datetime]:
        with self.lock:
            return sorted(self.slot_orders)

    def now(self) -> datetime:
        return self.clock.now()
