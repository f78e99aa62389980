"""The README's ablation table: the default month at several commits of this repository.

Each step of the faithful-demonstration work landed as its own commit; this script checks
each named commit out into a temporary worktree and runs the main job there without the
ledger (the ledger does not change bills), on the same seed, then prints one row per step:
all participants, consumers, prosumers, cars, P2P energy, what the office bought and sold,
what cars discharged to it, and its peak.

    python scripts/ablation.py STEP=COMMIT [STEP=COMMIT ...] [--seed N] [--out DIR] [--reuse]

Run it from the repository with the project's virtualenv active. Results of each step
stay in ``DIR/<step>/results.json`` (default ``runs/ablation``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

GROUPS = {"all": "all participants", "consumers": "consumers", "prosumers": "prosumers", "phv": "PHVs alone"}


def run_step(repo: Path, commit: str, out: Path, seed: int | None) -> dict:
    """Run the month at ``commit``; returns its results.json."""
    with tempfile.TemporaryDirectory(prefix="p2p-ablation-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), commit],
                       check=True, capture_output=True)
        try:
            env = dict(os.environ, PYTHONPATH=str(tree / "src"))
            cmd = [sys.executable, "-m", "p2penergy", "simulate", "--no-ledger", "--out", str(out)]
            if seed is not None:
                cmd += ["--seed", str(seed)]
            subprocess.run(cmd, check=True, env=env, cwd=tree, stdout=subprocess.DEVNULL)
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], check=False)
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def improvement(group: dict) -> str:
    """The group's improvement as printed (both the cost-era and the balance-era results.json)."""
    if "improvement" in group and isinstance(group["improvement"], str):
        return group["improvement"]
    pct = group.get("improvement_pct")
    return "n/a" if pct is None else f"{pct:.1f} %"


def row(step: str, results: dict) -> str:
    groups = results["groups"]
    cells = [improvement(groups[g]) if g in groups else "–" for g in GROUPS]
    k = results.get("kpis", {})
    traded = k.get("p2p_energy_kwh")
    office_bought = sum(f["energy_kwh"] for f in results.get("flows", []) if f["buyer_type"] == "office")
    office_sold = sum(f["energy_kwh"] for f in results.get("flows", []) if f["seller_type"] == "office")
    office = f"{office_bought:,.0f} / {office_sold:,.0f}" if "flows" in results else "–"
    discharged = k.get("car_discharge_kwh", 0)
    peak = f"{k.get('office_peak_kw_baseline', '–')} → {k.get('office_peak_kw_p2p', '–')}"
    return (f"| {step} | " + " | ".join(cells) + f" | {traded:,.0f} | {office} | {discharged:,.0f} | {peak} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("steps", nargs="+", help="STEP=COMMIT")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--reuse", action="store_true", help="print a step's existing results instead of re-running")
    args = parser.parse_args()
    repo = Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], check=True, capture_output=True,
                               text=True).stdout.strip())
    extra = ("P2P kWh", "office bought / sold kWh", "V2B kWh", "office peak kW")
    print("| step | " + " | ".join((*GROUPS.values(), *extra)) + " |")
    print("|---" * (len(GROUPS) + 5) + "|")
    for spec in args.steps:
        step, _, commit = spec.partition("=")
        if not commit:
            parser.error(f"steps: STEP=COMMIT, got {spec!r}")
        out = (args.out / step).resolve()
        done = out / "results.json"
        results = json.loads(done.read_text(encoding="utf-8")) if args.reuse and done.exists() else \
            run_step(repo, commit, out, args.seed)
        print(row(step, results), flush=True)


if __name__ == "__main__":
    main()
