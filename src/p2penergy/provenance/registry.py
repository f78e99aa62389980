"""The per-slot settlement of certificates: issue, transfer, store, release, cancel, export.

:meth:`Registry.settle_slot` takes one slot's metered sites and trades and returns a
:class:`SlotProvenance`. The registry's only state is the origin pool of each storage
(:mod:`p2penergy.provenance.storage`); it does no I/O. Within a slot, in this order:

1. **Issue**: each device's metered generation becomes one certificate bundle, held by
   its producer. **Release**: each storage's discharge takes lots from its pool (first
   in, first out); certificates among them are released to the storage's participant.
2. **Transfer**: trades in the given (execution) order. A trade takes, from the seller's
   own production and released certificates of this slot, those whose attributes match the
   trade's tag (for released certificates ``source`` is the storage kind — ``battery`` or
   ``phv`` — and ``device`` the storage id; ``producer`` and ``site`` are the seller's),
   production before storage, up to the traded Wh. Certificates bought cannot be resold.
   If the seller holds fewer matching Wh than it sold, the rest was grid energy (the seller
   imported it): the buyer gets fewer certificates and the trade's shortfall is counted.
3. **Self-consumption and sinks**, per site: what the participant still holds (own
   production, released, then bought) is cancelled against its metered consumption first,
   then stored by its storage charges (any remainder of a charge is uncertified grid
   energy in the pool), then exported to the grid with the grid export. Certificates left
   after that — only possible when a tagged sale did not take a seller's non-matching
   certificates — go to the grid too (``purpose="unmatched"``).
4. **Driving and losses**: a car's ``drive_wh`` is released and cancelled from its pool
   (``purpose="driving"``), then each storage's ``loss_wh`` leaves its pool.

Grid energy carries no certificate. Per slot (see :class:`Balance`):
``issued = claimed + exported + Δ(certified Wh in storage) + certified losses``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from p2penergy.market import Tag, Trade
from p2penergy.provenance.certificates import (
    GRID,
    STORAGE,
    Certificate,
    Lot,
    Uncertified,
    released,
    split,
    take,
)
from p2penergy.provenance.events import EventLog
from p2penergy.provenance.metering import ProvenanceError, SiteSlot, StorageFlow
from p2penergy.provenance.records import Balance, DeviceClaim, ParticipantProvenance, SlotProvenance, TradeProvenance
from p2penergy.provenance.storage import OriginPool

DEFAULT_ISSUER = "p2penergy-registry"


@dataclass(slots=True)
class _Holder:
    site: SiteSlot
    own: list[Certificate] = field(default_factory=list)
    bought: list[Certificate] = field(default_factory=list)
    claimed: dict[str, int] = field(default_factory=dict)
    drive_claimed: dict[str, int] = field(default_factory=dict)
    exported_wh: int = 0
    clean_exported_wh: int = 0

    def sell(self, tag: Tag, energy_wh: int) -> list[Certificate]:
        """Take up to ``energy_wh`` of own certificates matching ``tag``, oldest-listed first."""
        out: list[Certificate] = []
        keep: list[Certificate] = []
        need = energy_wh
        for cert in self.own:
            if need and _matches(cert, tag, self.site):
                head, tail = split(cert, need)
                out.append(head)  # type: ignore[arg-type]
                need -= head.energy_wh
                if tail is not None:
                    keep.append(tail)  # type: ignore[arg-type]
            else:
                keep.append(cert)
        self.own = keep
        return out


def _matches(cert: Certificate, tag: Tag, site: SiteSlot) -> bool:
    """Does ``cert``, held by ``site``'s participant, satisfy every attribute of ``tag``?"""
    from_storage = cert.origin == STORAGE
    for key, value in tag.items:
        if key == "source":
            have = cert.storage_kind if from_storage else cert.source
        elif key == "device":
            have = cert.storage_id if from_storage else cert.device
        elif key == "producer":
            have = site.participant
        else:  # site
            have = site.site
        if have != value:
            return False
    return True


class Registry:
    """Issues, moves and cancels certificates slot by slot; holds the storage origin pools.

    ``initial_storage_wh`` maps storage ids to the Wh they hold before the first slot
    (uncertified, reason ``"initial"``); storages default to empty.
    """

    def __init__(self, issuer: str = DEFAULT_ISSUER, initial_storage_wh: Mapping[str, int] | None = None) -> None:
        if not isinstance(issuer, str) or not issuer:
            raise ProvenanceError("issuer", f"a non-empty string, got {issuer!r}")
        self.issuer = issuer
        self._initial = dict(initial_storage_wh or {})
        self._pools: dict[str, OriginPool] = {}
        self._settled_until: datetime | None = None

    @property
    def pools(self) -> Mapping[str, OriginPool]:
        return MappingProxyType(self._pools)

    def storage_mix(self) -> dict[str, dict[str, int]]:
        """Per storage, Wh held by origin source (uncertified as ``grid`` / ``initial``)."""
        return {sid: pool.mix() for sid, pool in sorted(self._pools.items())}

    def _pool(self, flow: StorageFlow, owner: str) -> OriginPool:
        pool = self._pools.get(flow.storage_id)
        if pool is None:
            pool = OriginPool(flow.storage_id, flow.kind, owner, self._initial.get(flow.storage_id, 0))
            self._pools[flow.storage_id] = pool
        return pool

    def settle_slot(self, slot_start: datetime, slot_end: datetime, sites: Iterable[SiteSlot],
                    trades: Iterable[Trade]) -> SlotProvenance:
        """Settle one slot ``[slot_start, slot_end)``; see the module docstring for the rules.

        Slots are settled once each, in time order (so no certificate is issued twice).
        Raises :class:`ProvenanceError` (nothing changed) for invalid or unbalanced input.
        """
        trades = tuple(trades)
        holders = self._check(slot_start, slot_end, sites, trades)
        self._settled_until = slot_end
        log = EventLog(slot_start.isoformat(), slot_end.isoformat())
        storage_start = sum(pool.certified_wh for pool in self._pools.values())
        issued_wh = untracked_wh = loss_wh = 0
        issued: dict[str, int] = {}
        claims: dict[tuple[str, datetime], int] = {}
        order = sorted(holders)

        for p in order:  # 1. issue and release
            holder = holders[p]
            site = holder.site
            for device in site.generation:
                if device.energy_wh:
                    cert = Certificate(device.device_id, site.site, p, device.source, device.technology,
                                       device.capacity_w, slot_start, slot_end, self.issuer, 0, device.energy_wh)
                    holder.own.append(cert)
                    log.cert("issue", cert, None, p)
                    issued[device.device_id] = device.energy_wh
                    issued_wh += device.energy_wh
            for flow in site.storage:
                lots, missing = self._pool(flow, p).withdraw(flow.discharge_wh)
                untracked_wh += missing
                for lot in lots:
                    if isinstance(lot, Certificate):
                        out = released(lot, flow.storage_id, flow.kind, slot_start)
                        log.cert("release", out, flow.storage_id, p)
                        holder.own.append(out)

        trade_records = []
        for trade in trades:  # 2. transfer
            tag = str(trade.tag)
            got = holders[trade.seller].sell(trade.tag, trade.energy_wh)
            buyer = holders[trade.buyer]
            for cert in got:
                log.cert("transfer", cert, trade.seller, trade.buyer, trade_id=trade.trade_id, tag=tag)
                buyer.bought.append(cert)
            certified = sum(c.energy_wh for c in got)
            trade_records.append(TradeProvenance(trade.trade_id, trade.seller, trade.buyer, trade.energy_wh,
                                                 certified, tag, trade.preference_level))
            log.record("trade", from_holder=trade.seller, to_holder=trade.buyer, trade_id=trade.trade_id, tag=tag,
                       preference_level=trade.preference_level, energy_wh=trade.energy_wh, certified_wh=certified)

        for p in order:  # 3. consumption, storage charge, export; 4. driving and losses
            holder = holders[p]
            site = holder.site
            held: list[Lot] = [*holder.own, *holder.bought]
            taken, held, _ = take(held, site.consumption_wh)
            for cert in taken:
                self._claim(log, holder, cert, "consumption", holder.claimed, claims)
            for flow in site.storage:
                if flow.charge_wh:
                    pool = self._pools[flow.storage_id]
                    taken, held, missing = take(held, flow.charge_wh)
                    for cert in taken:
                        log.cert("store", cert, p, flow.storage_id)  # type: ignore[arg-type]
                        pool.put(cert)
                    if missing:
                        pool.put(Uncertified(missing, GRID))
            taken, held, _ = take(held, site.grid_export_wh)
            for purpose, lots in (("surplus", taken), ("unmatched", held)):
                for cert in lots:
                    log.cert("export", cert, p, GRID, purpose=purpose)  # type: ignore[arg-type]
                    holder.exported_wh += cert.energy_wh
                    if cert.renewable:  # type: ignore[union-attr]
                        holder.clean_exported_wh += cert.energy_wh
            drive_wh = 0
            for flow in site.storage:
                pool = self._pools[flow.storage_id]
                drive_wh += flow.drive_wh
                lots, missing = pool.withdraw(flow.drive_wh)
                untracked_wh += missing
                for lot in lots:
                    if isinstance(lot, Certificate):
                        out = released(lot, flow.storage_id, flow.kind, slot_start)
                        log.cert("release", out, flow.storage_id, p)
                        self._claim(log, holder, out, "driving", holder.drive_claimed, claims)
                lots, missing = pool.withdraw(flow.loss_wh)
                untracked_wh += missing
                for lot in lots:
                    if isinstance(lot, Certificate):
                        log.cert("loss", lot, flow.storage_id, "loss")
                        loss_wh += lot.energy_wh
            if site.consumption_wh or drive_wh:
                log.record("meter", from_holder=p, site=site.site, energy_wh=site.consumption_wh, drive_wh=drive_wh)

        return self._result(slot_start, slot_end, log, holders, order, issued, claims, trade_records, Balance(
            issued_wh=issued_wh,
            claimed_wh=sum(claims.values()),
            exported_wh=sum(h.exported_wh for h in holders.values()),
            storage_start_wh=storage_start,
            storage_end_wh=sum(pool.certified_wh for pool in self._pools.values()),
            loss_wh=loss_wh,
            shortfall_wh=sum(t.shortfall_wh for t in trade_records),
            untracked_wh=untracked_wh,
        ))

    @staticmethod
    def _claim(log: EventLog, holder: _Holder, cert: Certificate, purpose: str, by_source: dict[str, int],
               claims: dict[tuple[str, datetime], int]) -> None:
        log.cert("cancel", cert, holder.site.participant, None, purpose=purpose)
        by_source[cert.source] = by_source.get(cert.source, 0) + cert.energy_wh
        key = (cert.device, cert.production_start)
        claims[key] = claims.get(key, 0) + cert.energy_wh

    @staticmethod
    def _result(slot_start: datetime, slot_end: datetime, log: EventLog, holders: dict[str, _Holder],
                order: list[str], issued: dict[str, int], claims: dict[tuple[str, datetime], int],
                trade_records: list[TradeProvenance], balance: Balance) -> SlotProvenance:
        device_claims = {(d, slot_start): [wh, 0] for d, wh in issued.items()}
        per_device = {d: [wh, 0] for d, wh in issued.items()}
        for (device, start), wh in claims.items():
            device_claims.setdefault((device, start), [0, 0])[1] += wh
            per_device.setdefault(device, [0, 0])[1] += wh
        participants = {}
        for p in order:
            h = holders[p]
            participants[p] = ParticipantProvenance(
                p, h.site.consumption_wh, sum(f.drive_wh for f in h.site.storage), MappingProxyType(h.claimed),
                MappingProxyType(h.drive_claimed), h.exported_wh, h.clean_exported_wh)
        return SlotProvenance(
            slot_start=slot_start,
            slot_end=slot_end,
            events=tuple(log.events),
            devices=tuple((d, v[0], v[1]) for d, v in sorted(per_device.items())),
            device_claims=tuple(DeviceClaim(d, s, v[0], v[1]) for (d, s), v in sorted(device_claims.items())),
            participants=MappingProxyType(participants),
            trades=tuple(trade_records),
            balance=balance,
        )

    def _check(self, slot_start: datetime, slot_end: datetime, sites: Iterable[SiteSlot],
               trades: tuple[Trade, ...]) -> dict[str, _Holder]:
        if slot_start.tzinfo is None or slot_end.tzinfo is None:
            raise ProvenanceError("slot_start", "timezone-aware datetimes (slot_start and slot_end)")
        if not slot_end > slot_start:
            raise ProvenanceError("slot_end", f"after slot_start {slot_start.isoformat()}, got {slot_end.isoformat()}")
        if self._settled_until is not None and slot_start < self._settled_until:
            last = self._settled_until.isoformat()
            raise ProvenanceError("slot_start", f"at or after the end of the last settled slot {last}"
                                                f" (a slot is settled once, in order), got {slot_start.isoformat()}")
        holders: dict[str, _Holder] = {}
        devices: set[str] = set()
        storages: set[str] = set()
        for site in sites:
            if site.participant in holders:
                raise ProvenanceError("sites", f"one SiteSlot per participant; {site.participant!r} appears twice")
            holders[site.participant] = _Holder(site)
            for device in site.generation:
                if device.device_id in devices:
                    raise ProvenanceError("sites.generation.device_id", f"unique, {device.device_id!r} appears twice")
                devices.add(device.device_id)
            for flow in site.storage:
                if flow.storage_id in storages or flow.storage_id in devices:
                    raise ProvenanceError("sites.storage.storage_id", f"unique, {flow.storage_id!r} appears twice")
                storages.add(flow.storage_id)
                pool = self._pools.get(flow.storage_id)
                if pool is not None and pool.kind != flow.kind:
                    raise ProvenanceError(f"sites[{site.participant}].storage[{flow.storage_id}].kind",
                                          f"{pool.kind!r} as in earlier slots, got {flow.kind!r}")
        bought: dict[str, int] = {}
        sold: dict[str, int] = {}
        for i, trade in enumerate(trades):
            at = f"trades[{i}]"
            if trade.slot_start != slot_start:
                raise ProvenanceError(f"{at}.slot_start", f"the settled slot {slot_start.isoformat()},"
                                                          f" got {trade.slot_start.isoformat()}")
            for role in ("seller", "buyer"):
                who = getattr(trade, role)
                if who not in holders:
                    raise ProvenanceError(f"{at}.{role}", f"a participant with a SiteSlot, got {who!r}")
            if isinstance(trade.energy_wh, bool) or not isinstance(trade.energy_wh, int) or trade.energy_wh <= 0:
                raise ProvenanceError(f"{at}.energy_wh", f"a whole number > 0, got {trade.energy_wh!r}")
            sold[trade.seller] = sold.get(trade.seller, 0) + trade.energy_wh
            bought[trade.buyer] = bought.get(trade.buyer, 0) + trade.energy_wh
        for p, holder in holders.items():
            holder.site.check(bought.get(p, 0), sold.get(p, 0))
        return holders
