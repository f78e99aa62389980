"""The site gateway: what it meters, what it remembers, when it acts (the shipped scenario, a few days)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest

from p2penergy.agents.forecast import SevenDayMean
from p2penergy.agents.gateway import ForecastKit, SiteForecasts, SiteGateway, SlotGrid, site_gateways
from p2penergy.agents.market_access import InProcessAccess, PriceTape
from p2penergy.agents.trader import AgentConfig, TradingAgent
from p2penergy.agents.weather_forecast import WeatherForecastSource
from p2penergy.community import CAR_KIND
from p2penergy.market import make_exchange
from p2penergy.scenario.generate import generate
from p2penergy.scenario.load import load_scenario
from p2penergy.sim.build import build_community
from p2penergy.sim.meters import ScenarioMeter


@pytest.fixture(scope="module")
def community():
    """The shipped community from 12 July to 3 August 2020 (report month August, 2 days)."""
    scenario = load_scenario()
    return build_community(scenario, generate(scenario, date(2020, 7, 12), date(2020, 8, 3)), report_days=2)


def kit_of(community) -> ForecastKit:
    return ForecastKit(SevenDayMean("load_wh"), SevenDayMean("pv_wh"), WeatherForecastSource(community.weather, 1))


def grid_of(community) -> SlotGrid:
    return SlotGrid(community.index, community.settings.tz, community.settings.slot_minutes)


def test_a_cars_month_import_is_its_contracts(community):
    """A car is billed on its owner's contract: it prices energy at the household's month import."""
    grid = grid_of(community)
    start = community.month.start
    gws = site_gateways(community, grid, start, SiteForecasts(kit_of(community)), AgentConfig(), 4,
                        ["car-01", "house-07"])
    car, home = gws["car-01"], gws["house-07"]
    assert car.owner is home
    for k in range(6):
        slot = grid.starts[start + k]
        for g in (home, car):
            g.meter(slot, 0, 0, ScenarioMeter(g.participant, grid))
    assert home.month_import_wh > 0
    assert car.contract_import_wh == car.month_import_wh + home.month_import_wh
    assert home.contract_import_wh == home.month_import_wh  # a home's tier is its own (the car's is billed on top)
    obs = car.observe(grid.starts[start + 6], grid.starts[start + 6])
    assert obs.month_import_wh == car.month_import_wh + home.month_import_wh


def test_month_import_and_peak_start_again_in_a_new_month(community):
    grid = grid_of(community)
    start = community.month.start - 4  # 22:00 on 31 July
    p = community.participants["house-01"]
    g = SiteGateway(p, TradingAgent(p), grid, start, SiteForecasts(None))
    meter = ScenarioMeter(p, grid)
    for k in range(4):
        g.meter(grid.starts[start + k], 0, 0, meter)
    july = g.month_import_wh
    assert july == int(p.load_wh[start:start + 4].sum() - p.pv_wh[start:start + 4].sum())  # night: no PV
    g.meter(grid.starts[start + 4], 0, 0, meter)
    assert g.month_import_wh == int(p.load_wh[start + 4]) and g.peak_w == p.load_wh[start + 4] * 2


def test_history_is_the_measured_past_then_the_readings(community):
    grid = grid_of(community)
    start = community.month.start
    p = community.participants["house-15"]
    g = SiteGateway(p, TradingAgent(p), grid, start, SiteForecasts(None))
    assert len(g.history()) == start and g.history().index[-1] == community.index[start - 1]
    # the world's future differs from the series the gateway was built from: it meters the world
    world = replace(p, load_wh=p.load_wh + 100)
    for k in range(3):
        g.meter(grid.starts[start + k], 0, 0, ScenarioMeter(world, grid))
    h = g.history()
    assert len(h) == start + 3
    assert np.array_equal(h["load_wh"].to_numpy()[:start], p.load_wh[:start])
    assert np.array_equal(h["load_wh"].to_numpy()[start:], p.load_wh[start:start + 3] + 100)
    assert np.array_equal(h["pv_wh"].to_numpy(), p.pv_wh[:start + 3])


def test_meter_reads_the_next_slot_only(community):
    grid = grid_of(community)
    start = community.month.start
    p = community.participants["house-01"]
    g = SiteGateway(p, TradingAgent(p), grid, start, SiteForecasts(None))
    with pytest.raises(ValueError, match="slot_start"):
        g.meter(grid.starts[start + 1], 0, 0, ScenarioMeter(p, grid))
    with pytest.raises(ValueError, match="start"):
        SiteGateway(p, TradingAgent(p), grid, len(grid), SiteForecasts(None))
    with pytest.raises(ValueError, match="ids"):
        site_gateways(community, grid, start, SiteForecasts(None), AgentConfig(), 4, ["house-99"])


def test_step_meters_what_ended_and_acts_every_nth_slot(community):
    grid = grid_of(community)
    start = community.month.start
    settings = community.settings
    exchange = make_exchange(settings)
    forecasts = SiteForecasts(kit_of(community))
    gws = site_gateways(community, grid, start, forecasts, AgentConfig(), 2, ["house-15", "car-07"])
    access = {pid: InProcessAccess(exchange, pid, PriceTape()) for pid in gws}
    meters = {pid: ScenarioMeter(g.participant, grid) for pid, g in gws.items()}
    acted = []
    for k in range(5):
        now = grid.starts[start + k] + timedelta(minutes=3)
        for pid, g in gws.items():
            obs = g.step(now, access[pid], meters[pid])
            acted.append((k, pid, obs is not None))
            assert g.step(now + timedelta(minutes=5), access[pid], meters[pid]) is None  # same slot: nothing
            assert g.metered == start + k
        exchange.close(grid.starts[start + k])
    assert [k for k, pid, did in acted if did and pid == "house-15"] == [0, 2, 4]
    assert [k for k, pid, did in acted if did and pid == "car-07"] == [0, 2, 4]
    home = gws["house-15"]
    obs = home.last_observation
    assert obs is not None and obs.now == grid.starts[start + 4] + timedelta(minutes=3)
    # the forecast was issued at the slot's start from the metered history
    load = forecasts.of(home, grid.starts[start + 4], obs.horizon).load_wh
    assert np.array_equal(obs.load_wh, load)
    car = gws["car-07"]
    assert car.participant.kind == CAR_KIND and car.soc_wh is not None


def test_a_car_remembers_where_it_was_and_what_driving_took(community):
    """A car's history is what its own meter reported (the world), and its forecast is made from it."""
    grid = grid_of(community)
    start = community.month.start
    p = community.participants["car-03"]
    assert p.location is not None and p.drive_wh is not None
    g = SiteGateway(p, TradingAgent(p), grid, start, SiteForecasts(None))
    world = replace(p, location=np.full_like(p.location, 2), drive_wh=np.full_like(p.drive_wh, 4000))
    for k in range(3):
        g.meter(grid.starts[start + k], 0, 0, ScenarioMeter(world, grid))
    h = g.history()
    assert list(h.columns) == ["location", "drive_wh"] and len(h) == start + 3
    assert np.array_equal(h["location"].to_numpy()[:start], p.location[:start])
    assert (h["location"].to_numpy()[start:] == 2).all()
    assert (h["drive_wh"].to_numpy()[start:] == 4000).all()  # battery and engine together (shortfall)
    obs = g.observe(grid.starts[start + 3], grid.starts[start + 3])
    assert g.last_trip_forecast is not None
    assert np.array_equal(obs.car_location, g.last_trip_forecast.location)
    assert obs.car_location[0] == 0  # on the road at 01:00 as on no past day: the calendar (home at night)


def test_a_car_charges_where_it_is_surely_plugged_in(community):
    """Prices equal, a car charges the night before rather than in the hour it may already have left."""
    from decimal import Decimal

    from p2penergy.agents.planner import plan
    from p2penergy.agents.trader import Observation

    p = community.participants["car-02"]
    start = community.month.start + 40  # 20:00
    horizon = community.index[start:start + 32]  # to 12:00 the next day
    location = np.zeros(32, dtype=np.int8)
    location[28:30] = 2  # away 10:00-11:00
    drive = np.zeros(32)
    drive[28] = 3000.0
    unsure = np.ones(32)
    unsure[22:28] = 0.85  # 07:00-10:00: it may have left
    obs = Observation(now=community.slot(start), horizon=horizon, load_wh=np.zeros(32), pv_wh=np.zeros(32),
                      car_soc_wh=0, car_location=location, car_drive_wh=drive, car_parked_probability=unsure)
    result = plan(TradingAgent(p).plan_input(obs, 30, Decimal(20)))
    charge = result.car_charge_wh[0]
    assert charge.sum() * p.phv.charge_efficiency >= 3000 - 1
    assert charge[22:28].sum() == 0 and result.shortfall_wh.sum() == 0


def test_a_gateway_joining_mid_month_catches_up_as_the_site_ran_before(community):
    """Live agents start mid-month: the slots before are read as the utility-only run had them."""
    from p2penergy.sim.loop import run_baseline
    from p2penergy.sim.meters import catch_up

    grid = grid_of(community)
    first, now = community.month.start, community.month.start + 60  # joins on 2 August at 06:00
    baseline = run_baseline(community)
    for pid in ("house-20", "car-09"):  # a home with a battery, a car
        p = community.participants[pid]
        g = SiteGateway(p, TradingAgent(p), grid, first, SiteForecasts(None))
        catch_up(g, ScenarioMeter(p, grid), now)
        cols = baseline.accounts[pid].columns
        assert g.metered == now
        assert g.month_import_wh == int(cols["grid_import_wh"][:60].sum()) > 0
        assert g.soc_wh == int(cols["soc_wh"][59])
        assert g.peak_w == max(cols["grid_import_wh"][:60]) * 2


def test_the_office_knows_its_months_peak_and_its_business_days_peaks_from_its_meter_only(community):
    """A site billed on its month's peak: joining on 2 August, it knows the peak its meter showed on
    1 August, and how high each past business day went (whole days read so far, nothing later)."""
    grid = grid_of(community)
    start = community.month.start + 48  # 2 August 00:00
    p = community.participants["office"]
    g = SiteGateway(p, TradingAgent(p), grid, start, SiteForecasts(kit_of(community)))
    imported = np.maximum(p.load_wh - p.pv_wh, 0)
    assert g.peak_w == imported[start - 48:start].max() * 2 and g.month_import_wh == imported[start - 48:start].sum()
    local = community.index.tz_convert(community.settings.tz)
    days = sorted({d for d in local[:start].date if p.is_business_day(d)})
    expected = tuple(float(imported[:start][local[:start].date == d].max()) * 2 for d in days)
    assert len(expected) >= 10 and g.past_day_peaks_w() == expected
    # a Monday's readings (3 August) count once the day is whole, not before
    meter = ScenarioMeter(p, grid)
    for k in range(48 + 40):
        g.meter(grid.starts[start + k], 0, 0, meter)
    assert g.past_day_peaks_w() == expected  # Sunday is not a business day; Monday is not whole yet
    obs = g.observe(grid.starts[start + 88], grid.starts[start + 88])
    assert obs.past_day_peaks_w == expected and obs.peak_so_far_w == g.peak_w
