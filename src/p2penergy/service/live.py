"""The live exchange: the simulation's exchange behind a lock, journal first, rebuilt on restart.

Every accepted command follows one path under one lock: verify the signature and nonce
→ apply to the in-memory exchange (which changes nothing when it refuses) → append the
action and its trades to the journal → flush the journal in one transaction → only then
acknowledge. A refused command consumes no nonce and writes nothing. If the journal
cannot be written the in-memory state is thrown away and rebuilt from the journal, so
memory never holds anything the journal does not.

Slots: a book closes when its gate closes (:meth:`LiveExchange.close_due`). With a chain, the
slot's ``commit`` row (its Merkle roots and the journal head right before it) is journalled in
the same breath, under the lock, and the commitment goes into the chain-write queue
(``ledger/commit_queue.py``), which sends it when the node answers — in slot order, retried
with backoff, once — and journals a ``chain_tx`` row (transaction, block) when it has landed.
Trading never waits for the chain. Registrations go through the same queue.

On start the exchange is rebuilt with :func:`p2penergy.ledger.replay.replay` (which
also checks that replaying the orders gives exactly the journaled trades), and the
registered addresses, last nonces, meter readings and closed slots are read back.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from p2penergy.agents.market_access import PriceTape
from p2penergy.ledger.actions import Cancel, Modify, action_from_dict, action_to_dict, kind_of
from p2penergy.ledger.chain import Chain, ChainError
from p2penergy.ledger.commit_queue import Backoff, CommitQueue, Landed, Registration, SlotCommit
from p2penergy.ledger.journal import Journal, journal_table
from p2penergy.ledger.keys import Key, operator_for, operator_label
from p2penergy.ledger.merkle import merkle_root
from p2penergy.ledger.recorder import FORMAT_VERSION, leaf_of, trade_to_dict, unix_seconds
from p2penergy.ledger.replay import Balance, replay, settings_of
from p2penergy.ledger.signing import Domain, ReplayError, SignatureError, Signed, Verifier, recover
from p2penergy.market import Exchange, MarketSettings, Order, Trade
from p2penergy.market.errors import MarketError
from p2penergy.service.auth import meter_digest
from p2penergy.service.clock import MarketClock
from p2penergy.service.queries import METER_FIELDS, LiveQueries

ZERO_ADDRESS = "0x" + "00" * 20


class ServiceError(Exception):
    """A request the service refuses: HTTP ``status``, the ``field`` at fault, and why."""

    def __init__(self, status: int, field: str, message: str) -> None:
        self.status = status
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class _Verifier(Verifier):
    """A verifier whose nonce can be put back when the exchange refuses a verified action."""

    def last_nonce(self, participant: str) -> int:
        return self._last_nonce.get(participant, -1)

    def set_last_nonce(self, participant: str, nonce: int) -> None:
        if nonce < 0:
            self._last_nonce.pop(participant, None)
        else:
            self._last_nonce[participant] = nonce


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


class LiveExchange(LiveQueries):
    """One market's exchange, journal, verifier and (optionally) chain, safe for threads."""

    def __init__(self, journal: Journal, settings: MarketSettings, domain: Domain, clock: MarketClock,
                 chain: Chain | None = None, max_skew: timedelta = timedelta(minutes=5),
                 backoff: Backoff | None = None) -> None:
        self.journal = journal
        self.settings = settings
        self.domain = domain
        self.clock = clock
        self.chain = chain
        self.max_skew = max_skew
        self.lock = threading.RLock()
        self.on_trades: list[Callable[[list[Trade]], None]] = []
        self.contracts: dict[str, Any] = {}  # participant -> utility bill function (service.billing)
        self.generation = 0  # bumped each time memory is rebuilt from the journal
        # chain writes (registrations, slot commitments) in order, retried while the node is away
        self.chain_writes = CommitQueue(chain, self._landed, backoff) if chain is not None else None
        self._queued: set[int] = set()  # slots whose commitment was put in the queue
        self._load()
        self.flushed_seq = self.journal.head[0]

    # -- opening ------------------------------------------------------------------------
    @classmethod
    def open(cls, db_url: str, settings: MarketSettings, clock: MarketClock, chain_url: str | None = None,
             chain_id: int = 31337, seed: int = 0, max_skew: timedelta = timedelta(minutes=5),
             operator: Key | None = None, backoff: Backoff | None = None) -> LiveExchange:
        """Open (or create) the journal at ``db_url``; an existing journal's market and clock win.

        With ``chain_url``, ``operator`` must be the contract operator's own key (never one derived
        from ``seed``); on a restart it must be the contract's current operator (after a rotation,
        the new one).
        """
        operator = operator_for(chain_url, operator, seed)
        journal = Journal(db_url)
        chain = Chain.connect(chain_url, operator) if chain_url else None
        if journal.head[0] == 0:
            if chain is not None:
                chain.deploy()
            meta = {
                "format_version": FORMAT_VERSION,
                "chain": chain.kind if chain is not None else "none",
                "chain_id": chain.chain_id if chain is not None else chain_id,
                "contract": chain.contract.address if chain is not None else ZERO_ADDRESS,
                "operator": operator.address,
                "operator_key": operator_label(operator),
                "market": settings.to_mapping(),
                "clock": clock.as_meta(),
            }
            journal.append("genesis", meta)
            journal.flush()
            journal.set_meta({k: json.dumps(v) for k, v in meta.items()})
        else:
            settings = settings_of(journal)
            genesis = json.loads(next(journal.rows(kinds=("genesis",))).body)
            meta = genesis
            clock = MarketClock.from_meta(genesis.get("clock", {"kind": "real"}))
            if chain is not None:
                if chain.chain_id != int(genesis["chain_id"]):
                    raise ChainError(f"chain_url: {chain_url} is chain {chain.chain_id}, the journal's contract "
                                     f"is on chain {genesis['chain_id']}")
                chain.attach(genesis["contract"])
                chain.ensure_operator()
        domain = Domain(int(meta["chain_id"]), str(meta["contract"]))
        ex = cls(journal, settings, domain, clock, chain, max_skew, backoff)
        if ex.chain_writes is not None:
            ex.chain_writes.start()
        return ex

    def _load(self) -> None:
        """Rebuild everything in memory from the journal."""
        replayed = replay(self.journal)
        self.exchange: Exchange = replayed.exchange
        self.verifier = _Verifier(self.domain)
        self.addresses: dict[str, str] = {}
        self.orders: dict[str, Order] = {}
        self.cancelled: set[str] = set()
        self.mine: dict[str, list[str]] = defaultdict(list)
        self.slot_orders: dict[datetime, set[str]] = defaultdict(set)
        self.closed: set[datetime] = set()
        self.trades: list[Trade] = []
        self.trades_of: dict[str, list[Trade]] = defaultdict(list)
        self.stats: dict[datetime, SlotStats] = {}
        self.balances: dict[str, Balance] = defaultdict(Balance)
        self.readings: dict[str, dict[datetime, dict[str, int]]] = defaultdict(dict)
        self.tape = PriceTape()
        self.committed: set[int] = set()  # slots whose commitment is on chain (a chain_tx row)
        self.unsent: dict[int, dict[str, Any]] = {}  # commit rows without a chain_tx row yet
        last: dict[str, int] = {}
        for row in self.journal.rows():
            body = json.loads(row.body)
            if row.kind == "participant":
                self.addresses[body["participant"]] = body["address"]
                self.verifier.register(body["participant"], body["address"])
            elif row.kind in ("order", "cancel", "modify"):
                action = body["action"]
                last[action["participant"]] = body["nonce"]
                if row.kind == "cancel":
                    self.cancelled.add(action["order_id"])
            elif row.kind == "meter":
                last[body["participant"]] = body["nonce"]
                self.readings[body["participant"]][datetime.fromisoformat(body["slot_start"])] = body["values"]
            elif row.kind == "close":
                self.closed.add(datetime.fromisoformat(body["slot_start"]))
            elif row.kind == "commit" and row.slot_start is not None:
                if "tx_hash" in body:  # written after the transaction (journals from before the queue)
                    self.committed.add(row.slot_start)
                else:
                    self.unsent[row.slot_start] = body
            elif row.kind == "chain_tx" and row.slot_start is not None:
                self.committed.add(row.slot_start)
                self.unsent.pop(row.slot_start, None)
        for pid, nonce in last.items():
            self.verifier.set_last_nonce(pid, nonce)
        # closed slots still without a commit row (a stop, or a failed write, between close and commit row)
        self.needs_commit_row: set[datetime] = ({s for s in self.closed if unix_seconds(s) not in self.committed
                                                 and unix_seconds(s) not in self.unsent}
                                                if self.chain is not None else set())
        for row in self.journal.rows(kinds=("order", "modify")):
            action = action_from_dict(row.kind, json.loads(row.body)["action"])
            if isinstance(action, Order):
                self._index(action)
            else:
                assert isinstance(action, Modify)
                old = self.orders[action.order_id]
                self.orders[action.order_id] = Order(old.order_id, old.participant, old.side, old.slot_start,
                                                     action.energy_wh, action.price_per_kwh, action.modified_at,
                                                     old.tag, old.requirements)
        self._record_trades(replayed.trades)

    # -- bookkeeping ----------------------------------------------------------------------
    def _index(self, order: Order) -> None:
        self.orders[order.order_id] = order
        self.mine[order.participant].append(order.order_id)
        if order.slot_start not in self.closed:
            self.slot_orders[order.slot_start].add(order.order_id)

    def _record_trades(self, trades: list[Trade]) -> None:
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
        if trades:
            for listener in self.on_trades:
                listener(trades)

    def _flush(self) -> None:
        """Write the buffered journal rows; on failure rebuild memory from the journal and refuse."""
        try:
            self.journal.flush()
        except Exception as exc:
            url = self.journal.url
            self.journal.engine.dispose()
            self.journal = Journal(url)
            self.generation += 1
            self._load()
            self.flushed_seq = self.journal.head[0]
            raise ServiceError(503, "journal", f"could not be written; nothing was accepted ({exc})") from exc
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
            if participant in self.addresses:
                if self.addresses[participant].lower() == address.lower():
                    return
                raise ServiceError(409, "participant", f"{participant!r} is already registered with another address")
            self.journal.append("participant", {"participant": participant, "address": address}, ref=participant)
            self._flush()
            self.addresses[participant] = address
            self.verifier.register(participant, address)
            if self.chain_writes is not None:
                self.chain_writes.put(Registration({participant: address}))

    def _check_time(self, name: str, when: datetime) -> None:
        now = self.clock.now()
        if abs(when - now) > self.max_skew:
            raise ServiceError(422, name, f"within {self.max_skew} of the exchange's clock {now.isoformat()}, "
                                          f"got {when.isoformat()}")

    def _verify(self, signed: Signed) -> int:
        """Verify; returns the previous nonce so a refusal can put it back."""
        pid = signed.action.participant
        if pid not in self.addresses:
            raise ServiceError(401, "participant", f"{pid!r} is not registered")
        before = self.verifier.last_nonce(pid)
        try:
            self.verifier.verify(signed)
        except ReplayError as exc:
            raise ServiceError(409, "nonce", str(exc)) from exc
        except SignatureError as exc:
            raise ServiceError(401, "signature", str(exc)) from exc
        return before

    def submit(self, signed: Signed, durable: bool = True) -> tuple[list[Trade], int, int]:
        """Apply a signed order; returns its trades and ``(seq, generation)`` of its last journal row.

        With ``durable`` the journal is flushed before returning; without, the caller must
        wait for a flush that covers ``seq`` in the same generation before acknowledging.
        """
        order = signed.action
        assert isinstance(order, Order)
        self._check_time("submitted_at", order.submitted_at)
        with self.lock:
            before = self._verify(signed)
            try:
                trades = self.exchange.submit(order)
            except MarketError as exc:
                self.verifier.set_last_nonce(order.participant, before)
                raise _as_service_error(exc) from exc
            self._journal_action(signed, trades, durable)
            self._index(order)
            self._record_trades(trades)
            return trades, self.journal.head[0], self.generation

    def cancel(self, signed: Signed, durable: bool = True) -> tuple[int, int, int]:
        """Apply a signed cancel; returns the Wh that were open and ``(seq, generation)`` as :meth:`submit`."""
        cancel = signed.action
        assert isinstance(cancel, Cancel)
        self._check_time("cancelled_at", cancel.cancelled_at)
        with self.lock:
            before = self._verify(signed)
            try:
                left = self.exchange.cancel(cancel.order_id, cancel.participant, cancel.cancelled_at)
            except MarketError as exc:
                self.verifier.set_last_nonce(cancel.participant, before)
                raise _as_service_error(exc) from exc
            self._journal_action(signed, [], durable)
            self.cancelled.add(cancel.order_id)
            return left, self.journal.head[0], self.generation

    def modify(self, signed: Signed, durable: bool = True) -> tuple[list[Trade], int, int]:
        """Apply a signed modify (new open energy and price of my order); returns as :meth:`submit`."""
        mod = signed.action
        assert isinstance(mod, Modify)
        self._check_time("modified_at", mod.modified_at)
        with self.lock:
            before = self._verify(signed)
            try:
                trades = self.exchange.modify(mod.order_id, mod.participant, mod.energy_wh, mod.price_per_kwh,
                                              mod.modified_at)
            except MarketError as exc:
                self.verifier.set_last_nonce(mod.participant, before)
                raise _as_service_error(exc) from exc
            self._journal_action(signed, trades, durable)
            old = self.orders[mod.order_id]
            self.orders[mod.order_id] = Order(old.order_id, old.participant, old.side, old.slot_start, mod.energy_wh,
                                              mod.price_per_kwh, mod.modified_at, old.tag, old.requirements)
            self._record_trades(trades)
            return trades, self.journal.head[0], self.generation

    def _journal_action(self, signed: Signed, trades: list[Trade], durable: bool = True) -> None:
        action = signed.action
        kind = kind_of(action)
        slot = self.orders[action.order_id].slot_start if not isinstance(action, Order) else action.slot_start
        body = {"action": action_to_dict(action), "nonce": signed.nonce, "signature": signed.signature.hex()}
        self.journal.append(kind, body, unix_seconds(slot), action.order_id)
        for t in trades:
            self.journal.append("trade", trade_to_dict(t), unix_seconds(t.slot_start), t.trade_id)
        if durable:
            self._flush()

    def upload_meter(self, participant: str, slot_start: datetime, values: dict[str, int], nonce: int,
                     signature: bytes) -> None:
        if participant not in self.addresses:
            raise ServiceError(401, "participant", f"{participant!r} is not registered")
        if not self.settings.is_slot_start(slot_start):
            raise ServiceError(422, "slot_start", f"the start of a {self.settings.slot_minutes}-minute slot in "
                                                  f"{self.settings.timezone}")
        if slot_start > self.clock.now():
            raise ServiceError(422, "slot_start", "a slot that has started (readings are of the past)")
        for name in values:
            if name not in METER_FIELDS:
                raise ServiceError(422, f"values.{name}", f"one of {', '.join(METER_FIELDS)}")
        reading = {"participant": participant, "slot_start": slot_start.isoformat(), "values": values,
                   "nonce": nonce}
        with self.lock:
            last = self.verifier.last_nonce(participant)
            if nonce <= last:
                raise ServiceError(409, "nonce", f"{nonce} is not above the last used {last} (replayed)")
            try:
                who = recover(meter_digest(self.domain, reading), signature)
            except SignatureError as exc:
                raise ServiceError(401, "signature", str(exc)) from exc
            if who != self.verifier.address(participant):
                raise ServiceError(401, "signature", f"not made by {participant!r}'s registered key over this reading")
            self.journal.append("meter", {**reading, "signature": signature.hex()}, unix_seconds(slot_start),
                                participant)
            self._flush()
            self.verifier.set_last_nonce(participant, nonce)
            self.readings[participant][slot_start] = dict(values)

    def close_due(self, now: datetime | None = None) -> list[datetime]:
        """Close every book whose gate has closed by ``now``; journal each close (and, with a chain,
        its commit row) and queue its commitment; never waits for the chain."""
        now = now or self.clock.now()
        done = []
        with self.lock:
            self._journal_missing_commit_rows()
            for slot in sorted(s for s in self.slot_orders if self.settings.gate_close(s) <= now):
                self.journal.append("close", {"slot_start": slot.isoformat()}, unix_seconds(slot))
                closing = self.exchange.close(slot)
                for t in closing.trades:
                    self.journal.append("trade", trade_to_dict(t), unix_seconds(t.slot_start), t.trade_id)
                self._flush()
                self.closed.add(slot)
                self.slot_orders.pop(slot, None)
                self._record_trades(list(closing.trades))
                done.append(slot)
                if self.chain_writes is not None:
                    self.needs_commit_row.add(slot)
                    self._journal_missing_commit_rows()
        return done

    def _journal_missing_commit_rows(self) -> None:
        """Journal and queue the commitment of every closed slot that has no commit row, oldest first."""
        for slot in sorted(self.needs_commit_row):
            body = self._journal_commit(slot)  # raises ServiceError if the journal fails: retried next tick
            self.needs_commit_row.discard(slot)
            self._queue_commit(body)

    # -- chain writes ---------------------------------------------------------------------------
    def _journal_commit(self, slot: datetime) -> dict[str, Any]:
        """Journal a closed slot's ``commit`` row (Merkle roots of its rows, read back from the journal,
        and the head right before the row) and flush; under the lock. Returns the row's body."""
        s = unix_seconds(slot)
        leaves: dict[str, list[bytes]] = {"orders": [], "trades": [], "certificates": []}
        t = journal_table
        with self.journal.engine.connect() as conn:
            for kind, body in conn.execute(select(t.c.kind, t.c.body).where(t.c.slot_start == s).order_by(t.c.seq)):
                if kind in _ROOT_GROUP:
                    leaves[_ROOT_GROUP[kind]].append(leaf_of(kind, body))
        tag_wh: dict[str, int] = defaultdict(int)
        for trade in self.trades:
            if trade.slot_start == slot:
                tag_wh[str(trade.tag)] += trade.energy_wh
        head_seq, head = self.journal.head
        body = {"slot_start": slot.isoformat(), "journal_head": head.hex(), "journal_seq": head_seq,
                **{f"{name}_root": merkle_root(v).hex() for name, v in leaves.items()},
                "tag_energy_wh": dict(tag_wh), "device_certificates": []}
        self.journal.append("commit", body, s, str(s))
        self._flush()
        self.unsent[s] = body
        return body

    def _queue_commit(self, body: dict[str, Any], maybe_landed: bool = False) -> None:
        """Put a journalled commitment in the chain-write queue (once)."""
        assert self.chain_writes is not None
        s = unix_seconds(datetime.fromisoformat(body["slot_start"]))
        if s in self._queued:
            return
        self._queued.add(s)
        self.chain_writes.put(SlotCommit(
            s, bytes.fromhex(body["orders_root"]), bytes.fromhex(body["trades_root"]),
            bytes.fromhex(body["certificates_root"]), bytes.fromhex(body["journal_head"]), body["journal_seq"],
            dict(body["tag_energy_wh"]), tuple(tuple(d) for d in body["device_certificates"]), maybe_landed))

    def _landed(self, landed: Landed) -> None:
        """The queue's report that a write is on chain: journal a slot's transaction (``chain_tx``)."""
        if not isinstance(landed.op, SlotCommit):
            return
        s = landed.op.slot_start
        with self.lock:
            if s in self.committed:
                return
            self.journal.append("chain_tx", {"slot_start": s, "tx_hash": landed.tx_hash, "block": landed.block},
                                s, landed.tx_hash)
            self._flush()  # on failure the queue retries (and finds the commitment on chain)
            self.committed.add(s)
            self.unsent.pop(s, None)

    def commit_pending(self) -> list[datetime]:
        """After a start: queue again what a stop or crash left unsent — registrations the chain's
        registry lacks, commit rows without a transaction, closed slots without a commit row — all
        checked against the chain before anything is sent. Returns the slots queued."""
        if self.chain_writes is None or self.chain is None:
            return []
        with self.lock:
            registered = self.chain.contract.functions.participant_count().call()
            if registered < len(self.addresses):
                missing = {p: a for p, a in self.addresses.items() if int(self.chain.account_of(p), 16) == 0}
                if missing:
                    self.chain_writes.put(Registration(missing))
            pending = [self.unsent[s] for s in sorted(self.unsent) if s not in self._queued]
            for body in pending:
                self._queue_commit(body, maybe_landed=True)
            missing = sorted(self.needs_commit_row)
            self._journal_missing_commit_rows()
        return [datetime.fromisoformat(b["slot_start"]) for b in pending] + missing

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


_ROOT_GROUP = {"order": "orders", "modify": "orders", "cancel": "orders", "trade": "trades",
               "certificate": "certificates"}


def _as_service_error(exc: MarketError) -> ServiceError:
    field_name = getattr(exc, "field", "order")
    if hasattr(exc, "reason"):
        status = 409 if field_name in ("id", "participant", "submitted_at") else 422
        if field_name == "participant":
            status = 403
        if field_name == "id" and "no open order" in exc.reason:  # type: ignore[attr-defined]
            status = 404
        return ServiceError(status, field_name, exc.reason)  # type: ignore[attr-defined]
    return ServiceError(422, field_name, f"must be {getattr(exc, 'allowed', str(exc))}")

