"""The trading agent's positions: what it still wants after what it already traded."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from p2penergy.agents.plan_input import Plan
from p2penergy.agents.trader import (
    BUY_SIDE,
    SELL_SIDE,
    AgentConfig,
    Observation,
    TradingAgent,
    _erfc,
    critical_fractile,
    gate_open_flags,
    hedge_shift,
    interp_one,
    net_quantiles,
)
from p2penergy.community import HOME_KIND, Participant
from p2penergy.market import MarketSettings, Order, make_exchange
from p2penergy.market.grid_fees import GridFees


def plan(buy: float, sell: float) -> Plan:
    z = np.zeros(1)
    return Plan("economy", z, z, np.array([buy]), np.array([sell]), z, z, z, z, z, z, np.zeros((0, 1)),
                np.zeros((0, 1)), np.zeros((0, 1)), z, 0.0, 0.0, 0.0, 0.0)


def agent(pv: bool) -> tuple[TradingAgent, Observation]:
    zeros = np.zeros(48, dtype=np.int64)
    p = Participant("house-01", HOME_KIND, "consumer", zeros, zeros, pv_device="house-01-pv" if pv else None)
    horizon = pd.date_range("2020-08-03 12:00", periods=1, freq="30min", tz="Asia/Tokyo")
    obs = Observation(horizon[0].to_pydatetime(), horizon, np.array([500.0]), np.array([2500.0 if pv else 0.0]))
    a = TradingAgent(p, AgentConfig())
    # no tariff: the most a kWh can cost it is the market's price maximum, known once it acts (30 here)
    a._price_max = Decimal(30)
    return a, obs


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


def test_critical_fractile_by_hand():
    # retail 26.5, buyback 8.5, P2P 18: (26.5 − 18) / (26.5 − 8.5)
    assert critical_fractile(26.5, 8.5, 18.0) == pytest.approx(8.5 / 18)
    assert critical_fractile(26.5, 8.5, 40.0) == 0.0 and critical_fractile(26.5, 8.5, 5.0) == 1.0
    assert critical_fractile(8.0, 8.5, 8.2) == 0.5  # no spread between retail and buyback


def with_quantiles(obs: Observation, load_q, pv_q=None) -> Observation:
    return dataclasses.replace(obs, quantile_levels=(0.1, 0.5, 0.9), load_quantiles_wh=np.array(load_q, float)[:, None],
                               pv_quantiles_wh=None if pv_q is None else np.array(pv_q, float)[:, None])


def test_a_home_without_storage_trades_the_cost_minimising_quantile_of_its_deficit():
    a, obs = agent(pv=False)  # point forecast: 500 Wh of load
    obs = with_quantiles(obs, [300, 500, 900])
    assert hedge_shift(obs, 0, 0.5) == 0.0
    assert hedge_shift(obs, 0, 0.1) == pytest.approx(-200.0)
    assert hedge_shift(obs, 0, 0.3) == pytest.approx(-100.0)  # linear between levels
    assert hedge_shift(obs, 0, 0.95) == pytest.approx(400.0)  # held at the outermost level
    # this home has no tariffs: its price maximum 30 for retail, buyback 0; P2P at 27 gives the fractile
    # (30 − 27) / 30 = 0.1
    a._reference = Decimal(27)
    assert wanted(a._positions(plan(500, 0), obs, 0, 0, 0), BUY_SIDE) == 300
    a._reference = None  # no trade yet: the midpoint, fractile 0.5, the plan's whole deficit
    assert wanted(a._positions(plan(500, 0), obs, 0, 0, 0), BUY_SIDE) == 500


def test_without_quantiles_the_plan_is_traded_whole_and_a_hedge_never_flips_side():
    a, obs = agent(pv=True)  # point: 500 load, 2500 PV
    assert wanted(a._positions(plan(0, 2000), obs, 0, 0, 0), SELL_SIDE) == 2000
    # a surplus that may well be a deficit: at the fractile the net is positive, so nothing is sold
    obs = with_quantiles(obs, [400, 500, 3000], [0, 2500, 2600])
    a._reference = Decimal(3)  # fractile (30 − 3) / 30 = 0.9
    positions = a._positions(plan(0, 2000), obs, 0, 0, 0)
    assert wanted(positions, SELL_SIDE) == 0 and wanted(positions, BUY_SIDE) == 0


def test_net_quantiles_combine_load_and_pv_as_independent_errors():
    levels = (0.1, 0.5, 0.9)
    load = np.array([[300.0], [500.0], [900.0]])
    pv = np.array([[100.0], [400.0], [500.0]])
    net = net_quantiles(levels, load, pv)[:, 0]
    # median 100; at 10 %: load 200 low, PV (at 90 %) 100 high -> 100 − √(200² + 100²)
    assert net[1] == pytest.approx(100.0)
    assert net[0] == pytest.approx(100.0 - np.hypot(200.0, 100.0))
    assert net[2] == pytest.approx(100.0 + np.hypot(400.0, 300.0))


def test_interp_one_is_np_interp_to_the_bit():
    # the hedge reads the net's quantile with it instead of np.interp (speed only): the same double
    # everywhere — between knots, on them, beyond both ends, with infinite quantiles (NaN slopes)
    rng = np.random.default_rng(14)
    for trial in range(20_000):
        xp = np.sort(rng.random(int(rng.integers(2, 10))))
        if len(np.unique(xp)) != len(xp):
            continue
        fp = rng.normal(0.0, 500.0, len(xp)) * 10.0 ** int(rng.integers(-3, 4))
        if trial % 7 == 0:
            fp[rng.integers(len(fp))] = np.inf if trial % 2 else -np.inf
        x = (float(xp[rng.integers(len(xp))]) if trial % 4 == 0 else float(rng.uniform(-0.2, 1.2)) if trial % 4 == 1
             else float(rng.random()))
        want = float(np.interp(x, tuple(xp.tolist()), fp))
        got = interp_one(x, tuple(xp.tolist()), fp.tolist())
        assert (got == want or (got != got and want != want)) and np.signbit(got) == np.signbit(want), (x, xp, fp)
    assert interp_one(float("nan"), (0.1, 0.9), [1.0, 2.0]) != interp_one(float("nan"), (0.1, 0.9), [1.0, 2.0])


def test_the_offices_erfc_is_np_vectorize_of_math_erfc_to_the_bit():
    # the office's demand-charge risk uses it instead of np.vectorize(math.erfc) (speed only)
    rng = np.random.default_rng(16)
    for _ in range(500):
        x = rng.normal(0.0, 3.0, int(rng.integers(1, 60))) * 10.0 ** int(rng.integers(-3, 3))
        want, got = np.vectorize(math.erfc)(x), _erfc(x)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert (got.view(np.int64) == want.view(np.int64)).all()


def test_net_quantiles_take_the_first_of_two_equally_near_levels():
    # the median is the level nearest 0.5 (the first of two as near: np.argmin's choice)
    levels = (0.25, 0.75)
    load = np.array([[100.0], [300.0]])
    pv = np.array([[10.0], [50.0]])
    net = net_quantiles(levels, load, pv)[:, 0]
    centre = 100.0 - 10.0  # level 0.25 for both medians; the mirror of 0.25 is 0.75 and of 0.75 is 0.25
    assert net[0] == -np.sqrt(0.0 + (10.0 - 50.0) ** 2) + centre
    assert net[1] == np.sqrt(200.0**2 + (10.0 - 10.0) ** 2) + centre


def test_the_fixed_hedge_trades_fixed_shares_of_the_plan_whatever_the_quantiles():
    # the agents before issue 14 (``--agents point-forecasts``): 70 % of a deficit, 80 % of a surplus
    a, obs = agent(pv=True)
    a.config = AgentConfig(hedge="fixed")
    obs = with_quantiles(obs, [300, 500, 900], [0, 2500, 2600])
    a._reference = Decimal(27)
    assert wanted(a._positions(plan(1000, 0), obs, 0, 0, 0), BUY_SIDE) == 700
    assert wanted(a._positions(plan(0, 2000), obs, 0, 0, 0), SELL_SIDE) == 1600
    assert wanted(a._positions(plan(0, 2000), obs, 0, 0, 1000), SELL_SIDE) == 600  # less what was sold
    with pytest.raises(ValueError, match="hedge"):
        AgentConfig(hedge="half")
    with pytest.raises(ValueError, match="fixed_hedge"):
        AgentConfig(fixed_hedge=(0.7, 1.5))


def test_gate_flags_by_bisection_are_the_markets_gate_is_open_slot_by_slot():
    # speed only (issue 16): the agent finds the run of open gates among its horizon's slots by
    # bisection; it must say exactly what settings.gate_is_open says for every slot, at any instant
    # (on a slot boundary, a gate's opening or closing instant, between them), on either market
    rng = np.random.default_rng(16)
    for settings in (MarketSettings(), MarketSettings.from_toml(Path(__file__).parents[2] / "markets" / "eu-15min.toml")):
        slot = timedelta(minutes=settings.slot_minutes)
        first = settings.slot_start_of(datetime(2020, 8, 3, 15, tzinfo=UTC))
        starts = tuple(first + k * slot for k in range(200))
        instants = [first + timedelta(seconds=int(s)) for s in rng.integers(-2 * 86_400, 4 * 86_400, 100)]
        instants += [settings.gate_open(starts[40]), settings.gate_close(starts[40]), first]
        instants += [settings.gate_close(starts[3]) - timedelta(microseconds=1)]
        for now in instants:
            for lo, hi in ((0, 200), (17, 113), (5, 6), (9, 9)):
                window = starts[lo:hi]
                assert gate_open_flags(settings, window, now) == [settings.gate_is_open(s, now) for s in window]


def test_a_tiered_tariffs_next_kwh_is_priced_at_the_tier_the_month_will_end_in():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from p2penergy.agents.trader import projected_month_import_wh
    from p2penergy.scenario.load import load_scenario

    tz = ZoneInfo("Asia/Tokyo")
    # 100 kWh by noon of 11 August (10.5 of 31 days): the month heads for 100 × 31 / 10.5 = 295 kWh
    assert projected_month_import_wh(datetime(2020, 8, 11, 12, tzinfo=tz), 100_000) == round(100_000 * 31 / 10.5)
    # on the month's first day its rate is not yet known: the imports so far
    assert projected_month_import_wh(datetime(2020, 8, 1, 18, tzinfo=tz), 8_000) == 8_000
    # so a home 100 kWh into the month on the 11th pays the second tier's price for its next kWh, not the first's
    retail = load_scenario().tariffs.retail_tariff()
    zeros = np.zeros(48, dtype=np.int64)
    home = TradingAgent(Participant("house-01", HOME_KIND, "consumer", zeros, zeros, retail=retail, contract_a=40))
    horizon = pd.date_range("2020-08-11 12:00", periods=1, freq="30min", tz="Asia/Tokyo")
    obs = Observation(horizon[0].to_pydatetime(), horizon, np.array([500.0]), np.array([0.0]), month_import_wh=100_000)
    month = horizon[0].date()
    second_tier = retail.energy_charge(Decimal(201)) - retail.energy_charge(Decimal(200))
    extra = retail.fuel_adjustment_rate(month) + retail.surcharge_rate(month)
    assert home._retail_per_kwh(obs) == pytest.approx(float(second_tier + extra))
    assert second_tier > retail.energy_charge(Decimal(101)) - retail.energy_charge(Decimal(100))


def bids_with_fees(fees: GridFees) -> list[Decimal]:
    """The bids of a home without PV acting once on a CDA whose market charges ``fees``, late in
    the slot's gate with a public price near its reservation (the market's maximum, 50 JPY/kWh)."""
    from p2penergy.agents.market_access import InProcessAccess, PriceTape

    settings = dataclasses.replace(MarketSettings.demonstration(), grid_fees=fees)
    a, obs = agent(pv=False)
    exchange = make_exchange(settings, "cda")
    submitted: list[Order] = []
    access = InProcessAccess(exchange, "house-01", PriceTape(opening_price=Decimal("45.00")),
                             on_order=submitted.append)
    a.act(obs, access)
    return [o.price_per_kwh for o in submitted if o.side == "buy"]


def test_a_buyers_limit_is_its_reservation_less_the_worst_grid_fee():
    # late in the gate the concession bids above the reference (45 + about 3): below the reservation
    # (the band's maximum, 50) without fees; with fees of up to 4 JPY/kWh the bid stops at 50 − 4,
    # so price plus the fee it may owe never passes what the utility kWh would cost
    plain = bids_with_fees(GridFees())
    assert plain and all(Decimal(47) < p < Decimal(50) for p in plain)
    fees = GridFees(Decimal("0.50"), Decimal("1.50"), Decimal("4.00"))
    assert fees.worst_per_kwh == Decimal("4.00")
    assert bids_with_fees(fees) == [Decimal("46.00")] * len(plain)
