"""Feeds each settled slot to the certificate registry (provenance) during a run.

Without a ledger this hook settles each slot itself; with one, the engine settles it through
the same registry (``sim/ledger_hook.py``) and this hook only builds the sites and keeps the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from p2penergy.community import CAR_KIND, LOCATIONS, Community
from p2penergy.market import Order, Trade
from p2penergy.provenance import DeviceOutput, Registry, SiteSlot, SlotProvenance, StorageFlow
from p2penergy.sim.physics import SlotMeter


class ProvenanceHook:
    """Builds one :class:`SiteSlot` per participant from the slot's meters and settles it."""

    def __init__(self, community: Community) -> None:
        self.community = community
        initial = {}
        for p in community.participants.values():
            if p.battery is not None:
                initial[p.battery_id] = p.battery.initial_soc_wh or 0
            if p.car_store is not None:
                initial[p.id] = p.car_store.initial_soc_wh or 0
        self.registry = Registry(initial_storage_wh=initial)
        self.events: list[dict[str, Any]] = []
        self.slots: list[SlotProvenance] = []
        self._position = {community.slot(i): i for i in range(len(community.index))}

    def on_order(self, order: Order) -> None:
        return None

    def on_cancel(self, order_id: str, participant: str, now: datetime) -> None:
        return None

    def on_slot(self, slot_start: datetime, trades: Sequence[Trade], meters: dict[str, SlotMeter]) -> None:
        """Settle the slot with the registry (runs without a ledger; with one, the engine does)."""
        sites = self.sites(slot_start, meters)
        c = self.community
        self.record(self.registry.settle_slot(slot_start, slot_start + c.settings.slot_length, sites, trades))

    def record(self, result: SlotProvenance) -> None:
        self.slots.append(result)
        self.events.extend(result.events)

    def sites(self, slot_start: datetime, meters: dict[str, SlotMeter]) -> list[SiteSlot]:
        """One :class:`SiteSlot` per participant from the slot's meters."""
        c = self.community
        i = self._position[slot_start]
        sites = []
        for pid, m in meters.items():
            p = c.participants[pid]
            if p.kind == CAR_KIND:
                assert p.location is not None
                where = LOCATIONS[p.location[i]]
                site = p.owner if where == "home" and p.owner else where
                storage = (StorageFlow(p.id, m.car_charge_wh, m.car_discharge_wh, m.car_loss_wh, m.drive_wh, "phv"),)
                sites.append(SiteSlot(p.id, site or p.id, (), 0, storage, m.grid_import_wh, m.grid_export_wh))
                continue
            generation = ()
            if p.pv_device is not None and m.pv_wh > 0:
                generation = (DeviceOutput(p.pv_device, "solar", "photovoltaic", p.pv_capacity_w, m.pv_wh),)
            storage = ()
            if p.battery is not None:
                storage = (StorageFlow(p.battery_id, m.battery_charge_wh, m.battery_discharge_wh,
                                       m.battery_loss_wh),)
            sites.append(SiteSlot(p.id, p.id, generation, m.load_wh, storage, m.grid_import_wh, m.grid_export_wh))
        return sites
