"""The simulation's agent over HTTP: the same orders as in-process, and a live run that trades and meters."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from tests.service.agents_util import register_keys
from tests.service.conftest import run_server, service_settings

from p2penergy.agents.gateway import forecast_sites, horizon_for, observe
from p2penergy.agents.market_access import InProcessAccess, PriceTape
from p2penergy.agents.trader import TradingAgent
from p2penergy.ledger.keys import derive_keys
from p2penergy.market import make_exchange
from p2penergy.service.client import HttpMarketAccess
from p2penergy.service.live_agents import fit_kit, make_runners, prepare_community, run

# a sunny August morning of the shipped scenario (inside its period, with 4 weeks of history)
START = datetime(2020, 8, 4, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
# Wall seconds a command's process may take before the test calls it hung. Only a bound against a hang:
# the commands end by themselves (after their --slots), and their set-up (a month of data for the whole
# community, forecasters, 30 agents catching up) took over 180 s on a loaded 2-core machine.
HANG_S = 900


@pytest.fixture(scope="module")
def community():
    return prepare_community(None, START, history_days=14)


def test_http_agent_posts_exactly_the_in_process_orders(tmp_path: Path, community):
    pid = "house-15" if "house-15" in community.participants else sorted(community.participants)[-1]
    p = community.participants[pid]
    kit = fit_kit(community, [pid], START, "seven-day-mean")
    keys = derive_keys(community.seed, [pid])
    with run_server(service_settings(tmp_path, clock_start=START, speed=1.0), community.settings) as srv:
        import p2penergy.service.live_agents as la

        register_keys(srv.url, keys)
        now = datetime.fromisoformat(httpx.get(f"{srv.url}/api/market").json()["now"])
        i = int(community.index.get_loc(community.settings.slot_start_of(now)))
        hist = la._history(p, community.index).iloc[:i]
        horizon = horizon_for(community.index, i, community.settings.tz)
        forecast = forecast_sites(kit, {pid: (hist, p.has_pv)}, now, horizon)[pid]
        obs = observe(p, forecast, now, horizon, soc_wh=p.battery.initial_soc_wh if p.battery else None)
        opening = la.opening_price(community)
        http = HttpMarketAccess(srv.url, keys[pid], opening)
        TradingAgent(p, la.AgentConfig()).act(obs, http)
        local = InProcessAccess(make_exchange(community.settings), pid, PriceTape(opening_price=opening))
        TradingAgent(p, la.AgentConfig()).act(obs, local)
        remote = {oid: (oo.order, oo.remaining_wh) for oid, oo in http.open_orders().items()}
        here = {oid: (oo.order, oo.remaining_wh) for oid, oo in local.open_orders().items()}
        assert remote and remote == here


def test_live_agents_trade_and_upload_meters(tmp_path: Path, community):
    ids = [q.id for q in community.participants.values() if q.kind != "car"]
    sellers = [q for q in ids if community.participants[q].has_pv][:3]
    buyers = [q for q in ids if not community.participants[q].has_pv][:3]
    chosen = sellers + buyers
    kit = fit_kit(community, chosen, START, "seven-day-mean")
    keys = derive_keys(community.seed, chosen)
    # 600x: a 30-minute slot every 3 s of wall time
    with run_server(service_settings(tmp_path, clock_start=START, speed=600.0), community.settings) as srv:
        register_keys(srv.url, keys)
        runners = make_runners(srv.url, community, kit, keys, replan_slots=1)
        run(runners, threading.Event(), max_slots=3)
        ex = srv.app.state.live
        assert all(r.steps >= 3 for r in runners)
        assert {o.participant for o in ex.orders.values()} >= set(sellers)
        # every runner metered the slots that ended, in Wh, from the scenario's data
        for r in runners:
            assert ex.meter_totals(r.participant.id)["load_wh"] > 0
        assert not [e for r in runners for e in r.errors if "HTTP 5" in e]


def test_live_agents_stop_at_the_end_of_their_data(tmp_path: Path, community):
    """A clock that runs past the site data's last slot ends the run, without an error (it used to raise
    ValueError on the first slot the data lack, e.g. a fast demo on a loaded machine)."""
    chosen = [q.id for q in community.participants.values() if q.kind != "car"][:2]
    kit = fit_kit(community, chosen, START, "seven-day-mean")
    keys = derive_keys(community.seed, chosen)
    last = community.settings.local(community.slot(len(community.index) - 1))
    # 600x: the data's last slot lasts 3 s of wall time
    with run_server(service_settings(tmp_path, clock_start=last, speed=600.0), community.settings) as srv:
        register_keys(srv.url, keys)
        runners = make_runners(srv.url, community, kit, keys, replan_slots=1)
        safety = threading.Event()
        timer = threading.Timer(HANG_S, safety.set)
        timer.start()
        try:
            run(runners, safety)  # no slot bound: only the data's end can stop it before the safety
        finally:
            timer.cancel()
        assert not safety.is_set()
        assert all(r.access.settings.slot_start_of(r.access.now()) > community.slot(len(community.index) - 1)
                   for r in runners)
        assert all(r.steps >= 1 for r in runners)


def test_agent_command_trades_one_site_over_http(tmp_path: Path):
    """``p2penergy agent --site ... --url ...`` as a user runs it (its own process)."""
    import subprocess
    import sys

    from tests.service.conftest import TOKEN

    with run_server(service_settings(tmp_path, clock_start=START, speed=600.0)) as srv:
        pid = "house-15"
        done = subprocess.run(
            [sys.executable, "-m", "p2penergy", "agent", "--site", pid, "--url", srv.url, "--admin-token", TOKEN,
             "--forecaster", "seven-day-mean", "--replan-slots", "1", "--slots", "2"],
            capture_output=True, text=True, timeout=HANG_S)
        assert done.returncode == 0, done.stderr
        ex = srv.app.state.live
        assert pid in ex.addresses and ex.mine[pid]  # registered itself, posted orders
        assert ex.readings[pid]  # metered the slot that ended
        assert f"{pid}: bought" in done.stdout
        bad = subprocess.run([sys.executable, "-m", "p2penergy", "agent", "--site", "house-99", "--url", srv.url],
                             capture_output=True, text=True, timeout=HANG_S)
        assert bad.returncode == 2 and "--site" in bad.stderr


# The demo's own default speed. Its data end 66 market hours after its start (2 days after the start's day):
# 13 wall minutes at 300x, 3.3 at 1200x, where a loaded machine's set-up (30 agents catching up with the month
# while the clock runs) let the clock pass the data's end, and the agents failed on a slot the data lack.
DEMO_SPEED = "300"


def test_demo_live_runs_the_whole_community(tmp_path: Path):
    import sqlite3
    import subprocess
    import sys

    from tests.service.conftest import free_port

    db = tmp_path / "demo.sqlite"
    done = subprocess.run(
        [sys.executable, "-m", "p2penergy", "demo", "--live", "--no-browser", "--port", str(free_port()),
         "--db", f"sqlite:///{db}", "--speed", DEMO_SPEED, "--slots", "2", "--forecaster", "seven-day-mean"],
        capture_output=True, text=True, timeout=HANG_S)
    assert done.returncode == 0, done.stderr
    assert "dashboard: http://127.0.0.1:" in done.stderr
    with sqlite3.connect(db) as conn:
        kinds = dict(conn.execute("SELECT kind, count(*) FROM journal GROUP BY kind").fetchall())
        traders = conn.execute("SELECT count(DISTINCT json_extract(body, '$.action.participant')) FROM journal "
                               "WHERE kind = 'order'").fetchone()[0]
    assert kinds["participant"] == 30  # 20 homes, the office, 9 cars
    assert traders >= 10 and kinds.get("meter", 0) >= 30


def test_live_car_sees_its_owners_monthly_import(tmp_path: Path, community, monkeypatch):
    """A car is billed on its owner's contract: its agent prices the next kWh at the household's
    month import (owner's + car's), in the live service as in the simulation."""
    car = community.participants["car-01"]
    owner = car.owner
    assert owner is not None
    chosen = [owner, car.id]
    kit = fit_kit(community, chosen, START, "seven-day-mean")
    keys = derive_keys(community.seed, chosen)
    seen: list[tuple[str, datetime, int]] = []
    act = TradingAgent.act

    def spy(self, obs, market):
        seen.append((self.participant.id, obs.now, obs.month_import_wh))
        return act(self, obs, market)

    monkeypatch.setattr(TradingAgent, "act", spy)
    with run_server(service_settings(tmp_path, clock_start=START, speed=600.0), community.settings) as srv:
        register_keys(srv.url, keys)
        runners = make_runners(srv.url, community, kit, keys, replan_slots=1)
        # the month before the runners joined (read as the site ran on the utility alone)
        joined = sum(r.gateway.month_import_wh for r in runners)
        assert joined > 0
        run(runners, threading.Event(), max_slots=4)
        readings = srv.app.state.live.readings
    first_end = community.settings.slot_start_of(min(n for _, n, _ in seen)) + community.settings.slot_length
    later = [(now, wh) for pid, now, wh in seen if pid == car.id and now >= first_end]
    assert later, "the car acted after the first slot had been metered"
    for now, wh in later:
        household = joined + sum(v.get("grid_import_wh", 0) for pid in chosen for s, v in readings[pid].items()
                                 if s + community.settings.slot_length <= now)
        assert wh == household
