"""How a community came through its outages (issue 18): served load by priority, per group and site.

For the islanded slots of the report month (``Community.islanded``), from a run's meters: each
site's demand by priority is its load split by :func:`p2penergy.community.load_shares` (the
same split the island's controller used), what was not served is the meters' ``shed_*_wh``.
``results.json`` carries :func:`resilience` of the P2P island, of the baseline (each site
alone on its own devices) and of the ideal operator (:func:`ideal_resilience`) side by side.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from p2penergy.community import CAR_KIND, OFFICE_KIND, Community, load_shares
from p2penergy.outage import PRIORITIES, Outage
from p2penergy.sim.ideal_island import ideal_island_shed
from p2penergy.sim.records import RunRecords
from p2penergy.sim.results import groups

SHED_COLUMNS = tuple(f"shed_{p}_wh" for p in PRIORITIES)


def islanded_positions(community: Community) -> np.ndarray:
    """Positions (0-based, in the report month) of the islanded slots."""
    month = community.month
    return np.array([k for k in range(month.stop - month.start) if community.islanded(month.start + k)], dtype=int)


def demand_by_priority(community: Community, pid: str, ks: np.ndarray) -> np.ndarray:
    """``(3, len(ks))`` Wh: a site's critical, essential and deferrable demand in the month's slots ``ks``."""
    p = community.participants[pid]
    shares = load_shares(p)
    load = p.load_wh[community.month.start + ks]
    return np.array([shares.split_wh(int(x)) for x in load], dtype=np.int64).T.reshape(3, len(ks))


def _pct(served: int, demand: int) -> float | None:
    return None if demand == 0 else round(100.0 * served / demand, 1)


def resilience(community: Community, records: RunRecords) -> dict[str, Any]:
    """Served shares by priority per group (and the office), unserved energy, and per site the hours
    from each outage's start to its first critical shortfall (``None``: none in that outage)."""
    ks = islanded_positions(community)
    shed = {}
    for pid in _sites(community):
        cols = records.accounts[pid].columns
        shed[pid] = np.array([cols[c][ks] for c in SHED_COLUMNS], dtype=np.int64).reshape(3, len(ks))
    return summarise(community, ks, shed)


def ideal_resilience(community: Community, p2p: RunRecords) -> dict[str, Any]:
    """:func:`resilience` of the ideal operator (sim/ideal_island.py) from the P2P run's stored
    energy at each outage's start."""
    ks = islanded_positions(community)
    shed = {pid: np.zeros((3, len(ks)), dtype=np.int64) for pid in _sites(community)}
    for outage in community.outages:
        inside = np.array(_inside(community, ks, outage), dtype=int)
        if not len(inside):
            continue
        positions = ks[inside]
        soc = {}
        for pid, p in community.participants.items():
            store = p.car_store if p.kind == CAR_KIND else p.battery
            if store is not None:
                first = int(positions[0])
                soc[pid] = (int(p2p.accounts[pid].columns["soc_wh"][first - 1]) if first
                            else int(store.initial_soc_wh or 0))
        demand = {pid: demand_by_priority(community, pid, positions) for pid in shed}
        for pid, out in ideal_island_shed(community, positions, soc, demand).items():
            shed[pid][:, inside] = out
    return summarise(community, ks, shed)


def _inside(community: Community, ks: np.ndarray, outage: Outage) -> list[int]:
    """Indices into ``ks`` of the slots ``outage`` covers."""
    return [j for j, k in enumerate(ks) if outage.covers(community.slot(community.month.start + int(k)))]


def _sites(community: Community) -> list[str]:
    return [pid for pid, p in community.participants.items() if p.kind != CAR_KIND]


def summarise(community: Community, ks: np.ndarray, shed: dict[str, np.ndarray]) -> dict[str, Any]:
    """The figures of :func:`resilience` from each site's shed Wh ``(3, len(ks))`` in the islanded slots ``ks``."""
    sites = _sites(community)
    demand = {pid: demand_by_priority(community, pid, ks) for pid in sites}
    named = {name: tuple(m for m in members if m in demand) for name, members in groups(community).items()}
    named = {name: members for name, members in named.items() if members}
    office = [pid for pid in sites if community.participants[pid].kind == OFFICE_KIND]
    if office:
        named["office"] = tuple(office)
        named["community"] = tuple(sites)
    out_groups = {}
    for name, members in named.items():
        d = sum(demand[m].sum(axis=1) for m in members)
        s = sum(shed[m].sum(axis=1) for m in members)
        out_groups[name] = {f"{p}_served_pct": _pct(int(d[j] - s[j]), int(d[j])) for j, p in enumerate(PRIORITIES)}
        out_groups[name]["unserved_kwh"] = round(int(s.sum()) / 1000, 1)
        out_groups[name]["critical_unserved_kwh"] = round(int(s[0]) / 1000, 1)
    slot_h = community.settings.slot_minutes / 60
    first: dict[str, list[float | None]] = {pid: [] for pid in sites}
    for outage in community.outages:
        inside = _inside(community, ks, outage)
        if not inside:
            continue
        for pid in sites:
            short = [j for j in inside if shed[pid][0, j] > 0]
            first[pid].append(None if not short else round((short[0] - inside[0]) * slot_h, 1))
    return {
        "groups": out_groups,
        "sites": {pid: {"hours_to_first_critical_shortfall": first[pid]} for pid in sites},
    }


def outage_summary(community: Community) -> list[dict[str, Any]]:
    """The outages as results.json lists them."""
    return [{"start": o.start.isoformat(), "duration_hours": o.duration.total_seconds() / 3600,
             "announced_hours": o.announced_hours} for o in community.outages]
