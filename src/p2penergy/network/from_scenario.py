"""A scenario's ``[network]`` turned into what a run or the live service uses: its feeder, and the
CDA's per-site limits with ``market_limits = true``. One place, so ``p2penergy simulate`` and
``p2penergy serve`` compute the same limits from the same scenario."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2penergy.market.book import SiteLimitMap
from p2penergy.network.feeder import BAND_PRESETS, Feeder, VoltageBand, feeder_from_file, kerber_community_feeder
from p2penergy.network.hosting import market_limits

if TYPE_CHECKING:
    from p2penergy.scenario.model import Scenario


def scenario_feeder(scenario: Scenario) -> Feeder | None:
    """The feeder of the scenario's ``[network]`` (None without one: no power flow)."""
    spec = scenario.network
    if spec is None:
        return None
    preset = BAND_PRESETS[spec.voltage_band]
    band = preset
    if spec.v_min_pu is not None or spec.v_max_pu is not None:
        band = VoltageBand(spec.v_min_pu or preset.min_pu, spec.v_max_pu or preset.max_pu,
                           f"{spec.v_min_pu or preset.min_pu}–{spec.v_max_pu or preset.max_pu} p.u. (scenario)")
    if spec.file is not None:
        return feeder_from_file(scenario.resolve(spec.file), spec.sites, band, spec.power_factor)
    return kerber_community_feeder([h.id for h in scenario.homes], scenario.office.id, band, spec.power_factor,
                                   spec.sites)


def scenario_market_limits(scenario: Scenario, feeder: Feeder | None, mechanism: str,
                           slot_minutes: int) -> SiteLimitMap | None:
    """The CDA's per-site limits per slot [Wh] when ``[network] market_limits`` is on and
    ``mechanism`` is ``"cda"`` (None otherwise): each site's hosting capacity on ``feeder`` (the
    scenario's, :func:`scenario_feeder`) per slot of ``slot_minutes``
    (:func:`~p2penergy.network.hosting.market_limits`) over the scenario's homes and office (the
    sites; cars get none). A call auction gets its limits slot by slot instead (``network/operating.py``)."""
    if feeder is None or scenario.network is None or not scenario.network.market_limits:
        return None
    if mechanism != "cda":
        return None
    sites = [h.id for h in scenario.homes] + [scenario.office.id]
    return market_limits(feeder, sites, slot_minutes)
