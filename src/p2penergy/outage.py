"""Grid outages and the priority of loads (issue 18): when the utility is gone, what must stay on.

An :class:`Outage` is a period with no utility import or export (a typhoon, an earthquake):
a start, a duration, and how many hours ahead it was announced (``None``: not announced, no
agent can know of it before it starts). ``p2penergy simulate --outage START/DURATION`` takes
the ISO 8601 interval form (``2020-08-20T13:00+09:00/PT24H``; ``START/END`` also works).

Each site's load is split into three priorities (:class:`LoadShares`), shed in reverse order
when the island runs short: **critical** (refrigerator, lights, communication), **essential**
(cooking, water, washing, fans, office computers) and **deferrable** (air-conditioning, which
in a Japanese August is the largest single load, and appliances that can wait). The shares
are stated assumptions, constant through the day (a simplification: a fridge runs all day,
lights in the evening, air-conditioning in the afternoon).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

PRIORITIES = ("critical", "essential", "deferrable")

# Longest outage a run accepts [h]: the largest report period is a month.
MAX_OUTAGE_HOURS = 31 * 24


@dataclass(frozen=True, slots=True)
class LoadShares:
    """Shares of a site's load in each priority [fraction of the slot's load]; deferrable is the rest."""

    critical: float
    essential: float

    def __post_init__(self) -> None:
        for name in ("critical", "essential"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"load_shares.{name}: must be between 0 and 1, got {value}")
        if self.critical + self.essential > 1.0:
            raise ValueError(f"load_shares: critical + essential must be at most 1, got "
                             f"{self.critical} + {self.essential}")

    @property
    def deferrable(self) -> float:
        return 1.0 - self.critical - self.essential

    def split_wh(self, load_wh: int) -> tuple[int, int, int]:
        """(critical, essential, deferrable) Wh of a slot's ``load_wh``: whole Wh that add up to it
        (critical and essential rounded down to the per-mille share, deferrable the rest)."""
        critical = load_wh * round(self.critical * 1000) // 1000
        essential = load_wh * round(self.essential * 1000) // 1000
        return critical, essential, load_wh - critical - essential


# A home in August (Japan): of roughly 11 kWh a day, a refrigerator uses about 1 kWh (40-50 W
# on average), lighting 1-1.5 kWh (LED, evening), router, phones and a television for news
# about 0.5 kWh: about 2.75 kWh, a quarter -> critical 0.25. Cooking (rice cooker, microwave,
# induction hob), water heating's electronics, washing and fans about 3.3 kWh -> essential
# 0.30. Air-conditioning, 40-50 % of a summer day's use (METI's household energy surveys), and
# appliances that can wait are the deferrable 0.45.
HOME_LOAD_SHARES = LoadShares(critical=0.25, essential=0.30)
# The office: servers, network, security and emergency lighting run day and night (its base
# load, roughly 15 % of the day's energy) -> critical 0.15; lighting, computers and lifts during
# business hours -> essential 0.40; air-conditioning (about 45 % of an office's summer use)
# is deferrable.
OFFICE_LOAD_SHARES = LoadShares(critical=0.15, essential=0.40)

_DURATION = re.compile(r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?)?$")


@dataclass(frozen=True, slots=True)
class Outage:
    """No utility from ``start`` (tz-aware) for ``duration``; announced ``announced_hours`` before
    it starts, or not at all (``None``)."""

    start: datetime
    duration: timedelta
    announced_hours: float | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError(f"outage.start: must have a UTC offset (e.g. 2020-08-20T13:00+09:00), "
                             f"got {self.start.isoformat()}")
        hours = self.duration.total_seconds() / 3600
        if not 0 < hours <= MAX_OUTAGE_HOURS:
            raise ValueError(f"outage.duration: must be more than 0 and at most {MAX_OUTAGE_HOURS} h, "
                             f"got {hours:g} h")
        if self.announced_hours is not None and not 0 <= self.announced_hours <= MAX_OUTAGE_HOURS:
            raise ValueError(f"outage.announced_hours: must be between 0 and {MAX_OUTAGE_HOURS} "
                             f"(or absent: not announced), got {self.announced_hours}")

    @property
    def end(self) -> datetime:
        return self.start + self.duration

    @property
    def announced_at(self) -> datetime | None:
        """When agents learn of it (``None``: only when it starts, like everyone else)."""
        if self.announced_hours is None:
            return None
        return self.start - timedelta(hours=self.announced_hours)

    def covers(self, slot_start: datetime) -> bool:
        return self.start <= slot_start < self.end

    def known_at(self, now: datetime) -> bool:
        """Whether an agent at ``now`` knows of this outage (announced, or already begun)."""
        seen = self.announced_at if self.announced_at is not None else self.start
        return now >= seen

    def label(self) -> str:
        hours = self.duration.total_seconds() / 3600
        notice = (f"announced {self.announced_hours:g} h ahead" if self.announced_hours is not None
                  else "unannounced")
        return f"{self.start.isoformat(timespec='minutes')} for {hours:g} h, {notice}"


def parse_duration(text: str, field: str = "outage") -> timedelta:
    """An ISO 8601 duration of days, hours and minutes (``PT24H``, ``P1DT6H``, ``PT90M``)."""
    m = _DURATION.match(text)
    if m is None or not any(m.group(g) for g in "dhm"):
        raise ValueError(f"{field}: the duration must be ISO 8601 like PT24H, P1D or P1DT6H, got {text!r}")
    return timedelta(days=float(m.group("d") or 0), hours=float(m.group("h") or 0), minutes=float(m.group("m") or 0))


def parse_outage(text: str, announced_hours: float | None = None, field: str = "--outage") -> Outage:
    """An outage from an ISO 8601 interval ``START/DURATION`` or ``START/END`` (START with its
    UTC offset), e.g. ``2020-08-20T13:00+09:00/PT24H``."""
    parts = text.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"{field}: must be an ISO 8601 interval START/DURATION like "
                         f"2020-08-20T13:00+09:00/PT24H, got {text!r}")
    try:
        start = datetime.fromisoformat(parts[0])
    except ValueError as exc:
        raise ValueError(f"{field}: the start must be an ISO 8601 date and time with its UTC offset, "
                         f"got {parts[0]!r}") from exc
    if start.tzinfo is None:
        raise ValueError(f"{field}: the start must have a UTC offset (e.g. +09:00), got {parts[0]!r}")
    if parts[1].startswith("P"):
        duration = parse_duration(parts[1], field)
    else:
        try:
            end = datetime.fromisoformat(parts[1])
        except ValueError as exc:
            raise ValueError(f"{field}: the end must be an ISO 8601 duration (PT24H) or date and time, "
                             f"got {parts[1]!r}") from exc
        if end.tzinfo is None:
            end = end.replace(tzinfo=start.tzinfo)
        duration = end - start
    try:
        return Outage(start, duration, announced_hours)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from exc


def outage_mask(starts: Sequence[datetime], outages: Sequence[Outage]) -> np.ndarray:
    """Per slot start: whether an outage covers it."""
    return np.array([any(o.covers(s) for o in outages) for s in starts], dtype=bool)
