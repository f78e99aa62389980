"""The trading agent's positions: what it still wants after what it already traded."""

from __future__ import annotations

import numpy as np
import pandas as pd

from p2penergy.agents.plan_input import Plan
from p2penergy.agents.trader import BUY_SIDE, SELL_SIDE, AgentConfig, Observation, TradingAgent
from p2penergy.community import HOME_KIND, Participant


def plan(buy: float, sell: float) -> Plan:
    z = np.zeros(1)
    return Plan("economy", z, z, np.array([buy]), np.array([sell]), z, z, z, z, z, z, np.zeros((0, 1)),
                np.zeros((0, 1)), np.zeros((0, 1)), z, 0.0, 0.0, 0.0, 0.0)


def agent(pv: bool) -> tuple[TradingAgent, Observation]:
    zeros = np.zeros(48, dtype=np.int64)
    p = Participant("house-01", HOME_KIND, "consumer", zeros, zeros, pv_device="house-01-pv" if pv else None)
    horizon = pd.date_range("2020-08-03 12:00", periods=1, freq="30min", tz="Asia/Tokyo")
    obs = Observation(horizon[0].to_pydatetime(), horizon, np.array([500.0]), np.array([2500.0 if pv else 0.0]))
    return TradingAgent(p, AgentConfig()), obs


def wanted(positions, side):
    return sum(wh for s, items in positions if s == side for _, wh in items)


def test_a_filled_buyer_stops_buying_and_never_sells_back():
    a, obs = agent(pv=False)
    assert wanted(a._positions(plan(1000, 0), obs, 0, 0, 0), BUY_SIDE) == 1000
    partly = a._positions(plan(1000, 0), obs, 0, 600, 0)
    assert wanted(partly, BUY_SIDE) == 400 and wanted(partly, SELL_SIDE) == 0
    over = a._positions(plan(1000, 0), obs, 0, 1500, 0)
    assert wanted(over, BUY_SIDE) == 0 and wanted(over, SELL_SIDE) == 0


def test_a_seller_offers_what_is_left_tagged_by_source():
    a, obs = agent(pv=True)
    positions = a._positions(plan(0, 1500), obs, 0, 0, 500)
    assert wanted(positions, SELL_SIDE) == 1000 and wanted(positions, BUY_SIDE) == 0
    (tag, _), = [item for s, items in positions if s == SELL_SIDE for item in items]
    assert tag.get("source") == "solar" and tag.get("device") == "house-01-pv"
