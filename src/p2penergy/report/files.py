"""A run folder: ``results.json``, per-participant slot and bill CSVs, certificates.

Everything a run writes goes through here, so a folder is complete or absent: files are
written into ``DIR/.partial`` and moved into place at the end.
"""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from p2penergy.community import participant_type
from p2penergy.formats.certificates_file import write_certificates
from p2penergy.report.figures import FigureStyle, key_figures
from p2penergy.sim.records import METER_FIELDS
from p2penergy.sim.resilience import ideal_resilience, outage_summary, resilience
from p2penergy.sim.results import DEMONSTRATION_PCT, car_energy, flows, office_peak_slots
from p2penergy.sim.simulate import Simulation
from p2penergy.tariffs.money import round_money


def results_json(sim: Simulation) -> dict[str, Any]:
    """The machine-readable results (``results.json``).

    Numbers stay numbers, rounded by the unit in their name (report/figures.py, docs/report.md);
    money is exact; ``key_figures`` are the same sentences the report and the CLI print."""
    style = FigureStyle.of(sim.community.settings)
    demo = sim.reproduces_demonstration
    charged = sim.community.settings.grid_fees.charged
    return {
        "scenario": sim.scenario_name,
        "currency": sim.community.settings.currency,
        "scenario_seed": sim.community.seed,
        "period": f"{sim.community.report_month:%Y-%m}",
        "mechanism": sim.options.mechanism,
        "agents": sim.options.agents,
        # the headline: electricity-charge balance (paid for electricity − earned selling it,
        # utility and P2P), fuel apart; improvement_pct is null where the baseline balance is ≤ 0
        "metric": "electricity-charge balance (fuel not included; stores' end charge valued)",
        "baseline_export_credit": sim.community.baseline_export_credit.label,
        "groups": {
            name: {
                "members": list(g.members),
                "baseline_balance": _num(g.baseline_balance),
                "p2p_balance": _num(g.p2p_balance),
                "improvement_pct": g.improvement_pct,
                "improvement": g.improvement_text,
                "demonstration_pct": DEMONSTRATION_PCT.get(name) if demo else None,
                "baseline_fuel": _num(_rounded(g.baseline_fuel, sim)),
                "p2p_fuel": _num(_rounded(g.p2p_fuel, sim)),
            }
            for name, g in sim.groups.items()
        },
        "participants": {
            pid: {
                "type": participant_type(p),
                "baseline_balance": _num(sim.baseline_costs[pid].balance),
                "p2p_balance": _num(sim.p2p_costs[pid].balance),
                "p2p_paid": _num(sim.p2p_costs[pid].p2p_paid),
                "p2p_received": _num(sim.p2p_costs[pid].p2p_received),
                "baseline_fuel": _num(_rounded(sim.baseline_costs[pid].fuel, sim)),
                "p2p_fuel": _num(_rounded(sim.p2p_costs[pid].fuel, sim)),
                **({"p2p_grid_fees": _num(sim.p2p_costs[pid].grid_fees)} if charged else {}),
            }
            for pid, p in sim.community.participants.items()
        },
        "flows": [f.as_dict(style.price_number_decimals) for f in flows(sim.community, sim.p2p.trades)],
        "kpis": {name: style.number(name, value) for name, value in sim.kpis.items()},
        "key_figures": [{"figure": label, "text": text} for label, text in key_figures(sim)],
        "cars": {car: {k: _num(_rounded(v, sim)) if isinstance(v, Decimal) else v for k, v in e.items()}
                 for car, e in car_energy(sim.community, sim.p2p).items()},
        "office_peak_slots": office_peak_slots(sim.community, sim.baseline, sim.p2p),
        # network fees on P2P trades by distance (market/grid_fees.py): only where the market charges them
        **({"grid_fees": {"per_kwh": sim.community.settings.grid_fees.to_mapping(),
                          "total": _num(sim.grid_fees.total),
                          "energy_kwh": {d: wh / 1000 for d, wh in sim.grid_fees.energy_wh.items()}}}
           if charged and sim.grid_fees is not None else {}),
        # the feeder's power flows (docs/network.md): null for a scenario without [network]
        "network": None if sim.network is None else {
            "feeder": sim.network.feeder.name, "voltage_band": sim.network.feeder.band.label,
            "power_factor": sim.network.feeder.power_factor, **sim.network.figures()},
        "timings_s": {k: round(v, 2) for k, v in sim.timings_s.items()},
        # through the grid outages (sim/resilience.py, docs/report.md): only for a run with one
        **({"resilience": resilience_json(sim)} if sim.community.islanded_slots() else {}),
    }


def resilience_json(sim: Simulation) -> dict[str, Any]:
    """The outages and how the community came through them three ways: the P2P island, the
    baseline's sites each alone on their own devices, and an ideal operator pooling everything
    with perfect foresight (an upper bound, sim/ideal_island.py)."""
    c = sim.community
    return {"outages": outage_summary(c), "islanded_slots": c.islanded_slots(),
            "p2p": resilience(c, sim.p2p), "alone": resilience(c, sim.baseline),
            "ideal_operator": ideal_resilience(c, sim.p2p)}


def write_run(sim: Simulation, out_dir: Path, report_html: str | None = None) -> Path:
    """Write the run folder; returns its path. Nothing is left half-written on failure."""
    out_dir = Path(out_dir)
    partial = out_dir / ".partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    (partial / "results.json").write_text(json.dumps(results_json(sim), indent=2), encoding="utf-8")
    slots = partial / "participants"
    slots.mkdir()
    index = slot_labels(sim.community.index[sim.community.month])
    for pid in sim.community.participants:
        for run, records, costs in (("p2p", sim.p2p, sim.p2p_costs), ("baseline", sim.baseline, sim.baseline_costs)):
            acc = records.accounts[pid]
            frame = pd.DataFrame({name: acc.columns[name] for name in METER_FIELDS}, index=index)
            frame["p2p_paid"] = acc.paid_per_slot
            frame["p2p_received"] = acc.received_per_slot
            frame.to_csv(slots / f"{pid}.{run}.slots.csv")
            _bill_csv(costs[pid], slots / f"{pid}.{run}.bill.csv")
    local = sim.community.settings.local  # slots are UTC instants; the file shows the local clock
    trades = pd.DataFrame([{**t.as_dict(), "slot_start": local(t.slot_start).isoformat()} for t in sim.p2p.trades])
    trades.to_csv(partial / "trades.csv", index=False)
    write_certificates(partial, sim.provenance.events)
    if report_html is not None:
        (partial / "report.html").write_text(report_html, encoding="utf-8")
    for item in partial.iterdir():
        target = out_dir / item.name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        item.rename(target)
    partial.rmdir()
    return out_dir


def slot_labels(index: pd.DatetimeIndex) -> pd.Index:
    """The slots' text as ``to_csv`` writes a tz-aware index (``2020-08-01 00:00:00+09:00``), made
    once for all the run's slot files instead of formatted again by each (most of their time)."""
    return pd.Index(index.astype(str), name="slot_start")


def _bill_csv(cost: Any, path: Path) -> None:
    rows = []
    if cost.bill is not None:
        for line in cost.bill.lines:
            rows.append({"item": line.name, "quantity": str(line.quantity), "unit": line.unit,
                         "rate": str(line.rate), "amount": str(line.amount)})
    rows.append({"item": "utility total", "amount": str(cost.utility)})
    rows.append({"item": "P2P purchases", "amount": str(cost.p2p_paid)})
    rows.append({"item": "P2P sales", "amount": str(-cost.p2p_received)})
    if cost.grid_fees:
        rows.append({"item": "grid fees on P2P purchases", "amount": str(cost.grid_fees)})
    rows.append({"item": "stored energy drawn (start − end, at the price of putting it back)",
                 "amount": str(cost.stored_energy)})
    rows.append({"item": "electricity-charge balance (rounded)", "amount": str(cost.balance)})
    rows.append({"item": "fuel", "amount": str(cost.fuel)})
    rows.append({"item": "total with fuel (rounded)", "amount": str(cost.total)})
    pd.DataFrame(rows).to_csv(path, index=False)


def _rounded(value: Decimal, sim: Simulation) -> Decimal:
    return round_money(value, sim.community.settings.currency, "half_up")


def _num(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)
