"""Rate limits of the live exchange: token buckets with bounded state.

Two limiters guard the service (``service/app.py`` builds them from the settings):

* **participants** — every signed request (order, cancel, modify, meter reading, signed read)
  is charged to the participant whose signature it carries, *after* the signature is verified:
  an outsider who merely names a participant spends nothing of that participant's budget;
* **addresses** — every public read is charged to the client's network address.

State is bounded. A bucket that has not been touched for ``burst / rate`` seconds has refilled to
``burst``, exactly as if it had never been seen, so it is dropped (least recently used first,
checked on every take: no timer thread). Beyond that, at most ``max_keys`` buckets are kept; when a
flood of distinct keys exceeds it within one refill time, the least recently used is dropped early
(that key starts again from a full bucket: the bound costs only that leniency).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from p2penergy.service.live import ServiceError

MAX_KEYS = 10_000
"""Buckets kept at most per limiter (assumption: a community exchange has tens to thousands of
participants; 10,000 buckets of two floats each are well under a megabyte)."""


class RateLimiter:
    """Token bucket per key: ``rate_per_s`` sustained, ``burst`` at once; 429 naming ``field`` when empty."""

    def __init__(self, rate_per_s: float, burst: int, field: str = "participant", max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate_per_s > 0, burst >= 1 and max_keys >= 1")
        self.rate = rate_per_s
        self.burst = burst
        self.field = field
        self.max_keys = max_keys
        self.refill_s = burst / rate_per_s  # after this long untouched a bucket is full: forgotten
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at), oldest first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> None:
        """Spend one token of ``key``'s bucket, or raise a 429 ``ServiceError``."""
        now = self._clock()
        with self._lock:
            buckets = self._buckets
            entry = buckets.pop(key, None)
            while buckets:  # forget buckets that have refilled (the oldest first) and keep at most max_keys
                _, (_, at) = next(iter(buckets.items()))
                if now - at < self.refill_s and len(buckets) < self.max_keys:
                    break
                buckets.popitem(last=False)
            tokens, at = entry if entry is not None else (float(self.burst), now)
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens < 1:
                buckets[key] = (tokens, now)
                wait_s = (1 - tokens) / self.rate
                raise ServiceError(429, self.field, f"over {self.rate:g} requests/s (burst {self.burst}); "
                                                    f"retry in {wait_s:.2f} s", retry_after_s=wait_s)
            buckets[key] = (tokens - 1, now)
