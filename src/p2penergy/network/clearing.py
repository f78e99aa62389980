"""Welfare-optimal clearing of one slot's bids and offers among the allocations the feeder can carry
(issue 17, item 5): the call auction's LP with transformer, line and voltage limits linearised by
the feeder's sensitivities (:mod:`p2penergy.network.sensitivity`).

The unrestricted welfare LP in fractions of a kWh, without prices: the welfare bound of any clearing
within the limits (tested against an independent LP, tests/network/test_clearing.py). The exchange's
call auction clears within the same rows (:func:`site_rows`) at its prices and in whole Wh
(:mod:`p2penergy.network.auction`).

Model. Each order ``i`` (a site's bid or offer of ``energy_wh`` at ``price_per_kwh``) fills
``x_i`` kWh, ``0 ≤ x_i ≤ energy_wh/1000``. A trade is taken to change its parties' draws from the
operating point the sensitivities were computed at (each site's draw without the slot's trades):
a buyer draws ``x`` more, a seller ``x`` less, as mean power over the slot. Maximise
``Σ_bids p_i x_i − Σ_offers p_i x_i`` subject to ``Σ_bids x = Σ_offers x`` and, for every bus,
line and transformer, the linearised voltage inside the band and loading at most ``max_loading_pct``.
A limit the operating point already breaks may not get worse (its slack is taken as zero), so
clearing nothing is always feasible. Loading is an absolute value: its linearisation holds while
no branch's flow reverses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from p2penergy.network.sensitivity import Sensitivities

BUY, SELL = "buy", "sell"


@dataclass(frozen=True, slots=True)
class SiteOrder:
    """A site's bid (``buy``) or offer (``sell``) for one slot."""

    site: str
    side: str
    energy_wh: int
    price_per_kwh: float

    def __post_init__(self) -> None:
        if self.side not in (BUY, SELL):
            raise ValueError(f"side: buy or sell, got {self.side!r}")
        if self.energy_wh <= 0:
            raise ValueError(f"energy_wh: must be > 0, got {self.energy_wh}")


@dataclass(frozen=True, slots=True)
class NetworkLimits:
    """The feeder at the slot's operating point and the limits to respect."""

    sensitivities: Sensitivities
    v_min_pu: float
    v_max_pu: float
    max_loading_pct: float = 100.0


@dataclass(frozen=True, slots=True)
class Clearing:
    """``filled_kwh[i]`` of each order and the welfare ``Σ bids − Σ offers`` [currency]."""

    filled_kwh: np.ndarray
    welfare: float


def site_rows(limits: NetworkLimits) -> tuple[np.ndarray, np.ndarray]:
    """The linearised limits over the sites' draws: ``grad[r, site]`` [the row's unit per W] and each
    row's room ``slack[r]`` at the operating point (0 for a limit it already breaks: it may not get
    worse). Rows: every bus's upper, then lower voltage limit, every line's, every transformer's loading."""
    sens = limits.sensitivities
    blocks = [(sens.dv_pu_per_w, limits.v_max_pu - sens.v_pu), (-sens.dv_pu_per_w, sens.v_pu - limits.v_min_pu)]
    for grad, base in ((sens.dline_pct_per_w, sens.line_pct), (sens.dtrafo_pct_per_w, sens.trafo_pct)):
        if grad.size:
            blocks.append((grad, limits.max_loading_pct - base))
    return np.vstack([g for g, _ in blocks]), np.concatenate([np.maximum(r, 0.0) for _, r in blocks])


def constraint_rows(orders: Sequence[SiteOrder], limits: NetworkLimits, slot_hours: float,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``A x ≤ b`` of the network limits over the orders' fills [kWh] (module docstring)."""
    sens = limits.sensitivities
    col = {s: k for k, s in enumerate(sens.sites)}
    # draw change [W] per kWh filled, per site and order
    m = np.zeros((len(sens.sites), len(orders)))
    for i, o in enumerate(orders):
        if o.site in col:
            m[col[o.site], i] = (1.0 if o.side == BUY else -1.0) * 1000.0 / slot_hours
    grad, slack = site_rows(limits)
    return grad @ m, slack


def clear_with_limits(orders: Sequence[SiteOrder], limits: NetworkLimits | None, slot_hours: float) -> Clearing:
    """The welfare-optimal fills (HiGHS); ``limits=None``: the unconstrained call auction's welfare LP."""
    import highspy

    from p2penergy.optim import new_highs

    n = len(orders)
    if n == 0:
        return Clearing(np.zeros(0), 0.0)
    sign = np.array([1.0 if o.side == BUY else -1.0 for o in orders])
    price = np.array([o.price_per_kwh for o in orders])
    upper = np.array([o.energy_wh / 1000 for o in orders])
    rows = [sign[None, :]]
    lower_r, upper_r = [np.zeros(1)], [np.zeros(1)]
    if limits is not None:
        a, b = constraint_rows(orders, limits, slot_hours)
        rows.append(a)
        lower_r.append(np.full(len(b), -np.inf))
        upper_r.append(b)
    matrix = np.vstack(rows)
    h = new_highs()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, matrix.shape[0]
    lp.col_cost_ = -(sign * price)  # HiGHS minimises: minus the welfare
    lp.col_lower_, lp.col_upper_ = np.zeros(n), upper
    lp.row_lower_, lp.row_upper_ = np.concatenate(lower_r), np.concatenate(upper_r)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    nz = np.nonzero(matrix)
    lp.a_matrix_.start_ = np.searchsorted(nz[0], np.arange(matrix.shape[0] + 1)).astype(np.int32)
    lp.a_matrix_.index_ = nz[1].astype(np.int32)
    lp.a_matrix_.value_ = matrix[nz]
    h.passModel(lp)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"network-constrained clearing not optimal: {h.modelStatusToString(h.getModelStatus())}")
    x = np.clip(np.asarray(h.getSolution().col_value), 0.0, upper)
    return Clearing(x, float(sign * price @ x))
