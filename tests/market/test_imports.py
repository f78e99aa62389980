"""A continuous double auction needs neither numpy nor HiGHS (issue 16): ``p2penergy market clear``
with the default mechanism, and any user of ``p2penergy.market`` that only trades continuously,
does not wait for them to import (about half a second). Checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[2]
HEAVY = ["numpy", "highspy", "scipy", "pandas"]

PROBE = textwrap.dedent("""
    import atexit, json, sys
    from p2penergy.cli import main

    heavy = set(json.loads(sys.argv[1]))
    # after the command's exit: the heavy packages it imported, on standard error
    atexit.register(lambda: print(json.dumps(sorted({n.split(".")[0] for n in sys.modules} & heavy)),
                                  file=sys.stderr))
    sys.argv = ["p2penergy", "market", "clear", sys.argv[2], "--json", "--mechanism", sys.argv[3]]
    main()
""")


def probe(mechanism: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY), str(ROOT / "examples" / "orders.csv"),
                          mechanism], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return {"heavy": json.loads(out.stderr.splitlines()[-1]), "trades": len(json.loads(out.stdout)["trades"])}


def test_a_cda_clear_imports_no_numerical_library():
    report = probe("cda")
    assert report["trades"] > 0
    assert report["heavy"] == []


def test_a_call_auction_still_finds_its_solver():
    report = probe("pay-as-clear")
    assert report["trades"] > 0
    assert "numpy" in report["heavy"] and "highspy" in report["heavy"]


def test_the_call_auction_names_stay_in_the_package():
    from p2penergy import market
    from p2penergy.market import call_auction

    assert market.clear_call is call_auction.clear_call
    assert market.Clearing is call_auction.Clearing and market.clear_uniform_arrays is call_auction.clear_uniform_arrays
    assert set(market.__all__) <= set(dir(market)) | {"Clearing", "clear_call", "clear_uniform_arrays"}
