"""Bounds of a participant's meter readings: what its connection can carry in one slot.

A reading is refused (422 naming the value) when an energy value (``load_wh``, ``pv_wh``,
``grid_import_wh``, ``grid_export_wh``) is above what the participant's site can move in one slot,
or its ``soc_wh`` above what its storage holds. From the scenario (``scenario/model.py``):

* a **home**: its contract's power — ``contract_a`` amperes at 100 V (``Home.contract_power_w``,
  the breaker limit the load model also clips at) — plus its PV array's peak
  (``pv.kwp``), its battery's power (``battery.power_w``) and its cars' charger power (its meter sees
  them), at full power for the whole slot, plus the battery's capacity (a battery can hand over at
  most what it holds); ``soc_wh`` at most the battery's capacity;
* the **office**: ``contract_kw`` plus its PV's peak plus its chargers (``count × power_w``);
* a **car**: the larger of its charge and discharge power (``phv``) for the slot plus its usable
  battery (what it can drive on in a slot is what it holds); ``soc_wh`` at most its usable battery.

Each bound is generous on purpose — the physical ceiling, not an expected value — so an honest
meter never hits it, and anything above it is an error or an attack (a reading of 10^40 Wh once
made every bill fail). A participant registered live that the scenario does not know gets the
largest bound of the scenario's sites (assumption: it is no bigger than the biggest site).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SOC_FIELD = "soc_wh"


@dataclass(frozen=True, slots=True)
class MeterBound:
    """What one participant's site can report in one slot: ``power_w`` through any of its meters
    (for the whole slot), ``storage_wh`` it can hold, and where those numbers come from."""

    power_w: int
    storage_wh: int
    source: str

    def energy_wh(self, slot_minutes: int) -> int:
        """The most any energy value of a slot can be: full power for the slot, plus the storage."""
        return self.power_w * slot_minutes // 60 + self.storage_wh

    def problem(self, values: Mapping[str, int], slot_minutes: int) -> tuple[str, str] | None:
        """``(field, allowed)`` of the first value out of bounds, or ``None``."""
        top = self.energy_wh(slot_minutes)
        for name, value in values.items():
            if value < 0:
                return f"values.{name}", "zero or more"
            limit = self.storage_wh if name == SOC_FIELD else top
            if value > limit:
                what = "can store" if name == SOC_FIELD else f"can carry in a {slot_minutes}-minute slot"
                return f"values.{name}", f"at most {limit} Wh, what {self.source} {what}; got {value}"
        return None


@dataclass(frozen=True, slots=True)
class MeterBounds:
    """Per participant bounds, and the bound of participants the scenario does not know."""

    by_participant: Mapping[str, MeterBound]
    default: MeterBound

    def of(self, participant: str) -> MeterBound:
        return self.by_participant.get(participant, self.default)

    def problem(self, participant: str, values: Mapping[str, int], slot_minutes: int) -> tuple[str, str] | None:
        return self.of(participant).problem(values, slot_minutes)


def _kw(model: Any) -> int:
    return round(float(model.kwp) * 1000) if model is not None else 0


def meter_bounds_of(scenario: Any) -> MeterBounds:
    """Bounds of every home, the office and every car of ``scenario`` (see the module's text)."""
    out: dict[str, MeterBound] = {}
    for home in scenario.homes:
        battery = home.battery
        power = home.contract_power_w + _kw(home.pv) + (battery.power_w if battery is not None else 0)
        storage = battery.capacity_wh if battery is not None else 0
        out[home.id] = MeterBound(power, storage, f"{home.id} ({home.contract_a} A contract"
                                  f"{', PV' if home.pv else ''}{', battery' if battery else ''})")
    office = scenario.office
    chargers = office.chargers.count * office.chargers.power_w
    out[office.id] = MeterBound(office.contract_kw * 1000 + _kw(office.pv) + chargers, 0,
                                f"{office.id} ({office.contract_kw} kW contract, chargers)")
    phv = scenario.phv
    car_w = max(phv.charge_power_w, phv.discharge_power_w)
    for car in scenario.cars:
        owner = out.get(car.owner) if car.owner is not None else None
        if owner is not None:  # the home's meter sees its car charging and discharging
            out[car.owner] = MeterBound(owner.power_w + car_w, owner.storage_wh, owner.source.replace(")", ", car)"))
    for car in scenario.cars:
        out[car.id] = MeterBound(car_w, phv.usable_wh,
                                 f"{car.id} (its charger and battery)")
    return MeterBounds(out, MeterBound(max((b.power_w for b in out.values()), default=0),
                                       max((b.storage_wh for b in out.values()), default=0),
                                       "the scenario's largest site (this participant is not in it)"))
