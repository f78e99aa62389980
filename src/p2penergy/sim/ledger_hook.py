"""The simulation on the ledger: signed agent actions, the journal, one chain commit per slot.

* Each agent step's orders and cancels are buffered by :class:`LedgerAccess` and, when the
  step ends, signed as one EIP-712 batch with the participant's seeded key, verified, applied
  to the exchange and journalled (``Ledger.submit``) — the agent sees the same
  :class:`~p2penergy.agents.market_access.MarketAccess` as without a ledger.
* At each slot's close the book's closing is journalled; after settlement,
  :class:`LedgerHook` journals every participant's meter and the slot's certificate events,
  and commits the slot (Merkle roots, energy per tag, certificates per device) on chain.
* Certificates on chain: per generating device, **cumulative** Wh issued and claimed to
  date (claims of stored energy come slots after its production, so a per-slot comparison
  would be wrong); the contract rejects a commit where claimed exceeds issued.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from p2penergy.agents.market_access import Fills, InProcessAccess, PriceTape
from p2penergy.ledger.actions import Action, Cancel
from p2penergy.ledger.recorder import Ledger
from p2penergy.market import Exchange, Order, Trade
from p2penergy.market.exchange import SlotClose
from p2penergy.sim.physics import SlotMeter
from p2penergy.sim.provenance_hook import ProvenanceHook


class LedgerAccess(InProcessAccess):
    """:class:`MarketAccess` whose actions go through the ledger in one signed batch per step."""

    def __init__(self, ledger: Ledger, exchange: Exchange, participant: str, tape: PriceTape,
                 sink: list[Trade], fills: Fills, on_order: Callable[[Order], None] | None = None,
                 on_cancel: Callable[[str, str, datetime], None] | None = None) -> None:
        super().__init__(exchange, participant, tape, on_order, on_cancel, fills)
        self._ledger = ledger
        self._sink = sink
        self._pending: list[Action] = []

    def submit(self, order: Order) -> list[Trade]:
        self._pending.append(order)
        self._mine[order.order_id] = order
        if self._on_order is not None:
            self._on_order(order)
        return []  # trades are known when the step's batch is applied (flush)

    def cancel(self, order_id: str, now: datetime) -> int:
        self._pending.append(Cancel(order_id, self.participant, now))
        self._mine.pop(order_id, None)
        if self._on_cancel is not None:
            self._on_cancel(order_id, self.participant, now)
        return self._exchange.remaining_wh(order_id)

    def flush(self) -> list[Trade]:
        """Sign the step's actions as one batch, verify, apply and journal them."""
        if not self._pending:
            return []
        batch = self._ledger.sign(self.participant, self._pending)
        self._pending = []
        result = self._ledger.submit(self._exchange, batch)
        self._prices.record(result.trades)
        self._fills.record(result.trades)
        self._sink.extend(result.trades)
        return result.trades


class LedgerHook:
    """Journals meters and certificate events and commits each slot; needs the provenance hook."""

    def __init__(self, ledger: Ledger, provenance: ProvenanceHook) -> None:
        self.ledger = ledger
        self.provenance = provenance
        self._issued: dict[str, int] = {}
        self._claimed: dict[str, int] = {}
        self.tx_hashes: list[str] = []

    def on_order(self, order: Order) -> None:
        return None

    def on_cancel(self, order_id: str, participant: str, now: datetime) -> None:
        return None

    def close_slot(self, exchange: Exchange, slot_start: datetime) -> SlotClose:
        return self.ledger.close_slot(exchange, slot_start)

    def on_slot(self, slot_start: datetime, trades: Sequence[Trade], meters: dict[str, SlotMeter]) -> None:
        ledger = self.ledger
        for pid, meter in meters.items():
            values = {name: getattr(meter, name) for name in meter.__slots__ if getattr(meter, name)}
            ledger.record_meter(slot_start, pid, values)
        result = self.provenance.slots[-1]
        for event in result.events:
            ledger.record_certificate_event(slot_start, _jsonable(event))
        tag_energy: dict[str, int] = {}
        for t in trades:
            tag_energy[str(t.tag)] = tag_energy.get(str(t.tag), 0) + t.energy_wh
        for device, issued, claimed in result.devices:
            self._issued[device] = self._issued.get(device, 0) + issued
            self._claimed[device] = self._claimed.get(device, 0) + claimed
        devices = [(d, self._issued[d], self._claimed.get(d, 0)) for d, _, _ in result.devices]
        self.tx_hashes.append(ledger.commit_slot(slot_start, tag_energy, devices))


def _jsonable(event: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in event.items()}
