"""Inputs and outputs of the planner: frozen values holding per-slot float arrays.

Conventions (every array has one entry per slot of the horizon, slot ``i`` is the
half-open interval ``[start + i·slot, start + (i+1)·slot)``):

* energies are Wh *per slot* (``*_wh``), powers W (``*_w``), prices currency/kWh
  (``*_per_kwh``, the market's currency), costs in the market's currency;
* charge and discharge energies are measured at the meter (AC side); the stored
  energy changes by ``charge_efficiency·charge − discharge/discharge_efficiency``;
* ``soc_wh`` arrays hold the state of charge at the *end* of each slot.

Arrays are converted to read-only ``float64`` on construction; scalars given for a
per-slot field are broadcast to the horizon. Invalid input raises
:class:`AgentInputError` naming the field and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from p2penergy.market.errors import FieldError

MODES = ("economy", "green")


class AgentInputError(FieldError):
    """An agent input (plan, forecast request) is invalid."""


def _array(name: str, value: object, n: int | None, *, nonneg: bool = True) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0 and n is not None:
        arr = np.full(n, float(arr))
    if arr.ndim != 1:
        raise AgentInputError(name, "a number or a 1-d array with one value per slot")
    if n is not None and arr.shape[0] != n:
        raise AgentInputError(name, f"one value per slot of the horizon ({n}), got {arr.shape[0]}")
    if nonneg:
        if not (arr >= 0).all():  # one pass: NaN and negative values both fail it
            if np.isnan(arr).any():
                raise AgentInputError(name, "numbers, not NaN")
            raise AgentInputError(name, "zero or more in every slot")
    elif np.isnan(arr).any():
        raise AgentInputError(name, "numbers, not NaN")
    arr = arr.copy()
    arr.setflags(write=False)
    return arr


def _bool_array(name: str, value: object, n: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = np.full(n, bool(arr))
    if arr.ndim != 1 or arr.shape[0] != n:
        raise AgentInputError(name, f"a bool per slot of the horizon ({n})")
    arr = arr.astype(bool)
    arr.setflags(write=False)
    return arr


def _efficiency(name: str, value: float) -> None:
    if not 0 < value <= 1:
        raise AgentInputError(name, f"in (0, 1], got {value!r}")


def _nonneg(name: str, value: float) -> None:
    if not value >= 0:
        raise AgentInputError(name, f"zero or more, got {value!r}")


@dataclass(frozen=True, slots=True)
class Battery:
    """A stationary battery. ``power_w`` limits both charge and discharge at the meter.

    ``soc_floor_wh`` (one value per slot, or ``None``): the least energy stored at each slot's
    end on top of ``soc_min_wh`` — a reserve target, e.g. full before an announced outage
    (agents/outage_plan.py); the caller keeps it reachable.
    """

    capacity_wh: float
    power_w: float
    soc_wh: float
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    soc_min_wh: float = 0.0
    soc_max_wh: float | None = None  # None: the capacity
    terminal_value_per_kwh: float = 0.0  # value of stored energy left at the horizon's end
    soc_floor_wh: np.ndarray | None = None  # a reserve target: the least energy stored at each slot's end

    def __post_init__(self) -> None:
        _nonneg("battery.capacity_wh", self.capacity_wh)
        _nonneg("battery.power_w", self.power_w)
        _efficiency("battery.charge_efficiency", self.charge_efficiency)
        _efficiency("battery.discharge_efficiency", self.discharge_efficiency)
        _nonneg("battery.terminal_value_per_kwh", self.terminal_value_per_kwh)
        if self.soc_max_wh is None:
            object.__setattr__(self, "soc_max_wh", float(self.capacity_wh))
        if not 0 <= self.soc_min_wh <= self.soc_max_wh <= self.capacity_wh:
            raise AgentInputError("battery.soc_max_wh", "0 <= soc_min_wh <= soc_max_wh <= capacity_wh")
        if not self.soc_min_wh <= self.soc_wh <= self.soc_max_wh:
            raise AgentInputError("battery.soc_wh", f"within [{self.soc_min_wh}, {self.soc_max_wh}], got {self.soc_wh}")


@dataclass(frozen=True, slots=True)
class Car:
    """A plug-in hybrid car as seen by one plan.

    ``parked[i]`` is True when the car is plugged in at *this plan's* site during slot
    ``i`` (it can charge or discharge there); ``drive_wh[i]`` is the energy driving
    takes from the battery in slot ``i``. To require the charge a trip needs *at
    departure*, put the whole trip's energy into the first slot away: the stored
    energy may never fall below ``soc_min_wh`` after a draw, so the car leaves with
    ``soc_min_wh + trip`` — or the engine covers the gap, ``shortfall_wh``, at
    ``fallback_cost_per_kwh`` (fuel; ``None``: no fuel price known, the gap costs twice the
    dearest price in the plan, whatever the currency), so a plan is always feasible.
    ``soc_floor_wh`` (as a battery's): a reserve target per slot, on top of ``soc_min_wh``.
    """

    usable_wh: float
    charge_power_w: float
    discharge_power_w: float
    soc_wh: float
    parked: np.ndarray
    drive_wh: np.ndarray
    charge_efficiency: float = 0.92
    discharge_efficiency: float = 0.92
    soc_min_wh: float = 0.0
    fallback_cost_per_kwh: float | None = None
    terminal_value_per_kwh: float = 0.0
    name: str = "car"
    soc_floor_wh: np.ndarray | None = None

    def __post_init__(self) -> None:
        _nonneg("car.usable_wh", self.usable_wh)
        _nonneg("car.charge_power_w", self.charge_power_w)
        _nonneg("car.discharge_power_w", self.discharge_power_w)
        _efficiency("car.charge_efficiency", self.charge_efficiency)
        _efficiency("car.discharge_efficiency", self.discharge_efficiency)
        if self.fallback_cost_per_kwh is not None:
            _nonneg("car.fallback_cost_per_kwh", self.fallback_cost_per_kwh)
        _nonneg("car.terminal_value_per_kwh", self.terminal_value_per_kwh)
        if not 0 <= self.soc_min_wh <= self.usable_wh:
            raise AgentInputError("car.soc_min_wh", f"within [0, usable_wh={self.usable_wh}]")
        if not 0 <= self.soc_wh <= self.usable_wh:
            raise AgentInputError("car.soc_wh", f"within [0, usable_wh={self.usable_wh}], got {self.soc_wh}")
        drive = _array("car.drive_wh", self.drive_wh, None)
        object.__setattr__(self, "drive_wh", drive)
        object.__setattr__(self, "parked", _bool_array("car.parked", self.parked, drive.shape[0]))
        if (self.parked & (drive > 0)).any():
            raise AgentInputError("car.drive_wh", "zero in slots where the car is parked")


@dataclass(frozen=True, slots=True)
class DemandCharge:
    """A demand charge: ``price_per_kw`` per kW of the period's highest slot-average net import.

    Only the increase above ``peak_so_far_w`` (the peak already reached this period)
    costs; ``applies[i]`` False excludes slot ``i`` (e.g. slots of the next month).
    ``margin_wh[i]``: the plan keeps slot ``i``'s net import this much below the peak (room
    for forecast error: a slot next to a higher forecast may turn out the highest).
    """

    price_per_kw: float
    peak_so_far_w: float = 0.0
    applies: np.ndarray | None = None
    margin_wh: np.ndarray | None = None

    def __post_init__(self) -> None:
        _nonneg("demand_charge.price_per_kw", self.price_per_kw)
        _nonneg("demand_charge.peak_so_far_w", self.peak_so_far_w)


_OPTIONAL_CAPS = ("p2p_buy_max_wh", "p2p_sell_max_wh", "grid_export_max_wh", "grid_import_max_wh")


@dataclass(frozen=True, slots=True)
class PlanInput:
    """Everything one agent's plan needs over its horizon (see the module docstring).

    ``p2p_*_max_wh`` cap the energy expected to be tradable per slot (default: no cap);
    ``grid_export_max_wh`` caps sales to the utility (0 for a car that may not export),
    ``grid_import_max_wh`` purchases from it (0 where a car sells: a storage that both
    charges and discharges in one slot would pass utility energy through to the market).
    ``v2b_max_wh`` / ``v2b_price_per_kwh``: energy that cars parked at this site can
    discharge into it (a P2P purchase behind the meter: it lowers the metered peak);
    ``v2b_group`` (an integer per slot, e.g. the day; -1: none) and ``v2b_group_max_wh``
    bound the V2B energy of each group (what the cars can spare in a day).
    ``renewable_wh``: renewable-tagged P2P energy expected available per slot, bought
    at ``p2p_buy_price + renewable_premium_per_kwh``; used in ``green`` mode only,
    where the plan maximises renewable purchases while its cost stays within
    ``green_max_extra_cost`` (currency, whole horizon) of the economy optimum.
    ``committed_buy_wh`` / ``committed_sell_wh``: the agent's position, energy already bought or
    sold for each slot (its trades, and the resting orders it keeps: they may still fill), a fixed
    input. The plan's ``p2p_buy_wh`` / ``p2p_sell_wh`` are totals that include them (never less);
    it decides only what to trade beyond them. A committed sale need not come from the site's own
    energy (it was made; the utility covers what the site lacks), and committed purchases beyond
    what the site can use in their slot may be exported (the meter would send them out).
    """

    slot_minutes: int
    load_wh: np.ndarray
    pv_wh: np.ndarray
    retail_price_per_kwh: np.ndarray
    buyback_price_per_kwh: np.ndarray
    p2p_buy_price_per_kwh: np.ndarray
    p2p_sell_price_per_kwh: np.ndarray
    p2p_buy_max_wh: np.ndarray | None = None
    p2p_sell_max_wh: np.ndarray | None = None
    grid_export_max_wh: np.ndarray | None = None
    grid_import_max_wh: np.ndarray | None = None
    v2b_max_wh: np.ndarray | float = 0.0
    v2b_price_per_kwh: np.ndarray | float = 0.0
    v2b_group: np.ndarray | None = None
    v2b_group_max_wh: float = float("inf")
    renewable_wh: np.ndarray | float = 0.0
    renewable_premium_per_kwh: np.ndarray | float = 0.0
    committed_buy_wh: np.ndarray | float = 0.0
    committed_sell_wh: np.ndarray | float = 0.0
    battery: Battery | None = None
    cars: tuple[Car, ...] = ()
    demand_charge: DemandCharge | None = None
    mode: str = "economy"
    green_max_extra_cost: float = 0.0
    n_slots: int = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.slot_minutes, bool) or not isinstance(self.slot_minutes, int) or self.slot_minutes <= 0:
            raise AgentInputError("slot_minutes", f"a positive whole number of minutes, got {self.slot_minutes!r}")
        if self.mode not in MODES:
            raise AgentInputError("mode", f"one of {', '.join(MODES)}, got {self.mode!r}")
        _nonneg("green_max_extra_cost", self.green_max_extra_cost)
        load = _array("load_wh", self.load_wh, None)
        n = load.shape[0]
        if n == 0:
            raise AgentInputError("load_wh", "at least one slot")
        object.__setattr__(self, "n_slots", n)
        object.__setattr__(self, "load_wh", load)
        for name in _PER_SLOT_FIELDS:
            value = getattr(self, name)
            if value is None and name in _OPTIONAL_CAPS:
                value = np.inf
            object.__setattr__(self, name, _array(name, value, n))
        cars = tuple(self.cars)
        object.__setattr__(self, "cars", cars)
        for k, car in enumerate(cars):
            if not isinstance(car, Car):
                raise AgentInputError(f"cars[{k}]", "a Car")
            if car.parked.shape[0] != n:
                raise AgentInputError(f"cars[{k}].parked", f"one value per slot of the horizon ({n})")
            if car.soc_floor_wh is not None:
                floor = _array(f"cars[{k}].soc_floor_wh", car.soc_floor_wh, n)
                if (floor > car.usable_wh).any():
                    raise AgentInputError(f"cars[{k}].soc_floor_wh", f"at most usable_wh={car.usable_wh}")
                object.__setattr__(car, "soc_floor_wh", floor)
        bat = self.battery
        if bat is not None and bat.soc_floor_wh is not None:
            floor = _array("battery.soc_floor_wh", bat.soc_floor_wh, n)
            if (floor > bat.soc_max_wh).any():  # type: ignore[operator]
                raise AgentInputError("battery.soc_floor_wh", f"at most soc_max_wh={bat.soc_max_wh}")
            object.__setattr__(bat, "soc_floor_wh", floor)
        dc = self.demand_charge
        if dc is not None:
            applies = True if dc.applies is None else dc.applies
            applies = _bool_array("demand_charge.applies", applies, n)
            margin = _array("demand_charge.margin_wh", 0.0 if dc.margin_wh is None else dc.margin_wh, n)
            object.__setattr__(self, "demand_charge", DemandCharge(dc.price_per_kw, dc.peak_so_far_w, applies,
                                                                   margin))
        _nonneg("v2b_group_max_wh", self.v2b_group_max_wh)
        if self.v2b_group is not None:
            group = np.asarray(self.v2b_group)
            if group.shape != (n,) or not np.issubdtype(group.dtype, np.integer):
                raise AgentInputError("v2b_group", f"an integer per slot of the horizon ({n})")
            group = group.copy()
            group.setflags(write=False)
            object.__setattr__(self, "v2b_group", group)

    @property
    def slot_hours(self) -> float:
        return self.slot_minutes / 60.0


_PER_SLOT_FIELDS = tuple(f.name for f in fields(PlanInput)
                         if f.name not in ("load_wh", "n_slots", "v2b_group_max_wh")
                         and (f.name.endswith("_wh") or f.name.endswith("_per_kwh")))
"""PlanInput's per-slot arrays after ``load_wh`` (which sets the horizon), in field order."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The planner's answer. Per-slot arrays in Wh (car arrays: shape ``(len(cars), n)``).

    ``p2p_buy_wh`` is bought on the market, ``v2b_buy_wh`` from cars parked on site
    (also P2P, behind the meter); ``renewable_buy_wh`` (≤ ``p2p_buy_wh``) is the part of
    the market purchase to be bought with a renewable requirement (green mode).
    ``cost`` is the expected money cost over the horizon (imports and purchases minus
    sales, fuel for shortfalls, and the demand charge's increase); the value of energy
    left in storage at the end is *not* in it (``terminal_value``). ``peak_w``: with a
    demand charge, the period's planned peak (never below ``peak_so_far_w``); otherwise the
    highest slot-average net import of the plan. ``economy_cost``: the economy optimum's
    cost (equal to ``cost`` in economy mode; green mode spends at most its budget more).
    """

    mode: str
    grid_import_wh: np.ndarray
    grid_export_wh: np.ndarray
    p2p_buy_wh: np.ndarray
    p2p_sell_wh: np.ndarray
    v2b_buy_wh: np.ndarray
    renewable_buy_wh: np.ndarray
    curtail_wh: np.ndarray
    battery_charge_wh: np.ndarray
    battery_discharge_wh: np.ndarray
    soc_wh: np.ndarray
    car_charge_wh: np.ndarray
    car_discharge_wh: np.ndarray
    car_soc_wh: np.ndarray
    shortfall_wh: np.ndarray
    cost: float
    terminal_value: float
    peak_w: float
    economy_cost: float

    @property
    def net_import_wh(self) -> np.ndarray:
        """Metered net import per slot (market and utility purchases minus sales)."""
        return self.grid_import_wh + self.p2p_buy_wh - self.grid_export_wh - self.p2p_sell_wh
