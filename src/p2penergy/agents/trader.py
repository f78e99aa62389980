"""The trading agent: one class for homes, the office and cars.

Each step the agent receives an :class:`Observation` (its forecasts and device state at
``now``, nothing later) and a :class:`MarketAccess`. It plans with the LP
(:func:`p2penergy.agents.planner.plan`) over the rest of today and tomorrow, turns the
plan's market positions into tagged orders, and keeps those orders in line with the plan:

* **Day-ahead**: a slot's position is first posted as soon as the slot is in the horizon
  and its gate is open (so prosumers offer tomorrow's forecast surplus the day before).
* **Revision**: slots within ``revise_slots`` of delivery are re-priced and re-sized from
  the fresh plan (cancel and replace) until the gate closes, as forecasts sharpen.
* Prices follow :class:`BiddingStrategy` between the participant's reservation prices:
  its buyback price (sellers) and its marginal retail price (buyers; the office: its
  contract's price of the slot's time band). The office plans against its demand charge
  with what the cars at its chargers can give (V2B) and, in the slots its plan shaves,
  bids up toward its grid price plus the demand charge it avoids as the gate nears.
* A car parked at the office sees the slot's best public bid and plans to sell into it
  when that pays more than keeping the energy for its next trips; it never asks less
  than the price its plan sold at.
* Tags: offers say where the energy comes from (``solar`` for PV surplus, ``battery`` or
  ``phv`` for stored energy; producer, device, site). Bids list renewable sources first,
  then anything; in ``green`` mode the renewable requirement carries a premium.

The agent keeps its latest plan's device setpoints (a car's charge and discharge per slot; the
physics discharges what the car sold) for the physical layer; it never changes any other participant's state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from p2penergy.agents.bidding import BiddingStrategy, net_of_fee
from p2penergy.agents.forecast_features import horizon_midnights_ns
from p2penergy.agents.market_access import MarketAccess, OpenOrder
from p2penergy.agents.outage_plan import reserve_for_outages, reserve_setpoints
from p2penergy.agents.plan_input import AgentInputError, Battery, Car, DemandCharge, Plan, PlanInput
from p2penergy.agents.planner import plan
from p2penergy.community import CAR_KIND, HOME_KIND, LOCATION_CODES, OFFICE_KIND, Participant, utc_starts
from p2penergy.market import RENEWABLE_SOURCES, MarketSettings, Order, OrderRejected, Requirement, Tag
from p2penergy.outage import Outage
from p2penergy.tariffs.retail import RetailTariff

BUY_SIDE, SELL_SIDE = "buy", "sell"
# What a buyer accepts by default: renewable sources first (no premium), then anything.
_RENEWABLE_FIRST = (Requirement.of({"source": list(RENEWABLE_SOURCES)}), Requirement.any())
# A car's plan keeps this much above its battery's floor: the physics stores whole Wh, rounding
# what reaches the cells down and what leaves them up (at most 1 Wh a slot), so a plan that
# arrives at the floor exactly would fall a few Wh short of its trip after a day of charging and
# discharging slots (48 at 30 min).
CAR_ROUNDING_RESERVE_WH = 48.0
# At equal prices a car charges sooner rather than later: its plan's prices of charging rise by this share per
# day ahead (0.2 %: 0.05 JPY/kWh a day on a 27 JPY/kWh tariff, far below any price difference between sources,
# so it only breaks ties). Assumption: a trip the car's forecast did not see may come at any time, and energy
# already on board serves it (the baseline's cars, charged as soon as they are home, rarely ran short).
CAR_CHARGE_SOONER_SHARE_PER_DAY = 0.002
# A tiered tariff prices a month's kWh by the month's total, so the price of the next kWh is the tier the month
# will end in: projected from the imports so far at the rate so far, once this many days of the month have passed
# (before that, the imports so far: one day's rate is not yet a month's). Assumption: the rest of the month
# imports like its start. Measured: priced at the tier of the imports so far, the owners' first week looked like
# the first tier (≈ 20.8 JPY/kWh), so the cars bought utility energy to sell it to the office at ≈ 24.9 JPY/kWh,
# a loss once the month's total reached the second and third tiers (26.5–30.6 JPY/kWh).
MONTH_PROJECTION_MIN_DAYS = 1.0
# Green mode's premium on renewable energy, a share of the market's price band: 2 % is 1 JPY/kWh on
# the demonstration's 0–50 JPY band (the value green agents always used: a few percent of a P2P
# price, enough to rank renewable offers first) and 0.01 EUR/kWh on 0–0.50 EUR.
GREEN_PREMIUM_SHARE_OF_BAND = Decimal("0.02")
# Green mode's budget per plan horizon: the premium on this much energy (20 kWh, about a home's
# purchases over the plan's day and a half: 20 JPY on the JPY market, as before).
GREEN_BUDGET_KWH = 20.0
# How a home without storage sizes its trade against forecast error (AgentConfig.hedge): the
# newsvendor quantile of its net position, or fixed shares of the plan's net (before issue 14).
HEDGES = ("quantile", "fixed")


@dataclass(frozen=True, slots=True)
class Observation:
    """What an agent knows at ``now`` (the start of the current slot).

    Arrays cover ``horizon`` (slot starts from now on). Forecasts are the agent's own
    (made from metered history and weather forecasts issued no later than ``now``); a
    car's ``location`` codes and ``drive_wh`` are its own trip forecast (the planning schedule of
    :class:`~p2penergy.agents.trip_forecast.TripForecast`: parked at home / office, or away, with each
    away block's driving energy in its first slot); ``car_parked_probability``: how likely the car
    is where that schedule plans it parked (1 where it plans it away). ``peak_so_far_w``: the
    highest slot import of the month so far; ``past_day_peaks_w``: a site billed on its peak, the
    highest slot import of each past business day its meter read (how high a business day goes). ``load_quantiles_wh`` /
    ``pv_quantiles_wh``: ``(len(quantile_levels), len(horizon))`` quantile forecasts of the site's
    load and PV (none: the point forecasts are all it knows). ``horizon`` is
    on the market's wall clock; ``slot_starts`` are the same slots as UTC instants (the
    exchange's keys; derived from ``horizon`` when not given).
    """

    now: datetime
    horizon: pd.DatetimeIndex
    load_wh: np.ndarray
    pv_wh: np.ndarray
    slot_starts: tuple[datetime, ...] = ()
    soc_wh: int | None = None
    car_soc_wh: int | None = None
    car_location: np.ndarray | None = None
    car_drive_wh: np.ndarray | None = None
    car_parked_probability: np.ndarray | None = None
    month_import_wh: int = 0
    peak_so_far_w: float = 0.0
    past_day_peaks_w: tuple[float, ...] = ()
    quantile_levels: tuple[float, ...] = ()
    load_quantiles_wh: np.ndarray | None = None
    pv_quantiles_wh: np.ndarray | None = None
    outages: tuple[Outage, ...] = ()  # grid outages known at ``now`` (announced, or begun)

    @property
    def local_now(self) -> datetime:
        """``now`` on the market's wall clock (the horizon's zone): for tariff months and calendars."""
        return self.now.astimezone(self.horizon.tz)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Tunable behaviour. ``green_premium_per_kwh``: premium on renewable energy in green
    mode (currency/kWh; ``None``: ``GREEN_PREMIUM_SHARE_OF_BAND`` of the market's price band);
    ``green_max_extra_cost``: the plan's bounded extra cost (currency per horizon; ``None``: the
    premium on ``GREEN_BUDGET_KWH``). Both are resolved against the market when the agent acts.

    A home *without storage* trades the quantile of its net position (load − PV) that
    minimises its expected cost, not its point forecast (:func:`hedge_shift`). A battery
    absorbs errors, and a car's charging follows its plan, so they trade their whole planned
    position; so does the office, whose load is far larger than any purchase.
    ``hedge = "fixed"`` replaces that rule by fixed shares ``fixed_hedge`` (buy, sell) of the
    planned deficit and surplus: the agents before issue 14 traded 70 % and 80 %, a guess at the
    asymmetry of the costs of an error (kept for the ablation; ``p2penergy simulate --agents
    point-forecasts``). ``forecaster``: what the agents' kit forecasts with
    (:data:`~p2penergy.agents.agent_forecasters.AGENT_FORECASTERS`).

    ``peak_margin``: the office plans to keep every slot's import this share below the month's
    peak so far (a slot forecast just under the peak may set a new one: measured on the scenario,
    its forecasts of the heat wave's business afternoons ran 5–10 % low — hotter than anything
    in the weeks it learnt from). ``peak_hours`` (local, from–to): and it plans every slot
    of these hours as if it could be the day's highest of them (assumption: an air-conditioned
    site's business afternoon is nearly flat for hours — occupancy, the midday bump and cooling
    overlap — so which slot comes out highest is within the forecast's error; measured on the
    scenario, the forecast's afternoon shape is off by 5–10 %). ``v2b_spare_hours``: what the cars at
    its chargers can spare for it in a day, in hours of the chargers' full power (assumption: a
    Prius PHV has about 7 kWh usable; a 10–20 km commute home and back takes 2–4 kWh, leaving
    about 3.5 kWh, 1.2 h at 3 kW).

    ``peak_forecast_error``: the relative standard deviation of the office's forecast of a business
    afternoon's import, for the chance that a slot sets a new peak (assumption: its forecasts of the
    heat wave's afternoons ran 5–10 % low, ``peak_margin`` above, so one standard deviation is 5 %).
    ``peak_risk_min``: a slot with less chance than this (5 %) of setting a new peak is not at risk:
    the office pays it no demand-charge value and does not re-price its bids there every step.
    """

    mode: str = "economy"
    strategy: BiddingStrategy = field(default_factory=BiddingStrategy)
    revise_slots: int = 4
    green_premium_per_kwh: Decimal | None = None
    green_max_extra_cost: float | None = None
    min_order_wh: int = 10
    peak_margin: float = 0.10
    peak_hours: tuple[float, float] = (12.0, 18.0)
    peak_forecast_error: float = 0.05
    peak_risk_min: float = 0.05
    v2b_spare_hours: float = 1.2
    hedge: str = "quantile"
    fixed_hedge: tuple[float, float] = (0.7, 0.8)
    forecaster: str = "selected"

    def __post_init__(self) -> None:
        if self.hedge not in HEDGES:
            raise ValueError(f"hedge: one of {', '.join(HEDGES)}, got {self.hedge!r}")
        if not all(0 <= share <= 1 for share in self.fixed_hedge) or len(self.fixed_hedge) != 2:
            raise ValueError(f"fixed_hedge: (buy share, sell share), each in [0, 1], got {self.fixed_hedge!r}")

    def for_market(self, settings: MarketSettings) -> AgentConfig:
        """This configuration with its currency amounts sized for ``settings``' price band."""
        premium = self.green_premium_per_kwh
        if premium is None:
            premium = GREEN_PREMIUM_SHARE_OF_BAND * (settings.price_max_per_kwh - settings.price_min_per_kwh)
        budget = self.green_max_extra_cost
        if budget is None:
            budget = float(premium) * GREEN_BUDGET_KWH
        return replace(self, green_premium_per_kwh=premium, green_max_extra_cost=budget)


@dataclass(frozen=True, slots=True)
class PlanReads:
    """What of the market an agent's plan input reads (:meth:`TradingAgent.plan_input_of`), per horizon
    slot (``starts``, UTC): the reference price, a car's best visible bids (NaN where none; ``None`` for
    others) and its position (``committed``: Wh bought and sold, its trades and the resting orders it
    keeps). For one observation and agent state, equal reads (:func:`same_bits`) give the same input."""

    starts: tuple[datetime, ...]
    reference: Decimal | None
    bids: np.ndarray | None
    committed: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, slots=True)
class MarketRead:
    """What an agent read of the market at a step (:meth:`TradingAgent.read_market`): what its plan
    reads (``plan``), its open orders by slot, which gates are open and which slots it revises, and Wh
    it bought and sold so far per horizon slot (``fills``)."""

    plan: PlanReads
    by_slot: dict[datetime, list[tuple[str, OpenOrder]]]
    is_open: list[bool]
    revising: list[bool]
    fills: tuple[np.ndarray, np.ndarray]

    def plans_alike(self, other: MarketRead) -> bool:
        """Whether ``other`` gives the same plan input as this read (for the same observation and agent):
        what the plan reads is the same, bit for bit."""
        return same_bits(self.plan, other.plan)


def same_bits(a: object, b: object) -> bool:
    """``a`` and ``b`` are the same value bit for bit: arrays of the same shape, type and bytes (NaN
    equal to the same NaN, 0.0 not to −0.0), floats of the same IEEE bits, dataclasses field by field,
    tuples and lists item by item, anything else of the same type and equal."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray)
        return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if dataclasses.is_dataclass(a):
        return all(same_bits(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, tuple | list):
        assert isinstance(b, tuple | list)
        return len(a) == len(b) and all(same_bits(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """A step's plan made ahead (:mod:`p2penergy.agents.plan_pool`): for observation ``obs``, from the
    market as ``read`` then, the plan input; ``made()``: its plan (waits for it while it is being made
    elsewhere; ``None`` where the planner refused the input)."""

    obs: Observation
    read: MarketRead
    input: PlanInput
    made: Callable[[], Plan | None]


class TradingAgent:
    """A participant's agent. Deterministic: same observations, same orders."""

    def __init__(self, participant: Participant, config: AgentConfig | None = None) -> None:
        self.participant = participant
        self.config = config or AgentConfig()
        self._posted: set[datetime] = set()
        self._ordered: set[datetime] = set()
        self._repriced: set[datetime] = set()  # slots re-priced at the last step (urgent, or selling into bids)
        self._order_seq = 0
        self.setpoints: dict[datetime, tuple[int, int]] = {}
        self.last_plan: Plan | None = None
        self.last_input: PlanInput | None = None  # the input of ``last_plan``
        self._reference: Decimal | None = None
        # per observation (the step's): the grid price per slot, the net position's quantiles per slot
        self._grid_prices: tuple[Observation, np.ndarray] | None = None
        self._retail: tuple[Observation, Decimal | None, float] | None = None  # per observation and price maximum
        self._config_for: tuple[MarketSettings, AgentConfig] | None = None  # the market config was resolved for
        self._net_quantiles: tuple[Observation, np.ndarray] | None = None
        self._tags: dict[tuple[str, str, str, str], Tag] = {}
        self._price_max: Decimal | None = None  # the market's price maximum, known once it acts

    # -- the step -----------------------------------------------------------------------
    def act(self, obs: Observation, market: MarketAccess, speculation: PlannedStep | None = None) -> bool:
        """Plan, then post or revise orders for the horizon's open slots: :meth:`read_market`, the plan
        (:meth:`plan_input_of`, :func:`~p2penergy.agents.planner.plan`), :meth:`post_orders`.

        ``speculation``: this step's plan made ahead for ``obs`` from the market as it stood when the
        step began (:mod:`p2penergy.agents.plan_pool`). It is used where it is the plan this turn would
        make: what the agent reads now :meth:`~MarketRead.plans_alike` what it read then, or else the
        plan input built now is the one planned then, bit for bit (:func:`same_bits`; the planner is a
        pure function of its input). Otherwise the agent plans afresh. Returns whether it was used."""
        read = self.read_market(obs, market)
        ahead = speculation if speculation is not None and speculation.obs is obs else None
        if ahead is not None and ahead.read.plans_alike(read):
            inp = ahead.input
        else:
            inp = self.plan_input_of(obs, market.settings.slot_minutes, read.plan)
            if ahead is not None and not same_bits(inp, ahead.input):
                ahead = None  # not this turn's plan: never waited for
        made = ahead.made() if ahead is not None else None
        result = made if made is not None else plan(inp)
        self.last_input = inp
        self.post_orders(obs, market, read, inp, result)
        return made is not None

    def read_market(self, obs: Observation, market: MarketAccess) -> MarketRead:
        """What the step reads of the market: the reference price, its own open orders and fills, and a
        car's view of the best bids. Reads only (nothing is submitted or cancelled)."""
        settings = market.settings
        if self._config_for is None or self._config_for[0] is not settings or self._config_for[1] is not self.config:
            self.config = self.config.for_market(settings)  # resolved once per market and configuration
            self._config_for = (settings, self.config)
        reference = market.reference_price()
        self._reference = reference
        self._price_max = settings.price_max_per_kwh
        starts = obs.slot_starts or utc_starts(obs.horizon)
        by_slot: dict[datetime, list[tuple[str, OpenOrder]]] = {}
        for oid, oo in market.open_orders().items():
            by_slot.setdefault(oo.order.slot_start, []).append((oid, oo))
        bids = self._visible_bids(obs, starts, market, by_slot)
        # slots whose orders this step cancels and replaces from the fresh plan (near delivery, or
        # re-priced every step); elsewhere resting orders stay and count as commitments
        is_open = gate_open_flags(settings, starts, obs.now)
        revising = [is_open[k] and (k < self.config.revise_slots or slot in self._repriced)
                    for k, slot in enumerate(starts)]
        fills, committed = self._committed(starts, market, by_slot, revising)
        return MarketRead(PlanReads(starts, reference, bids, committed), by_slot, is_open, revising, fills)

    def plan_input_of(self, obs: Observation, slot_minutes: int, reads: PlanReads) -> PlanInput:
        """The step's plan input from ``obs`` and what it read of the market (outage reserves included)."""
        return reserve_for_outages(self.plan_input(obs, slot_minutes, reads.reference, reads.bids, reads.committed),
                                   obs.outages, reads.starts)

    def post_orders(self, obs: Observation, market: MarketAccess, read: MarketRead, inp: PlanInput,
                    result: Plan) -> None:
        """Keep the plan's setpoints, and post or revise orders for the horizon's open slots from
        ``result`` (the plan of ``inp``) and ``read`` (the market as read at this step)."""
        settings = market.settings
        reference, bids, starts = read.plan.reference, read.plan.bids, read.plan.starts
        by_slot, is_open, revising, fills = read.by_slot, read.is_open, read.revising, read.fills
        self.last_plan = result
        if self.participant.kind == CAR_KIND:
            charge = np.rint(result.car_charge_wh[0]).astype(np.int64)
            discharge = np.rint(result.car_discharge_wh[0]).astype(np.int64)
            self.setpoints = {s: (int(charge[k]), int(discharge[k])) for k, s in enumerate(starts)}
        else:  # a site's battery follows the plan only while it keeps a reserve for an outage
            self.setpoints = reserve_setpoints(inp, result, starts)
        buy_reserve, urgent, peak_wh = self._buy_reservation(obs, inp, result, settings.price_max_per_kwh)
        grid_reserve = self._grid_reservation(obs, settings.price_max_per_kwh)
        # the buyer pays the grid fee on top of the price: its limit is its reservation less the worst fee
        fee = settings.grid_fees.worst_per_kwh
        buy_reserve = net_of_fee(buy_reserve, fee, settings.price_min_per_kwh)
        grid_reserve = net_of_fee(grid_reserve, fee, settings.price_min_per_kwh)
        sell_reserve = self._sell_reservation(obs, inp, settings)
        # a car's plan selling into a bid it sees (the office's peak bids)
        selling_into = ((bids is not None) & ~np.isnan(bids if bids is not None else np.zeros(len(starts)))
                        & (result.p2p_sell_wh > 0)).tolist()
        self._repriced = {slot for k, slot in enumerate(starts) if urgent[k] or selling_into[k]}
        strategy = self.config.strategy
        for k, slot in enumerate(starts):
            if not is_open[k]:
                continue
            if slot in self._posted and not (revising[k] or urgent[k] or selling_into[k]):
                continue  # urgent bids rise every step, and cars answer them at once
            self._posted.add(slot)
            wanted: list[Order] = []
            label = f"{settings.local(slot):%Y%m%d%H%M}"  # order ids name the slot on the local clock
            # the plan's positions include what traded and what rests; orders carry all but the trades
            bought, sold = int(fills[0][k]), int(fills[1][k])
            for side, items in self._positions(result, obs, k, bought, sold):
                for tag_or_reqs, energy_wh in items:
                    if energy_wh < self.config.min_order_wh:
                        continue
                    if side == BUY_SIDE:
                        # the office bids its demand-charge value for its peak quantity only (what
                        # its plan cuts the peak with: the cars' spare energy), the rest at grid price
                        dear = energy_wh if peak_wh is None else min(energy_wh, max(round(peak_wh[k]) - bought, 0))
                        for part, is_peak in ((dear, True), (energy_wh - dear, False)):
                            if part < self.config.min_order_wh:
                                continue
                            bid = strategy.urgent_buy_price if urgent[k] and is_peak else strategy.buy_price
                            price = bid(settings, slot, obs.now, reference,
                                        buy_reserve[k] if is_peak else grid_reserve[k], settings.price_min_per_kwh)
                            # a green bid's premium rides on its price: the market takes both up to its maximum
                            premium = max((r.premium_per_kwh for r in tag_or_reqs), default=Decimal(0))
                            price = min(price, settings.price_max_per_kwh - premium)
                            wanted.append(self._order(slot, label, side, part, price, obs.now,
                                                      requirements=tag_or_reqs))
                    else:
                        price = strategy.sell_price(settings, slot, obs.now, reference, sell_reserve[k],
                                                    settings.price_max_per_kwh)
                        wanted.append(self._order(slot, label, side, energy_wh, price, obs.now, tag=tag_or_reqs))
            current = by_slot.get(slot, [])
            if _same_book(current, wanted):
                continue
            for oid, _ in current:
                # an order filled (or cancelled by self-trade prevention) since we looked is fine
                with contextlib.suppress(OrderRejected):
                    market.cancel(oid, obs.now)
            for order in wanted:
                market.submit(order)
                self._ordered.add(slot)

    # -- planning -----------------------------------------------------------------------
    def plan_input(self, obs: Observation, slot_minutes: int, reference: Decimal | None,
                   best_bids: np.ndarray | None = None,
                   committed: tuple[np.ndarray, np.ndarray] | None = None) -> PlanInput:
        """The plan's input at ``obs``. ``best_bids`` (a car's view of the public book, NaN where
        none): the highest open buy price per slot, which a car parked at the office may sell into.
        ``committed``: Wh already bought and sold per slot (trades, and resting orders kept), the
        agent's position: a fixed input to the plan, which decides only what to trade beyond it
        (a car must deliver its net sales from its battery, else the utility at a last-resort price)."""
        p = self.participant
        n = len(obs.horizon)
        retail = self._retail_per_kwh(obs)
        buyback = float(p.buyback.price_per_kwh) if p.buyback is not None else 0.0
        mid = float(reference) if reference is not None else (retail + buyback) / 2
        expected = np.full(n, mid)
        sell_price = expected
        load_wh, pv_wh = obs.load_wh, obs.pv_wh
        kwargs: dict[str, object] = {}
        if p.kind == CAR_KIND:
            assert p.car_store is not None and p.phv is not None
            assert obs.car_location is not None and obs.car_drive_wh is not None and obs.car_soc_wh is not None
            parked = obs.car_location != LOCATION_CODES["road"]
            at_office = obs.car_location == LOCATION_CODES["office"]
            car = Car(
                usable_wh=float(p.car_store.soc_max_wh), charge_power_w=float(p.phv.charge_power_w),
                discharge_power_w=float(p.phv.discharge_power_w), soc_wh=float(obs.car_soc_wh),
                parked=parked, drive_wh=np.where(parked, 0, obs.car_drive_wh).astype(float),
                charge_efficiency=p.phv.charge_efficiency, discharge_efficiency=p.phv.discharge_efficiency,
                soc_min_wh=min(float(p.car_store.soc_min_wh) + CAR_ROUNDING_RESERVE_WH,
                               max(float(obs.car_soc_wh), float(p.car_store.soc_min_wh))),
                fallback_cost_per_kwh=p.fuel_cost_per_kwh,
                terminal_value_per_kwh=car_leftover_value_per_kwh(
                    p.fuel_cost_per_kwh, retail, self._price_max, p.phv.charge_efficiency),
                name=p.id,
            )
            if best_bids is not None:
                # a bid above the usual price, where the car can sell (parked at the office); in such
                # a slot it buys nothing (a sale comes from its battery, charged before)
                better = at_office & ~np.isnan(best_bids) & (np.nan_to_num(best_bids) > expected)
                sell_price = np.where(better, best_bids, expected)
            else:
                better = np.zeros(n, dtype=bool)
            owed = np.maximum(committed[1] - committed[0], 0.0) if committed is not None else np.zeros(n)
            # no utility energy in a slot it may sell into beyond what a sale made before may need
            kwargs["grid_import_max_wh"] = np.where(better, owed, np.inf)
            # utility energy in a slot it must deliver a sale in is a last resort, dearer than any sale
            # could earn (twice the fuel it would otherwise burn): the sale comes from stored energy.
            # Energy planned into a slot the car may not be plugged in costs more by that risk: with
            # prices equal, it charges where it surely is (the night before, not the hour it may leave)
            plugged = (np.clip(obs.car_parked_probability, 0.5, 1.0) if obs.car_parked_probability is not None
                       else np.ones(n))
            # and at equal prices it charges sooner (CAR_CHARGE_SOONER_SHARE_PER_DAY)
            days_ahead = np.asarray((obs.horizon - obs.horizon[0]).total_seconds()) / 86_400
            plugged = plugged / (1 + CAR_CHARGE_SOONER_SHARE_PER_DAY * days_ahead)
            kwargs["p2p_buy_price_per_kwh"] = expected / plugged
            kwargs.update(
                cars=(car,),
                retail_price_per_kwh=np.where(parked & (owed == 0), retail / plugged,
                                              2 * max(retail, p.fuel_cost_per_kwh)),
                p2p_sell_max_wh=np.where(at_office, np.inf, 0.0),
                p2p_buy_max_wh=np.where(parked & ~better, np.inf, 0.0),
                grid_export_max_wh=np.zeros(n),
            )
        else:
            # a site trades its surplus or its deficit, not through its meter: it may sell only
            # what its PV exceeds its load by (plus what its battery can give) and buy only
            # what it lacks (plus what its battery can take)
            kwargs["retail_price_per_kwh"] = self._grid_price_per_kwh(obs)
            store_wh = p.battery.power_w * slot_minutes / 60 if p.battery is not None else 0.0
            surplus = np.maximum(obs.pv_wh - obs.load_wh, 0.0)
            deficit = np.maximum(obs.load_wh - obs.pv_wh, 0.0)
            kwargs["p2p_sell_max_wh"] = surplus + store_wh
            if p.battery is None:
                kwargs["p2p_buy_max_wh"] = deficit
            else:
                # PV with a battery (Japan's FIT rules for storage; docs/agents.md): the utility buys only the
                # PV surplus, so the battery never exports to it and does not discharge to push more PV out
                # (押し上げ効果) — exports stay within the PV surplus; and energy is bought only where
                # the home lacks it, never in a slot its PV is in surplus (it would be exported instead)
                kwargs["grid_export_max_wh"] = surplus
                kwargs["p2p_buy_max_wh"] = np.where(deficit > 0, deficit + store_wh, 0.0)
            if p.kind == OFFICE_KIND and p.charger_power_w:
                # V2B: the cars at its chargers can discharge into it (a purchase that cuts its peak),
                # up to what they can spare in a day
                in_use = self._chargers_in_use(obs)
                kwargs["v2b_max_wh"] = np.minimum(in_use * p.charger_power_w * slot_minutes / 60, deficit)
                kwargs["v2b_price_per_kwh"] = expected
                day = horizon_midnights_ns(obs.horizon) // 86_400_000_000_000
                kwargs["v2b_group"] = np.where(in_use > 0, day - day[0], -1).astype(np.int64)
                kwargs["v2b_group_max_wh"] = p.charger_power_w * self.config.v2b_spare_hours
        if p.battery is not None and obs.soc_wh is not None:
            b = p.battery
            kwargs["battery"] = Battery(
                capacity_wh=float(b.capacity_wh), power_w=float(b.power_w), soc_wh=float(obs.soc_wh),
                charge_efficiency=b.charge_efficiency, discharge_efficiency=b.discharge_efficiency,
                soc_min_wh=float(b.soc_min_wh), soc_max_wh=float(b.soc_max_wh),
                terminal_value_per_kwh=mid * 0.9,
            )
        if p.kind == OFFICE_KIND and p.office_tariff is not None:
            local = obs.horizon  # the market's wall clock
            now = obs.local_now
            same_month = (local.month == now.month) & (local.year == now.year)
            net = np.maximum(obs.load_wh - obs.pv_wh, 0.0)
            hour = np.asarray(local.hour + local.minute / 60)
            start, end = self.config.peak_hours
            in_hours = (hour >= start) & (hour < end)
            day = horizon_midnights_ns(local)
            day_max = pd.Series(np.where(in_hours, net, 0.0)).groupby(day).transform("max").to_numpy()
            envelope = np.where(in_hours, np.maximum(day_max, net), net)
            kwargs["demand_charge"] = DemandCharge(
                price_per_kw=float(p.office_tariff.demand_charge_per_kw * p.office_tariff.demand_factor()),
                peak_so_far_w=obs.peak_so_far_w * (1 - self.config.peak_margin), applies=np.asarray(same_month),
                margin_wh=envelope - net,
            )
        if self.config.mode == "green":
            if self.config.green_premium_per_kwh is None or self.config.green_max_extra_cost is None:
                raise AgentInputError("config.green_premium_per_kwh", "an amount, or the config resolved for the "
                                      "market first (AgentConfig.for_market; TradingAgent.act does it)")
            kwargs.update(renewable_wh=np.full(n, np.inf), mode="green",
                          renewable_premium_per_kwh=float(self.config.green_premium_per_kwh),
                          green_max_extra_cost=float(self.config.green_max_extra_cost))
        buy_price = kwargs.pop("p2p_buy_price_per_kwh", expected)
        if committed is not None:
            kwargs.update(committed_buy_wh=committed[0], committed_sell_wh=committed[1])
        return PlanInput(
            slot_minutes=slot_minutes, load_wh=load_wh, pv_wh=pv_wh,
            buyback_price_per_kwh=np.full(n, buyback), p2p_buy_price_per_kwh=buy_price,
            p2p_sell_price_per_kwh=sell_price, **kwargs,  # type: ignore[arg-type]
        )

    def _chargers_in_use(self, obs: Observation) -> np.ndarray:
        """1 in the office's slots whose start falls in its charger hours of a business day, else 0."""
        p = self.participant
        local = obs.horizon
        hour = np.asarray(local.hour + local.minute / 60)
        business = np.array([p.is_business_day(d) for d in local.date])
        start, end = p.charger_hours
        return (business & (hour >= start) & (hour < end)).astype(float)

    def _committed(self, starts: tuple[datetime, ...], market: MarketAccess,
                   resting: dict[datetime, list[tuple[str, OpenOrder]]], revising: list[bool]
                   ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """Per horizon slot, Wh bought and sold so far (its trades), and its position: the trades
        plus the resting orders it keeps (all but those of the slots it revises this step, which
        the fresh plan replaces). The position is the plan's fixed input: a resting ask may fill
        at any moment, so the energy it offers is not planned for anything else."""
        n = len(starts)
        bought, sold = np.zeros(n), np.zeros(n)
        rest_buy, rest_sell = np.zeros(n), np.zeros(n)
        for k, slot in enumerate(starts):
            if slot in self._ordered:
                bought[k], sold[k] = market.position(slot)
            if not revising[k]:
                for _, oo in resting.get(slot, []):
                    if oo.order.side == BUY_SIDE:
                        rest_buy[k] += oo.remaining_wh
                    else:
                        rest_sell[k] += oo.remaining_wh
        return (bought, sold), (bought + rest_buy, sold + rest_sell)

    def _visible_bids(self, obs: Observation, starts: tuple[datetime, ...], market: MarketAccess,
                      mine: dict[datetime, list[tuple[str, OpenOrder]]]) -> np.ndarray | None:
        """A car's view of the public book: per slot it will be parked at the office (gate open,
        no bid of its own there), the best bid; NaN elsewhere. ``None`` for other participants."""
        if self.participant.kind != CAR_KIND or obs.car_location is None:
            return None
        out = np.full(len(starts), np.nan)
        office = LOCATION_CODES["office"]
        bidding = {slot for slot, orders in mine.items() if any(oo.order.side == BUY_SIDE for _, oo in orders)}
        for k, slot in enumerate(starts):
            if obs.car_location[k] == office and slot not in bidding and market.settings.gate_is_open(slot, obs.now):
                best = market.best_bid(slot)
                if best is not None:
                    out[k] = float(best)
        return out

    # -- positions and orders -------------------------------------------------------------
    def _positions(self, result: Plan, obs: Observation, k: int, bought_wh: int = 0,
                   sold_wh: int = 0) -> list[tuple[str, list[tuple[object, int]]]]:
        """Per side, the orders the plan wants for horizon slot ``k``: (tag or requirements, Wh),
        less what has already traded for the slot (``bought_wh`` / ``sold_wh``)."""
        p = self.participant
        net = float(result.p2p_buy_wh[k]) + float(result.v2b_buy_wh[k]) - float(result.p2p_sell_wh[k])
        if p.battery is None and p.kind == HOME_KIND and net != 0 and self.config.hedge == "fixed":
            net *= self.config.fixed_hedge[0] if net > 0 else self.config.fixed_hedge[1]
        elif p.battery is None and p.kind == HOME_KIND and net != 0 and obs.load_quantiles_wh is not None:
            # the cost-minimising quantile of the net position, on the side the plan trades
            traded = net + hedge_shift(obs, k, self._critical_fractile(obs, k), self._net_quantiles_of(obs))
            net = max(traded, 0.0) if net > 0 else min(traded, 0.0)
        # what is still wanted on each side; energy already traded is never traded back
        buy = max(round(max(net, 0.0)) - bought_wh, 0)
        sell = max(round(max(-net, 0.0)) - sold_wh, 0)
        if p.office_tariff is not None and sell:
            # with a demand charge, never sell what a forecast error could turn into a new peak: if
            # load came 50 % above and PV at 30 % of forecast, import must stay within the month's peak
            slot_h = self._slot_hours(obs)
            worst_import_wh = 1.5 * float(obs.load_wh[k]) - 0.3 * float(obs.pv_wh[k]) + sell
            room = obs.peak_so_far_w * slot_h - worst_import_wh
            sell = max(0, min(sell, round(sell + room)))
        bids: list[tuple[object, int]] = []
        if buy and self.config.mode == "green":
            # the plan's renewable part is bid for renewable energy only, with the premium
            green = min(buy, max(round(float(result.renewable_buy_wh[k])) - bought_wh, 0))
            if green:
                premium = self.config.green_premium_per_kwh or Decimal(0)
                bids.append(((Requirement.of({"source": list(RENEWABLE_SOURCES)}, premium),), green))
            buy -= green
        if buy:
            bids.append((self._requirements(), buy))
        wants: list[tuple[str, list[tuple[object, int]]]] = [(BUY_SIDE, bids)]
        offers: list[tuple[object, int]] = []
        if sell:
            if p.kind == CAR_KIND:
                offers.append((self._tag("phv", p.id, "office"), sell))
            else:
                solar = min(sell, max(0, round(float(obs.pv_wh[k] - obs.load_wh[k])))) if p.has_pv else 0
                if solar:
                    offers.append((self._tag("solar", p.pv_device or p.id, p.id), solar))
                if sell - solar:
                    source = "battery" if p.battery is not None else ("solar" if p.has_pv else "grid")
                    device = p.battery_id if p.battery is not None else (p.pv_device or p.id)
                    offers.append((self._tag(source, device, p.id), sell - solar))
        wants.append((SELL_SIDE, offers))
        return wants

    def _requirements(self) -> tuple[Requirement, ...]:
        """Renewable sources preferred (no premium), anything else accepted."""
        return _RENEWABLE_FIRST

    def _tag(self, source: str, device: str, site: str) -> Tag:
        """The tag of this participant's offers of ``source`` energy from ``device`` at ``site`` (built once)."""
        key = (source, self.participant.id, device, site)
        tag = self._tags.get(key)
        if tag is None:
            tag = self._tags[key] = Tag.of(source=source, producer=self.participant.id, device=device, site=site)
        return tag

    def _order(self, slot: datetime, label: str, side: str, energy_wh: int, price: Decimal, now: datetime,
               tag: object = None, requirements: object = ()) -> Order:
        self._order_seq += 1
        p = self.participant.id
        oid = f"{p}-{label}-{side[0]}{self._order_seq}"
        return Order(oid, p, side, slot, energy_wh, price, now,
                     tag=tag if isinstance(tag, Tag) else Tag(),
                     requirements=requirements if isinstance(requirements, tuple) else ())

    def _critical_fractile(self, obs: Observation, k: int) -> float:
        """``(retail − p2p) / (retail − buyback)`` for slot ``k`` (see :func:`hedge_shift`), with the
        expected P2P price the plan uses (the market's reference price, else the midpoint)."""
        p = self.participant
        retail = float(self._grid_price_per_kwh(obs)[k])
        buyback = float(p.buyback.price_per_kwh) if p.buyback is not None else 0.0
        expected = float(self._reference) if self._reference is not None else (retail + buyback) / 2
        return critical_fractile(retail, buyback, expected)

    # -- reservation prices ---------------------------------------------------------------
    def _retail_per_kwh(self, obs: Observation) -> float:
        """A home's (or car's owner's) price of its next utility kWh this month; the office's: its
        contract's price now. A participant with no utility tariff has no utility to buy from: the
        most a kWh can cost it is the market's price maximum (in the market's currency)."""
        cached = self._retail
        if cached is not None and cached[0] is obs and cached[1] == self._price_max:
            return cached[2]
        price = self._retail_now(obs)
        self._retail = (obs, self._price_max, price)
        return price

    def _retail_now(self, obs: Observation) -> float:
        p = self.participant
        month = obs.local_now.date()
        if p.retail is None:
            if p.office_tariff is not None:
                return float(self._grid_price_per_kwh(obs)[0])
            if self._price_max is None:
                raise AgentInputError("participant.retail", "a retail tariff, or the market's price maximum "
                                      "(known once the agent acts on a market)")
            return float(self._price_max)
        return float(marginal_retail_per_kwh(p.retail, month, projected_month_import_wh(obs.local_now,
                                                                                         obs.month_import_wh)))

    def _grid_price_per_kwh(self, obs: Observation) -> np.ndarray:
        """Per horizon slot, the price of a utility kWh: the office's contract price of the slot's
        time band with fuel-cost adjustment and surcharge; a home's next-kWh retail price."""
        cached = self._grid_prices
        if cached is not None and cached[0] is obs:
            return cached[1]
        p = self.participant
        t = p.office_tariff
        if t is None:
            prices = np.full(len(obs.horizon), self._retail_per_kwh(obs))
        else:
            month = obs.local_now.date()
            extra = float(t.fuel_adjustment_rate(month) + t.surcharge_rate(month))
            local = [ts.to_pydatetime() for ts in obs.horizon]
            prices = np.array([float(x) for x in t.unit_prices(local)]) + extra
        prices.setflags(write=False)
        self._grid_prices = (obs, prices)
        return prices

    def _net_quantiles_of(self, obs: Observation) -> np.ndarray | None:
        """:func:`net_quantiles` of ``obs``'s load and PV quantiles over the horizon (computed once
        per observation); ``None`` without quantiles."""
        if obs.load_quantiles_wh is None or not obs.quantile_levels:
            return None
        cached = self._net_quantiles
        if cached is None or cached[0] is not obs:
            cached = self._net_quantiles = (obs, net_quantiles(obs.quantile_levels, obs.load_quantiles_wh,
                                                               obs.pv_quantiles_wh))
        return cached[1]

    def _grid_reservation(self, obs: Observation, ceiling: Decimal) -> list[Decimal]:
        """Per slot, the price of the utility kWh a purchase replaces (a buyer's limit without any
        demand-charge value)."""
        if self.participant.office_tariff is None:
            return [min(Decimal(str(round(self._retail_per_kwh(obs), 2))), ceiling)] * len(obs.horizon)
        return [min(Decimal(str(round(float(g), 2))), ceiling) for g in self._grid_price_per_kwh(obs)]

    def _buy_reservation(self, obs: Observation, inp: PlanInput, result: Plan, ceiling: Decimal
                         ) -> tuple[list[Decimal], list[bool], np.ndarray | None]:
        """Per slot, the highest price worth paying, whether the slot is urgent (the office's slots
        that may set the month's peak where its plan buys: it re-prices them every step), and the
        office's peak quantity (Wh; ``None`` for others): how much of its purchase it bids that
        price for.

        The office never pays more than a kWh saves it: its contract's energy price of the slot
        (fuel-cost adjustment and surcharge included) plus, in a slot that may set the month's
        peak, that kWh's expected demand-charge saving (:meth:`_demand_value_per_kwh`), and only for
        the energy its plan cuts the peak with: what the cars at its chargers can spare in a day
        (``v2b_spare_hours`` of the chargers' power), shared among the day's slots at risk by their
        chance of being the day's highest (and never more than the chargers deliver in a slot). The
        rest of a purchase is bid at grid price: energy beyond that is not what the value was
        reckoned for (measured on the default month, letting every purchase of a slot at risk bid
        the value bought 1,287 kWh at 44.7 JPY/kWh without cutting the peak)."""
        p = self.participant
        n = len(obs.horizon)
        if p.office_tariff is None:
            base = self._grid_reservation(obs, ceiling)
            return base, [False] * n, None
        value, share = self._demand_value_per_kwh(obs, inp, with_share=True)
        reserve = [min(Decimal(str(round(float(g + v), 2))), ceiling)
                   for g, v in zip(inp.retail_price_per_kwh, value, strict=True)]
        slot_h = self._slot_hours(obs)
        in_use = self._chargers_in_use(obs) if p.charger_power_w else np.zeros(n)
        local = obs.horizon
        day = horizon_midnights_ns(local)
        hour = np.asarray(local.hour + local.minute / 60)
        start, end = self.config.peak_hours
        in_hours = (hour >= start) & (hour < end)
        per_day = (end - start) / slot_h  # peak-hours slots in a whole day
        days = np.unique(day, return_inverse=True)[1]
        left = np.bincount(days, weights=in_hours.astype(float))[days]  # each slot's day's count (whole numbers)
        # what the cars can spare in a day, in proportion to the day's peak hours still ahead
        budget = p.charger_power_w * self.config.v2b_spare_hours * np.minimum(left / per_day, 1.0)
        peak_wh = np.minimum(budget * share, in_use * p.charger_power_w * slot_h) * (value > 0)
        buys = result.p2p_buy_wh + result.v2b_buy_wh
        peak_wh = np.minimum(peak_wh, buys)
        urgent = [bool(peak_wh[k] > 0) for k in range(n)]
        return reserve, urgent, peak_wh

    def _demand_value_per_kwh(self, obs: Observation, inp: PlanInput, with_share: bool = False
                              ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Per slot, what a kWh bought there is expected to save the office in demand charge.

        A kWh bought in a slot lowers its average import by ``1/slot_hours`` kW; that lowers the
        month's peak only if the slot would have been the month's highest. So a kWh is worth
        ``rate / slot_hours × Pr(the slot sets the month's peak)`` (``rate``: the demand charge per
        kW·month with its power-factor factor), the chance taken as the product of:

        * ``P``: its day's highest slot exceeds the month's peak so far — from the slot's forecast
          with the plan's peak-hours envelope (every slot of ``peak_hours`` as high as the day's
          highest forecast) and a normal forecast error of ``peak_forecast_error`` (relative);
          nothing where ``P < peak_risk_min`` or in next month's slots;
        * ``w / Σw`` over the at-risk slots of its local day: it is the day's highest, ``w`` being
          each slot's own chance of exceeding the peak so far from its forecast *without* the
          envelope (the forecast's shape, blurred by its error; alike if none has any);
        * ``(1 − q)^D``: no business day left in the month after the slot's day goes higher, where
          ``D`` is their number (its calendar) and ``q`` the share of the past business days its
          meter read (``Observation.past_day_peaks_w``) whose highest slot reached the slot's
          forecast level. Early in the month a slot under the usual business-day peak is worth
          nothing (some later day will beat it); a forecast above anything seen, late in the
          month, is worth the demand charge itself, and the office bids up to the market's cap.
        """
        p = self.participant
        t = p.office_tariff
        n = len(obs.horizon)
        dc = inp.demand_charge
        none = (np.zeros(n), np.zeros(n)) if with_share else np.zeros(n)
        if t is None or dc is None or dc.applies is None or not dc.applies.any():
            return none
        slot_h = self._slot_hours(obs)
        net = inp.load_wh - inp.pv_wh + inp.committed_sell_wh - inp.committed_buy_wh
        forecast = np.where(dc.applies, net + (dc.margin_wh if dc.margin_wh is not None else 0.0), 0.0)
        level = obs.peak_so_far_w * slot_h
        sigma = np.maximum(self.config.peak_forecast_error * forecast, 1e-9)
        z = (level - forecast) / sigma
        chance = np.where(forecast > 0, 0.5 * _erfc(z / math.sqrt(2)), 0.0)
        chance = np.where(chance >= self.config.peak_risk_min, chance, 0.0)
        if not chance.any():
            return none
        local = obs.horizon
        day = horizon_midnights_ns(local)
        # which of the day's at-risk slots comes out highest: in proportion to each one's own chance
        # of exceeding the peak so far (its forecast without the envelope); alike if none has any
        own = np.where(dc.applies, net, 0.0)
        z_own = (level - own) / np.maximum(self.config.peak_forecast_error * own, 1e-9)
        weight = np.where((chance > 0) & (own > 0), 0.5 * _erfc(z_own / math.sqrt(2)), 0.0)
        # a day whose weights sum above 0 is one with a weight above 0 (they are >= 0): counted, not summed
        days = np.unique(day, return_inverse=True)[1]
        weight = np.where(np.bincount(days, weights=(weight > 0).astype(float))[days] > 0, weight,
                          (chance > 0).astype(float))
        day_total = pd.Series(weight).groupby(day).transform("sum").to_numpy()
        share = np.divide(weight, day_total, out=np.zeros(n), where=day_total > 0)
        now = obs.local_now
        month_end = pd.Timestamp(now.year + now.month // 12, now.month % 12 + 1, 1, tz=local.tz)
        month_days = pd.date_range(now.date(), month_end.date(), freq="D", inclusive="left").date
        business = np.array([p.is_business_day(d) for d in month_days], dtype=np.int64)
        # business days of the month after each slot's day
        days_from_today = np.rint((day - pd.Timestamp(now.date(), tz=local.tz).value) / 86_400e9).astype(np.int64)
        later = np.array([business[k + 1:].sum() for k in np.clip(days_from_today, 0, len(month_days))])
        past = np.asarray(obs.past_day_peaks_w, dtype=float)
        if past.size:
            # the day's level is known to within the forecast's error: q is the chance that a past
            # business day's peak lies above it
            level_w = forecast / slot_h
            scale = np.maximum(self.config.peak_forecast_error * level_w, 1e-9)
            q = np.array([0.5 * _erfc((lv - past) / s / math.sqrt(2)).mean()
                          if c > 0 else 0.0 for lv, s, c in zip(level_w, scale, chance, strict=True)])
        else:
            q = np.zeros(n)
        unbeaten = (1.0 - q) ** later
        rate = float(t.demand_charge_per_kw * t.demand_factor())
        value = rate / slot_h * chance * share * unbeaten
        return (value, share) if with_share else value

    @staticmethod
    def _slot_hours(obs: Observation) -> float:
        if len(obs.horizon) > 1:
            return (obs.horizon[1] - obs.horizon[0]).total_seconds() / 3600
        return 0.5

    def _sell_reservation(self, obs: Observation, inp: PlanInput, settings: MarketSettings) -> list[Decimal]:
        """A seller's floor per slot: its buyback price; a car never sells below the price its
        plan sold at (the usual price, or the bid it saw)."""
        p = self.participant
        floor = p.buyback.price_per_kwh if p.buyback is not None else Decimal(0)
        if p.kind != CAR_KIND:
            return [floor] * len(obs.horizon)
        prices: dict[float, Decimal] = {}  # the same few prices recur over the horizon
        for x in inp.p2p_sell_price_per_kwh.tolist():
            if x not in prices:
                prices[x] = max(floor, settings.floor_to_tick(Decimal(str(round(float(x), 4)))))
        return [prices[x] for x in inp.p2p_sell_price_per_kwh.tolist()]


def _erfc(x: np.ndarray) -> np.ndarray:
    """``np.vectorize(math.erfc)(x)`` (``x`` not empty): ``math.erfc`` of each element as a float, the
    same doubles, without building a vectorize object (and its trial call) at every use: the office
    prices its slots' demand-charge risk with it at every step, once per slot at risk."""
    return np.array([math.erfc(v) for v in x.ravel().tolist()], dtype=float).reshape(x.shape)


def gate_open_flags(settings: MarketSettings, starts: Sequence[datetime], now: datetime) -> list[bool]:
    """``settings.gate_is_open(slot, now)`` for each slot of ``starts`` (strictly increasing), from a
    few of the market's own gate times: gates open and close in slot order (each a fixed offset from
    the slot's start), so the open slots are one run, found by bisection."""
    first = bisect_left(starts, True, key=lambda slot: settings.gate_close(slot) > now)
    stop = bisect_left(starts, True, key=lambda slot: settings.gate_open(slot) > now)
    return [first <= k < stop for k in range(len(starts))]


def _same_book(current: list[tuple[str, OpenOrder]], wanted: list[Order]) -> bool:
    """True if the open orders already say what the new ones would (side, tag, requirements,
    price, and energy within 10 % or 50 Wh): then they stay, keeping time priority."""
    if len(current) != len(wanted):
        return False
    def key(o: Order) -> tuple[str, str, str, Decimal]:
        return (o.side, str(o.tag), repr(o.requirements), o.price_per_kwh)

    remaining = sorted((key(oo.order), oo.remaining_wh) for _, oo in current)
    desired = sorted((key(o), o.energy_wh) for o in wanted)
    for (key_a, wh_a), (key_b, wh_b) in zip(remaining, desired, strict=True):
        if key_a != key_b or abs(wh_a - wh_b) > max(50, wh_b // 10):
            return False
    return True


def critical_fractile(retail_per_kwh: float, buyback_per_kwh: float, p2p_per_kwh: float) -> float:
    """The newsvendor's critical fractile ``(retail − p2p) / (retail − buyback)``, in [0, 1]
    (0.5 when retail does not exceed buyback: no asymmetry to hedge)."""
    spread = retail_per_kwh - buyback_per_kwh
    if spread <= 0:
        return 0.5
    return min(1.0, max(0.0, (retail_per_kwh - p2p_per_kwh) / spread))


def net_quantiles(levels: tuple[float, ...], load_q: np.ndarray, pv_q: np.ndarray | None) -> np.ndarray:
    """Quantiles (at ``levels``) of load − PV from the quantiles of each, per slot.

    Load and PV forecast errors are taken as independent: the net's median is the difference of
    the medians (the level nearest 0.5), and its distance from it at level τ is the root sum of
    squares of the load's distance at τ and the PV's at 1 − τ (PV high is net low)."""
    lv = np.asarray(levels, dtype=float)
    if pv_q is None:
        return np.asarray(load_q, dtype=float)
    plain = lv.tolist()
    mid = _nearest_level(plain, 0.5)
    mirror = [_nearest_level(plain, 1 - t) for t in plain]
    d_load = load_q - load_q[mid]
    d_pv = pv_q[mid] - pv_q[mirror]  # PV at 1 − τ below its median raises the net
    centre = load_q[mid] - pv_q[mid]
    spread = np.sqrt(d_load**2 + d_pv**2) * np.sign(lv - 0.5)[:, None]
    return centre + spread


def hedge_shift(obs: Observation, k: int, fractile: float, net_q: np.ndarray | None = None) -> float:
    """How far (Wh) a home without storage moves its planned net trade for horizon slot ``k``
    (> 0 buy, < 0 sell) from its point forecast: ``q − (load − PV)`` of the point forecasts.

    Newsvendor rule: trading ``q`` for a net need ``X = load − PV`` costs ``p·q`` at the P2P price
    ``p``, plus the shortfall ``(X − q)⁺`` bought at retail ``r`` less the excess ``(q − X)⁺``
    sold back at buyback ``b``. Its expected cost is least where ``P(X ≤ q) = (r − p)/(r − b)``
    — the same fractile for a deficit bought and a surplus sold. ``q`` is read from the net's
    quantiles (:func:`net_quantiles`), linear between levels and held at the outermost ones; with
    no quantiles it is the point forecast (no shift). ``net_q``: those quantiles over the whole
    horizon when already computed (the same values, element by element).
    """
    point = float(obs.load_wh[k]) - float(obs.pv_wh[k])
    if obs.load_quantiles_wh is None or not obs.quantile_levels:
        return 0.0
    if net_q is not None:
        net = net_q[:, k]
    else:
        pv = obs.pv_quantiles_wh[:, k] if obs.pv_quantiles_wh is not None else None
        net = net_quantiles(obs.quantile_levels, obs.load_quantiles_wh[:, k:k + 1],
                            pv[:, None] if pv is not None else None)[:, 0]
    return interp_one(fractile, obs.quantile_levels, net.tolist()) - point


def _nearest_level(levels: list[float], target: float) -> int:
    """``int(np.argmin(np.abs(np.asarray(levels) - target)))`` in plain floats (the same doubles, the
    first of equal distances): the agents' order step asks it for every level at every step."""
    return min(range(len(levels)), key=lambda i: abs(levels[i] - target))


def interp_one(x: float, xp: Sequence[float], fp: Sequence[float]) -> float:
    """``float(np.interp(x, xp, fp))`` for one ``x`` and increasing ``xp``, in plain floats: numpy's own
    steps and formula (held at the ends; ``fp[j]`` at a knot; ``slope * (x - xp[j]) + fp[j]`` between,
    from the other knot if that is NaN), so the same double. A call of ``np.interp`` on one value costs
    about ten times this (array conversions), and every home without storage hedges each open slot
    of its horizon with it at every step."""
    n = len(xp)
    if n < 2 or x != x:
        return float(np.interp(x, xp, fp))
    if x < xp[0]:
        return float(fp[0])
    if x >= xp[-1]:
        return float(fp[-1])
    j = bisect_right(xp, x) - 1  # xp[j] <= x < xp[j + 1]
    x0, y0, y1 = float(xp[j]), float(fp[j]), float(fp[j + 1])
    if x0 == x:
        return y0
    x1 = float(xp[j + 1])
    slope = (y1 - y0) / (x1 - x0)
    y = slope * (x - x0) + y0
    if y != y:
        y = slope * (x - x1) + y1
        if y != y and y0 == y1:
            y = y0
    return y


def projected_month_import_wh(local_now: datetime, month_import_wh: int) -> int:
    """The month's utility imports [Wh] projected from those so far (``MONTH_PROJECTION_MIN_DAYS``): so far ÷
    the share of the month passed at ``local_now`` (the market's wall clock), never less than so far."""
    start = local_now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start + timedelta(days=32)).replace(day=1)
    passed_s = (local_now - start).total_seconds()
    if passed_s < MONTH_PROJECTION_MIN_DAYS * 86_400:
        return month_import_wh
    share = passed_s / (following - start).total_seconds()
    return max(month_import_wh, round(month_import_wh / share))


def car_leftover_value_per_kwh(fuel_per_kwh: float, retail_per_kwh: float, price_max_per_kwh: Decimal | None,
                               charge_efficiency: float) -> float:
    """What a kWh left on board at a car's plan's end is worth [currency/kWh stored]: the fuel it displaces.

    The plan cannot see the trips beyond its horizon; a kWh on board drives a kWh the engine would otherwise
    drive (``fuel_per_kwh`` = fuel price ÷ km per litre × km per kWh: 42 JPY at the scenario's 134 JPY/L,
    30.8 km/L and 9.74 km/kWh). Valued below the price of charging (it was 0.9 × the expected P2P price,
    ≈ 23 JPY against ≈ 30 JPY per kWh stored from the owner's tariff), a car never charged beyond its
    forecast trips, and every trip the forecast missed ran on fuel (on the default month the agents' cars
    fell 55 kWh short, against 13 kWh for the baseline's cars, charged full as soon as they are home).
    Capped at what putting the kWh back could cost at most: the dearer of the owner's tariff and the
    market's price maximum, through the charger's losses (no cap where neither is known).
    """
    dearest = max(retail_per_kwh, float(price_max_per_kwh) if price_max_per_kwh is not None else math.inf)
    return min(fuel_per_kwh, dearest / charge_efficiency)


def marginal_retail_per_kwh(tariff: RetailTariff, month: object, month_import_wh: int) -> Decimal:
    """Price of the next kWh this month on a tiered tariff, fuel-cost adjustment and surcharge included."""
    kwh = Decimal(month_import_wh) / 1000
    return (tariff.energy_charge(kwh + 1) - tariff.energy_charge(kwh)
            + tariff.fuel_adjustment_rate(month) + tariff.surcharge_rate(month))  # type: ignore[arg-type]
