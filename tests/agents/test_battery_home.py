"""Homes with PV and a battery under Japan's FIT rules for storage (docs/agents.md): the utility buys
only the PV surplus — the battery never exports to it and never pushes PV out (押し上げ効果) — and a
home buys energy only where it lacks it; it sells stored energy P2P when that pays."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

from p2penergy.agents.planner import plan
from p2penergy.agents.trader import Observation, TradingAgent
from p2penergy.assets.battery import BatterySpec
from p2penergy.community import HOME_KIND, Participant
from p2penergy.scenario.load import load_scenario
from p2penergy.tariffs import Buyback

SCENARIO = load_scenario()
TZ = SCENARIO.market.tz
NOW = pd.Timestamp("2020-08-04 10:00", tz=TZ)
HORIZON = pd.date_range(NOW, periods=28, freq="30min")  # 10:00 to 23:30
HOUR = np.asarray(HORIZON.hour + HORIZON.minute / 60)
SUNNY = (HOUR >= 10) & (HOUR < 14)
BATTERY = BatterySpec(capacity_wh=9800, power_w=3000, charge_efficiency=0.95, discharge_efficiency=0.95,
                      soc_min_wh=980, initial_soc_wh=980)


def home_plan(reference: str):
    zeros = np.zeros(1, dtype=np.int64)
    home = Participant("house-17", HOME_KIND, "pv_battery", zeros, zeros, battery=BATTERY, pv_device="house-17-pv",
                       retail=SCENARIO.tariffs.retail_tariff(), contract_a=40,
                       buyback=Buyback("fit-fy2019", Decimal(24)))
    load = np.full(len(HORIZON), 300.0)
    pv = np.where(SUNNY, 2000.0, 0.0)
    obs = Observation(NOW.to_pydatetime(), HORIZON, load, pv, soc_wh=980, month_import_wh=250_000)
    inp = TradingAgent(home).plan_input(obs, 30, Decimal(reference))
    return inp, plan(inp), load, pv


def test_a_fit_home_with_a_battery_buys_nothing_to_export_it():
    # P2P energy at 20 JPY/kWh is cheaper than the 24 its FIT pays: buying it in the sunny hours to
    # store or use while the PV is exported would sell bought energy at the FIT price. It does not.
    _, result, load, pv = home_plan("20")
    assert result.p2p_buy_wh[SUNNY].sum() == 0
    # exports stay within the PV surplus: the battery never feeds the utility
    assert (result.grid_export_wh <= np.maximum(pv - load, 0) + 1e-6).all()
    assert (result.grid_export_wh[~SUNNY] <= 1e-6).all()
    # what it stores is its own PV
    assert (result.battery_charge_wh <= np.maximum(pv - load, 0) + 1e-6).all()


def test_a_home_with_a_battery_sells_stored_energy_in_the_evening_when_it_pays():
    # P2P at 35 JPY/kWh, above the home's next retail kWh (about 26.6): the battery's energy is worth
    # more sold to a neighbour in the evening than kept.
    _, result, _, _ = home_plan("35")
    evening = HOUR >= 17
    assert result.p2p_sell_wh[evening].sum() > 0
    assert result.battery_discharge_wh[evening].sum() > 0
    assert result.grid_export_wh[evening].sum() <= 1e-6
