"""Metrics over certificate events (from one run, or a file read back): matching scores,
renewable share of car driving, energy per tag, whether buyers' preferences were met.

All take an iterable of event dicts (:mod:`p2penergy.provenance.events`), so the simulation
and the ``p2penergy certificates`` command compute them the same way.

Matching score over windows ``w`` (the settlement slot, or the clock hour)::

    score = Σ_w min(use_w, clean_w) / Σ_w use_w

``use`` is metered consumption plus a car's driving energy; ``clean`` is the renewable
certificates the participant held for itself in the window: those it cancelled, plus those
it exported as surplus (energy it could have claimed had the claim window been longer).
Per slot, surplus is only exported once consumption is covered, so the 30-minute score
equals the share of use covered by renewable claims; the hourly score lets one half-hour's
surplus cover the other half-hour of the same hour, so it is >= the 30-minute score. The
community score sums use and clean over all participants in each window first (the
community as one consumer: one member's surplus can match another's use).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from p2penergy.market import RENEWABLE_SOURCES

SLOT = "slot"
HOUR = "hour"


@dataclass(frozen=True, slots=True)
class Score:
    """``matched_wh / use_wh`` (``None`` when nothing was used)."""

    matched_wh: int
    use_wh: int

    @property
    def value(self) -> float | None:
        return self.matched_wh / self.use_wh if self.use_wh else None


@dataclass(frozen=True, slots=True)
class MatchingScores:
    """Matching score per participant and for the community, over one window kind."""

    window: str
    participants: Mapping[str, Score]
    community: Score


def _hour_of(slot_start: str, cache: dict[str, str]) -> str:
    hour = cache.get(slot_start)
    if hour is None:
        hour = datetime.fromisoformat(slot_start).replace(minute=0, second=0, microsecond=0).isoformat()
        cache[slot_start] = hour
    return hour


def matching_scores(events: Iterable[Mapping[str, Any]], window: str = SLOT) -> MatchingScores:
    """Matching scores over ``window`` = ``"slot"`` or ``"hour"`` (see the module docstring)."""
    if window not in (SLOT, HOUR):
        raise ValueError(f"window: must be 'slot' or 'hour', got {window!r}")
    use: dict[tuple[str, str], int] = {}
    clean: dict[tuple[str, str], int] = {}
    cache: dict[str, str] = {}
    for e in events:
        kind = e["kind"]
        if kind == "meter":
            amount, target = e["energy_wh"] + (e["drive_wh"] or 0), use
        elif (kind == "cancel" or (kind == "export" and e["purpose"] == "surplus")) \
                and e["source"] in RENEWABLE_SOURCES:
            amount, target = e["energy_wh"], clean
        else:
            continue
        w = e["slot_start"] if window == SLOT else _hour_of(e["slot_start"], cache)
        key = (e["from_holder"], w)
        target[key] = target.get(key, 0) + amount
    per: dict[str, list[int]] = {}
    com_use: dict[str, int] = {}
    com_clean: dict[str, int] = {}
    for key in use.keys() | clean.keys():
        p, w = key
        u, c = use.get(key, 0), clean.get(key, 0)
        acc = per.setdefault(p, [0, 0])
        acc[0] += min(u, c)
        acc[1] += u
        com_use[w] = com_use.get(w, 0) + u
        com_clean[w] = com_clean.get(w, 0) + c
    community = Score(sum(min(com_use[w], com_clean[w]) for w in com_use), sum(com_use.values()))
    return MatchingScores(window, {p: Score(*v) for p, v in sorted(per.items())}, community)


@dataclass(frozen=True, slots=True)
class DrivingShare:
    """Renewable share of cars' driving energy: per participant and in all."""

    participants: Mapping[str, Score]
    total: Score


def renewable_driving_share(events: Iterable[Mapping[str, Any]]) -> DrivingShare:
    """Renewable certificates cancelled for driving / metered driving energy (Wh)."""
    drive: dict[str, int] = {}
    green: dict[str, int] = {}
    for e in events:
        if e["kind"] == "meter" and e["drive_wh"]:
            drive[e["from_holder"]] = drive.get(e["from_holder"], 0) + e["drive_wh"]
        elif e["kind"] == "cancel" and e["purpose"] == "driving" and e["source"] in RENEWABLE_SOURCES:
            green[e["from_holder"]] = green.get(e["from_holder"], 0) + e["energy_wh"]
    per = {p: Score(green.get(p, 0), wh) for p, wh in sorted(drive.items())}
    return DrivingShare(per, Score(sum(s.matched_wh for s in per.values()), sum(drive.values())))


@dataclass(frozen=True, slots=True)
class TagEnergy:
    """Wh traded under one tag, how many came with its certificates, and the shortfall."""

    traded_wh: int
    certified_wh: int

    @property
    def shortfall_wh(self) -> int:
        return self.traded_wh - self.certified_wh


def energy_per_tag(events: Iterable[Mapping[str, Any]]) -> dict[str, TagEnergy]:
    """Per trade tag (``"producer=house-07,source=solar"``, ``"untagged"``): traded and certified Wh."""
    out: dict[str, list[int]] = {}
    for e in events:
        if e["kind"] == "trade":
            acc = out.setdefault(e["tag"], [0, 0])
            acc[0] += e["energy_wh"]
            acc[1] += e["certified_wh"]
    return {tag: TagEnergy(*v) for tag, v in sorted(out.items())}


def claimed_by_source(events: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Per participant, Wh of use by source: claimed certificates by their source, the rest as ``"grid"``."""
    out: dict[str, dict[str, int]] = {}
    use: dict[str, int] = {}
    for e in events:
        if e["kind"] == "cancel":
            acc = out.setdefault(e["from_holder"], {})
            acc[e["source"]] = acc.get(e["source"], 0) + e["energy_wh"]
        elif e["kind"] == "meter":
            use[e["from_holder"]] = use.get(e["from_holder"], 0) + e["energy_wh"] + (e["drive_wh"] or 0)
    for p, wh in use.items():
        acc = out.setdefault(p, {})
        rest = wh - sum(acc.values())
        if rest:
            acc["grid"] = rest
    return {p: dict(sorted(v.items())) for p, v in sorted(out.items())}


@dataclass(frozen=True, slots=True)
class PreferenceOutcome:
    """A buyer's trades: Wh bought, Wh that met its first-choice requirement, Wh certified.

    ``met``: every trade met the buyer's first choice and came with its certificates.
    """

    traded_wh: int
    first_choice_wh: int
    certified_wh: int

    @property
    def met(self) -> bool:
        return self.first_choice_wh == self.traded_wh == self.certified_wh


def preferences_met(events: Iterable[Mapping[str, Any]]) -> dict[str, PreferenceOutcome]:
    """Per buyer: whether its tag preferences were met (see :class:`PreferenceOutcome`)."""
    out: dict[str, list[int]] = {}
    for e in events:
        if e["kind"] == "trade":
            acc = out.setdefault(e["to_holder"], [0, 0, 0])
            acc[0] += e["energy_wh"]
            acc[1] += e["energy_wh"] if e["preference_level"] == 0 else 0
            acc[2] += e["certified_wh"]
    return {b: PreferenceOutcome(*v) for b, v in sorted(out.items())}


@dataclass(frozen=True, slots=True)
class Summary:
    """All metrics of a run (or of one participant's events)."""

    matching_slot: MatchingScores
    matching_hour: MatchingScores
    driving: DrivingShare
    per_tag: Mapping[str, TagEnergy]
    by_source: Mapping[str, Mapping[str, int]]
    preferences: Mapping[str, PreferenceOutcome]


def summarize(events: Iterable[Mapping[str, Any]]) -> Summary:
    events = list(events)
    return Summary(
        matching_slot=matching_scores(events, SLOT),
        matching_hour=matching_scores(events, HOUR),
        driving=renewable_driving_share(events),
        per_tag=energy_per_tag(events),
        by_source=claimed_by_source(events),
        preferences=preferences_met(events),
    )
