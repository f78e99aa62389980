"""What happens behind each meter in one slot: batteries, cars, and the utility residual.

Integer Wh throughout. Every participant's slot balances exactly:

    pv + battery_discharge + car_discharge + p2p_buy + grid_import
        == load + battery_charge + car_charge + p2p_sell + grid_export

and a store's state of charge changes by what reaches its cells (``BatterySpec.step``)
less what driving draws. Rules (README, "Simulation rules"):

* **Home battery** absorbs the site's imbalance within its limits: surplus (PV plus P2P
  purchases minus load minus P2P sales) charges it, a deficit discharges it; the rest is
  exported to / imported from the utility. The same rule runs in the baseline (with no
  P2P trades), which is "the battery charges from its own surplus".
* **Car** parked (at home or at the office): discharges what it sold net of what it bought
  (a sale is delivered from the battery, never bought from the utility to be sold on, and a
  car never exports), else charges by its setpoint (the agent's plan; in the baseline:
  charge as fast as possible at home, never at the office), bounded by power and state of
  charge; what its P2P trades do not cover is bought from the utility (or, for energy
  bought and not stored, sold back to it). On the road it trades nothing and driving draws
  from the battery; what the battery cannot supply the engine does (``shortfall_wh``).
"""

from __future__ import annotations

from dataclasses import dataclass

from p2penergy.assets.battery import BatterySpec
from p2penergy.assets.car import PhvSpec

HOME, OFFICE, ROAD = "home", "office", "road"


@dataclass(frozen=True, slots=True)
class SlotMeter:
    """One participant's energy flows in one slot [Wh] and its stores' end-of-slot charge.

    ``load_wh`` and ``pv_wh`` are what was served and used; in an islanded slot (sim/island.py)
    the load not served is ``shed_*_wh`` by priority and the PV not used ``curtailed_wh``
    (zero whenever the utility is there)."""

    load_wh: int = 0
    pv_wh: int = 0
    p2p_buy_wh: int = 0
    p2p_sell_wh: int = 0
    battery_charge_wh: int = 0
    battery_discharge_wh: int = 0
    battery_loss_wh: int = 0
    soc_wh: int = 0
    car_charge_wh: int = 0
    car_discharge_wh: int = 0
    car_loss_wh: int = 0
    drive_wh: int = 0
    shortfall_wh: int = 0
    grid_import_wh: int = 0
    grid_export_wh: int = 0
    shed_critical_wh: int = 0
    shed_essential_wh: int = 0
    shed_deferrable_wh: int = 0
    curtailed_wh: int = 0

    def balance_wh(self) -> int:
        """Inflows minus outflows at the meter's bus; zero for every valid slot."""
        inflow = self.pv_wh + self.battery_discharge_wh + self.car_discharge_wh + self.p2p_buy_wh + self.grid_import_wh
        outflow = self.load_wh + self.battery_charge_wh + self.car_charge_wh + self.p2p_sell_wh + self.grid_export_wh
        return inflow - outflow


def _residual(net_wh: int) -> tuple[int, int]:
    """(grid_import_wh, grid_export_wh) for a net surplus ``net_wh`` (negative: deficit)."""
    return (0, net_wh) if net_wh >= 0 else (-net_wh, 0)


def dispatch_site(load_wh: int, pv_wh: int, buy_wh: int, sell_wh: int, battery: BatterySpec | None,
                  soc_wh: int, slot_minutes: int, setpoint: tuple[int, int] | None = None,
                  export_cap_wh: int | None = None) -> SlotMeter:
    """A home or the office: the battery (if any) absorbs the imbalance, the utility the rest.

    ``setpoint`` (the agent's planned battery charge, discharge [Wh]; only while it keeps a reserve
    for an announced outage, agents/outage_plan.py): the battery charges at least the planned
    charge (from the utility what the site's surplus does not give) and discharges at most the
    planned discharge. ``export_cap_wh`` (export control, ``[network] export_control``): the meter
    puts out at most this much net (P2P and utility together): the battery discharges less, then the
    PV beyond is curtailed at the inverter (``curtailed_wh``), first out of the utility export; a P2P
    sale the rest cannot cover is bought from the utility."""
    net = pv_wh - load_wh + buy_wh - sell_wh
    charge = discharge = loss = 0
    soc_before = soc_wh
    if battery is not None:
        planned_charge, planned_discharge = setpoint if setpoint is not None else (0, -net)
        if net > 0 or planned_charge > 0:
            charge = min(max(net, planned_charge), battery.max_charge_wh(soc_wh, slot_minutes))
        elif net < 0:
            discharge = min(-net, planned_discharge, battery.max_discharge_wh(soc_wh, slot_minutes))
    curtailed = 0
    if export_cap_wh is not None:  # the meter's net output: pv + discharge - load - charge
        excess = max(0, pv_wh + discharge - load_wh - charge - export_cap_wh)
        kept = min(discharge, excess)  # the battery keeps what it would have put out past the cap
        discharge -= kept
        curtailed = min(pv_wh, excess - kept)
    if battery is not None:
        soc_wh, loss = battery.step(soc_before, charge, discharge, slot_minutes)
    grid_import, grid_export = _residual(net - charge + discharge - curtailed)
    return SlotMeter(load_wh=load_wh, pv_wh=pv_wh - curtailed, p2p_buy_wh=buy_wh, p2p_sell_wh=sell_wh,
                     battery_charge_wh=charge, battery_discharge_wh=discharge, battery_loss_wh=loss,
                     soc_wh=soc_wh, grid_import_wh=grid_import, grid_export_wh=grid_export, curtailed_wh=curtailed)


def dispatch_car(location: str, drive_wh: int, buy_wh: int, sell_wh: int, charge_target_wh: int,
                 store: BatterySpec, phv: PhvSpec, soc_wh: int, slot_minutes: int) -> SlotMeter:
    """A car participant in one slot (see the module rules)."""
    charge = discharge = loss = shortfall = 0
    if location == ROAD:
        taken = min(drive_wh, soc_wh - store.soc_min_wh)
        shortfall = drive_wh - taken
        soc_wh -= taken
    else:
        owed = sell_wh - buy_wh
        if owed > 0:
            avail = store.max_discharge_wh(soc_wh, slot_minutes)
            discharge = min(owed, avail, phv.discharge_power_w * slot_minutes // 60)
        elif charge_target_wh > 0:
            room = store.max_charge_wh(soc_wh, slot_minutes)
            charge = min(charge_target_wh, room, phv.charge_power_w * slot_minutes // 60)
        soc_wh, loss = store.step(soc_wh, charge, discharge)
    grid_import, grid_export = _residual(buy_wh - sell_wh - charge + discharge)
    return SlotMeter(p2p_buy_wh=buy_wh, p2p_sell_wh=sell_wh, soc_wh=soc_wh, car_charge_wh=charge,
                     car_discharge_wh=discharge, car_loss_wh=loss, drive_wh=drive_wh - shortfall,
                     shortfall_wh=shortfall, grid_import_wh=grid_import, grid_export_wh=grid_export)
