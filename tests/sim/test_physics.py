"""Device physics: every slot balances to the Wh; stores stay inside their window."""

from hypothesis import given, settings
from hypothesis import strategies as st

from p2penergy.assets.battery import BatterySpec
from p2penergy.assets.car import PhvSpec
from p2penergy.sim.physics import HOME, OFFICE, ROAD, dispatch_car, dispatch_site

BATTERY = BatterySpec(capacity_wh=7000, power_w=3000, charge_efficiency=0.95, discharge_efficiency=0.95,
                      soc_min_wh=700, initial_soc_wh=3500)
PHV = PhvSpec()
STORE = BatterySpec(capacity_wh=7000, power_w=3000, charge_efficiency=0.92, discharge_efficiency=0.92,
                    initial_soc_wh=3500)


def test_surplus_charges_battery_then_exports():
    # 3,000 W for 30 min passes at most 1,500 Wh: 2,000 Wh surplus -> 1,500 charged, 500 exported
    m = dispatch_site(load_wh=500, pv_wh=2500, buy_wh=0, sell_wh=0, battery=BATTERY, soc_wh=3500, slot_minutes=30)
    assert (m.battery_charge_wh, m.grid_export_wh, m.grid_import_wh) == (1500, 500, 0)
    assert m.soc_wh == 3500 + 1425  # 1,500 Wh at 95 % reaches the cells
    assert m.battery_loss_wh == 75 and m.balance_wh() == 0


def test_deficit_discharges_to_soc_min_then_imports():
    m = dispatch_site(load_wh=1200, pv_wh=0, buy_wh=0, sell_wh=0, battery=BATTERY, soc_wh=1000, slot_minutes=30)
    # 300 Wh above soc_min in the cells deliver floor(300 * 0.95) = 285 Wh
    assert m.battery_discharge_wh == 285 and m.grid_import_wh == 915
    assert m.soc_wh >= BATTERY.soc_min_wh and m.balance_wh() == 0


def test_p2p_sale_is_covered_by_battery():
    m = dispatch_site(load_wh=200, pv_wh=0, buy_wh=0, sell_wh=1000, battery=BATTERY, soc_wh=5000, slot_minutes=30)
    assert m.battery_discharge_wh == 1200 and m.grid_import_wh == 0 and m.balance_wh() == 0


def test_car_on_road_draws_battery_and_engine_covers_the_rest():
    m = dispatch_car(ROAD, drive_wh=4000, buy_wh=0, sell_wh=0, charge_target_wh=0, store=STORE, phv=PHV, soc_wh=2500, slot_minutes=30)
    assert (m.drive_wh, m.shortfall_wh, m.soc_wh) == (2500, 1500, 0)


def test_car_parked_charges_from_p2p_and_grid():
    m = dispatch_car(OFFICE, drive_wh=0, buy_wh=1000, sell_wh=0, charge_target_wh=1500,
                     store=STORE, phv=PHV, soc_wh=1000, slot_minutes=30)
    assert m.car_charge_wh == 1500 and m.grid_import_wh == 500 and m.balance_wh() == 0


def test_a_cars_sale_is_delivered_from_its_battery_not_bought_from_the_utility():
    m = dispatch_car(OFFICE, drive_wh=0, buy_wh=0, sell_wh=1200, charge_target_wh=0, store=STORE, phv=PHV,
                     soc_wh=5000, slot_minutes=30)
    assert m.car_discharge_wh == 1200 and m.grid_import_wh == 0 and m.grid_export_wh == 0
    # more sold than the converter gives in a slot: the rest is the utility's (the seller pays for it)
    m = dispatch_car(OFFICE, drive_wh=0, buy_wh=0, sell_wh=2000, charge_target_wh=1000, store=STORE, phv=PHV,
                     soc_wh=5000, slot_minutes=30)
    assert m.car_discharge_wh == PHV.discharge_power_w // 2 and m.car_charge_wh == 0
    assert m.grid_import_wh == 2000 - m.car_discharge_wh


@settings(max_examples=300, deadline=None)
@given(load=st.integers(0, 5000), pv=st.integers(0, 5000), buy=st.integers(0, 3000), sell=st.integers(0, 3000),
       soc=st.integers(700, 7000), with_battery=st.booleans())
def test_site_always_balances(load, pv, buy, sell, soc, with_battery):
    m = dispatch_site(load, pv, buy, sell, BATTERY if with_battery else None, soc, 30)
    assert m.balance_wh() == 0
    assert m.grid_import_wh >= 0 and m.grid_export_wh >= 0
    assert min(m.grid_import_wh, m.grid_export_wh) == 0
    if with_battery:
        assert BATTERY.soc_min_wh <= m.soc_wh <= BATTERY.soc_max_wh


@settings(max_examples=300, deadline=None)
@given(where=st.sampled_from([HOME, OFFICE, ROAD]), drive=st.integers(0, 5000), buy=st.integers(0, 3000),
       sell=st.integers(0, 3000), charge=st.integers(0, 3000), soc=st.integers(0, 7000))
def test_car_always_balances_and_stays_in_window(where, drive, buy, sell, charge, soc):
    m = dispatch_car(where, drive if where == ROAD else 0, buy, sell, charge, STORE, PHV, soc, 30)
    assert m.balance_wh() == 0
    assert m.car_discharge_wh <= max(sell - buy, 0), "a car discharges only what it sold"
    assert m.grid_export_wh <= max(buy - sell, 0), "a car exports only energy it bought and could not store"
    assert 0 <= m.soc_wh <= STORE.capacity_wh
    assert m.drive_wh + m.shortfall_wh == (drive if where == ROAD else 0)
    assert m.car_charge_wh <= PHV.charge_power_w // 2


def test_export_control_curtails_pv_beyond_the_cap_out_of_the_utility_export_first():
    # 4,000 Wh PV, 500 load, 1,500 into the battery: 2,000 to put out; a 1,200 Wh cap curtails 800
    m = dispatch_site(500, 4000, 0, 0, BATTERY, 3500, 30, export_cap_wh=1200)
    assert (m.battery_charge_wh, m.grid_export_wh, m.curtailed_wh, m.pv_wh) == (1500, 1200, 800, 3200)
    # a P2P sale past the cap: PV curtailed to the cap, the rest of the sale bought from the utility
    m = dispatch_site(500, 4000, 0, 2000, None, 0, 30, export_cap_wh=1200)
    assert (m.grid_export_wh, m.grid_import_wh, m.curtailed_wh) == (0, 800, 2300)
    # under the cap nothing changes
    assert dispatch_site(500, 1500, 0, 0, None, 0, 30, export_cap_wh=1200) == dispatch_site(500, 1500, 0, 0, None, 0, 30)
    # a sale at night from the battery: it discharges only up to the cap, the utility gives the rest
    m = dispatch_site(100, 0, 0, 1400, BATTERY, 5000, 30, export_cap_wh=1200)
    assert (m.battery_discharge_wh, m.grid_import_wh, m.curtailed_wh) == (1300, 200, 0)


@settings(max_examples=300, deadline=None)
@given(load=st.integers(0, 5000), pv=st.integers(0, 5000), buy=st.integers(0, 3000), sell=st.integers(0, 3000),
       soc=st.integers(700, 7000), with_battery=st.booleans(), cap=st.integers(0, 3000))
def test_export_control_balances_and_keeps_the_meter_within_its_cap(load, pv, buy, sell, soc, with_battery, cap):
    m = dispatch_site(load, pv, buy, sell, BATTERY if with_battery else None, soc, 30, export_cap_wh=cap)
    free = dispatch_site(load, pv, buy, sell, BATTERY if with_battery else None, soc, 30)
    assert m.balance_wh() == 0 and min(m.grid_import_wh, m.grid_export_wh) == 0
    net_out = m.grid_export_wh + m.p2p_sell_wh - m.grid_import_wh - m.p2p_buy_wh
    free_out = free.grid_export_wh + free.p2p_sell_wh - free.grid_import_wh - free.p2p_buy_wh
    assert net_out == min(free_out, cap) or (net_out > cap and m.pv_wh == 0)  # all PV curtailed and still over
    assert m.curtailed_wh == free.pv_wh - m.pv_wh >= 0
    assert m.battery_charge_wh == free.battery_charge_wh  # the battery takes what it can before any curtailment
    assert m.battery_discharge_wh <= free.battery_discharge_wh
    assert m.curtailed_wh == 0 or m.battery_discharge_wh == 0  # the battery holds back before PV is curtailed
