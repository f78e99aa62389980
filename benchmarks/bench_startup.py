"""Start-up benchmark: how long the command line takes before it does anything (issue 16).

Run: ``python benchmarks/bench_startup.py [--runs 7] [--serve]``. Times, each in a fresh process,
``p2penergy --help``, every command's and subcommand's ``--help``, ``import p2penergy`` and
``python -m p2penergy --help``, against a bare ``python -c "import sys"`` measured in the same
run: the cases take turns round after round, so a change of the machine's load hits all of them
alike; the table gives each one's median wall time, its ratio to the bare interpreter's median,
and its median CPU time (user + system; it moves less than wall time with the machine's load).
Target: ``p2penergy --help`` ≤ 0.5 s on an idle machine (issue 16; 3.6-4.5 s before).

``--serve`` also times ``p2penergy serve`` (SQLite journal in a temporary folder, no chain) from
launch to its first answer on ``/health``, and, in the same run, ``import p2penergy.service.app``
alone: the difference is the service's own start-up work (scenario, journal, books).
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.table import Table

BARE = [sys.executable, "-c", "import sys"]


def program() -> list[str]:
    """The console script installed beside this interpreter (what users run), else ``python -m``."""
    script = Path(sys.executable).with_name("p2penergy")
    return [str(script)] if script.exists() else [sys.executable, "-m", "p2penergy"]


def command_paths() -> list[list[str]]:
    """Every command and subcommand of ``p2penergy`` (its click tree), the program itself first."""
    import typer.main

    from p2penergy.cli import app

    def walk(command: object, prefix: list[str]) -> list[list[str]]:
        found = [prefix]
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            found += walk(sub, [*prefix, name])
        return found

    return walk(typer.main.get_command(app), [])


def run_once(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def time_cases(cases: dict[str, list[str]], runs: int) -> dict[str, list[tuple[float, float]]]:
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for argv in cases.values():  # one warm-up round: file caches, .pyc files
        run_once(argv)
    for _ in range(runs):
        for name, argv in cases.items():
            times[name].append(run_once(argv))
    return times


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_once() -> float:
    """Seconds from launching ``p2penergy serve`` to its first ``/health`` answer."""
    folder = tempfile.mkdtemp(prefix="bench-startup-")
    port = free_port()
    env = {**os.environ, "P2PENERGY_ADMIN_TOKEN": secrets.token_hex(16)}  # not printed
    start = time.perf_counter()
    process = subprocess.Popen([*program(), "serve", "--db", f"sqlite:///{folder}/journal.sqlite", "--port",
                                str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"p2penergy serve exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                    answer.read()
                return time.perf_counter() - start
            except OSError:
                time.sleep(0.02)
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each case (median reported)")
    parser.add_argument("--serve", action="store_true", help="also time `p2penergy serve` to its first answer")
    args = parser.parse_args()
    load_before = os.getloadavg()
    cases = {'python -c "import sys" (baseline)': BARE,
             "import p2penergy": [sys.executable, "-c", "import p2penergy"],
             "python -m p2penergy --help": [sys.executable, "-m", "p2penergy", "--help"]}
    cases |= {" ".join(["p2penergy", *path, "--help"]): [*program(), *path, "--help"] for path in command_paths()}
    times = time_cases(cases, args.runs)
    base = statistics.median(wall for wall, _ in times[next(iter(cases))])
    table = Table(title=f"Start-up, median of {args.runs} runs (fresh process each)")
    for column in ("case", "median s", "min s", "ratio to bare python", "CPU s"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for name, values in times.items():
        median = statistics.median(wall for wall, _ in values)
        table.add_row(name, f"{median:.3f}", f"{min(wall for wall, _ in values):.3f}", f"{median / base:.1f}×",
                      f"{statistics.median(cpu for _, cpu in values):.3f}")
    console = Console(width=120)
    console.print(table)
    if args.serve:
        serve_runs = max(1, min(args.runs, 3))
        imports, serves = [], []
        for _ in range(serve_runs):
            imports.append(run_once([sys.executable, "-c", "import p2penergy.service.app, uvicorn"])[0])
            serves.append(serve_once())
        serve_table = Table(title=f"p2penergy serve (SQLite, no chain), median of {serve_runs} runs")
        for column in ("stage", "median s", "ratio to bare python"):
            serve_table.add_column(column, justify="left" if column == "stage" else "right")
        total, imported = statistics.median(serves), statistics.median(imports)
        serve_table.add_row("launch to first /health answer", f"{total:.2f}", f"{total / base:.0f}×")
        serve_table.add_row("of which importing the service (import p2penergy.service.app, uvicorn)",
                            f"{imported:.2f}", f"{imported / base:.0f}×")
        serve_table.add_row("the rest: scenario, journal, books, server", f"{total - imported:.2f}", "")
        console.print(serve_table)
    load_after = os.getloadavg()
    console.print(f"load average (1, 5, 15 min) before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
                  f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; {os.cpu_count()} cores",
                  highlight=False)


if __name__ == "__main__":
    main()
