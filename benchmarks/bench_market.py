"""Exchange benchmark: CDA throughput and call-auction clearing time.

Run: ``python benchmarks/bench_market.py [--max-exp 6]``. Prints two tables:

* CDA: time per order for 10^3 … 10^max plain and tagged orders in one slot through
  ``ContinuousMarket.submit`` (order objects are built before the clock starts; validation,
  gate checks, matching, trades and resting are timed). Baseline in the same run, on the
  same orders: a bare continuous double auction on two ``heapq`` heaps (price-time priority,
  partial fills; no validation, tags, self-trade prevention or Decimal). Target: within 2.5x.
  The bare CDA ignores tags and self-trade prevention, so its trade count differs a little.
* Uniform call auction: clearing time of N orders (array path) against one numpy argsort of
  the same N prices, measured in the same run; the target is within 5x of that floor.
* Call auction on Order objects (``clear_call``, validation and trades included) up to 10^5
  plain orders against one argsort of their prices, and up to 10^4 tagged orders (the
  welfare LP with HiGHS) in seconds.

Times are the process's CPU time (``time.process_time``), best of a few runs where cheap.
"""

from __future__ import annotations

import argparse
import heapq
import time
from datetime import timedelta
from decimal import Decimal

import numpy as np
from rich.console import Console
from rich.table import Table

from p2penergy.market import ContinuousMarket, MarketSettings, Order, Requirement, Tag, clear_call, clear_uniform_arrays
from p2penergy.market.exchange import _Gates  # noqa: F401  (import cost outside the clock)

SETTINGS = MarketSettings.demonstration()
CLOCK = time.process_time
"""CPU time of this process: on a machine others share, it moves far less with their load than
wall time does; the baseline of every table is measured the same way in the same run."""
SLOT = SETTINGS.slot_start_of(__import__("datetime").datetime(2020, 8, 3, 12, 0, tzinfo=SETTINGS.tz))
NOW = SLOT - timedelta(hours=1)
PRODUCERS = [f"house-{i:02d}" for i in range(1, 21)] + ["office"]


def make_orders(n: int, tagged: bool, rng: np.random.Generator) -> list[Order]:
    """Half buys around 14 JPY/kWh, half sells around 12; tagged: sells carry source and producer,
    one buy in three asks for a producer first, then solar, then anything."""
    sides = rng.random(n) < 0.5
    prices = np.where(sides, rng.normal(14, 3, n), rng.normal(12, 3, n)).clip(0, 50).round(2)
    energies = rng.integers(100, 3000, n)
    producers = rng.integers(0, len(PRODUCERS), n)
    kinds = rng.integers(0, 3, n)
    tags = [Tag.of(source="solar" if p % 3 else "battery", producer=PRODUCERS[p]) for p in range(len(PRODUCERS))]
    reqs = [
        (Requirement.of({"producer": PRODUCERS[p]}, "2"), Requirement.of({"source": "solar"}, "1"), Requirement.any())
        for p in range(len(PRODUCERS))
    ]
    orders = []
    for i in range(n):
        price = Decimal(f"{prices[i]:.2f}")
        if sides[i]:
            r = reqs[producers[i]] if tagged and kinds[i] == 0 else ()
            orders.append(Order(f"o{i}", f"p{i % 500}", "buy", SLOT, int(energies[i]), price, NOW, requirements=r))
        else:
            tag = tags[producers[i]] if tagged else Tag()
            orders.append(Order(f"o{i}", f"p{i % 500}", "sell", SLOT, int(energies[i]), price, NOW, tag))
    return orders


def bare_heapq_cda(keys: list[tuple[bool, int, int, str]]) -> list[tuple[str, str, int, int]]:
    """The baseline: a bare continuous double auction on two ``heapq`` heaps with price-time
    priority, partial fills and resting remainders; orders are ``(is_buy, price ticks, Wh, id)``,
    trades ``(buy id, sell id, Wh, price ticks)`` at the resting price. No validation, gates,
    tags, self-trade prevention or Decimal: the floor for any heap-based book in Python."""
    bids: list[list] = []  # [-ticks, seq, open Wh, id]
    asks: list[list] = []  # [ticks, seq, open Wh, id]
    trades: list[tuple[str, str, int, int]] = []
    push, pop = heapq.heappush, heapq.heappop
    for seq, (is_buy, ticks, wh, oid) in enumerate(keys):
        if is_buy:
            while wh and asks and asks[0][0] <= ticks:
                top = asks[0]
                energy = min(wh, top[2])
                wh -= energy
                top[2] -= energy
                trades.append((oid, top[3], energy, top[0]))
                if not top[2]:
                    pop(asks)
            if wh:
                push(bids, [-ticks, seq, wh, oid])
        else:
            while wh and bids and -bids[0][0] >= ticks:
                top = bids[0]
                energy = min(wh, top[2])
                wh -= energy
                top[2] -= energy
                trades.append((top[3], oid, energy, -top[0]))
                if not top[2]:
                    pop(bids)
            if wh:
                push(asks, [ticks, seq, wh, oid])
    return trades


def bench_cda(n: int, tagged: bool, repeats: int) -> tuple[float, float, int, int]:
    """Best of ``repeats`` runs of the exchange (a fresh ``ContinuousMarket``; ``submit`` with its
    validation, gate checks, matching, trades and resting) and of the bare heapq CDA, alternating,
    on the same orders built before the clock starts. Returns both times and trade counts."""
    rng = np.random.default_rng(n + tagged)
    orders = make_orders(n, tagged, rng)
    keys = [(o.side == "buy", SETTINGS.price_to_ticks(o.price_per_kwh), o.energy_wh, o.order_id) for o in orders]
    elapsed = base = float("inf")
    for _ in range(repeats):
        market = ContinuousMarket(SETTINGS)
        submit = market.submit
        trades = 0
        start = CLOCK()
        for o in orders:
            trades += len(submit(o))
        elapsed = min(elapsed, CLOCK() - start)
        start = CLOCK()
        base_trades = len(bare_heapq_cda(keys))
        base = min(base, CLOCK() - start)
    return elapsed, base, trades, base_trades


def bench_call(n: int) -> tuple[float, float]:
    rng = np.random.default_rng(n)
    nb = n // 2
    buy_ticks = rng.normal(1400, 300, nb).clip(0, 5000).astype(np.int64)
    sell_ticks = rng.normal(1200, 300, n - nb).clip(0, 5000).astype(np.int64)
    buy_wh = rng.integers(100, 3000, nb)
    sell_wh = rng.integers(100, 3000, n - nb)
    prices = np.concatenate([buy_ticks, sell_ticks])
    best = float("inf")
    floor = float("inf")
    for _ in range(3):
        start = CLOCK()
        clear_uniform_arrays(buy_ticks, buy_wh, sell_ticks, sell_wh)
        best = min(best, CLOCK() - start)
        start = CLOCK()
        np.argsort(prices)
        floor = min(floor, CLOCK() - start)
    return best, floor


def argsort_floor(prices: np.ndarray, repeats: int = 5) -> float:
    floor = float("inf")
    for _ in range(repeats):
        start = CLOCK()
        np.argsort(prices)
        floor = min(floor, CLOCK() - start)
    return floor


def bench_call_objects(n: int, tagged: bool) -> tuple[float, float, int]:
    """``clear_call`` (pay-as-clear, validation included) on ``n`` Order objects, and one argsort
    of their prices in ticks in the same run; tagged books go through the welfare LP."""
    orders = make_orders(n, tagged, np.random.default_rng(7))
    prices = np.array([SETTINGS.price_to_ticks(o.price_per_kwh) for o in orders], dtype=np.int64)
    best = float("inf")
    trades = 0
    for _ in range(3 if n <= 10**4 or not tagged else 1):
        start = CLOCK()
        trades = len(clear_call(orders, SETTINGS, SLOT, "pay-as-clear").trades)
        best = min(best, CLOCK() - start)
    return best, argsort_floor(prices), trades


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-exp", type=int, default=6, help="largest N is 10^max-exp")
    args = parser.parse_args()
    console = Console(width=200)
    sizes = [10**e for e in range(3, args.max_exp + 1)]

    cda = Table(title="CDA through the public API against a bare heapq CDA on the same orders "
                      "(one slot; target: within 2.5x)")
    for col in ("orders", "kind", "exchange s", "µs/order", "trades", "bare heapq CDA s", "µs/order",
                "trades", "ratio"):
        cda.add_column(col, justify="right")
    for n in sizes:
        for tagged in (False, True):
            elapsed, base, trades, base_trades = bench_cda(n, tagged, repeats=3 if n <= 10**5 else 1)
            cda.add_row(f"{n:,}", "tagged" if tagged else "plain", f"{elapsed:.3f}", f"{elapsed / n * 1e6:.2f}",
                        f"{trades:,}", f"{base:.3f}", f"{base / n * 1e6:.2f}", f"{base_trades:,}",
                        f"{elapsed / base:.2f}x")
    console.print(cda)

    call = Table(title="Uniform call auction, array path (target: 10^6 orders within 5x one argsort)")
    for col in ("orders", "clearing s", "argsort s", "ratio"):
        call.add_column(col, justify="right")
    for n in sizes:
        t, floor = bench_call(n)
        call.add_row(f"{n:,}", f"{t:.4f}", f"{floor:.4f}", f"{t / floor:.2f}x")
    console.print(call)

    obj = Table(title="Call auction on Order objects (clear_call, pay-as-clear, validation included; "
                      "target: 10^5 plain within 20x one argsort, 10^4 tagged <= 0.5 s)")
    for col in ("orders", "kind", "seconds", "trades", "argsort s", "ratio"):
        obj.add_column(col, justify="right")
    for n, tagged in [(s, False) for s in sizes if s <= 10**5] + [(s, True) for s in sizes if s <= 10**4]:
        t, floor, trades = bench_call_objects(n, tagged)
        obj.add_row(f"{n:,}", "tagged (LP)" if tagged else "plain", f"{t:.3f}", f"{trades:,}", f"{floor:.5f}",
                    f"{t / floor:,.0f}x")
    console.print(obj)


if __name__ == "__main__":
    main()
