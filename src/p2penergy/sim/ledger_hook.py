"""The simulation as a driver of the exchange engine: the model clock, signed agent steps, the slot's close.

* Each agent step's orders and cancels are buffered by :class:`LedgerAccess` and, when the
  step ends, signed as one EIP-712 batch with the participant's seeded key
  (:class:`~p2penergy.ledger.wallets.Wallets`) and handed to the engine at the model's
  ``now``: verified, applied to the exchange, journalled (refusals and self-trade cancels
  too) — the agent sees the same :class:`~p2penergy.agents.market_access.MarketAccess` as
  without a ledger, and an action the exchange refuses raises ``OrderRejected`` as it would
  there.
* At each slot's close the engine closes the book; after settlement, :class:`LedgerHook`
  (in the place of the provenance hook) journals every participant's meter, has the engine
  issue the slot's certificates through the provenance registry, and commits the slot
  (Merkle roots, energy per tag, certificates per device to date) on chain. In an outage the
  engine strikes the island's balancing trades from the journalled meters and journals them
  (``ledger/balancing.py``) before the certificates; they must be the island's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from p2penergy.agents.market_access import Fills, InProcessAccess, PriceTape
from p2penergy.ledger.actions import Action, Cancel
from p2penergy.ledger.balancing import ISLAND_ORDER_ID
from p2penergy.ledger.engine import Engine
from p2penergy.ledger.wallets import Wallets
from p2penergy.market import Order, OrderRejected, Trade
from p2penergy.market.errors import FieldError
from p2penergy.market.exchange import ClearingLimits, SlotClose
from p2penergy.sim.physics import SlotMeter
from p2penergy.sim.provenance_hook import ProvenanceHook


class LedgerAccess(InProcessAccess):
    """:class:`MarketAccess` whose actions go through the engine in one signed batch per step."""

    def __init__(self, engine: Engine, wallets: Wallets, participant: str, tape: PriceTape,
                 sink: list[Trade], fills: Fills, on_order: Callable[[Order], None] | None = None,
                 on_cancel: Callable[[str, str, datetime], None] | None = None) -> None:
        super().__init__(engine.exchange.of(participant), participant, tape, on_order, on_cancel, fills)
        self._engine = engine
        self._wallets = wallets
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

    def flush(self, now: datetime) -> list[Trade]:
        """Sign the step's actions as one batch and have the engine apply them at ``now``.

        Refusals are journalled by the engine; the first is then raised to the owner as
        ``OrderRejected`` (what the exchange raises without a ledger)."""
        if not self._pending:
            return []
        batch = self._wallets.sign(self.participant, self._pending)
        self._pending = []
        applied = self._engine.apply(batch, now)
        self._prices.record(applied.trades)
        self._fills.record(applied.trades)
        self._sink.extend(applied.trades)
        if applied.rejected:
            first = applied.rejected[0]
            error = first.error
            if isinstance(error, OrderRejected):
                raise error
            raise OrderRejected(first.action.order_id, first.field,
                                error.allowed if isinstance(error, FieldError) else first.reason)
        return applied.trades


class LedgerHook:
    """The engine's side of the slot loop: access for agents, the close, then meters,
    certificates (through the engine's provenance registry) and the commit of each slot.

    It takes the provenance hook's place among the loop's hooks (the registry it settles
    with is the provenance hook's), so the run's certificates are the journal's.
    """

    def __init__(self, engine: Engine, wallets: Wallets, provenance: ProvenanceHook) -> None:
        if engine.registry is not provenance.registry:
            raise ValueError("engine: must issue certificates through the provenance hook's registry")
        self.engine = engine
        self.wallets = wallets
        self.provenance = provenance
        self.exchange = engine.exchange
        self.tx_hashes: list[str | None] = []
        c = provenance.community
        self.islanded = frozenset(c.slot(i) for i in range(len(c.index)) if c.islanded(i))

    def access(self, participant: str, tape: PriceTape, sink: list[Trade], fills: Fills,
               on_order: Callable[[Order], None] | None = None,
               on_cancel: Callable[[str, str, datetime], None] | None = None) -> LedgerAccess:
        return LedgerAccess(self.engine, self.wallets, participant, tape, sink, fills, on_order, on_cancel)

    def on_order(self, order: Order) -> None:
        return None

    def on_cancel(self, order_id: str, participant: str, now: datetime) -> None:
        return None

    def close_slot(self, slot_start: datetime, limits: ClearingLimits | None = None) -> SlotClose:
        return self.engine.close_slot(slot_start, limits)

    def on_slot(self, slot_start: datetime, trades: Sequence[Trade], meters: dict[str, SlotMeter]) -> None:
        engine = self.engine
        for pid, meter in meters.items():
            values = {name: getattr(meter, name) for name in meter.__slots__ if getattr(meter, name)}
            engine.record_meter(pid, slot_start, values)
        if slot_start in self.islanded:
            journalled = engine.record_island(slot_start)
            island = [t for t in trades if t.buy_id == ISLAND_ORDER_ID]
            if journalled != island:
                raise RuntimeError(f"island at {slot_start.isoformat()}: the ledger's balancing trades from the "
                                   f"meters {journalled} differ from the island's {island}")
        result = engine.settle_slot(slot_start, self.provenance.sites(slot_start, meters))
        self.provenance.record(result)
        self.tx_hashes.append(engine.commit_slot(slot_start))
