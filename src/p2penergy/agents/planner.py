"""One agent's plan as a linear programme (HiGHS), over the horizon of a :class:`PlanInput`.

Variables per slot ``i`` (Wh): grid import/export, P2P buy/sell, V2B purchase, renewable
part of the P2P purchase (green), PV curtailment, battery charge/discharge/SoC, and per
car charge/discharge/SoC/shortfall; one peak variable (W) with a demand charge.

Constraints per slot::

    import + buy + v2b + bat_dis + Σ car_dis − export − sell − bat_ch − Σ car_ch − curtail = load − pv
    sell + export − bat_dis − Σ car_dis + curtail ≤ pv          (sell only own energy)
        (+ Σ car_ch in the slots of :func:`_no_pass_through`: cars charge only from own energy there)
    soc[i] = soc[i−1] + ηc·bat_ch − bat_dis/ηd,  soc_min ≤ soc ≤ soc_max
    car_soc[i] = car_soc[i−1] + ηc·ch − dis/ηd − drive + shortfall,  soc_min ≤ car_soc ≤ usable
    ch, dis ≤ parked·power·slot_hours
    (import + buy − export − sell + margin) / slot_hours ≤ peak   (slots where the charge applies)
    Σ v2b over the slots of a group ≤ v2b_group_max_wh         (what parked cars can spare a day)
    renewable ≤ buy,  renewable ≤ renewable_wh

Objective (economy): Σ price·energy/1000 for imports, purchases, fuel, renewable premium,
minus sales, plus ``price_per_kw·(peak − peak_so_far)/1000``, minus the terminal value of
stored energy. Green mode solves economy first (cost C*), then maximises Σ renewable
subject to ``objective ≤ C* + green_max_extra_cost`` (a lexicographic, budget-bounded
preference), breaking ties by cost.

The agent's position is a fixed input: ``buy ≥ committed_buy`` and ``sell ≥ committed_sell``
(the plan's market columns are totals). A committed sale comes from the site's own energy
where it can; what the utility must cover of it (``cover ≤ committed_sell``, relaxing the
own-energy row) is a last resort priced at ``_COVER_MARKUP`` × the dearest price in the plan,
so stored energy is kept for commitments before any new sale. ``spill = max(committed_buy −
committed_sell − load, 0)``: bought energy the site cannot use in its slot may leave through
the meter (exports allowed that much beyond their cap). So a plan is feasible whatever its position.

A car cannot charge and discharge in one slot (the physics does one or the other), but no linear
programme can forbid both exactly: the midpoint of a charging and a discharging operating point is
a point doing both. Doing both is pointless wherever the store's round trip loses more than a sale
could earn over a purchase of the same slot, and only there does the plan need a rule; see
:func:`_no_pass_through` (its docstring has the argument). The argument is about cost: green mode's
second stage values renewable purchases themselves, so within its budget it may still buy renewable
energy into a store and pass it to an outlet in one slot (known gap).

Plans without storage, demand charge, green stage or position are separable by slot and are solved
in closed form instead (:func:`_plan_by_slot`, the same optimum; tested against the LP).
"""

from __future__ import annotations

import threading

import highspy
import numpy as np

from p2penergy.agents.plan_input import AgentInputError, Plan, PlanInput
from p2penergy.optim import LpBuilder, SolverError, new_highs, solve_optimal

_INF = highspy.kHighsInf
_TIE_BREAK = 1e-4  # weight of cost in the green stage (renewable Wh dominate)
# Price of covering a committed sale from the utility, as a multiple of the dearest price in the
# plan (any sale, purchase or fuel): dearer than anything a kWh could earn elsewhere in the
# horizon, so the plan never frees stored energy for a new sale by passing utility energy through.
_COVER_MARKUP = 2.0
# A price difference [currency per kWh] below which the closed form of committed plans
# (_plan_committed_by_slot) leaves the plan to the LP: HiGHS treats a reduced cost within its dual
# tolerance (1e-7 on costs per Wh, i.e. 1e-4 per kWh) as zero and may stop at any of the tied
# optima; ten times that keeps the closed form to optima HiGHS cannot choose differently.
_UNIQUE_SLOPE_PER_KWH = 1e-3


class PlanningError(SolverError):
    """HiGHS did not reach an optimum (should not happen: every plan has a feasible point)."""


_solvers = threading.local()


def _solver() -> highspy.Highs:
    """This thread's HiGHS instance for plans. Passing a model clears the previous one's solution and
    basis, so every plan solves from scratch exactly as on a new instance (tested); building an
    instance costs about as much as solving a small plan."""
    h = getattr(_solvers, "highs", None)
    if h is None:
        h = _solvers.highs = new_highs()
        # Measured on these small, sparse LPs: dual simplex without presolve is fastest.
        h.setOptionValue("presolve", "off")
        h.setOptionValue("solver", "simplex")
    return h


def _solve(h: highspy.Highs) -> np.ndarray:
    return solve_optimal(h, PlanningError)


def _is_separable(inp: PlanInput) -> bool:
    """No storage, no peak, no green stage: the LP splits into independent slots."""
    green = inp.mode == "green" and bool(inp.renewable_wh.any())
    capped = bool(np.isfinite(inp.grid_import_max_wh).any())
    committed = bool(inp.committed_buy_wh.any() or inp.committed_sell_wh.any())
    return (inp.battery is None and not inp.cars and inp.demand_charge is None and not green and not capped
            and not committed)


def solved_in_closed_form(inp: PlanInput) -> bool:
    """Whether :func:`plan` (``solver="auto"``) solves ``inp`` slot by slot, without HiGHS: a plan without
    storage, peak or green stage (a home without a battery, most steps). A few of the committed kind
    still go to the LP, where their optimum may not be unique (:func:`_plan_committed_by_slot`)."""
    return _is_separable(inp) or _committed_separable(inp)


def _plan_by_slot(inp: PlanInput) -> Plan:
    """The optimum of a separable LP, slot by slot (same cost as HiGHS; tested against it).

    PV first covers the load; the rest of the load is bought from the cheapest sources
    (retail, P2P, V2B within their caps), the rest of the PV sold to the best outlets (P2P,
    utility, curtailment at 0). Then, while the best remaining outlet pays more than the
    cheapest remaining source costs, PV is sold and the load bought instead.
    """
    n = inp.n_slots
    rows = np.arange(n)
    inf = np.full(n, np.inf)
    # sources ascending by price (imp, buy, v2b), outlets descending (sell, exp, curtail at 0)
    src_price = np.stack([inp.retail_price_per_kwh, inp.p2p_buy_price_per_kwh, inp.v2b_price_per_kwh], axis=1)
    src_cap = np.stack([inf, inp.p2p_buy_max_wh, inp.v2b_max_wh], axis=1)
    out_price = np.stack([inp.p2p_sell_price_per_kwh, inp.buyback_price_per_kwh, np.zeros(n)], axis=1)
    out_cap = np.stack([inp.p2p_sell_max_wh, inp.grid_export_max_wh, inf], axis=1)
    s_order = np.argsort(src_price, axis=1, kind="stable")
    o_order = np.argsort(-out_price, axis=1, kind="stable")
    sp, sl = np.take_along_axis(src_price, s_order, 1), np.take_along_axis(src_cap, s_order, 1)
    op, ol = np.take_along_axis(out_price, o_order, 1), np.take_along_axis(out_cap, o_order, 1)
    s_got, o_got = np.zeros((n, 3)), np.zeros((n, 3))
    own = np.minimum(inp.load_wh, inp.pv_wh)
    need, spare = inp.load_wh - own, inp.pv_wh - own
    for j in range(3):  # the last source/outlet with room is unbounded (retail, curtailment)
        take = np.minimum(need, sl[:, j])
        s_got[:, j] += take
        sl[:, j] -= take
        need = need - take
        take = np.minimum(spare, ol[:, j])
        o_got[:, j] += take
        ol[:, j] -= take
        spare = spare - take
    for _ in range(6):  # each step exhausts own PV, an outlet or a source: at most 6 steps
        si = np.argmax(sl > 0, axis=1)
        oi = np.argmax(ol > 0, axis=1)
        active = (own > 0) & (op[rows, oi] > sp[rows, si])
        if not active.any():
            break
        take = np.where(active, np.minimum(own, np.minimum(ol[rows, oi], sl[rows, si])), 0.0)
        o_got[rows, oi] += take
        ol[rows, oi] -= take
        s_got[rows, si] += take
        sl[rows, si] -= take
        own = own - take
    src_flow, out_flow = np.zeros((n, 3)), np.zeros((n, 3))
    np.put_along_axis(src_flow, s_order, s_got, 1)
    np.put_along_axis(out_flow, o_order, o_got, 1)
    flows = {"imp": src_flow[:, 0], "buy": src_flow[:, 1], "v2b": src_flow[:, 2],
             "sell": out_flow[:, 0], "exp": out_flow[:, 1], "curt": out_flow[:, 2]}
    k = 1.0 / 1000.0
    cost = k * float(
        flows["imp"] @ inp.retail_price_per_kwh + flows["buy"] @ inp.p2p_buy_price_per_kwh
        + flows["v2b"] @ inp.v2b_price_per_kwh - flows["exp"] @ inp.buyback_price_per_kwh
        - flows["sell"] @ inp.p2p_sell_price_per_kwh
    )
    net = flows["imp"] + flows["buy"] - flows["exp"] - flows["sell"]
    zeros = np.zeros(n)
    empty = np.zeros((0, n))
    return Plan(
        mode=inp.mode, grid_import_wh=flows["imp"], grid_export_wh=flows["exp"], p2p_buy_wh=flows["buy"],
        p2p_sell_wh=flows["sell"], v2b_buy_wh=flows["v2b"], renewable_buy_wh=zeros, curtail_wh=flows["curt"],
        battery_charge_wh=zeros.copy(), battery_discharge_wh=zeros.copy(), soc_wh=zeros.copy(),
        car_charge_wh=empty, car_discharge_wh=empty.copy(), car_soc_wh=empty.copy(), shortfall_wh=empty.copy(),
        cost=cost, terminal_value=0.0, peak_w=float(max(net.max(), 0.0) / inp.slot_hours), economy_cost=cost,
    )


def _committed_separable(inp: PlanInput) -> bool:
    """A plan of :func:`_plan_committed_by_slot`'s kind: no storage, peak, green stage, V2B or utility
    caps, and a position of committed purchases only (a home without a battery, most steps)."""
    return (inp.battery is None and not inp.cars and inp.demand_charge is None
            and not (inp.mode == "green" and bool(inp.renewable_wh.any()))
            and bool(np.isinf(inp.grid_import_max_wh).all()) and bool(np.isinf(inp.grid_export_max_wh).all())
            and not inp.v2b_max_wh.any() and not inp.committed_sell_wh.any() and bool(inp.committed_buy_wh.any()))


def _lowest_on(lo: np.ndarray, hi: np.ndarray, kink: np.ndarray, left: np.ndarray,
               right: np.ndarray) -> np.ndarray | None:
    """Per slot, the minimiser over ``[lo, hi]`` of a convex piecewise-linear function with slope
    ``left`` below ``kink`` and ``right`` (> ``left``) above it [per kWh]; ``None`` where some slot with
    room (``lo < hi``) may have more than one: a slope within :data:`_UNIQUE_SLOPE_PER_KWH` of zero on
    the part of ``[lo, hi]`` it applies to."""
    below = hi <= kink  # only the left piece is in the interval
    above = lo >= kink  # only the right piece
    across = ~below & ~above
    slope_lo = np.where(above, right, left)  # slope just above lo
    slope_hi = np.where(below, left, right)  # slope just below hi
    flat = (np.abs(slope_lo) <= _UNIQUE_SLOPE_PER_KWH) | (np.abs(slope_hi) <= _UNIQUE_SLOPE_PER_KWH)
    if (flat & (lo < hi)).any():
        return None
    return np.where(slope_lo > 0, lo, np.where(slope_hi < 0, hi, np.where(across, kink, lo)))


def _plan_committed_by_slot(inp: PlanInput) -> Plan | None:
    """The LP's optimum of a :func:`_committed_separable` plan, slot by slot, where it is unique;
    ``None`` (solve the LP) where it may not be.

    In slot ``i`` with ``need = load − pv``, the LP's columns are import, export, purchase
    ``buy ∈ [cb, max(buy_max, cb)]`` and sale ``sell ∈ [0, sell_max]``; its rows the balance
    ``import + buy − export − sell = need`` and "sell only own energy" ``sell + export ≤ pv + spill``
    (``spill = max(cb − load, 0)``). Given ``buy`` and ``sell``, the cheapest import and export are
    unique unless retail equals buyback: with retail above buyback, export ``max(g, 0)`` and import
    ``max(−g, 0)`` for ``g = buy − sell − need``; with buyback above retail (a FIT above the tariff),
    export all the row allows, ``pv + spill − sell``, and import ``load + spill − buy``. Either way
    the own-energy row then reads ``sell ≤ pv + spill`` and ``buy ≤ load + spill``, and what is left is
    a piecewise-linear cost of ``buy`` and ``sell``: with retail above buyback its kink is at
    ``g = 0`` and only one of them may have room (else ``None``); with buyback above, it is linear in
    each. Each is minimised on its interval (:func:`_lowest_on`), uniquely unless a slope is zero
    there. So where every slot's optimum is unique it is the LP's, which HiGHS would find; elsewhere
    this returns ``None`` (tested against HiGHS on random plans).
    """
    load, pv, cb = inp.load_wh, inp.pv_wh, inp.committed_buy_wh
    retail, buyback = inp.retail_price_per_kwh, inp.buyback_price_per_kwh
    buy_price, sell_price = inp.p2p_buy_price_per_kwh, inp.p2p_sell_price_per_kwh
    exports = retail - buyback < -_UNIQUE_SLOPE_PER_KWH  # the slot's export pays more than its import costs
    if not (exports | (retail - buyback > _UNIQUE_SLOPE_PER_KWH)).all():
        return None
    need = load - pv
    spill = np.maximum(cb - load, 0.0)
    buy_hi = np.minimum(np.maximum(inp.p2p_buy_max_wh, cb), load + spill)
    sell_hi = np.minimum(inp.p2p_sell_max_wh, pv + spill)
    buy_room, sell_room = buy_hi > cb, sell_hi > 0
    if (buy_room & sell_room & ~exports).any() or (buy_hi < cb).any() or (sell_hi < 0).any():
        return None
    # buying: cost (buy − retail) per kWh below the need, (buy − buyback) above it (the surplus is
    # exported); where exports pay more, every kWh bought is one less imported: (buy − retail)
    buy = _lowest_on(cb, buy_hi, need, buy_price - retail,
                     np.where(exports, buy_price - retail, buy_price - buyback))
    # selling (buy fixed at cb where there is no room to buy): a kWh sold is one less exported above
    # cb − need and one more imported below it; where exports pay more, always one less exported
    sell = _lowest_on(np.zeros(inp.n_slots), sell_hi, cb - need,
                      buyback - sell_price, np.where(exports, buyback - sell_price, retail - sell_price))
    if buy is None or sell is None:
        return None
    buy = np.where(buy_room, buy, cb)
    sell = np.where(sell_room, sell, 0.0)
    g = buy - sell - need
    imp = np.where(exports, load + spill - buy, np.maximum(-g, 0.0))
    exp = np.where(exports, pv + spill - sell, np.maximum(g, 0.0))
    k = 1.0 / 1000.0
    cost = float((imp @ retail - exp @ buyback + buy @ buy_price - sell @ sell_price) * k)
    net = imp + buy - exp - sell
    n = inp.n_slots
    zeros = np.zeros(n)
    empty = np.zeros((0, n))
    return Plan(
        mode=inp.mode, grid_import_wh=imp, grid_export_wh=exp, p2p_buy_wh=buy, p2p_sell_wh=sell,
        v2b_buy_wh=zeros, renewable_buy_wh=zeros.copy(), curtail_wh=zeros.copy(),
        battery_charge_wh=zeros.copy(), battery_discharge_wh=zeros.copy(), soc_wh=zeros.copy(),
        car_charge_wh=empty, car_discharge_wh=empty.copy(), car_soc_wh=empty.copy(), shortfall_wh=empty.copy(),
        cost=cost, terminal_value=0.0, peak_w=float(max(net.max(), 0.0) / inp.slot_hours), economy_cost=cost,
    )


def _dearest_price(inp: PlanInput) -> float:
    """The highest price of the plan's open channels (retail, and P2P or buyback where their cap
    lets energy through), per kWh: the scale of "dearer than anything" in the plan's currency."""
    prices = [inp.retail_price_per_kwh]
    for price, cap in ((inp.p2p_buy_price_per_kwh, inp.p2p_buy_max_wh),
                       (inp.p2p_sell_price_per_kwh, inp.p2p_sell_max_wh),
                       (inp.buyback_price_per_kwh, inp.grid_export_max_wh)):
        prices.append(np.where(cap > 0, price, 0.0))
    return max(float(np.max(p)) for p in prices)


def _no_pass_through(inp: PlanInput) -> np.ndarray:
    """The slots where the plan's cars may charge only from the site's own energy (PV, or what
    they give themselves), never from a purchase: True where a car charging from a purchase and
    discharging into a sale in the same slot could pay, or where the physics will discharge.

    Charging ``x`` and discharging ``y`` in one slot leaves the same stored energy as charging
    ``x − δ`` and discharging ``y − η·δ`` (``η``: the round trip, charge × discharge efficiency).
    That frees ``δ·(1 − η)`` at the meter; where "sell only own energy" binds, the sale falls by
    ``η·δ`` and the purchase by ``δ``: a gain of ``δ·(b − η·s)`` with ``b`` the purchase's price and
    ``s`` the sale's. So doing both never beats doing the net where ``η·s ≤ b`` for every sale and
    purchase open in the slot; where a sale pays more (``η·s > b``: an office bid above a car's
    price of charging, a FIT export above retail), the plan would pass purchased energy through
    the store. There charging comes from own energy only (the row "sell only own energy" counts
    it), which is what the physics does: a store absorbs the site's surplus or gives to its
    deficit, one or the other. And in a slot whose committed sales exceed its committed purchases
    and forecast PV surplus, the physics discharges (a car delivers what it sold): a charge there
    could only come from the utility's cover of that sale, at its last-resort price.

    Cars only: a car's physics follows its plan (it discharges what it sold, else charges by the
    plan's setpoint). A home battery's physics does not: it absorbs the site's imbalance whatever
    the plan said, so a plan that overlaps charge and discharge is netted at the meter; and a rule
    on every slot where a sale could pay would also forbid charging for a sale in another slot.
    """
    etas = [car.charge_efficiency * car.discharge_efficiency for car in inp.cars]
    if not etas:
        return np.zeros(inp.n_slots, dtype=bool)
    eta = max(etas)
    best_sale = np.maximum(np.where(inp.p2p_sell_max_wh > 0, inp.p2p_sell_price_per_kwh, -_INF),
                           np.where(inp.grid_export_max_wh > 0, inp.buyback_price_per_kwh, -_INF))
    cheapest = np.minimum.reduce([np.where(inp.grid_import_max_wh > 0, inp.retail_price_per_kwh, _INF),
                                  np.where(inp.p2p_buy_max_wh > 0, inp.p2p_buy_price_per_kwh, _INF),
                                  np.where(inp.v2b_max_wh > 0, inp.v2b_price_per_kwh, _INF)])
    surplus = np.maximum(inp.pv_wh - inp.load_wh, 0.0)
    owed = inp.committed_sell_wh > inp.committed_buy_wh + surplus
    return (eta * best_sale > cheapest) | owed



def _floor(soc_min_wh: float, floor_wh: np.ndarray | None) -> object:
    """A store's lowest state of charge per slot: its minimum, or its reserve target where higher."""
    return soc_min_wh if floor_wh is None else np.maximum(soc_min_wh, floor_wh)

def plan(inp: PlanInput, *, solver: str = "auto") -> Plan:
    """The agent's optimal :class:`Plan` (deterministic: one HiGHS thread).

    ``solver="auto"`` solves plans without storage, peak or green stage slot by slot in
    closed form (the same optimum, vectorised: about 10x faster); ``"lp"`` always builds the LP.
    """
    if not isinstance(inp, PlanInput):
        raise AgentInputError("inp", "a PlanInput")
    if solver not in ("auto", "lp"):
        raise AgentInputError("solver", "auto or lp")
    if solver == "auto" and _is_separable(inp):
        return _plan_by_slot(inp)
    if solver == "auto" and _committed_separable(inp):
        by_slot = _plan_committed_by_slot(inp)
        if by_slot is not None:
            return by_slot
    n = inp.n_slots
    hours = inp.slot_hours
    k = 1.0 / 1000.0  # price per kWh -> per Wh
    b = LpBuilder()
    slots = np.arange(n)

    cbuy, csell = inp.committed_buy_wh, inp.committed_sell_wh
    spill = np.maximum(cbuy - csell - inp.load_wh, 0.0)
    imp = b.cols(n, inp.retail_price_per_kwh * k, upper=inp.grid_import_max_wh)
    exp = b.cols(n, -inp.buyback_price_per_kwh * k, upper=inp.grid_export_max_wh + spill)
    buy = b.cols(n, inp.p2p_buy_price_per_kwh * k, lower=cbuy, upper=np.maximum(inp.p2p_buy_max_wh, cbuy))
    sell = b.cols(n, -inp.p2p_sell_price_per_kwh * k, lower=csell, upper=np.maximum(inp.p2p_sell_max_wh, csell))
    # Columns that can only be zero are left out (smaller LP, faster solve).
    v2b = b.cols(n, inp.v2b_price_per_kwh * k, upper=inp.v2b_max_wh) if inp.v2b_max_wh.any() else None
    # Curtailment is only ever needed when exports are capped (PV must go somewhere).
    curtail = b.cols(n, 0.0, upper=inp.pv_wh) if np.isfinite(inp.grid_export_max_wh).any() else None
    # (curtailment of PV only: committed purchases that cannot be used leave through `spill`)
    green = inp.mode == "green" and bool(inp.renewable_wh.any())
    ren = b.cols(n, inp.renewable_premium_per_kwh * k, upper=inp.renewable_wh) if green else None

    balance = b.rows(n, inp.load_wh - inp.pv_wh, inp.load_wh - inp.pv_wh)
    own = b.rows(n, -_INF, inp.pv_wh + spill)
    dearest = _dearest_price(inp)
    fuel = [_COVER_MARKUP * dearest if car.fallback_cost_per_kwh is None else car.fallback_cost_per_kwh
            for car in inp.cars]
    if csell.any():
        cover = b.cols(n, _COVER_MARKUP * max([dearest, *fuel]) * k, upper=csell)
        b.add(own, cover, -1.0)
    for cols, coef in ((imp, 1.0), (buy, 1.0), (v2b, 1.0), (exp, -1.0), (sell, -1.0), (curtail, -1.0)):
        if cols is not None:
            b.add(balance, cols, coef)
    for cols in (sell, exp, curtail):
        if cols is not None:
            b.add(own, cols, 1.0)
    if v2b is not None and inp.v2b_group is not None and np.isfinite(inp.v2b_group_max_wh):
        for g in np.unique(inp.v2b_group[inp.v2b_group >= 0]):
            members = slots[inp.v2b_group == g]
            b.add(np.full(members.size, b.rows(1, -_INF, inp.v2b_group_max_wh)[0]), v2b[members], 1.0)
    if ren is not None:
        ren_rows = b.rows(n, -_INF, 0.0)
        b.add(ren_rows, ren, 1.0)
        b.add(ren_rows, buy, -1.0)

    own_only = _no_pass_through(inp)
    bat = inp.battery
    bat_cols = None
    if bat is not None:
        step = bat.power_w * hours
        ch = b.cols(n, 0.0, upper=step)
        dis = b.cols(n, 0.0, upper=step)
        terminal = np.zeros(n)
        terminal[-1] = -bat.terminal_value_per_kwh * k
        soc = b.cols(n, terminal, lower=_floor(bat.soc_min_wh, bat.soc_floor_wh), upper=bat.soc_max_wh)
        b.add(balance, ch, -1.0)
        b.add(balance, dis, 1.0)
        b.add(own, dis, -1.0)
        rhs = np.zeros(n)
        rhs[0] = bat.soc_wh
        dyn = b.rows(n, rhs, rhs)
        b.add(dyn, soc, 1.0)
        b.add(dyn[1:], soc[:-1], -1.0)
        b.add(dyn, ch, -bat.charge_efficiency)
        b.add(dyn, dis, 1.0 / bat.discharge_efficiency)
        bat_cols = (ch, dis, soc)

    car_cols = []
    for car, fuel_per_kwh in zip(inp.cars, fuel, strict=True):
        parked = car.parked.astype(np.float64)
        ch = b.cols(n, 0.0, upper=parked * car.charge_power_w * hours)
        dis = b.cols(n, 0.0, upper=parked * car.discharge_power_w * hours)
        terminal = np.zeros(n)
        terminal[-1] = -car.terminal_value_per_kwh * k
        soc = b.cols(n, terminal, lower=_floor(car.soc_min_wh, car.soc_floor_wh), upper=car.usable_wh)
        short = b.cols(n, fuel_per_kwh * k)
        b.add(balance, ch, -1.0)
        b.add(balance, dis, 1.0)
        b.add(own, dis, -1.0)
        b.add(own[own_only], ch[own_only], 1.0)
        rhs = -car.drive_wh.copy()
        rhs[0] += car.soc_wh
        dyn = b.rows(n, rhs, rhs)
        b.add(dyn, soc, 1.0)
        b.add(dyn[1:], soc[:-1], -1.0)
        b.add(dyn, ch, -car.charge_efficiency)
        b.add(dyn, dis, 1.0 / car.discharge_efficiency)
        b.add(dyn, short, -1.0)
        car_cols.append((ch, dis, soc, short))

    dc = inp.demand_charge
    peak_col = None
    if dc is not None:
        peak_col = b.cols(1, dc.price_per_kw * k, lower=dc.peak_so_far_w)
        where = slots[dc.applies]
        if where.size:
            margin = dc.margin_wh if dc.margin_wh is not None else np.zeros(n)
            rows = b.rows(where.size, -_INF, -margin[where])
            for cols, coef in ((imp, 1.0), (buy, 1.0), (exp, -1.0), (sell, -1.0)):
                b.add(rows, cols[where], coef)
            b.add(rows, np.full(where.size, peak_col[0]), -hours)

    def money(x: np.ndarray) -> tuple[float, float, float]:
        """(cost, terminal value, peak W) of a solution vector."""
        net = x[imp] + x[buy] - x[exp] - x[sell]
        peak_w = float(x[peak_col[0]]) if peak_col is not None else float(max(net.max(), 0.0) / hours)
        cost = (
            x[imp] @ inp.retail_price_per_kwh - x[exp] @ inp.buyback_price_per_kwh
            + x[buy] @ inp.p2p_buy_price_per_kwh - x[sell] @ inp.p2p_sell_price_per_kwh
        ) * k
        if v2b is not None:
            cost += x[v2b] @ inp.v2b_price_per_kwh * k
        if ren is not None:
            cost += x[ren] @ inp.renewable_premium_per_kwh * k
        terminal = 0.0
        if bat is not None and bat_cols is not None:
            terminal += float(x[bat_cols[2][-1]]) * bat.terminal_value_per_kwh * k
        for cc, car, fuel_per_kwh in zip(car_cols, inp.cars, fuel, strict=True):
            cost += float(x[cc[3]].sum()) * fuel_per_kwh * k
            terminal += float(x[cc[2][-1]]) * car.terminal_value_per_kwh * k
        if dc is not None:
            cost += dc.price_per_kw * k * (peak_w - dc.peak_so_far_w)
        return float(cost), terminal, peak_w

    h = _solver()
    b.pass_to(h, PlanningError)
    x = _solve(h)
    figures = money(x)
    economy_cost = figures[0]
    if ren is not None:
        obj = b.objective()
        bound = float(obj @ x) + inp.green_max_extra_cost
        nz = np.flatnonzero(obj)
        h.addRow(-_INF, bound, nz.size, nz.astype(np.int32), obj[nz])
        new_cost = obj * _TIE_BREAK
        new_cost[ren] -= 1.0
        h.changeColsCost(b.n_cols, np.arange(b.n_cols, dtype=np.int32), new_cost)
        x = _solve(h)
        figures = money(x)

    def take(cols: np.ndarray | None) -> np.ndarray:
        return np.zeros(n) if cols is None else np.maximum(x[cols], 0.0)

    def stack(j: int) -> np.ndarray:
        if not car_cols:
            return np.zeros((0, n))
        return np.vstack([x[cc[j]] if j == 2 else take(cc[j]) for cc in car_cols])

    cost, terminal_value, peak_w = figures
    zeros = np.zeros(n)
    return Plan(
        mode=inp.mode,
        grid_import_wh=take(imp),
        grid_export_wh=take(exp),
        p2p_buy_wh=take(buy),
        p2p_sell_wh=take(sell),
        v2b_buy_wh=take(v2b),
        renewable_buy_wh=take(ren),
        curtail_wh=take(curtail),
        battery_charge_wh=take(bat_cols[0]) if bat_cols else zeros,
        battery_discharge_wh=take(bat_cols[1]) if bat_cols else zeros.copy(),
        soc_wh=x[bat_cols[2]] if bat_cols else zeros.copy(),
        car_charge_wh=stack(0),
        car_discharge_wh=stack(1),
        car_soc_wh=stack(2),
        shortfall_wh=stack(3),
        cost=cost,
        terminal_value=terminal_value,
        peak_w=peak_w,
        economy_cost=economy_cost,
    )
