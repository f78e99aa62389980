"""Island mode: one slot of a grid outage, with no utility import or export (issue 18).

The exchange keeps clearing during an outage, but its trades were struck before the slot on
forecasts; what the island can deliver is decided in the slot, by this rule (the island's
controller, pure and deterministic, integer Wh):

1. **Priority.** Each site's load splits into critical, essential and deferrable parts
   (:func:`p2penergy.community.load_shares`). The tiers are served in that order across the
   whole island: every site's critical load before any site's essential load, and so on.
2. **Sources, in a tier.** A site's own PV, then (pooled) the other sites' PV, then its own
   battery and the car parked at it (V2H at its owner's home, V2B at the office), then
   (pooled) the other stores. Sunshine is used before stored energy, and stored energy
   below :data:`CRITICAL_RESERVE_FRACTION` of a store's window serves only the critical load
   of the site it is at (a home's battery keeps its own fridge on through the night rather
   than another site's larger critical load in the afternoon).
3. **Rationing.** When the pool cannot cover a tier, it is shared max–min fairly between
   sites (equal shares, none above its need; what a site does not need goes to the others):
   a home's refrigerator is not starved in proportion to the office's far larger servers.
   What is not served is shed (``shed_*_wh``).
4. **Surplus.** PV left over charges the batteries (its own site's first, then pooled), then
   parked cars; the rest is curtailed (``curtailed_wh``).
5. **Settlement.** A participant's trades stay as traded; what it delivered to the island or
   drew from it beyond them is a *balancing* trade at the market's price cap (the scarcity
   price: energy bought ahead on the exchange is cheaper, and a balancing kWh replaces load
   that would otherwise be shed). Balancing trades are paired in participant-id order.

**Islands.** The homes share their LV feeder; the office, on its own MV connection, is an island
of its own with its PV and the cars at its chargers (:func:`island_of`). Pooling is within an
island; balancing trades settle across them (money only: a trade between the two islands was
struck before the outage was known, or on a forecast, and is not delivered).

"Alone" (``pooled=False``) is the same rule with no pool: each home on its own PV, battery
and its car (V2H), the office on its PV and the cars at its chargers — the utility-only
baseline's outage.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from p2penergy.assets.battery import BatterySpec
from p2penergy.community import CAR_KIND, LOCATIONS, OFFICE_KIND, Community, Participant, load_shares
from p2penergy.ledger.balancing import balancing_trades
from p2penergy.market import Trade
from p2penergy.sim.physics import HOME, OFFICE, ROAD, SlotMeter

# Stored energy kept for critical loads [fraction of a store's window, soc_min..soc_max]: the
# lowest 30 % of a home battery (about 1.7-2.6 kWh of the shipped 6.5-9.8 kWh ones) keeps a
# home's critical load (about 115 W: fridge, lights, router) on for 15-20 hours of darkness,
# the night of a 24-hour outage, after essential loads have drawn the rest.
CRITICAL_RESERVE_FRACTION = 0.30


FEEDER_ISLAND = "feeder"


def island_of(p: Participant) -> str:
    """Which island a site belongs to in an outage: the office is an island of its own — it has its
    own MV connection (docs/network.md), and a 2 MW site cannot be fed through the homes' 160 kVA
    transformer, so the cars at its chargers (V2B) and its PV serve it; the homes share their feeder."""
    return p.id if p.kind == OFFICE_KIND else FEEDER_ISLAND


@dataclass(slots=True)
class _Store:
    """A battery or a parked car in the slot: what it may still deliver or take."""

    pid: str
    host: str | None
    spec: BatterySpec
    soc_wh: int
    free_wh: int  # deliverable from energy above the reserve
    reserve_wh: int  # deliverable from the reserve (critical loads only)
    room_wh: int  # chargeable
    charged_wh: int = 0
    delivered_wh: int = 0

    def available(self, tier: int, own: bool = True) -> int:
        """What it may deliver to loads of ``tier`` at its host (``own``) or elsewhere on the island:
        the reserve serves only its host's critical load."""
        if self.charged_wh:
            return 0
        return self.free_wh + (self.reserve_wh if tier == 0 and own else 0)

    def take(self, wh: int, tier: int) -> None:
        from_free = min(wh, self.free_wh)
        self.free_wh -= from_free
        self.reserve_wh -= wh - from_free
        assert self.reserve_wh >= 0 and (tier == 0 or wh == from_free)
        self.delivered_wh += wh
        self.room_wh = 0  # a store does not charge and discharge in one slot

    def give(self, wh: int) -> None:
        self.charged_wh += wh
        self.room_wh -= wh
        self.free_wh = self.reserve_wh = 0


@dataclass(slots=True)
class _Site:
    pid: str
    need: list[int]
    pv_left: int
    served: list[int] = field(default_factory=lambda: [0, 0, 0])
    stores: list[_Store] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class IslandSlot:
    """The slot's meters (every participant) and its balancing trades (empty when alone)."""

    meters: dict[str, SlotMeter]
    balancing: tuple[Trade, ...]


def _store(pid: str, host: str | None, spec: BatterySpec, soc_wh: int, minutes: int, power_wh: int | None = None,
           reserve_fraction: float = CRITICAL_RESERVE_FRACTION) -> _Store:
    top = spec.max_discharge_wh(soc_wh, minutes)
    room = spec.max_charge_wh(soc_wh, minutes)
    if power_wh is not None:
        top, room = min(top, power_wh), min(room, power_wh)
    window = spec.soc_max_wh - spec.soc_min_wh  # type: ignore[operator]
    reserve = int(window * reserve_fraction)
    # what it could deliver if its floor were the reserve's top
    free = min(top, spec.max_discharge_wh(soc_wh - reserve, minutes)) if soc_wh - reserve > spec.soc_min_wh else 0
    return _Store(pid, host, spec, soc_wh, free, top - free, room)


def fair_shares(total: int, needs: list[int]) -> list[int]:
    """``total`` Wh shared max–min fairly (water-filling): equal shares, none above its need,
    whole Wh, the remainder to the lowest positions first. ``sum == min(total, sum(needs))``."""
    out = [0] * len(needs)
    left = min(total, sum(needs))
    open_ = [j for j, n in enumerate(needs) if n > 0]
    while left > 0 and open_:
        each, extra = divmod(left, len(open_))
        nxt = []
        for pos, j in enumerate(open_):
            want = needs[j] - out[j]
            give = min(want, each + (1 if pos < extra else 0))
            out[j] += give
            left -= give
            if out[j] < needs[j]:
                nxt.append(j)
        open_ = nxt
    return out


def _draw(total: int, caps: list[int]) -> list[int]:
    """Take ``total`` Wh from sources with ``caps`` pro rata to them (largest remainder, ties by position)."""
    cap_sum = sum(caps)
    if total >= cap_sum:
        return list(caps)
    base = [total * c // cap_sum for c in caps]
    rest = total - sum(base)
    order = sorted(range(len(caps)), key=lambda j: (-(total * caps[j] % cap_sum), j))
    for j in order[:rest]:
        base[j] += 1
    return base


def _run_island(order: list[_Site], stores: list[_Store], parts: dict[str, Participant], pooled: bool) -> None:
    """Steps 1-4 of the module rules on one island's sites and stores (in place)."""
    for tier in range(3):
        # own PV, pooled PV, own stores, pooled stores
        for stage in range(4):
            if stage % 2 == 1 and not pooled:
                continue
            deficits = [s.need[tier] - s.served[tier] for s in order]
            if not any(deficits):
                break
            if stage == 0:
                for s, d in zip(order, deficits, strict=True):
                    got = min(d, s.pv_left)
                    s.pv_left -= got
                    s.served[tier] += got
            elif stage == 2:
                for s, d in zip(order, deficits, strict=True):
                    for st in s.stores:
                        got = min(d, st.available(tier))
                        if got:
                            st.take(got, tier)
                            s.served[tier] += got
                            d -= got
            else:
                if stage == 1:
                    caps = [s.pv_left for s in order]
                else:
                    pool_stores = stores
                    caps = [st.available(tier, own=False) for st in pool_stores]
                supply = sum(caps)
                if supply == 0:
                    continue
                gets = fair_shares(supply, deficits)
                draws = _draw(sum(gets), caps)
                if stage == 1:
                    for s, g, dr in zip(order, gets, draws, strict=True):
                        s.served[tier] += g
                        s.pv_left -= dr
                else:
                    for s, g in zip(order, gets, strict=True):
                        s.served[tier] += g
                    for st, dr in zip(pool_stores, draws, strict=True):
                        if dr:
                            st.take(dr, tier)

    # surplus: own stores, then pooled stores (batteries before cars), then curtail
    for s in order:
        for st in s.stores:
            put = min(s.pv_left, st.room_wh) if st.delivered_wh == 0 else 0
            if put:
                st.give(put)
                s.pv_left -= put
    if pooled:
        for kind_is_car in (False, True):
            sinks = [st for st in stores if (st.pid in parts and parts[st.pid].kind == CAR_KIND) == kind_is_car
                     and st.delivered_wh == 0 and st.room_wh > 0]
            surplus = sum(s.pv_left for s in order)
            if not sinks or surplus == 0:
                continue
            put = _draw(surplus, [st.room_wh for st in sinks])
            for st, wh in zip(sinks, put, strict=True):
                if wh:
                    st.give(wh)
            takes = _draw(sum(put), [s.pv_left for s in order])
            for s, t in zip(order, takes, strict=True):
                s.pv_left -= t


def island_slot(community: Community, i: int, soc_wh: dict[str, int], trades: list[Trade], *, pooled: bool = True,
                reserve_fraction: float = CRITICAL_RESERVE_FRACTION) -> IslandSlot:
    """Meters of every participant for islanded slot ``i`` from its stores' ``soc_wh`` at the
    slot's start and the slot's ``trades`` (module rules); balancing trades when ``pooled``."""
    minutes = community.settings.slot_minutes
    parts = community.participants
    sites: dict[str, _Site] = {}
    stores: list[_Store] = []
    office_id = next((p.id for p in parts.values() if p.kind == OFFICE_KIND), None)
    for pid in sorted(parts):
        p = parts[pid]
        if p.kind == CAR_KIND:
            continue
        load = int(p.load_wh[i])
        site = sites[pid] = _Site(pid, list(load_shares(p).split_wh(load)), int(p.pv_wh[i]))
        if p.battery is not None:
            s = _store(pid, pid, p.battery, soc_wh[pid], minutes, reserve_fraction=reserve_fraction)
            site.stores.append(s)
            stores.append(s)
    cars_on_road: dict[str, Participant] = {}
    for pid in sorted(parts):
        p = parts[pid]
        if p.kind != CAR_KIND:
            continue
        assert p.car_store is not None and p.phv is not None and p.location is not None
        where = LOCATIONS[int(p.location[i])]
        if where == ROAD:
            cars_on_road[pid] = p
            continue
        host = p.owner if where == HOME else office_id if where == OFFICE else None
        # a PHV's driving falls back on its engine: its whole usable window can serve the island
        s = _store(pid, host, p.car_store, soc_wh[pid], minutes,
                   min(p.phv.discharge_power_w, p.phv.charge_power_w) * minutes // 60, reserve_fraction)
        if p.phv.discharge_power_w == 0:
            s.free_wh = s.reserve_wh = 0
        if host in sites:
            sites[host].stores.append(s)
        stores.append(s)

    by_island: dict[str, tuple[list[_Site], list[_Store]]] = {}
    for site in sites.values():
        by_island.setdefault(island_of(parts[site.pid]), ([], []))[0].append(site)
    for st in stores:
        host = parts[st.host] if st.host is not None else None
        key = island_of(host) if host is not None else FEEDER_ISLAND
        by_island.setdefault(key, ([], []))[1].append(st)
    for key in sorted(by_island):
        _run_island(*by_island[key], parts, pooled)
    order = list(sites.values())

    trades_by = _positions(trades)
    meters: dict[str, SlotMeter] = {}
    net: dict[str, int] = {}
    for s in order:
        p = parts[s.pid]
        charge = discharge = loss = 0
        soc = soc_wh.get(s.pid, 0)
        own = next((st for st in s.stores if st.pid == s.pid), None)
        if own is not None:
            charge, discharge = own.charged_wh, own.delivered_wh
            soc, loss = own.spec.step(own.soc_wh, charge, discharge, minutes)
        pv_used = int(p.pv_wh[i]) - s.pv_left
        served = sum(s.served)
        shed = [n - v for n, v in zip(s.need, s.served, strict=True)]
        x = pv_used + discharge - served - charge
        net[s.pid] = x
        meters[s.pid] = SlotMeter(load_wh=served, pv_wh=pv_used, battery_charge_wh=charge,
                                  battery_discharge_wh=discharge,
                                  battery_loss_wh=loss, soc_wh=soc, shed_critical_wh=shed[0],
                                  shed_essential_wh=shed[1], shed_deferrable_wh=shed[2], curtailed_wh=s.pv_left)
    for st in stores:
        if st.pid in sites:
            continue
        p = parts[st.pid]
        soc, loss = st.spec.step(st.soc_wh, st.charged_wh, st.delivered_wh)
        net[st.pid] = st.delivered_wh - st.charged_wh
        meters[st.pid] = SlotMeter(soc_wh=soc, car_charge_wh=st.charged_wh, car_discharge_wh=st.delivered_wh,
                                   car_loss_wh=loss)
    for pid, p in cars_on_road.items():
        assert p.car_store is not None and p.drive_wh is not None
        drive = int(p.drive_wh[i])
        taken = min(drive, soc_wh[pid] - p.car_store.soc_min_wh)
        net[pid] = 0
        meters[pid] = SlotMeter(soc_wh=soc_wh[pid] - taken, drive_wh=taken, shortfall_wh=drive - taken)
    assert sum(net.values()) == 0, "island: energy delivered to the island must equal energy drawn from it"

    balance: dict[str, int] = {}
    for pid, x in net.items():
        bought, sold = trades_by.get(pid, (0, 0))
        balance[pid] = x - (sold - bought)  # > 0: delivered beyond its trades
    balancing = _balancing_trades(community, community.slot(i), balance) if pooled else ()
    extra = _positions(list(balancing)) if pooled else {pid: (max(0, -b), max(0, b)) for pid, b in balance.items()}
    out: dict[str, SlotMeter] = {}
    for pid, m in meters.items():
        bought, sold = trades_by.get(pid, (0, 0))
        eb, es = extra.get(pid, (0, 0))
        out[pid] = _with_p2p(m, bought + eb, sold + es)
        assert out[pid].balance_wh() == 0, f"island: {pid} does not balance"
    return IslandSlot(out, tuple(balancing))


def _with_p2p(m: SlotMeter, buy_wh: int, sell_wh: int) -> SlotMeter:
    return replace(m, p2p_buy_wh=buy_wh, p2p_sell_wh=sell_wh)


def _positions(trades: list[Trade]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for t in trades:
        b = out.get(t.buyer, (0, 0))
        out[t.buyer] = (b[0] + t.energy_wh, b[1])
        s = out.get(t.seller, (0, 0))
        out[t.seller] = (s[0], s[1] + t.energy_wh)
    return out


def _balancing_trades(community: Community, slot: datetime, balance: dict[str, int]) -> tuple[Trade, ...]:
    """Pair who delivered beyond its trades with who drew beyond them, in id order, at the price cap
    (:func:`p2penergy.ledger.balancing.balancing_trades`, the rule the ledger replays)."""
    return balancing_trades(slot, balance, community.settings.price_max_per_kwh)
