"""Provenance benchmark: per-slot settlement time for the demonstration's community.

Run: ``python benchmarks/bench_provenance.py [--days 31] [--seed 7]``. Builds (before the
clock starts) a month of 30-minute slots for 1 office (50 kWp PV), 20 homes (8 with 5 kWp
PV, 4 of them with a 10 kWh battery) and 9 PHV cars charging at the office by day and
driving morning and evening, with seeded random P2P trades under mixed tags; then times
``Registry.settle_slot`` for every slot, and writing and reading ``certificates.csv``.
Target: <= 5 ms per slot (1,488 slots × 30 participants within the simulation's budget).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from rich.console import Console
from rich.table import Table

from p2penergy.formats.certificates_file import read_certificates, write_certificates
from p2penergy.market import Tag, Trade
from p2penergy.provenance import DeviceOutput, Registry, SiteSlot, StorageFlow
from p2penergy.provenance.metrics import summarize

TZ = ZoneInfo("Asia/Tokyo")
START = datetime(2020, 8, 1, tzinfo=TZ)
SLOT = timedelta(minutes=30)
HOMES = [f"house-{i:02d}" for i in range(1, 21)]
PV_HOMES = HOMES[:8]
BATTERY_HOMES = HOMES[:4]
CARS = [f"car-{i}" for i in range(1, 10)]


class _Book:
    """The trades of one slot and each participant's sold / bought Wh."""

    def __init__(self, start: datetime, rng: np.random.Generator) -> None:
        self.start, self.rng = start, rng
        self.trades: list[Trade] = []
        self.sold: dict[str, int] = {}
        self.bought: dict[str, int] = {}

    def deal(self, seller: str, buyer: str, wh: int, tag: Tag) -> None:
        if wh <= 0:
            return
        self.trades.append(Trade(f"t{self.start:%m%d%H%M}-{len(self.trades)}", self.start, "b", "s", buyer, seller,
                                 wh, Decimal(15), Decimal(0), tag, int(self.rng.integers(0, 2)), Decimal(20),
                                 Decimal(10)))
        self.sold[seller] = self.sold.get(seller, 0) + wh
        self.bought[buyer] = self.bought.get(buyer, 0) + wh


def build(days: int, rng: np.random.Generator) -> list[tuple[datetime, datetime, list[SiteSlot], list[Trade]]]:
    soc = {f"{h}-bat": 0 for h in BATTERY_HOMES} | {f"{c}-bat": 3000 for c in CARS}
    slots = []
    for k in range(days * 48):
        start = START + k * SLOT
        hour = (k % 48) / 2
        sun = max(0.0, math.sin(math.pi * (hour - 5) / 14)) * rng.uniform(0.4, 1.0)
        gen = {"office": int(25000 * sun)} | {h: int(2500 * sun) for h in PV_HOMES}
        use = {"office": int(rng.uniform(8000, 15000)) if 8 <= hour < 19 else 3000}
        use |= {h: int(rng.uniform(150, 900)) for h in HOMES}
        flows: dict[str, list[StorageFlow]] = {p: [] for p in ["office", *HOMES, *CARS]}
        book = _Book(start, rng)
        deal, trades, sold, bought = book.deal, book.trades, book.sold, book.bought

        for h in BATTERY_HOMES:
            sid = f"{h}-bat"
            surplus = gen[h] - use[h]
            if surplus > 0:
                charge = min(surplus // 2, 10000 - soc[sid])
                flows[h].append(StorageFlow(sid, charge_wh=charge, loss_wh=charge // 20))
                soc[sid] += charge - charge // 20
            elif hour >= 18 and soc[sid] > 0:
                out = min(soc[sid], 800)
                flows[h].append(StorageFlow(sid, discharge_wh=out))
                soc[sid] -= out
                deal(h, HOMES[int(rng.integers(8, 20))], out // 2, Tag.of(source="battery", producer=h))
        for h in PV_HOMES:
            spare = gen[h] - use[h] - sum(f.charge_wh for f in flows[h])
            if spare > 0:
                buyer = HOMES[int(rng.integers(8, 20))]
                tag = Tag.of(producer=h) if rng.random() < 0.5 else Tag.of(source="solar")
                deal(h, buyer, int(spare * rng.uniform(0.3, 0.9)), tag)
        for c in CARS:
            sid = f"{c}-bat"
            if 8 <= hour < 18:
                charge = min(1500, 7000 - soc[sid])
                flows[c].append(StorageFlow(sid, charge_wh=charge, kind="phv"))
                soc[sid] += charge
                deal("office", c, min(charge, gen["office"] // 12), Tag.of(source="solar", producer="office"))
            elif hour in (7.5, 18.0):
                drive = min(soc[sid], 2500)
                flows[c].append(StorageFlow(sid, drive_wh=drive, kind="phv"))
                soc[sid] -= drive
        sites = []
        for p in ["office", *HOMES, *CARS]:
            devices = (DeviceOutput(f"{p}-pv", "solar", "c-Si", 50000 if p == "office" else 5000, gen[p]),) \
                if p in gen else ()
            consumption = use.get(p, 0)
            net = (sum(d.energy_wh for d in devices) + sum(f.discharge_wh for f in flows[p]) + bought.get(p, 0)
                   - consumption - sum(f.charge_wh for f in flows[p]) - sold.get(p, 0))
            site = "office" if p in CARS and 8 <= hour < 18 else p
            sites.append(SiteSlot(p, site, devices, consumption, tuple(flows[p]), max(0, -net), max(0, net)))
        slots.append((start, start + SLOT, sites, trades))
    return slots


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    slots = build(args.days, np.random.default_rng(args.seed))
    registry = Registry()
    times = []
    events = []
    for start, end, sites, trades in slots:
        t = time.perf_counter()
        result = registry.settle_slot(start, end, sites, trades)
        times.append(time.perf_counter() - t)
        events.extend(result.events)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_certificates(tmp, events)
        t_write = time.perf_counter() - t
        t = time.perf_counter()
        back = read_certificates(tmp)
        t_read = time.perf_counter() - t
    assert back == events
    t = time.perf_counter()
    s = summarize(events)
    t_metrics = time.perf_counter() - t
    ms = np.array(times) * 1000
    table = Table(title=f"Provenance: {len(slots)} slots × 30 participants, {len(events)} events")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("settle_slot mean", f"{ms.mean():.3f} ms")
    table.add_row("settle_slot p95 / max", f"{np.percentile(ms, 95):.3f} / {ms.max():.3f} ms")
    table.add_row("settle all slots", f"{ms.sum() / 1000:.2f} s")
    table.add_row("trades", str(sum(len(x[3]) for x in slots)))
    table.add_row("write certificates.csv", f"{t_write:.2f} s")
    table.add_row("read certificates.csv", f"{t_read:.2f} s")
    table.add_row("metrics (summarize)", f"{t_metrics:.2f} s")
    table.add_row("community matching 30-min / hourly",
                  f"{s.matching_slot.community.value:.3f} / {s.matching_hour.community.value:.3f}")
    table.add_row("renewable share of driving", f"{s.driving.total.value:.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
