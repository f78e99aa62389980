"""Per-slot metered input of the registry: one :class:`SiteSlot` per participant.

Units: Wh, whole numbers, all ``>= 0``. Each site must balance exactly in its slot::

    generation + storage discharge + P2P bought + grid import
        = consumption + storage charge + P2P sold + grid export

where P2P bought / sold are the sums of the slot's trades with the participant as buyer /
seller. Driving energy (``StorageFlow.drive_wh``) leaves a car battery without passing
through the site; it is a consumption claim of the participant on what the car holds.
A storage's state of charge changes by ``charge_wh - discharge_wh - loss_wh - drive_wh``.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2penergy.market import FieldError
from p2penergy.provenance.certificates import GENERATION_SOURCES, STORAGE_KINDS


class ProvenanceError(FieldError):
    """Input to the registry is invalid: ``field`` names the site, device or trade at fault."""


@dataclass(frozen=True, slots=True)
class DeviceOutput:
    """Metered generation of one device in the slot (``energy_wh``), and its nameplate."""

    device_id: str
    source: str
    technology: str
    capacity_w: int
    energy_wh: int


@dataclass(frozen=True, slots=True)
class StorageFlow:
    """Energy into and out of one storage in the slot.

    ``charge_wh``: taken from the site; ``discharge_wh``: delivered to the site;
    ``loss_wh``: lost inside the storage (conversion, self-discharge); ``drive_wh``: a car's
    driving energy taken from its battery. ``kind`` is ``"battery"`` or ``"phv"``.
    """

    storage_id: str
    charge_wh: int = 0
    discharge_wh: int = 0
    loss_wh: int = 0
    drive_wh: int = 0
    kind: str = "battery"


@dataclass(frozen=True, slots=True)
class SiteSlot:
    """One participant's metered slot (a car is a participant; its ``site`` is where it is)."""

    participant: str
    site: str
    generation: tuple[DeviceOutput, ...] = ()
    consumption_wh: int = 0
    storage: tuple[StorageFlow, ...] = ()
    grid_import_wh: int = 0
    grid_export_wh: int = 0

    def check(self, bought_wh: int, sold_wh: int) -> None:
        """Raise :class:`ProvenanceError` unless every value is valid and the site balances."""
        where = f"sites[{self.participant}]"
        if not isinstance(self.participant, str) or not self.participant:
            raise ProvenanceError("sites.participant", f"a non-empty string, got {self.participant!r}")
        if not isinstance(self.site, str) or not self.site:
            raise ProvenanceError(f"{where}.site", f"a non-empty string, got {self.site!r}")
        for name in ("consumption_wh", "grid_import_wh", "grid_export_wh"):
            _wh(f"{where}.{name}", getattr(self, name))
        for device in self.generation:
            at = f"{where}.generation[{device.device_id}]"
            if not isinstance(device.device_id, str) or not device.device_id:
                raise ProvenanceError(f"{at}.device_id", f"a non-empty string, got {device.device_id!r}")
            if device.source not in GENERATION_SOURCES:
                raise ProvenanceError(f"{at}.source", f"one of {', '.join(GENERATION_SOURCES)}; got {device.source!r}")
            _wh(f"{at}.energy_wh", device.energy_wh)
            _wh(f"{at}.capacity_w", device.capacity_w)
        for flow in self.storage:
            at = f"{where}.storage[{flow.storage_id}]"
            if not isinstance(flow.storage_id, str) or not flow.storage_id:
                raise ProvenanceError(f"{at}.storage_id", f"a non-empty string, got {flow.storage_id!r}")
            if flow.kind not in STORAGE_KINDS:
                raise ProvenanceError(f"{at}.kind", f"one of {', '.join(STORAGE_KINDS)}; got {flow.kind!r}")
            for name in ("charge_wh", "discharge_wh", "loss_wh", "drive_wh"):
                _wh(f"{at}.{name}", getattr(flow, name))
        supply = (sum(d.energy_wh for d in self.generation) + sum(f.discharge_wh for f in self.storage)
                  + bought_wh + self.grid_import_wh)
        demand = (self.consumption_wh + sum(f.charge_wh for f in self.storage) + sold_wh + self.grid_export_wh)
        if supply != demand:
            raise ProvenanceError(
                where,
                "balanced: generation + discharge + bought + grid import = consumption + charge + sold + grid export;"
                f" got {supply} Wh in and {demand} Wh out (bought {bought_wh}, sold {sold_wh})",
            )


def _wh(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProvenanceError(field, f"a whole number >= 0, got {value!r}")
