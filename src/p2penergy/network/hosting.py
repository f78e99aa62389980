"""Hosting capacity: how much each site may export to (or import from) the feeder on its own.

A site's **export limit** is the largest net export [W] at which, with every other site drawing
nothing, no bus rises above the band's top and no line or transformer exceeds its rating; its
**import limit** the same for a net draw, against the band's bottom. Both are found on a grid of
``step_w`` up to ``max_w`` (one power-grid-model batch for all sites and steps), so they are exact
to one step below. With ``[network] market_limits = true`` the CDA respects them at matching
(:func:`market_limits`: a site's P2P buys and sells per slot, docs/network.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from p2penergy.market.book import SiteLimitsWh
from p2penergy.network.feeder import Feeder
from p2penergy.network.powerflow import FlowSeries, flows

STEP_W = 500
"""Resolution of the limits [W]: half a kilowatt, a tenth of a home's PV."""
MAX_W = 100_000
"""Largest limit searched [W]: 100 kW, far above a home's connection (a 60 A 100/200 V contract is 12 kW)."""


@dataclass(frozen=True, slots=True)
class SiteLimits:
    """A site's export and import limits [W] (``max_w`` where nothing binds below it)."""

    export_w: int
    import_w: int


def violated(series: FlowSeries, feeder: Feeder) -> np.ndarray:
    """Per scenario (slot), whether any bus is outside the band or any line or transformer above 100 %."""
    band = feeder.band
    bad = ((series.v_pu < band.min_pu) | (series.v_pu > band.max_pu)).any(axis=1)
    if series.line_loading_pct.size:
        bad |= (series.line_loading_pct > 100).any(axis=1)
    if series.trafo_loading_pct.size:
        bad |= (series.trafo_loading_pct > 100).any(axis=1)
    return bad  # type: ignore[no-any-return]


def hosting_capacity(feeder: Feeder, sites: Sequence[str], step_w: int = STEP_W,
                     max_w: int = MAX_W) -> dict[str, SiteLimits]:
    """Each site's export and import limits on the feeder (module docstring); sites off it are left out."""
    placed = [s for s in sites if s in feeder.site_bus]
    levels = np.arange(step_w, max_w + step_w, step_w, dtype=np.float64)
    out: dict[str, SiteLimits] = {}
    limits: dict[str, list[int]] = {s: [] for s in placed}
    for sign in (-1.0, 1.0):  # exports, then imports
        p = np.zeros((len(placed) * len(levels), len(placed)))
        for i in range(len(placed)):
            p[i * len(levels):(i + 1) * len(levels), i] = sign * levels
        bad = violated(flows(feeder, placed, p, diverged_as_inf=True), feeder).reshape(len(placed), len(levels))
        for i, site in enumerate(placed):
            first = np.flatnonzero(bad[i])
            limits[site].append(int(levels[first[0]] - step_w) if first.size else max_w)
    for site in placed:
        out[site] = SiteLimits(*limits[site])
    return out


SHARED_STEP_W = 100
"""Resolution of the shared limit [W]: a tenth of a kilowatt (a weak feeder's share can be 2 kW)."""


def shared_capacity(feeder: Feeder, sites: Sequence[str], step_w: int = SHARED_STEP_W,
                    max_w: int = MAX_W) -> SiteLimits:
    """The sites' **equal share** of the feeder: the largest export (and import) [W] every site may
    have at once, all at the same level, with no bus outside the band and no line or transformer
    above 100 % (a static operating envelope shared equally); on a grid of ``step_w``."""
    placed = [s for s in sites if s in feeder.site_bus]
    levels = np.arange(step_w, max_w + step_w, step_w, dtype=np.float64)
    found = []
    for sign in (-1.0, 1.0):  # exports, then imports
        p = np.repeat(sign * levels[:, None], len(placed), axis=1)
        bad = violated(flows(feeder, placed, p, diverged_as_inf=True), feeder)
        first = np.flatnonzero(bad)
        found.append(int(levels[first[0]] - step_w) if first.size else max_w)
    return SiteLimits(*found)


def market_limits(feeder: Feeder, sites: Sequence[str], slot_minutes: int) -> dict[str, SiteLimitsWh]:
    """The CDA's per-site limits per slot [Wh]: a site may buy P2P at most the smaller of its own
    import limit (:func:`hosting_capacity`) and its equal share of the feeder (:func:`shared_capacity`
    over these sites), and sell at most the same for export, times the slot's length (rounded down).
    Alone, a site's limit guards its own cable and bus; the share guards the transformer and shared
    cables when every site exports (or imports) at once. Sites off the feeder, and sites on the supply
    (ext_grid) bus, whose draw changes no flow on the feeder (the office's own MV connection), get
    none. A limit at ``MAX_W`` (nothing binds up to the search's top) is kept: 100 kW is far above
    any home's connection."""
    supply = {int(b) for b in feeder.net.ext_grid.bus}
    placed = [s for s in sites if s in feeder.site_bus and feeder.site_bus[s] not in supply]
    if not placed:
        return {}
    caps = hosting_capacity(feeder, placed)
    share = shared_capacity(feeder, placed)
    return {s: SiteLimitsWh(min(c.import_w, share.import_w) * slot_minutes // 60,
                            min(c.export_w, share.export_w) * slot_minutes // 60)
            for s, c in caps.items()}
