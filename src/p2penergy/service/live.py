"""The live exchange: a thin, thread-safe driver of the exchange engine (``ledger/engine.py``).

The engine verifies, applies, journals, closes, commits; this driver adds what only a live
service has: a lock (requests arrive on many threads), the market clock (it hands the
engine ``now``, so the exchange's clock — not a client's timestamp — decides the gates),
request checks (registration, signed-time skew, meter field names), HTTP status codes, and
the views the API reads (orders by participant, trades, prices, readings), which a
:class:`~p2penergy.ledger.engine.Listener` keeps the same way live and on restart.

Every accepted command follows one path under the lock: the engine verifies the signature
and nonce → applies the action to the in-memory exchange at the clock's ``now`` → appends
the action (or its refusal, with the reason), its self-trade cancels and its trades to the
journal → the journal is flushed in one transaction → only then is the command acknowledged
(group commit: ``service/commit.py``). A refusal by the exchange is journalled and uses up
its nonce (a signed action is applied once); a bad signature or a replayed nonce writes
nothing. If the journal cannot be written, memory is thrown away and rebuilt from the
journal, so memory never holds anything the journal does not.

On start the engine reads the journal back (:meth:`Engine.open`): it checks the hash chain
and refuses to start on the first broken row, naming it; with a chain, the registered
addresses and the last commitment's journal head must match the chain's. Then every
action is re-applied, which rebuilds the books, nonces, views and uncommitted slots.

Slots: a book closes when its gate closes (:meth:`LiveExchange.close_due`); a closed slot
is committed once its delivery is over and ``meter_grace`` has passed
(:meth:`LiveExchange.commit_due`): the commit row with the slot's Merkle roots is journalled
right after the head it commits, under the lock, and, with a chain, the commitment goes into
the chain-write queue (``ledger/commit_queue.py``, the engine's committer), which sends it when
the node answers — in slot order, retried with backoff, once — and the engine journals a
``chain_tx`` row (transaction, block) when it has landed. Trading never waits for the chain.
Registrations go through the same queue.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from p2penergy.agents.market_access import PriceTape
from p2penergy.ledger.actions import Action, Cancel, Modify
from p2penergy.ledger.chain import Chain, ChainError
from p2penergy.ledger.commit_queue import Backoff, CommitQueue, Landed, Registration, SlotCommit
from p2penergy.ledger.engine import (
    ZERO_ADDRESS,
    Applied,
    Engine,
    JournalMismatch,
    Listener,
    Rejection,
    SelfTradeCancel,
    unix_seconds,
)
from p2penergy.ledger.journal import Journal, JournalError
from p2penergy.ledger.keys import Key, operator_for, operator_label
from p2penergy.ledger.order_scope import ScopedExchange
from p2penergy.ledger.replay import Balance
from p2penergy.ledger.signing import Domain, ReplayError, SignatureError, Signed
from p2penergy.market import MarketSettings, Order, Trade
from p2penergy.market.book import SiteLimitMap
from p2penergy.market.errors import MarketError
from p2penergy.provenance import ProvenanceError, Registry
from p2penergy.service.clock import MarketClock
from p2penergy.service.meters import MeterBounds
from p2penergy.service.provenance import live_sites
from p2penergy.service.queries import METER_FIELDS, LiveQueries

NO_CHAIN = "none"
DEFAULT_METER_GRACE = timedelta(minutes=15)
"""Market time after a slot's end that the exchange waits for its meter readings before it
settles and commits the slot (assumption: a smart meter reports a half-hour reading within
minutes; readings arriving later are journalled but change no commitment)."""


NONCE_USED = ("not above the last nonce this participant used (a replay, or out of order); "
              "GET /api/me/nonce tells yours")
"""The one answer to a used nonce: it names no nonce (the request is the participant's own, its
signature checked first, but a refusal need not carry anything of the participant's state)."""

NO_ORDER = "no open order of yours with this id"
"""The one answer to a cancel or modify of an order that does not exist, is not the signer's, or is
no longer open: the signer learns nothing of other participants' orders."""


JOURNAL_FAILURES = (SQLAlchemyError, JournalError, OSError)
"""What writing the journal raises when the database refuses a write or is away (SQLAlchemy wraps
every driver's errors): the one kind of failure answered 503 ``journal``."""


class ServiceError(Exception):
    """A request the service refuses: HTTP ``status``, the ``field`` at fault, and why;
    ``retry_after_s`` (a 429) says when to try again (the ``Retry-After`` header)."""

    def __init__(self, status: int, field: str, message: str, retry_after_s: float | None = None) -> None:
        self.status = status
        self.field = field
        self.message = message
        self.retry_after_s = retry_after_s
        super().__init__(f"{field}: {message}")


class JournalCorrupt(RuntimeError):
    """The journal does not check out on start; the service refuses to run on it."""


@dataclass(slots=True)
class SlotStats:
    """Public trading of one slot: volume (Wh), turnover (currency), last price, trade count."""

    volume_wh: int = 0
    amount: Decimal = Decimal(0)
    last_price_per_kwh: Decimal | None = None
    trades: int = 0
    by_source_wh: dict[str, int] = field(default_factory=dict)

    @property
    def vwap_per_kwh(self) -> Decimal | None:
        return (self.amount * 1000 / self.volume_wh).quantize(Decimal("0.0001")) if self.volume_wh else None


@dataclass(slots=True)
class Outcome:
    """What a command did: trades, own resting orders cancelled by self-trade prevention, Wh
    cancelled; ``seq`` / ``generation`` of its last journal row (see ``service/commit.py``)."""

    trades: list[Trade]
    self_cancels: list[SelfTradeCancel]
    cancelled_wh: int
    seq: int
    generation: int


class LiveExchange(LiveQueries, Listener):
    """One market's engine, views and clock, safe for threads."""

    def __init__(self, journal: Journal, clock: MarketClock, chain: Chain | None = None,
                 max_skew: timedelta = timedelta(minutes=5), meter_grace: timedelta = DEFAULT_METER_GRACE,
                 backoff: Backoff | None = None, meter_bounds: MeterBounds | None = None) -> None:
        self.clock = clock
        # what each participant's connection can carry in a slot (service/meters.py); None: unbounded
        self.meter_bounds = meter_bounds
        self.chain = chain
        # the engine's committer: chain writes (registrations, slot commitments) in order, retried while
        # the node is away; the queue's worker reports each landed write to _landed
        self.chain_writes = CommitQueue(chain, self._landed, backoff) if chain is not None else None
        self.max_skew = max_skew
        self.meter_grace = meter_grace
        self.lock = threading.RLock()
        self.contracts: dict[str, Any] = {}  # participant -> utility bill function (service.billing)
        self.pv_devices: dict[str, tuple[str, int]] = {}  # participant -> (PV device id, W): service.provenance
        self.generation = 0  # bumped each time memory is rebuilt from the journal
        # charged with the verified participant of every signed request (the service's rate limit, 429)
        self.charge: Callable[[str], None] | None = None
        self._load(journal)

    # -- opening ------------------------------------------------------------------------
    @classmethod
    def open(cls, db_url: str, settings: MarketSettings, clock: MarketClock, chain_url: str | None = None,
             chain_id: int = 31337, seed: int = 0, max_skew: timedelta = timedelta(minutes=5),
             operator: Key | None = None, meter_grace: timedelta = DEFAULT_METER_GRACE,
             backoff: Backoff | None = None, meter_bounds: MeterBounds | None = None,
             site_limits: SiteLimitMap | None = None) -> LiveExchange:
        """Open (or create) the journal at ``db_url``; an existing journal's market and clock win.

        ``site_limits``: the CDA's per-site P2P limits per slot (``[network] market_limits``), journalled
        in a new journal's genesis row; an existing journal's genesis limits win (the engine rebuilds its
        exchange with them, :meth:`Engine.of_genesis`), like its market and clock.

        With ``chain_url``, ``operator`` must be the contract operator's own key (never one derived
        from ``seed``); on a restart it must be the contract's current operator (after a rotation,
        the new one). Raises :class:`JournalCorrupt` naming the first row that does not check out.
        """
        operator = operator_for(chain_url, operator, seed)
        journal = Journal(db_url)
        chain = Chain.connect(chain_url, operator) if chain_url else None
        if journal.head[0] == 0:
            if chain is not None:
                chain.deploy()
            Engine.create(settings, journal, chain, chain=chain.kind if chain is not None else NO_CHAIN,
                          chain_id=chain.chain_id if chain is not None else chain_id,
                          contract=chain.address if chain is not None else ZERO_ADDRESS,
                          operator=operator.address,
                          extra={"operator_key": operator_label(operator), "clock": clock.as_meta()},
                          site_limits=site_limits)
        else:
            first = next(journal.rows(kinds=("genesis",)), None)
            genesis = json.loads(first.body) if first is not None else {}
            clock = MarketClock.from_meta(genesis.get("clock", {"kind": "real"}))
            if chain is not None and "contract" in genesis:
                if chain.chain_id != int(genesis["chain_id"]):
                    raise ChainError(f"chain_url: {chain_url} is chain {chain.chain_id}, the journal's contract "
                                     f"is on chain {genesis['chain_id']}")
                chain.attach(genesis["contract"])
                chain.ensure_operator()
        ex = cls(journal, clock, chain, max_skew, meter_grace, backoff, meter_bounds)
        if ex.chain is not None:
            ex._check_chain()  # on start only: a rebuild after a failed write must not need the node
        if ex.chain_writes is not None:
            ex.chain_writes.start()
        return ex

    def _load(self, journal: Journal) -> None:
        """(Re)build the engine and every view from the journal."""
        self.journal = journal
        # orders are named (participant, order id): each participant's ids are its own (ledger/order_scope.py)
        self.orders: dict[tuple[str, str], Order] = {}
        self.cancelled: set[tuple[str, str]] = set()
        self.self_cancelled: dict[tuple[str, str], str] = {}  # -> the order of the same owner that cancelled it
        self.mine: dict[str, list[str]] = defaultdict(list)  # participant -> its order ids, in order
        self.slot_orders: dict[datetime, set[tuple[str, str]]] = defaultdict(set)
        self.closed: set[datetime] = set()
        self.trades: list[Trade] = []
        self.trades_of: dict[str, list[Trade]] = defaultdict(list)
        self.stats: dict[datetime, SlotStats] = {}
        self.balances: dict[str, Balance] = defaultdict(Balance)
        self.readings: dict[str, dict[datetime, dict[str, int]]] = defaultdict(dict)
        self.certified: dict[str, list[dict[str, Any]]] = defaultdict(list)  # buyer -> certificates transferred
        self.tape = PriceTape()
        self._loaded = False
        try:
            self.engine = Engine.open(journal, self.chain_writes, Registry(), listener=self)
        except JournalMismatch as exc:
            raise JournalCorrupt(f"journal {journal.url}: {exc}; the service will not start on it") from exc
        self.flushed_seq = journal.head[0]
        self._drop_out_of_range_readings()
        self._loaded = True

    def _check_chain(self) -> None:
        """The journal's participants and commitments must be the chain's (a journal re-hashed after
        an edit passes the hash chain but not this). The chain may lag the journal — writes that a
        stop or an outage left queued, sent again by :meth:`commit_pending` — but never disagree:
        the newest commitment on chain must commit the journal head its commit row names, and a
        participant whose row that head covers must be in the chain's registry."""
        chain = self.chain
        assert chain is not None
        anchor, head_differs = 0, ""  # the journal row up to which the chain holds a commitment
        for row in reversed(list(self.journal.rows(kinds=("commit",)))):  # newest first: usually one look
            c = chain.commitment(row.slot_start) if row.slot_start is not None else None
            if c is None:
                continue  # queued, not sent yet
            body = json.loads(row.body)
            if c.journal_seq != body["journal_seq"] or c.journal_head.hex() != body["journal_head"]:
                head_differs = (f"journal {self.journal.url}: journal row {row.seq} (commit {row.slot_start}) "
                                f"commits head 0x{body['journal_head']} at row {body['journal_seq']}, the chain "
                                f"holds 0x{c.journal_head.hex()} at row {c.journal_seq}; the service will not start")
            anchor = c.journal_seq
            break
        for row in self.journal.rows(kinds=("participant",)):
            body = json.loads(row.body)
            pid, address = body["participant"], body["address"]
            on_chain = chain.account_of(pid)
            if int(on_chain, 16) == 0 and row.seq > anchor:
                continue  # registered while the node was away: queued again by commit_pending
            if on_chain.lower() != address.lower():
                where = (f"; its row {row.seq} is before the journal head committed on chain (row {anchor})"
                         if int(on_chain, 16) == 0 else "")
                raise JournalCorrupt(f"journal {self.journal.url}: participant {pid!r} has address {address} in the "
                                     f"journal but {on_chain} in the chain's registry{where}; the service will not "
                                     "start")
        if head_differs:
            raise JournalCorrupt(head_differs)

    # -- what the engine tells (live and while restoring) --------------------------------
    @property
    def settings(self) -> MarketSettings:
        return self.engine.settings

    @property
    def domain(self) -> Domain:
        return self.engine.domain

    @property
    def exchange(self) -> ScopedExchange:
        return self.engine.exchange

    @property
    def verifier(self) -> Any:
        return self.engine.verifier

    @property
    def addresses(self) -> dict[str, str]:
        return self.engine.addresses

    @property
    def committed(self) -> set[int]:
        """Slots whose commitment is done: sent to the chain (with one), journalled (without)."""
        return set(self.engine.sent) if self.chain is not None else set(self.engine.committed)

    def on_action(self, action: Action, now: datetime) -> None:
        name = (action.participant, action.order_id)
        if isinstance(action, Order):
            self.orders[name] = action
            self.mine[action.participant].append(action.order_id)
            if action.slot_start not in self.closed:
                self.slot_orders[action.slot_start].add(name)
        elif isinstance(action, Modify):
            old = self.orders[name]
            self.orders[name] = Order(old.order_id, old.participant, old.side, old.slot_start, action.energy_wh,
                                      action.price_per_kwh, now, old.tag, old.requirements)
        else:
            self.cancelled.add(name)

    def on_self_cancel(self, cancel: SelfTradeCancel) -> None:
        name = (cancel.participant, cancel.order_id)
        self.cancelled.add(name)
        self.self_cancelled[name] = cancel.by

    def on_trades(self, trades: list[Trade]) -> None:
        for t in trades:
            self.trades.append(t)
            self.trades_of[t.buyer].append(t)
            self.trades_of[t.seller].append(t)
            s = self.stats.setdefault(t.slot_start, SlotStats())
            s.volume_wh += t.energy_wh
            s.amount += t.amount
            s.last_price_per_kwh = t.price_per_kwh
            s.trades += 1
            source = t.tag.get("source") or "untagged"
            s.by_source_wh[source] = s.by_source_wh.get(source, 0) + t.energy_wh
            b, s_ = self.balances[t.buyer], self.balances[t.seller]
            b.bought_wh += t.energy_wh
            b.paid += t.amount
            s_.sold_wh += t.energy_wh
            s_.received += t.amount
        self.tape.record(trades)

    def on_meter(self, participant: str, slot_start: datetime, values: dict[str, int]) -> None:
        self.readings[participant][slot_start] = dict(values)
        if self._loaded:  # live (on replay the settings are not known yet: checked once it is done)
            self._drop_out_of_range_readings({participant: self.readings[participant]})

    def _drop_out_of_range_readings(self, readings: Mapping[str, dict[datetime, dict[str, int]]] | None = None
                                    ) -> None:
        """A reading out of range (only in a journal written before readings were bounded, or by an
        operator's own driver: an upload is checked before it is journalled) stays journalled but is
        not counted in bills or certificates — one bad row must not make every bill fail."""
        for participant, slots in (self.readings if readings is None else readings).items():
            for slot_start in list(slots):
                problem = self._meter_problem(participant, slot_start, slots[slot_start])
                if problem is not None:
                    del slots[slot_start]
                    print(f"p2penergy serve: the journalled meter reading of {participant!r} for "
                          f"{slot_start.isoformat()} is not counted: {problem[0]}: {problem[1]}",
                          file=sys.stderr, flush=True)

    def _meter_problem(self, participant: str, slot_start: datetime, values: Mapping[str, Any]
                       ) -> tuple[str, str] | None:
        """``(field, allowed)`` of what makes a reading out of range, or ``None``: the one check of
        uploads and of readings replayed from the journal."""
        problem = self._reading_shape_problem(slot_start, values)
        if problem is None and self.meter_bounds is not None:
            problem = self.meter_bounds.problem(participant, values, self.settings.slot_minutes)
        return problem

    def _reading_shape_problem(self, slot_start: datetime, values: Mapping[str, Any]) -> tuple[str, str] | None:
        """What is wrong with a reading whatever its participant: its slot (a slot start in the market's
        calendar), its value names, whole non-negative numbers (told before the signature is checked:
        it says nothing of anyone)."""
        settings = self.settings
        if not settings.in_calendar(slot_start):
            return "slot_start", f"a slot in the market's calendar, {settings.calendar_text()}"
        if not settings.is_slot_start(slot_start):
            return "slot_start", f"the start of a {settings.slot_minutes}-minute slot in {settings.timezone}"
        for name, value in values.items():
            if name not in METER_FIELDS:
                return f"values.{name}", f"one of {', '.join(METER_FIELDS)}"
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return f"values.{name}", "a whole number of Wh, zero or more"
        return None

    def on_certificate(self, event: Mapping[str, Any]) -> None:
        if event.get("kind") == "transfer" and event.get("to_holder"):
            self.certified[str(event["to_holder"])].append(dict(event))

    def on_close(self, slot_start: datetime) -> None:
        self.closed.add(slot_start)
        self.slot_orders.pop(slot_start, None)

    # -- the journal ----------------------------------------------------------------------
    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Around anything that writes the journal. A journal failure (:data:`JOURNAL_FAILURES`): memory
        is rebuilt from the journal, 503 ``journal``. Any other unexpected exception is a fault of the
        service itself, not of the journal: memory may be half-changed, so it is rebuilt all the same,
        but the answer is 500 ``internal`` and the traceback goes to the operator's log (stderr) —
        never disguised as a journal outage."""
        try:
            yield
        except (ServiceError, JournalCorrupt):
            raise
        except (SignatureError, ReplayError, MarketError, ChainError):
            raise
        except JOURNAL_FAILURES as exc:
            self._rebuild()
            raise ServiceError(503, "journal", f"could not be written; nothing was accepted ({exc})") from exc
        except Exception as exc:
            print("p2penergy serve: unexpected error; memory is rebuilt from the journal:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
            self._rebuild()
            raise ServiceError(500, "internal", "an unexpected error in the exchange; nothing was accepted (the "
                                                "operator's log has the details)") from exc

    def _rebuild(self) -> None:
        url = self.journal.url
        self.journal.engine.dispose()
        self.generation += 1
        self._load(Journal(url))

    def _flush(self) -> None:
        """Write the buffered journal rows; on failure rebuild memory from the journal and refuse."""
        with self._guard():
            self.journal.flush()
        self.flushed_seq = self.journal.head[0]

    def flush(self) -> None:
        """Make every journaled row durable (group commit of the rows appended since the last flush)."""
        with self.lock:
            self._flush()

    # -- commands -------------------------------------------------------------------------
    def register(self, participant: str, address: str) -> None:
        if participant.startswith("@") or not participant or len(participant) > 64:
            raise ServiceError(422, "participant", "1 to 64 characters, not starting with '@'")
        try:
            raw = bytes.fromhex(address.removeprefix("0x"))
        except ValueError:
            raw = b""
        if len(raw) != 20:
            raise ServiceError(422, "address", "a 20-byte hex Ethereum address (0x + 40 hex digits)")
        with self.lock:
            known = self.addresses.get(participant)
            if known is not None:
                if known.lower() == address.lower():
                    return
                raise ServiceError(409, "participant", f"{participant!r} is already registered with another address")
            if any(a.lower() == address.lower() for a in self.addresses.values()):
                raise ServiceError(409, "address", "already registered for another participant; an address signs "
                                                   "for one participant only")
            with self._guard():
                self.engine.register({participant: address})
            self.flushed_seq = self.journal.head[0]

    def _check_time(self, name: str, when: datetime, now: datetime) -> None:
        if abs(when - now) > self.max_skew:
            raise ServiceError(422, name, f"within {self.max_skew} of the exchange's clock {now.isoformat()}, "
                                          f"got {when.isoformat()}")

    def _admission(self, time_field: str | None = None, signed_time: datetime | None = None,
                   now: datetime | None = None, then: Callable[[], None] | None = None) -> Callable[[str, int], None]:
        """What the engine calls once a request's signature checks out, before its nonce is used:
        a replay is refused as such (409, charging nothing: whoever replays a captured request cannot
        spend its owner's budget), then the verified participant's rate limit (429), then the
        signed time's skew from the exchange's clock (422), then ``then`` (checks only the signer may
        hear the answer to)."""

        def admit(participant: str, nonce: int) -> None:
            try:
                self.verifier.check_nonce(participant, nonce, "request")
            except ReplayError:
                raise ServiceError(409, "nonce", NONCE_USED) from None
            if self.charge is not None:
                self.charge(participant)
            if time_field is not None and signed_time is not None and now is not None:
                self._check_time(time_field, signed_time, now)
            if then is not None:
                then()

        return admit

    def _apply(self, signed: Signed, when: str, at: datetime, durable: bool) -> Outcome:
        """The one path of every order, cancel and modify: the engine verifies the signature, admits
        it (:meth:`_admission`) and applies it at the clock's ``now`` — the time the exchange received
        it, whatever time the action was signed with."""
        pid = signed.action.participant
        with self.lock:
            if pid not in self.addresses:
                raise ServiceError(401, "participant", f"{pid!r} is not registered")
            now = self.clock.now()
            try:
                with self._guard():
                    applied = self.engine.apply(signed, now, self._admission(when, at, now))
            except ReplayError as exc:
                raise ServiceError(409, "nonce", NONCE_USED) from exc
            except SignatureError as exc:
                raise ServiceError(401, "signature", str(exc)) from exc
            if applied.rejected:  # journalled with its reason: made durable before the refusal is told
                self._flush()
                raise _as_service_error(applied.rejected[0])
            if durable:
                self._flush()
            return _outcome(applied, self.journal.head[0], self.generation)

    def submit(self, signed: Signed, durable: bool = True) -> Outcome:
        """Apply a signed order. With ``durable`` the journal is flushed before returning;
        without, the caller must wait for a flush that covers ``seq`` in the same generation."""
        assert isinstance(signed.action, Order)
        return self._apply(signed, "submitted_at", signed.action.submitted_at, durable)

    def cancel(self, signed: Signed, durable: bool = True) -> Outcome:
        """Apply a signed cancel; ``cancelled_wh`` are the Wh that were open."""
        assert isinstance(signed.action, Cancel)
        return self._apply(signed, "cancelled_at", signed.action.cancelled_at, durable)

    def modify(self, signed: Signed, durable: bool = True) -> Outcome:
        """Apply a signed modify (new open energy and price of my order)."""
        assert isinstance(signed.action, Modify)
        return self._apply(signed, "modified_at", signed.action.modified_at, durable)

    def upload_meter(self, participant: str, slot_start: datetime, values: dict[str, int], nonce: int,
                     signature: bytes) -> None:
        if participant not in self.addresses:
            raise ServiceError(401, "participant", f"{participant!r} is not registered")
        problem = self._reading_shape_problem(slot_start, values)
        if problem is not None:
            raise ServiceError(422, *problem)
        if slot_start > self.clock.now():
            raise ServiceError(422, "slot_start", "a slot that has started (readings are of the past)")

        def within_bounds() -> None:  # after the signature: only the owner learns its connection's bound
            bound = self._meter_problem(participant, slot_start, values)
            if bound is not None:
                raise ServiceError(422, *bound)

        with self.lock:
            try:
                with self._guard():
                    self.engine.record_meter(participant, slot_start, values, nonce, signature,
                                             self._admission(then=within_bounds))
            except ReplayError as exc:
                raise ServiceError(409, "nonce", NONCE_USED) from exc
            except SignatureError as exc:
                raise ServiceError(401, "signature", str(exc)) from exc
            self._flush()

    # -- slots --------------------------------------------------------------------------------
    def close_due(self, now: datetime | None = None) -> list[datetime]:
        """Close every book whose gate has closed by ``now``, then commit what is due."""
        now = now or self.clock.now()
        with self.lock:
            with self._guard():
                done = self.engine.close_due(now)
            if done:
                self._flush()
        self.commit_due(now)
        return done

    def status_after(self, participant: str, order_id: str, outcome: Outcome) -> tuple[str, int]:
        """``status_of`` the order a command just made, unless memory was rebuilt since (503)."""
        with self.lock:
            if self.generation != outcome.generation:
                raise ServiceError(503, "journal", "could not be written; the action was not accepted")
            return self.status_of(participant, order_id)

    def commit_due(self, now: datetime | None = None) -> list[datetime]:
        """Commit every closed slot whose delivery ended ``meter_grace`` before ``now``."""
        now = now or self.clock.now()
        length = self.settings.slot_length
        with self.lock:
            due = sorted(s for s in self.closed if unix_seconds(s) not in self.engine.committed
                         and s + length + self.meter_grace <= now)
        return self._commit(due)

    def _commit(self, slots: list[datetime]) -> list[datetime]:
        """Settle each slot's certificates through the provenance registry (``service/provenance.py``),
        journal its commit row (right after the head it commits) and queue it; never waits for the chain."""
        with self.lock:
            for slot in slots:
                with self._guard():
                    self._settle(slot)
                    pending = self.engine.prepare_commit(slot)  # journalled and flushed
                    self.engine.send_commit(pending)  # queued (with a chain)
                self.flushed_seq = self.journal.head[0]
        return slots

    def _settle(self, slot: datetime) -> None:
        readings = {pid: r[slot] for pid, r in self.readings.items() if slot in r}
        sites = live_sites(readings, self.engine.trades_of_slot(slot), self.pv_devices)
        try:
            self.engine.settle_slot(slot, sites)
        except ProvenanceError as exc:  # never expected (live sites balance by construction): commit without
            print(f"p2penergy serve: slot {slot.isoformat()}: no certificates ({exc})", file=sys.stderr, flush=True)

    def _landed(self, landed: Landed) -> None:
        """The queue's report that a write is on chain: the engine journals a slot's transaction
        (``chain_tx``). If the journal fails, the queue retries (and finds the commitment on chain)."""
        if not isinstance(landed.op, SlotCommit):
            return
        with self.lock:
            if landed.op.slot_start in self.engine.sent:
                return
            self.engine.record_sent(landed.op.slot_start, landed.tx_hash, landed.block)
            self._flush()

    def commit_pending(self) -> list[datetime]:
        """After a start: queue again what a stop or crash left unsent — registrations the chain's
        registry lacks, commit rows without a transaction — checked against the chain before
        anything is sent (closed slots without a commit row are committed by :meth:`commit_due`).
        Returns the slots queued."""
        if self.chain_writes is None or self.chain is None:
            return []
        with self.lock:
            registered = self.chain.contract.functions.participant_count().call()
            if registered < len(self.addresses):
                missing = {p: a for p, a in self.addresses.items() if int(self.chain.account_of(p), 16) == 0}
                if missing:
                    self.chain_writes.put(Registration(missing))
            pending = self.engine.unsent()
            for p in pending:
                self.chain_writes.commit_slot(*p.call_args(), maybe_landed=True)
        return [datetime.fromtimestamp(p.slot_start, UTC) for p in pending]

    def commit_lag(self) -> dict[str, Any] | None:
        """What ``/health`` says of the chain: slots closed but not committed, the oldest, the last error."""
        if self.chain_writes is None:
            return None
        lag = self.chain_writes.status()

        def when(slot: int | None) -> str | None:
            return datetime.fromtimestamp(slot, self.settings.tz).isoformat() if slot is not None else None

        return {"pending_slots": lag.pending_slots, "oldest_pending_slot": when(lag.oldest_pending_slot),
                "last_committed_slot": when(lag.last_committed_slot), "pending_writes": lag.pending_writes,
                "failures": lag.failures, "last_error": lag.last_error,
                "last_error_at": (datetime.fromtimestamp(lag.last_error_at, UTC).isoformat()
                                  if lag.last_error_at is not None else None),
                "next_attempt_in_s": round(lag.next_attempt_in_s, 3) if lag.next_attempt_in_s is not None else None}

    def stop_chain_writes(self, timeout_s: float = 5.0) -> None:
        """Stop sending (what is queued stays in the journal, queued again on the next start)."""
        if self.chain_writes is not None:
            self.chain_writes.stop(timeout_s)


def _outcome(applied: Applied, seq: int, generation: int) -> Outcome:
    return Outcome(applied.trades, applied.self_cancels, applied.cancelled_wh, seq, generation)


def _as_service_error(rejection: Rejection) -> ServiceError:
    exc = rejection.error
    field_name = rejection.field
    if hasattr(exc, "reason"):
        if not isinstance(rejection.action, Order) and (
                field_name == "participant" or (field_name == "id" and "no open order" in exc.reason)):  # type: ignore[attr-defined]
            return ServiceError(404, "order_id", NO_ORDER)  # someone else's order answers as a missing one
        status = 409 if field_name in ("id", "participant", "submitted_at") else 422
        return ServiceError(status, field_name, exc.reason)  # type: ignore[attr-defined]
    return ServiceError(422, field_name, f"must be {getattr(exc, 'allowed', str(exc))}")
