"""A sweep on a real 2-worker Dask cluster of processes: one worker killed (SIGKILL) mid-sweep,
a resume after an interrupted sweep, a failing point, determinism against single runs, the
CLI, and the example notebook. One sweep (examples/sweep.toml: 3 points × 1 day on 6 homes)
is shared by the whole module, so it stays cheap."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from p2penergy.sweeps.point import DONE, point_dir
from p2penergy.sweeps.runner import SweepResult, run_sweep
from p2penergy.sweeps.spec import load_sweep, parse_sweep

# one cluster and one sweep for the whole module: with pytest-xdist, keep the module on one
# worker (--dist loadgroup or loadfile) or the shared sweep runs once per xdist worker
pytestmark = pytest.mark.xdist_group("sweep-cluster")
ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "sweep.toml"
# the killed worker runs its point at least this long before the kill (mid-task, not before it)
KILL_AFTER_S = 3.0


@pytest.fixture(scope="module")
def cluster() -> Any:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, \
            Client(lc) as client:
        yield client


@pytest.fixture(scope="module")
def swept(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example sweep; as soon as a worker has been running a point for KILL_AFTER_S, that
    worker's process is killed with SIGKILL (its nanny starts a new one)."""
    out = tmp_path_factory.mktemp("sweep")
    sweep = load_sweep(EXAMPLE)
    pids = cluster.run(os.getpid)
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = run_sweep(sweep, out, client=cluster)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    killed: tuple[str, int, str] | None = None
    seen: dict[str, float] = {}
    while thread.is_alive() and killed is None:
        for address, keys in cluster.processing().items():
            for key in keys:
                first = seen.setdefault(f"{address} {key}", time.monotonic())
                if time.monotonic() - first >= KILL_AFTER_S and address in pids:
                    os.kill(pids[address], signal.SIGKILL)
                    killed = (address, pids[address], str(key))
                    break
            if killed:
                break
        time.sleep(0.2)
    thread.join()
    if "error" in box:
        raise box["error"]
    return {"out": out, "sweep": sweep, "result": box["result"], "killed": killed}


def test_a_killed_worker_s_point_runs_again_elsewhere(swept: dict[str, Any]) -> None:
    result: SweepResult = swept["result"]
    assert swept["killed"] is not None, "no worker was running a point long enough to be killed"
    _, pid, key = swept["killed"]
    assert not result.failed and len(result.ran) == 3
    frame = result.frame
    assert set(frame["status"]) == {"ok"} and frame["point"].nunique() == 3
    assert sorted(frame["mechanism"].unique()) == ["cda", "pay-as-bid", "pay-as-clear"]
    short = key.rsplit("-", 1)[1]
    done = json.loads((swept["out"] / "points" / short / DONE).read_text())
    assert done["worker"].split()[-1] != str(pid), "the killed point's result came from the killed process"


def test_results_table_and_comparison_page(swept: dict[str, Any]) -> None:
    out: Path = swept["out"]
    parquet = pd.read_parquet(out / "results.parquet")
    csv = pd.read_csv(out / "results.csv")
    assert len(parquet) == len(csv) == 3 * 10  # one row per point and group
    assert list(parquet["savings"]) == list(parquet["baseline_balance"] - parquet["p2p_balance"])
    for run_dir in parquet["run_dir"].unique():
        assert (Path(run_dir) / "results.json").exists() and (Path(run_dir) / "report.html").exists()
    page = (out / "compare.html").read_text()
    for mechanism in ("mechanism=cda", "mechanism=pay-as-clear", "mechanism=pay-as-bid"):
        assert mechanism in page
    assert "Savings per group" in page and "Along mechanism" in page and "plotly" in page


def test_point_is_identical_to_the_same_run_made_alone(swept: dict[str, Any]) -> None:
    """The sweep's cda point against p2penergy.simulate(...) in this process: every participant's
    balances to the yen, and the same trades."""
    import p2penergy

    alone = p2penergy.simulate(days=1, history_days=8, community={"homes": 6}, mechanism="cda",
                               out=swept["out"] / "alone")
    frame = swept["result"].frame
    point = frame[frame["mechanism"] == "cda"]
    columns = ["group", "members", "baseline_balance", "p2p_balance", "savings", "improvement_pct", "seed"]
    pd.testing.assert_frame_equal(point[columns].reset_index(drop=True), alone[columns].reset_index(drop=True))
    mine = json.loads((Path(point["run_dir"].iloc[0]) / "results.json").read_text())
    theirs = json.loads((swept["out"] / "alone" / "results.json").read_text())
    assert mine["participants"] == theirs["participants"]
    assert (Path(point["run_dir"].iloc[0]) / "trades.csv").read_text() == (
        swept["out"] / "alone" / "trades.csv").read_text()


def test_resume_after_an_interrupt_runs_only_what_is_missing(swept: dict[str, Any], cluster: Any,
                                                             tmp_path: Path) -> None:
    """An interrupted sweep leaves points without ``done.json`` (and maybe a half-written
    folder): a second run runs those and reuses the rest by their content hash, here from a
    different sweep file with one more point, which fails (no weeks before June to learn from)
    and is reported without stopping the sweep; the cluster is reached by its scheduler's address."""
    out: Path = swept["out"]
    sweep = swept["sweep"]
    victim = sweep.points[1]
    (point_dir(out, victim) / DONE).unlink()
    (point_dir(out, victim) / ".partial").mkdir()
    before = pd.read_parquet(out / "results.parquet")
    bigger = tmp_path / "bigger.toml"
    listed = "".join(f'[[points]]\nmechanism = "{m}"\n' for m in ("cda", "pay-as-clear", "pay-as-bid"))
    bigger.write_text('days = 1\nhistory_days = 8\ncommunity.homes = 6\n' + listed
                      + '[[points]]\nmechanism = "cda"\nperiod = "2020-06"\n', encoding="utf-8")
    # through the scheduler's address, as `p2penergy sweep --scheduler tcp://…` connects to a running cluster
    result = run_sweep(load_sweep(bigger), out, scheduler=cluster.scheduler.address)
    assert result.ran == [victim.short]
    assert sorted(result.reused) == sorted(p.short for p in sweep.points if p is not victim)
    assert len(result.failed) == 1
    (error,) = result.failed.values()
    assert "history" in error
    failed = result.frame[result.frame["status"] == "failed"]
    assert len(failed) == 1 and failed["period"].iloc[0] == "2020-06"
    again = result.frame[result.frame["status"] == "ok"].reset_index(drop=True)
    money = ["point", "group", "baseline_balance", "p2p_balance", "savings"]
    pd.testing.assert_frame_equal(again[money], before[money])
    assert not (point_dir(out, victim) / ".partial").exists()


def test_cli_sweep_reuses_done_points_and_rejects_bad_files(swept: dict[str, Any], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from p2penergy.cli import app

    runner = CliRunner()
    done = runner.invoke(app, ["sweep", str(EXAMPLE), "--out", str(swept["out"]), "--workers", "1"])
    assert done.exit_code == 0, done.output
    assert "0 run, 3 already done, 0 failed" in done.output
    bad = tmp_path / "bad.toml"
    bad.write_text('scenario = "higashi-fuji-2020"\n[axes]\nmechanism = ["cda", "vickrey"]\n', encoding="utf-8")
    refused = runner.invoke(app, ["sweep", str(bad), "--out", str(tmp_path / "o")])
    assert refused.exit_code == 2
    assert "axes.mechanism[1]" in refused.output and "vickrey" in refused.output
    assert not (tmp_path / "o").exists()


def test_example_notebook_runs(swept: dict[str, Any], tmp_path: Path) -> None:
    """examples/sweep.ipynb, executed with nbclient on the module's sweep folder (its points are
    done there, so the notebook reads them instead of starting a cluster)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(ROOT / "examples" / "sweep.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), "outputs committed"
    folder = tmp_path / "nb"
    shutil.copytree(swept["out"], folder / "sweep-out")
    os.environ["P2PENERGY_EXAMPLE_SWEEP_OUT"] = str(folder / "sweep-out")
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "examples")}}).execute()
    finally:
        del os.environ["P2PENERGY_EXAMPLE_SWEEP_OUT"]
    texts = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert "points: 3" in texts
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for c in notebook.cells
               for o in c.get("outputs", []))


def test_one_point_sweep_needs_no_axes() -> None:
    sweep = parse_sweep({"scenario": "higashi-fuji-2020", "days": 2})
    assert len(sweep.points) == 1 and sweep.points[0].label == "base"


def test_a_sweep_stopped_by_sigterm_mid_point_resumes_with_only_that_point(swept: dict[str, Any],
                                                                          tmp_path: Path) -> None:
    """``p2penergy sweep`` (a real process, its own local cluster) is sent SIGTERM while it runs a
    new point, the example's three being done already: it stops with status 130, its cluster's
    processes end with it, the interrupted point is not counted as done, and the same command
    run again runs that point only."""
    import subprocess
    import sys

    import psutil
    from typer.testing import CliRunner

    from p2penergy.cli import app

    out = tmp_path / "out"
    shutil.copytree(swept["out"], out)
    listed = "".join(f'[[points]]\nmechanism = "{m}"\n' for m in ("cda", "pay-as-clear", "pay-as-bid"))
    study = tmp_path / "study.toml"
    study.write_text('days = 1\nhistory_days = 8\ncommunity.homes = 6\n' + listed
                     # the interrupted point runs 14 days, long enough on an idle machine that the signal
                     # reaches it mid-run (a 1- or 4-day point of 6 homes ends within the seconds the stop takes)
                     + '[[points]]\nmechanism = "cda"\nseed = 2\ndays = 14\n', encoding="utf-8")
    new = next(p for p in load_sweep(study).points if p.values.get("seed") == 2)
    proc = subprocess.Popen([sys.executable, "-m", "p2penergy", "sweep", str(study), "--out", str(out),
                             "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (point_dir(out, new) / "point.json").exists():  # the new point has started on the worker
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the new point never started"
            time.sleep(0.2)
        time.sleep(1.0)
        cluster = psutil.Process(proc.pid).children(recursive=True)
        assert cluster, "the sweep runs its points in worker processes"
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert "interrupted" in output
    _, alive = psutil.wait_procs(cluster, timeout=30)
    assert not alive, f"processes of the stopped sweep still running: {alive}"
    assert not (point_dir(out, new) / DONE).exists()
    resumed = CliRunner().invoke(app, ["sweep", str(study), "--out", str(out), "--workers", "1"])
    assert resumed.exit_code == 0, resumed.output
    assert "1 run, 3 already done, 0 failed" in resumed.output
    assert json.loads((point_dir(out, new) / DONE).read_text())["key"] == new.key
