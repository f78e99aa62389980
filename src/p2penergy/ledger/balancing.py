"""The island's balancing trades (issue 18): one rule, used by the island's controller and by the
engine that journals them and replays them from the journalled meters.

In an islanded slot every participant's meter balances with no utility: what it delivered to
the island beyond its exchange trades (``p2p_sell_wh - p2p_buy_wh`` metered, less what it sold
minus bought on the exchange) is matched with what others drew beyond theirs, as *balancing*
trades at the market's price cap, sellers and buyers each in participant-id order
(``sim/island.py`` explains the price).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from p2penergy.market import Trade
from p2penergy.market.tags import UNTAGGED

ISLAND_ORDER_ID = "island"
"""The buy and sell order id of a balancing trade (no order stands behind it)."""


def balance_wh(metered_wh: Mapping[str, tuple[int, int]], trades: Iterable[Trade]) -> dict[str, int]:
    """Each participant's Wh delivered (> 0) or drawn (< 0) beyond its exchange ``trades``, from its
    metered ``(p2p_buy_wh, p2p_sell_wh)`` including balancing (a participant absent from ``metered_wh``
    metered none)."""
    out = {pid: sell - buy for pid, (buy, sell) in metered_wh.items()}
    for t in trades:
        out[t.buyer] = out.get(t.buyer, 0) + t.energy_wh
        out[t.seller] = out.get(t.seller, 0) - t.energy_wh
    return out


def balancing_trades(slot_start: datetime, balance: Mapping[str, int], price_per_kwh: Decimal) -> tuple[Trade, ...]:
    """Pair who delivered beyond its trades with who drew beyond them, in id order, at ``price_per_kwh``.

    ``balance`` must sum to zero (an island delivers what it draws)."""
    if sum(balance.values()) != 0:
        raise ValueError(f"balance: Wh delivered beyond trades must equal Wh drawn beyond them in an islanded "
                         f"slot; they differ by {sum(balance.values())} Wh at {slot_start.isoformat()}")
    sellers = [[pid, b] for pid, b in sorted(balance.items()) if b > 0]
    buyers = [[pid, -b] for pid, b in sorted(balance.items()) if b < 0]
    out: list[Trade] = []
    si = bi = 0
    while si < len(sellers) and bi < len(buyers):
        wh = min(sellers[si][1], buyers[bi][1])
        n = len(out)
        out.append(Trade(f"island-{slot_start:%Y%m%dT%H%MZ}-{n}", slot_start, ISLAND_ORDER_ID, ISLAND_ORDER_ID,
                         str(buyers[bi][0]), str(sellers[si][0]), int(wh), price_per_kwh, Decimal(0), UNTAGGED, 0,
                         price_per_kwh, price_per_kwh))
        sellers[si][1] -= wh
        buyers[bi][1] -= wh
        if sellers[si][1] == 0:
            si += 1
        if buyers[bi][1] == 0:
            bi += 1
    return tuple(out)
