"""Start-up stays light (issue 16): ``import p2penergy``, ``p2penergy --help`` and every subcommand's
``--help`` parse arguments without importing the machinery of any command (numerical, chain, web,
database and plotting libraries). Timings are in ``benchmarks/bench_startup.py``; these tests check
what gets imported, which is what makes start-up slow, in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

HEAVY = ("numpy", "pandas", "scipy", "sklearn", "lightgbm", "pvlib", "web3", "eth_account", "eth_abi",
         "eth_utils", "eth_keys", "eth_keyfile", "eth_typing", "eth_hash", "fastapi", "starlette", "uvicorn",
         "sqlalchemy", "psycopg", "dask", "distributed", "plotly", "matplotlib", "highspy", "pyarrow", "httpx",
         "holidays", "jinja2", "rich", "pandapower", "power_grid_model")
"""Top-level packages no command needs to parse its arguments (each costs 10 ms to seconds to import).
Not pydantic: typer itself converts every option's value (``--help`` too) with it. rich only prints
results: the help is click's plain layout."""

COMMANDS = {"market", "scenario", "operator", "forecast", "simulate", "sweep", "certificates", "serve", "agent",
            "demo", "audit"}
"""Every command of ``p2penergy`` (README, 'Commands'); a refactoring must not lose one."""

# Runs in a fresh interpreter: imports p2penergy, then calls the console script's entry point with
# ``--help`` for the program and for every command and subcommand found in its click tree, and
# records after each which heavy packages have been imported so far.
PROBE = textwrap.dedent("""
    import contextlib, io, json, sys
    HEAVY = set(json.loads(sys.argv[1]))

    seen = set()

    def heavy():  # the heavy packages imported since the last call
        loaded = {name.split(".")[0] for name in sys.modules} & HEAVY
        new = sorted(loaded - seen)
        seen.update(loaded)
        return new

    import p2penergy
    report = {"import p2penergy": heavy()}
    from p2penergy.cli import app, main
    report["import p2penergy.cli"] = heavy()
    import typer.main

    def paths(command, prefix):
        yield prefix
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from paths(sub, [*prefix, name])

    helps = {}
    for path in list(paths(typer.main.get_command(app), [])):
        sys.argv = ["p2penergy", *path, "--help"]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code
        key = " ".join(["p2penergy", *path, "--help"])
        report[key] = heavy()
        helps[key] = {"code": code, "text": out.getvalue()}
    print(json.dumps({"heavy": report, "helps": helps}))
""")


@pytest.fixture(scope="module")
def probe() -> dict:
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY)], capture_output=True, text=True,
                         timeout=300, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_import_p2penergy_imports_nothing_heavy(probe):
    assert probe["heavy"]["import p2penergy"] == []
    assert probe["heavy"]["import p2penergy.cli"] == []


def test_every_help_parses_without_heavy_imports(probe):
    helps = probe["helps"]
    assert len(helps) > len(COMMANDS)  # the program, every command and the groups' subcommands
    loaded = {step: modules for step, modules in probe["heavy"].items() if modules}
    assert loaded == {}, "imported while only parsing arguments (by the first step that needed them)"
    assert all(h["code"] == 0 for h in helps.values()), {k: h["code"] for k, h in helps.items() if h["code"]}


def test_help_lists_every_command(probe):
    text = probe["helps"]["p2penergy --help"]["text"]
    listed = {word for line in text.splitlines() for word in line.replace("│", " ").split()[:1]}
    assert listed >= COMMANDS, f"missing from --help: {sorted(COMMANDS - listed)}"
    for key, h in probe["helps"].items():
        assert "Usage:" in h["text"], key


def test_python_m_and_each_subcommand_help_in_a_real_process():
    out = subprocess.run([sys.executable, "-m", "p2penergy", "market", "clear", "--help"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert "--mechanism" in out.stdout


def test_the_service_without_a_chain_loads_no_chain_client_and_no_pv_model():
    """``p2penergy serve`` imports its app before it listens: the chain client (web3, eth-account) is
    for ``--chain-url`` only and the PV model (pvlib, SciPy) for generating data, neither at start."""
    code = ("import json, sys, p2penergy.service.app; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout))
    assert "fastapi" in loaded  # the probe saw the service's imports
    assert loaded & {"web3", "eth_account", "eth_abi", "py_ecc", "pvlib", "scipy"} == set()
