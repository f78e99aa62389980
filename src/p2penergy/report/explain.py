"""What changed for a group between the baseline and the P2P run, computed from the run only.

A group's saving is ``baseline cost − P2P cost``, and each participant's cost is
``utility bill + P2P paid − P2P received + fuel`` (sim/costs.py), so the saving splits into
what its members bought and sold P2P (energy, average price, from and to which participant
types), how their utility bills and grid energy changed, and how their fuel changed. The
sentences are built from those numbers, the run's currency and the members' own export
prices, and nothing else: a note never says what is not in the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from p2penergy.community import participant_type
from p2penergy.report.figures import FigureStyle
from p2penergy.tariffs.money import minor_unit

if TYPE_CHECKING:
    from p2penergy.sim.simulate import Simulation

MAX_LISTED_PRICES = 3  # export prices listed one by one in a note; more are given as a range (readability)
TYPE_PLURALS = {"office": "the office", "consumer": "consumers", "prosumer": "prosumers", "car": "cars"}


@dataclass(frozen=True, slots=True)
class GroupChange:
    """A group's P2P trades and the change of its bills, baseline → P2P (money exact).

    ``export_prices_per_kwh``: what the utility pays for the members' PV exports, price →
    number of members with that price."""

    bought_wh: int = 0
    paid: Decimal = Decimal(0)
    sold_wh: int = 0
    received: Decimal = Decimal(0)
    bought_from_wh: dict[str, int] = field(default_factory=dict)
    sold_to_wh: dict[str, int] = field(default_factory=dict)
    utility_change: Decimal = Decimal(0)
    import_change_wh: int = 0
    export_change_wh: int = 0
    fuel_change: Decimal = Decimal(0)
    export_prices_per_kwh: dict[Decimal, int] = field(default_factory=dict)
    stored_change: Decimal = Decimal(0)


def group_change(sim: Simulation, members: Iterable[str]) -> GroupChange:
    """Sum the run's trades, bills and meters over ``members``."""
    group = set(members)
    types = {pid: participant_type(p) for pid, p in sim.community.participants.items()}
    bought_from: dict[str, int] = {}
    sold_to: dict[str, int] = {}
    bought_wh = sold_wh = 0
    paid = received = Decimal(0)
    for t in sim.p2p.trades:
        if t.buyer in group:  # a trade between two members counts on both sides; its money nets out
            bought_wh += t.energy_wh
            paid += t.amount
            bought_from[types[t.seller]] = bought_from.get(types[t.seller], 0) + t.energy_wh
        if t.seller in group:
            sold_wh += t.energy_wh
            received += t.amount
            sold_to[types[t.buyer]] = sold_to.get(types[t.buyer], 0) + t.energy_wh
    utility = fuel = stored = Decimal(0)
    import_wh = export_wh = 0
    prices: dict[Decimal, int] = {}
    for pid in sorted(group):
        base, p2p = sim.baseline_costs[pid], sim.p2p_costs[pid]
        utility += p2p.utility - base.utility
        fuel += p2p.fuel - base.fuel
        stored += p2p.stored_energy - base.stored_energy
        before, after = sim.baseline.accounts[pid].columns, sim.p2p.accounts[pid].columns
        import_wh += int(after["grid_import_wh"].sum()) - int(before["grid_import_wh"].sum())
        export_wh += int(after["grid_export_wh"].sum()) - int(before["grid_export_wh"].sum())
        buyback = sim.community.participants[pid].buyback
        if buyback is not None and sim.community.participants[pid].has_pv:
            prices[buyback.price_per_kwh] = prices.get(buyback.price_per_kwh, 0) + 1
    return GroupChange(bought_wh, paid, sold_wh, received, bought_from, sold_to, utility, import_wh, export_wh,
                       fuel, prices, stored)


def describe(change: GroupChange, style: FigureStyle) -> str:
    """The change in a few clauses, every number from ``change``; empty when nothing changed."""
    clauses = []
    if change.bought_wh:
        clauses.append(f"bought {change.bought_wh / 1000:,.1f} kWh P2P at "
                       f"{style.price(change.paid * 1000 / change.bought_wh)} on average"
                       f" (from {_by_type(change.bought_from_wh)})")
    if change.sold_wh:
        sold = (f"sold {change.sold_wh / 1000:,.1f} kWh P2P at "
                f"{style.price(change.received * 1000 / change.sold_wh)} on average"
                f" (to {_by_type(change.sold_to_wh)})")
        if change.export_prices_per_kwh:
            sold += f"; the utility pays their exports {_export_prices(change.export_prices_per_kwh, style)}"
        clauses.append(sold)
    if _nonzero(change.utility_change, style) or change.import_change_wh or change.export_change_wh:
        grid = [f"{name} {_signed_kwh(wh)}" for name, wh in (("grid imports", change.import_change_wh),
                                                             ("exports", change.export_change_wh))
                if round(wh / 1000, 1)]
        if grid and change.import_change_wh and not change.export_change_wh:
            # only imports changed: the bills' change per kWh is the utility price P2P displaced
            grid[-1] += f" at {style.price(change.utility_change * 1000 / change.import_change_wh)}"
        clauses.append(f"utility bills {_signed_money(change.utility_change, style)}"
                       + (f" ({', '.join(grid)})" if grid else ""))
    if _nonzero(change.stored_change, style):
        # the balance values energy the stores end without at the price of putting it back (sim/costs.py)
        clauses.append(f"energy left in batteries and cars at the end, valued at the price of putting it back "
                       f"{_signed_money(change.stored_change, style)}")
    if _nonzero(change.fuel_change, style):
        clauses.append(f"fuel {_signed_money(change.fuel_change, style)}")
    text = "; ".join(clauses)
    return text[:1].upper() + text[1:] + "." if text else ""


def _export_prices(prices: dict[Decimal, int], style: FigureStyle) -> str:
    """Each price with its number of sites, or, beyond ``MAX_LISTED_PRICES``, their range."""
    ordered = sorted(prices.items())
    if len(ordered) > MAX_LISTED_PRICES:
        sites = sum(prices.values())
        return (f"{style.price(ordered[0][0], unit=False)} to {style.price(ordered[-1][0])} "
                f"({sites} sites, {len(ordered)} prices)")
    return ", ".join(f"{style.price(price)} ({count} site{'s' if count > 1 else ''})" for price, count in ordered)


def _nonzero(amount: Decimal, style: FigureStyle) -> bool:
    """Whether ``amount`` shows as more than zero at the currency's minor unit."""
    return abs(amount).quantize(minor_unit(style.currency), rounding=ROUND_HALF_UP) != 0


def _by_type(energy_wh: dict[str, int]) -> str:
    ordered = sorted(energy_wh.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{TYPE_PLURALS.get(t, t)} {wh / 1000:,.1f} kWh" for t, wh in ordered)


def _signed_money(amount: Decimal, style: FigureStyle) -> str:
    text = style.money(abs(amount))
    return f"+{text}" if amount > 0 else f"-{text}" if amount < 0 else text


def _signed_kwh(energy_wh: int) -> str:
    return f"{energy_wh / 1000:+,.1f} kWh"
