"""Where a trade's energy travels on the feeder, and the grid fees a run's P2P trades owe.

The distance class of a trade (:data:`~p2penergy.market.grid_fees.DISTANCES`) comes from the
buses of its seller and buyer in its slot: the same bus; buses joined by lines only (one LV
feeder section behind one transformer); anything else, or a party on no bus (off the feeder, a
scenario without one), through the transformer. A car is on its owner's bus while parked at home
and the office's while parked there (as in the power flow, ``network/run.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from p2penergy.community import CAR_KIND, LOCATION_CODES, OFFICE_KIND, Community
from p2penergy.market import Trade
from p2penergy.market.grid_fees import DISTANCES, GridFees
from p2penergy.network.feeder import Feeder


def line_sections(feeder: Feeder) -> dict[int, int]:
    """Bus → section: buses joined by in-service lines share a section (transformers cut)."""
    net = feeder.net
    parent = {int(b): int(b) for b in net.bus.index}

    def root(b: int) -> int:
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        return b

    lines = net.line[net.line.in_service]
    for a, b in zip(lines.from_bus, lines.to_bus, strict=True):
        parent[root(int(a))] = root(int(b))
    return {b: root(b) for b in parent}


def distance(bus_a: int | None, bus_b: int | None, sections: dict[int, int]) -> str:
    """The distance class between two buses (``None``: off the feeder)."""
    if bus_a is None or bus_b is None:
        return "through_transformer"
    if bus_a == bus_b:
        return "same_bus"
    return "same_feeder" if sections[bus_a] == sections[bus_b] else "through_transformer"


@dataclass(frozen=True, slots=True)
class TradeFees:
    """A run's grid fees: per buyer [currency, exact], and energy per distance class [Wh]."""

    by_participant: dict[str, Decimal]
    energy_wh: dict[str, int]

    @property
    def total(self) -> Decimal:
        return sum(self.by_participant.values(), Decimal(0))


def trade_fees(community: Community, trades: Iterable[Trade], fees: GridFees, feeder: Feeder | None) -> TradeFees:
    """Every trade's fee, charged to its buyer, by the distance its energy travels in its slot."""
    sections = line_sections(feeder) if feeder is not None else {}
    month = community.month
    slot_k = {community.slot(month.start + k): k for k in range(month.stop - month.start)}
    offices = [p.id for p in community.participants.values() if p.kind == OFFICE_KIND]

    def bus(pid: str, k: int) -> int | None:
        if feeder is None:
            return None
        p = community.participants[pid]
        if p.kind != CAR_KIND:
            return feeder.bus_of(pid)
        assert p.location is not None
        where = int(p.location[month.start + k])
        if where == LOCATION_CODES["home"] and p.owner is not None:
            return feeder.bus_of(p.owner)
        if where == LOCATION_CODES["office"] and offices:
            return feeder.bus_of(offices[0])
        return None

    paid = {pid: Decimal(0) for pid in community.participants}
    energy = dict.fromkeys(DISTANCES, 0)
    for t in trades:
        k = slot_k[t.slot_start]
        d = distance(bus(t.seller, k), bus(t.buyer, k), sections)
        energy[d] += t.energy_wh
        paid[t.buyer] += fees.fee(d, t.energy_wh)
    return TradeFees(paid, energy)
