"""The exchange gives the same results as before its speed work (issue 16), on seeded random books.

``data/same_results.json`` holds, per case, the number of result lines and the SHA-256 of
their text, recorded with the exchange of commit 1834fd1 (before the speed work) by running
this module: ``python -m tests.market.test_same_results``. Each line is one command's
outcome — every field of every trade (ids, prices, premiums, limits, tag, level), the
self-trade cancellations, a refusal's class and field, a close's unfilled orders, a call
auction's clearing prices and fills — so any change to matching, pricing or order of trades
changes the digest. The tagged call auctions (``call-*-tagged-*``, ``clear-*-tagged-*``) were
re-recorded when the welfare LP went from one column per (buyer, tag class) to one per order and
(buyer group, tag class) with a documented split by priority (issue 16): among allocations of
equal welfare it may choose another; ``test_group_lp.py`` checks that the welfare is the old LP's.
On a mismatch the test prints the first differing line against a
re-run of the reference cases' text, which ``--dump`` writes for inspection.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from tests.market.helpers import SLOT, T0

from p2penergy.market import (
    CallMarket,
    ContinuousMarket,
    MarketError,
    MarketSettings,
    Order,
    Requirement,
    Tag,
    clear_call,
)

S = MarketSettings.demonstration()
DATA = Path(__file__).parent / "data" / "same_results.json"
SLOTS = [SLOT, SLOT + timedelta(minutes=30)]
PRODUCERS = ["house-01", "house-02", "house-03", "office"]
WHO = [f"p{i}" for i in range(12)]  # few participants: self-trade prevention happens


def _tags() -> list[Tag]:
    return [Tag()] + [Tag.of(source=src, producer=p) for p in PRODUCERS for src in ("solar", "battery")]


def _requirement_lists() -> list[tuple[Requirement, ...]]:
    return [
        (),
        (Requirement.of({"producer": "house-01"}, "2"), Requirement.of({"source": "solar"}, "1"), Requirement.any()),
        (Requirement.of({"source": "solar"}, "1.5"),),
        (Requirement.of({"producer": ["house-02", "office"]}, "0.5"), Requirement.of({"source": "battery"})),
        (Requirement.of({"source": ["solar", "battery"], "producer": "house-03"}, "3"), Requirement.any("0.25")),
    ]


def random_orders(seed: int, n: int, tagged: bool) -> list[Order]:
    """``n`` orders over two slots: prices on a coarse grid so that ties happen, few participants."""
    rng = np.random.default_rng(seed)
    tags, reqs = _tags(), _requirement_lists()
    orders = []
    for i in range(n):
        is_buy = rng.random() < 0.5
        ticks = int(rng.normal(1400 if is_buy else 1200, 300)) // 25 * 25
        price = Decimal(max(0, min(4500, ticks))) / 100
        wh = int(rng.integers(1, 3000))
        slot = SLOTS[int(rng.integers(0, len(SLOTS)))]
        who = WHO[int(rng.integers(0, len(WHO)))]
        at = T0 + timedelta(seconds=int(rng.integers(0, 3600)))
        if is_buy:
            r = reqs[int(rng.integers(0, len(reqs)))] if tagged else ()
            orders.append(Order(f"o{i}", who, "buy", slot, wh, price, at, requirements=r))
        else:
            tag = tags[int(rng.integers(0, len(tags)))] if tagged else Tag()
            orders.append(Order(f"o{i}", who, "sell", slot, wh, price, at, tag))
    return orders


def _trade_line(t) -> str:
    return "trade " + " ".join(str(v) for v in t)


def session_lines(market, orders: list[Order], seed: int) -> list[str]:
    """Submit ``orders`` in arrival order to ``market``, with cancels and modifies in between
    (some refused), then close both slots; one line per outcome."""
    rng = np.random.default_rng(seed + 1)
    lines: list[str] = []
    submitted: list[Order] = []
    now = T0
    for order in orders:
        now = now + timedelta(seconds=1)
        try:
            trades = market.submit(order, now)
            lines += [f"submit {order.order_id}"] + [_trade_line(t) for t in trades]
            lines.append(f"cancels {market.last_self_trade_cancels}")
            submitted.append(order)
        except MarketError as exc:
            lines.append(f"refused {order.order_id} {type(exc).__name__} {getattr(exc, 'field', '')}")
        if submitted and rng.random() < 0.15:
            target = submitted[int(rng.integers(0, len(submitted)))]
            who = target.participant if rng.random() < 0.9 else "intruder"
            try:
                if rng.random() < 0.3:
                    lines.append(f"cancel {target.order_id} {market.cancel(target.order_id, who, now)}")
                else:
                    wh = int(rng.integers(1, 3000))
                    price = target.price_per_kwh + Decimal(int(rng.integers(-2, 3))) / 4
                    trades = market.modify(target.order_id, who, wh, price, now)
                    lines += [f"modify {target.order_id} {wh} {price}"] + [_trade_line(t) for t in trades]
                    lines.append(f"cancels {market.last_self_trade_cancels}")
            except MarketError as exc:
                lines.append(f"refused-change {target.order_id} {type(exc).__name__} {getattr(exc, 'field', '')}")
        lines.append(f"remaining {order.order_id} {market.remaining_wh(order.order_id)}")
    for slot in SLOTS:
        closed = market.close(slot)
        lines += [f"close {slot.isoformat()}"] + [_trade_line(t) for t in closed.trades]
        lines += [f"unfilled {o.order_id} {wh}" for o, wh in closed.unfilled]
    return lines


def clearing_lines(orders: list[Order], pricing: str) -> list[str]:
    """One call auction of the first slot's orders."""
    c = clear_call([o for o in orders if o.slot_start == SLOTS[0]], S, SLOTS[0], pricing)
    lines = [_trade_line(t) for t in c.trades]
    lines += [f"price {tag} {p}" for tag, p in c.clearing_prices.items()]
    lines += [f"filled {oid} {wh}" for oid, wh in c.filled_wh.items()]
    return lines


CASES = {
    **{f"cda-{kind}-{n}-{seed}": ("cda", kind, n, seed)
       for kind in ("plain", "tagged") for n, seed in ((40, 1), (40, 2), (300, 3), (1000, 4))},
    **{f"call-{pricing}-{kind}-{n}-{seed}": (pricing, kind, n, seed)
       for pricing in ("pay-as-clear", "pay-as-bid") for kind in ("plain", "tagged")
       for n, seed in ((40, 5), (400, 6))},
    **{f"clear-{pricing}-{kind}-{n}-{seed}": (f"clear-{pricing}", kind, n, seed)
       for pricing in ("pay-as-clear", "pay-as-bid") for kind in ("plain", "tagged")
       for n, seed in ((30, 7), (1500, 8))},
}


def case_lines(name: str) -> list[str]:
    mechanism, kind, n, seed = CASES[name]
    orders = random_orders(seed, n, kind == "tagged")
    if mechanism == "cda":
        return session_lines(ContinuousMarket(S), orders, seed)
    if mechanism.startswith("clear-"):
        return clearing_lines(orders, mechanism.removeprefix("clear-"))
    return session_lines(CallMarket(S, mechanism), orders, seed)


def digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


@pytest.fixture(scope="module")
def recorded() -> dict[str, dict[str, object]]:
    return json.loads(DATA.read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_results_as_recorded(name, recorded):
    lines = case_lines(name)
    assert any(line.startswith("trade") for line in lines), "a case without trades tests nothing"
    assert (len(lines), digest(lines)) == (recorded[name]["lines"], recorded[name]["sha256"])


if __name__ == "__main__":  # record (only from the exchange before the speed work) or dump one case
    if sys.argv[1:2] == ["--dump"]:
        print("\n".join(case_lines(sys.argv[2])))
    else:
        out = {name: {"lines": len(ls), "sha256": digest(ls)} for name in sorted(CASES) for ls in [case_lines(name)]}
        DATA.parent.mkdir(exist_ok=True)
        DATA.write_text(json.dumps(out, indent=1) + "\n")
