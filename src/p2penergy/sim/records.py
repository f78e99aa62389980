"""Per-participant, per-slot records of a run: meter flows, state of charge and P2P money."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal

import numpy as np

from p2penergy.market import Trade
from p2penergy.sim.physics import SlotMeter

METER_FIELDS = tuple(f.name for f in fields(SlotMeter))


@dataclass(slots=True)
class Account:
    """Columns of :class:`SlotMeter` values (int64 arrays over the run's slots) and money.

    ``p2p_paid`` / ``p2p_received`` are exact totals; ``*_per_slot`` floats are for CSVs.
    """

    columns: dict[str, np.ndarray]
    p2p_paid: Decimal
    p2p_received: Decimal
    paid_per_slot: np.ndarray
    received_per_slot: np.ndarray

    @classmethod
    def empty(cls, n_slots: int) -> Account:
        return cls({name: np.zeros(n_slots, dtype=np.int64) for name in METER_FIELDS}, Decimal(0), Decimal(0),
                   np.zeros(n_slots), np.zeros(n_slots))

    def put(self, k: int, meter: SlotMeter) -> None:
        for name in METER_FIELDS:
            self.columns[name][k] = getattr(meter, name)

    def pay(self, k: int, amount: Decimal) -> None:
        self.p2p_paid += amount
        self.paid_per_slot[k] += float(amount)

    def receive(self, k: int, amount: Decimal) -> None:
        self.p2p_received += amount
        self.received_per_slot[k] += float(amount)


@dataclass(slots=True)
class RunRecords:
    """Everything a run produced that bills, KPIs and the report need."""

    accounts: dict[str, Account]
    trades: list[Trade]
    forecasts: dict[str, dict[str, np.ndarray]]

    @classmethod
    def empty(cls, participants: list[str], n_slots: int) -> RunRecords:
        return cls({p: Account.empty(n_slots) for p in participants}, [], {"load_wh": {}, "pv_wh": {}})

    def log_forecast(self, target: str, participant: str, k: int, values: np.ndarray, n_slots: int) -> None:
        """Keep ``values`` as the forecast of slots ``k..`` (the latest forecast of a slot wins)."""
        series = self.forecasts[target].setdefault(participant, np.zeros(n_slots))
        stop = min(n_slots, k + len(values))
        series[k:stop] = values[: stop - k]

    def settle_trades(self, k: int, trades: list[Trade]) -> dict[str, tuple[int, int]]:
        """Book trades of slot ``k``; returns per participant (bought Wh, sold Wh)."""
        positions: dict[str, tuple[int, int]] = {}
        for t in trades:
            self.accounts[t.buyer].pay(k, t.amount)
            self.accounts[t.seller].receive(k, t.amount)
            b = positions.get(t.buyer, (0, 0))
            positions[t.buyer] = (b[0] + t.energy_wh, b[1])
            s = positions.get(t.seller, (0, 0))
            positions[t.seller] = (s[0], s[1] + t.energy_wh)
        self.trades.extend(trades)
        return positions
