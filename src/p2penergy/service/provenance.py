"""Certificates of origin on the live service: the provenance registry, fed with signed meter readings.

When a slot is settled (``LiveExchange.commit_due``, after its delivery and the meter grace),
the engine issues, transfers and cancels its certificates through the provenance registry
(:meth:`p2penergy.ledger.engine.Engine.settle_slot`) — the same registry, rules and event
journal as the simulation. The sites it settles are built here from what the service knows:

* every participant with a reading of the slot or a trade in it is one site;
* its PV reading (``pv_wh``) is issued as certificates of its PV system (the device id the
  simulation uses, :func:`p2penergy.community.pv_device_id`, with the scenario's nameplate);
  ``load_wh`` is its consumption, ``grid_import_wh`` / ``grid_export_wh`` its grid flows;
* batteries and cars are not metered live (a reading has no charge or discharge), so a site's
  reading need not balance with its trades: whatever its trades and reading leave over is
  counted as exported to the grid, whatever they lack as imported from it. Energy sold from
  storage or from the grid therefore arrives without certificates (the trade's shortfall),
  and a seller's declared tag certifies nothing by itself;
* a participant without a reading has no generation and no consumption: what it sold came
  from the grid, what it bought went to it (uncertified either way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from p2penergy.community import pv_device_id
from p2penergy.market import Trade
from p2penergy.provenance import DeviceOutput, SiteSlot


def pv_devices_of(scenario: Any) -> dict[str, tuple[str, int]]:
    """Per home and office with PV: ``(device id, nameplate W)``, as the simulation names them."""
    sites = [*scenario.homes, scenario.office]
    return {s.id: (pv_device_id(s.id), round(s.pv.kwp * 1000)) for s in sites if s.pv is not None}


def live_sites(readings: Mapping[str, Mapping[str, int]], trades: Sequence[Trade],
               pv_devices: Mapping[str, tuple[str, int]]) -> list[SiteSlot]:
    """One balanced :class:`SiteSlot` per participant with a reading (``readings``: this slot's,
    by participant) or a trade in the slot (rules in the module docstring)."""
    bought: dict[str, int] = {}
    sold: dict[str, int] = {}
    for t in trades:
        bought[t.buyer] = bought.get(t.buyer, 0) + t.energy_wh
        sold[t.seller] = sold.get(t.seller, 0) + t.energy_wh
    sites = []
    for pid in sorted({*readings, *bought, *sold}):
        values = readings.get(pid, {})
        pv_wh = int(values.get("pv_wh", 0))
        load_wh = int(values.get("load_wh", 0))
        grid_import = int(values.get("grid_import_wh", 0))
        grid_export = int(values.get("grid_export_wh", 0))
        supply = pv_wh + bought.get(pid, 0) + grid_import
        demand = load_wh + sold.get(pid, 0) + grid_export
        if supply > demand:
            grid_export += supply - demand
        else:
            grid_import += demand - supply
        generation: tuple[DeviceOutput, ...] = ()
        if pv_wh > 0:
            device, capacity_w = pv_devices.get(pid, (pv_device_id(pid), 0))
            generation = (DeviceOutput(device, "solar", "photovoltaic", capacity_w, pv_wh),)
        sites.append(SiteSlot(pid, pid, generation, load_wh, (), grid_import, grid_export))
    return sites
