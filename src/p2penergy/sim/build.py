"""From a scenario and its generated (or measured) data to the simulated community."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from p2penergy.assets.battery import BatterySpec
from p2penergy.community import (
    CAR_KIND,
    HOME_KIND,
    LOCATION_CODES,
    OFFICE_KIND,
    Community,
    Participant,
    pv_device_id,
)
from p2penergy.outage import Outage
from p2penergy.scenario.generate import CommunityData
from p2penergy.scenario.model import Scenario


def build_community(scenario: Scenario, data: CommunityData, seed: int | None = None,
                    report_days: int | None = None, report_first_day: int = 1,
                    outages: tuple[Outage, ...] = ()) -> Community:
    """Participants (homes, the office, cars) with devices, tariffs and series over ``data.index``;
    the community's outages are the scenario's ``[[outages]]`` and ``outages``."""
    tariffs = scenario.tariffs
    retail = tariffs.retail_tariff()
    people: dict[str, Participant] = {}
    for home in scenario.homes:
        frame = data.sites[home.id]
        people[home.id] = Participant(
            id=home.id, kind=HOME_KIND, group=home.type,
            load_wh=frame["load_wh"].to_numpy(np.int64), pv_wh=frame["pv_wh"].to_numpy(np.int64),
            battery=home.battery.spec() if home.battery is not None else None,
            pv_device=pv_device_id(home.id) if home.pv is not None else None,
            pv_capacity_w=round(home.pv.kwp * 1000) if home.pv is not None else 0,
            retail=retail, contract_a=home.contract_a,
            buyback=scenario.home_buyback(home, scenario.period.report_month),
        )
    office = scenario.office
    frame = data.sites[office.id]
    business = data.business_day.groupby(data.business_day.index.date).first()
    days_off = frozenset(day for day, open_ in business.items() if not open_ and day.weekday() < 5)
    # cars reach the office within about an hour of its opening and leave from about half an hour
    # before it closes (the commutes' spread, [[cars]]); assumption of the office's agent
    hours = (office.load.open_hour + 1.0, office.load.close_hour - 0.5)
    people[office.id] = Participant(
        id=office.id, kind=OFFICE_KIND, group="office",
        load_wh=frame["load_wh"].to_numpy(np.int64), pv_wh=frame["pv_wh"].to_numpy(np.int64),
        pv_device=pv_device_id(office.id) if office.pv is not None else None,
        pv_capacity_w=round(office.pv.kwp * 1000) if office.pv is not None else 0,
        buyback=tariffs.buyback_scheme(tariffs.office.buyback), office_tariff=scenario.office_contract(),
        charger_power_w=office.chargers.count * office.chargers.power_w, charger_hours=hours, days_off=days_off,
    )
    phv = scenario.phv.spec()
    km_per_kwh = Decimal(1000) / Decimal(str(phv.wh_per_km))
    fuel_per_kwh = tariffs.fuel_price_per_l / Decimal(str(phv.hybrid_km_per_l)) * km_per_kwh
    store = BatterySpec(
        capacity_wh=phv.usable_wh, power_w=max(phv.charge_power_w, phv.discharge_power_w),
        charge_efficiency=phv.charge_efficiency, discharge_efficiency=phv.discharge_efficiency,
        soc_min_wh=0, initial_soc_wh=phv.usable_wh,
    )
    zeros = np.zeros(len(data.index), dtype=np.int64)
    for car in scenario.cars:
        frame = data.cars[car.id]
        owner = people.get(car.owner) if car.owner else None
        people[car.id] = Participant(
            id=car.id, kind=CAR_KIND, group="phv", load_wh=zeros, pv_wh=zeros, owner=car.owner,
            car_store=store, phv=phv,
            location=frame["location"].map(LOCATION_CODES).to_numpy(np.int64),
            drive_wh=frame["drive_wh"].to_numpy(np.int64),
            fuel_cost_per_kwh=float(fuel_per_kwh.quantize(Decimal("0.0001"))),
            retail=retail, contract_a=owner.contract_a if owner is not None else 0,
            buyback=owner.buyback if owner is not None else None,
        )
    return Community(
        settings=scenario.market, index=data.index, participants=people,
        report_month=scenario.period.report_month, weather=data.weather,
        seed=scenario.scenario.seed if seed is None else seed,
        grid_kg_co2_per_kwh=scenario.emissions.grid_kg_co2_per_kwh, rounding=tariffs.rounding,
        days_off=days_off, report_days=report_days, report_first_day=report_first_day,
        baseline_export_credit=scenario.baseline_export_credit(), weather_forecasts=data.weather_forecasts,
        outages=(*(o.outage() for o in scenario.outages), *outages),
    )
