"""Chain writes in order, retried until they land: the exchange goes on while the node is away.

The live exchange closes a slot every few minutes whether or not its EVM node answers. Its
writes to the chain (each closed slot's commitment, each new participant's address) go into
one :class:`CommitQueue`, which a worker thread sends strictly in the order they were put:

- **in order**: the head of the queue blocks the rest. Slot commitments must be put in
  increasing slot order (a slot put out of order is refused), so the chain's commitments are
  in slot order too, and a registration lands before the slots traded after it.
- **retried with backoff**: a failed attempt (node unreachable, timeout, revert, the journal
  write afterwards failing) is tried again after :class:`Backoff` — ``first_s``, then ``factor``
  times longer each time, never longer than ``max_s``.
- **never duplicated**: before retrying, and before the first attempt of anything that may have
  landed already (``maybe_landed``: what a restart re-queues), the queue reads the contract's
  state. A commitment that landed before a timeout is found there (``commitments(slot)``) and
  taken as done, with the transaction found in that block's logs; one that differs from ours
  (roots or journal head) is a :class:`CommitConflict` (reported, never overwritten: the contract allows one
  commitment per slot).
- **never lost**: nothing leaves the queue before its ``on_landed`` callback (which journals
  it) returned. What a crash loses from memory the owner re-queues from its journal on start
  (slots closed but not committed).

:meth:`CommitQueue.status` is the commit lag for ``/health``: slots closed but not committed,
the oldest of them, the last error and when the next attempt is due.

The simulation's embedded chain does not use this queue: it cannot be away, and its
pipelined worker (``pipeline.py``) already overlaps commits with the simulation.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from p2penergy.ledger.chain import ChainError, OnChainCommitment

RETRY_FIRST_S = 1.0
"""Wait after the first failed attempt (s). A dropped connection or a node restart is usually over
within seconds; waiting 1 s costs nothing against a slot of 15-30 minutes."""
RETRY_FACTOR = 2.0
"""Each further consecutive failure multiplies the wait (exponential backoff): a long outage costs a
handful of calls an hour, not one per tick, and the node is not hammered while it recovers."""
RETRY_MAX_S = 60.0
"""Longest wait between attempts (s): once the node is back, the queue notices within a minute, far
inside one slot (the shortest market we ship has 15-minute slots), so the lag closes before it grows."""
ZERO_ADDRESS = "0x" + "00" * 20


class CommitConflict(ChainError):
    """The chain already holds something else for this write (another commitment of the slot,
    another address for the participant): retrying cannot help; an operator must look."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between attempts: ``first_s`` after the first failure, ``factor`` times more after each next one,
    never more than ``max_s``."""

    first_s: float = RETRY_FIRST_S
    factor: float = RETRY_FACTOR
    max_s: float = RETRY_MAX_S

    def __post_init__(self) -> None:
        if not self.first_s > 0:
            raise ValueError(f"first_s: seconds > 0, got {self.first_s!r}")
        if not self.factor >= 1:
            raise ValueError(f"factor: >= 1, got {self.factor!r}")
        if not self.max_s >= self.first_s:
            raise ValueError(f"max_s: seconds >= first_s ({self.first_s}), got {self.max_s!r}")

    def delay_s(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failed attempts (>= 1)."""
        if failures < 1:
            return 0.0
        return min(self.max_s, self.first_s * self.factor ** min(failures - 1, 64))


class ChainWriter(Protocol):
    """What the queue needs of :class:`~p2penergy.ledger.chain.Chain`."""

    def commit_slot(self, slot_start: int, orders_root: bytes, trades_root: bytes, certificates_root: bytes,
                    journal_head: bytes, journal_seq: int, tag_energy_wh: dict[str, int],
                    device_certificates: list[tuple[str, int, int]]) -> tuple[str, int | None, Any]: ...

    def commitment(self, slot_start: int) -> OnChainCommitment | None: ...

    def commit_tx(self, slot_start: int, block: int) -> str | None: ...

    def register(self, participants: dict[str, str]) -> list[dict[str, Any]]: ...

    def account_of(self, participant: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Landed:
    """A write that is on chain: the operation (a commitment as the chain holds it), its transaction and block.

    ``recovered``: found already on chain (it landed on an earlier attempt or before a restart).
    ``tx_hash`` is None only if a recovered commitment's block logs could not be read (a pruned node).
    """

    op: SlotCommit | Registration
    tx_hash: str | None
    block: int | None
    recovered: bool = False


@dataclass(frozen=True, slots=True)
class SlotCommit:
    """One closed slot's commitment: its roots, the journal head it covers, energy per tag, certificates per device.

    ``slot_start`` is Unix seconds (the contract's key). ``maybe_landed``: check the chain before sending.
    """

    slot_start: int
    orders_root: bytes
    trades_root: bytes
    certificates_root: bytes
    journal_head: bytes
    journal_seq: int
    tag_energy_wh: Mapping[str, int] = field(default_factory=dict)
    device_certificates: tuple[tuple[str, int, int], ...] = ()
    maybe_landed: bool = False

    def describe(self) -> str:
        return f"commit of slot {self.slot_start}"

    def landed(self, chain: ChainWriter) -> Landed | None:
        """The commitment on chain if there is one and it is ours; None if there is none."""
        on_chain = chain.commitment(self.slot_start)
        if on_chain is None:
            return None
        ours = (self.orders_root, self.trades_root, self.certificates_root, self.journal_head, self.journal_seq)
        theirs = (on_chain.orders_root, on_chain.trades_root, on_chain.certificates_root, on_chain.journal_head,
                  on_chain.journal_seq)
        if ours != theirs:
            raise CommitConflict(f"{self.describe()}: the chain already holds another commitment for this slot "
                                 f"(trades root 0x{on_chain.trades_root.hex()}, journal row {on_chain.journal_seq}; "
                                 f"ours 0x{self.trades_root.hex()}, row {self.journal_seq}); a slot is committed "
                                 "once: the journal and the chain disagree")
        try:
            tx_hash = chain.commit_tx(self.slot_start, on_chain.block_number)
        except Exception:  # a node that keeps no logs of that block: the commitment itself is what counts
            tx_hash = None
        return Landed(self, tx_hash, on_chain.block_number, recovered=True)

    def send(self, chain: ChainWriter) -> Landed:
        tx_hash, block, _event = chain.commit_slot(
            self.slot_start, self.orders_root, self.trades_root, self.certificates_root, self.journal_head,
            self.journal_seq, dict(self.tag_energy_wh), list(self.device_certificates))
        return Landed(self, tx_hash, block)


@dataclass(frozen=True, slots=True)
class Registration:
    """Participants' addresses to register on chain (``{participant id: address}``); always checked first."""

    participants: Mapping[str, str]
    maybe_landed: bool = True

    def describe(self) -> str:
        return f"registration of {', '.join(sorted(self.participants))}"

    def _missing(self, chain: ChainWriter) -> dict[str, str]:
        missing = {}
        for pid, address in self.participants.items():
            on_chain = chain.account_of(pid)
            if int(on_chain, 16) == 0:
                missing[pid] = address
            elif on_chain.lower() != address.lower():
                raise CommitConflict(f"registration of {pid!r}: the chain holds {on_chain}, the journal {address}")
        return missing

    def landed(self, chain: ChainWriter) -> Landed | None:
        return None if self._missing(chain) else Landed(self, None, None, recovered=True)

    def send(self, chain: ChainWriter) -> Landed:
        chain.register(self._missing(chain))
        return Landed(self, None, None)


@dataclass(frozen=True, slots=True)
class CommitLag:
    """How far the chain is behind: what ``/health`` reports.

    ``pending_slots``: slots closed but not committed; ``oldest_pending_slot`` (Unix seconds) the
    first of them; ``pending_writes`` all queued writes (registrations too); ``failures``: consecutive
    failed attempts of the head; ``last_error`` (and ``last_error_at``, Unix seconds) the latest
    failure, kept until a write lands; ``next_attempt_in_s``: when the head is tried again.
    """

    pending_slots: int
    oldest_pending_slot: int | None
    pending_writes: int
    last_committed_slot: int | None
    committed: int
    failures: int
    last_error: str | None
    last_error_at: float | None
    next_attempt_in_s: float | None


class CommitQueue:
    """Ordered, retried, idempotent chain writes; :meth:`start` a worker thread or call :meth:`step`
    (not both: one sender at a time, as the operator's nonces are sequential).

    It answers ``register`` / ``commit_slot`` / ``close`` as a chain does, so an engine that
    commits to a chain can commit to the queue instead (the transaction then arrives later, at
    ``on_landed``).

    ``on_landed(landed)`` is called (from the worker) once per write, after it is on chain and
    before it leaves the queue; if it raises, the write stays at the head and is retried (the
    chain is then checked first, so nothing is sent twice).
    """

    def __init__(self, chain: ChainWriter, on_landed: Callable[[Landed], None], backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.chain = chain
        self.on_landed = on_landed
        self.backoff = backoff or Backoff()
        self._clock = clock
        self._wall = wall
        self._ops: deque[SlotCommit | Registration] = deque()
        self._cond = threading.Condition()
        self._last_slot: int | None = None
        self._last_committed: int | None = None
        self._committed = 0
        self._failures = 0
        self._error: str | None = None
        self._error_at: float | None = None
        self._next_at = 0.0
        self._busy = False
        self._stop = False
        self._thread: threading.Thread | None = None

    # -- putting ------------------------------------------------------------------------------
    def put(self, op: SlotCommit | Registration) -> None:
        """Queue a write after everything queued so far; slot commitments in strictly increasing slot order."""
        with self._cond:
            if isinstance(op, SlotCommit):
                if self._last_slot is not None and op.slot_start <= self._last_slot:
                    raise ValueError(f"slot_start: {op.slot_start} is not after the last slot queued "
                                     f"({self._last_slot}); commitments go in slot order, each once")
                self._last_slot = op.slot_start
            self._ops.append(op)
            self._cond.notify_all()

    # -- the committer's calls (what an engine calls on a Chain), queued instead of sent -----------
    def register(self, participants: Mapping[str, str]) -> None:
        """Queue the registration of ``{participant id: address}``."""
        self.put(Registration(dict(participants)))

    def commit_slot(self, slot_start: int, orders_root: bytes, trades_root: bytes, certificates_root: bytes,
                    journal_head: bytes, journal_seq: int, tag_energy_wh: Mapping[str, int],
                    device_certificates: list[tuple[str, int, int]] | tuple[tuple[str, int, int], ...] = (),
                    maybe_landed: bool = False) -> None:
        """Queue a slot's commitment (its transaction is reported to ``on_landed``, not returned)."""
        self.put(SlotCommit(slot_start, orders_root, trades_root, certificates_root, journal_head, journal_seq,
                            dict(tag_energy_wh), tuple((str(d), int(i), int(c)) for d, i, c in device_certificates),
                            maybe_landed))

    def close(self) -> None:
        """Stop the worker (see :meth:`stop`)."""
        self.stop()

    # -- sending ------------------------------------------------------------------------------
    def step(self) -> Landed | None:
        """Try the head write once, now (ignoring the backoff); its landing, or None (empty queue or a failure)."""
        with self._cond:
            if not self._ops:
                return None
            op = self._ops[0]
            retry = self._failures > 0
            self._busy = True
        try:
            landed = op.landed(self.chain) if op.maybe_landed or retry else None
            if landed is None:
                landed = op.send(self.chain)
            self.on_landed(landed)
        except Exception as exc:
            with self._cond:
                self._busy = False
                self._failures += 1
                self._error = f"{op.describe()}: {exc}"
                self._error_at = self._wall()
                self._next_at = self._clock() + self.backoff.delay_s(self._failures)
                self._cond.notify_all()
            return None
        with self._cond:
            self._ops.popleft()
            self._busy = False
            self._failures = 0
            self._error = self._error_at = None
            self._next_at = 0.0
            if isinstance(op, SlotCommit):
                self._last_committed = op.slot_start
                self._committed += 1
            self._cond.notify_all()
        return landed

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._ops or self._clock() < self._next_at):
                    wait = None if not self._ops else max(0.0, self._next_at - self._clock())
                    self._cond.wait(wait)
                if self._stop:
                    return
            self.step()

    def start(self) -> None:
        """Send from a worker thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="chain-commits", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the worker after its current attempt (what is queued stays queued: the journal has it)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until everything queued has landed (True) or ``timeout_s`` passed (False)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._ops or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # -- reporting ----------------------------------------------------------------------------
    def pending(self) -> list[SlotCommit | Registration]:
        with self._cond:
            return list(self._ops)

    def status(self) -> CommitLag:
        with self._cond:
            slots = [op.slot_start for op in self._ops if isinstance(op, SlotCommit)]
            next_in = (max(0.0, self._next_at - self._clock()) if self._ops and self._failures else
                       (0.0 if self._ops else None))
            return CommitLag(pending_slots=len(slots), oldest_pending_slot=slots[0] if slots else None,
                             pending_writes=len(self._ops), last_committed_slot=self._last_committed,
                             committed=self._committed, failures=self._failures, last_error=self._error,
                             last_error_at=self._error_at, next_attempt_in_s=next_in)
