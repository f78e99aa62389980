"""The exchange engine: the one component that changes the exchange and writes the journal.

The simulation (``sim/ledger_hook.py``), the live service (``service/live.py``) and the
audit's replay (``ledger/replay.py``) are drivers around one :class:`Engine`::

    verify(signed) → apply to the exchange at the driver's ``now`` → journal (one format)
    → close slot → meters → certificates (provenance registry) → slot roots → commit (chain)

* **Time.** The driver hands the engine ``now`` (the simulation's model clock, the service's
  market clock); gates are decided at ``now``, never at a client's timestamp. ``now`` is
  journalled with every action (``at``) so a replay applies each action exactly as it was.
* **Rejections.** An action that passes its signature and nonce but that the exchange
  refuses is journalled as a ``reject`` row with its reason (its nonce is used up: a
  signed action is applied once, accepted or refused) and returned in
  :attr:`Applied.rejected`. Unsigned or mis-signed input raises and writes nothing.
* **Self-trade prevention.** When an order cancels its owner's resting order instead of
  trading with it, a ``self_cancel`` row names the cancelled order and its open Wh, and
  :attr:`Applied.self_cancels` tells the driver (who tells the owner).
* **Journal kinds** (bodies are canonical JSON): ``genesis`` (with ``site_limits`` when the CDA
  matches within each site's P2P import/export limits per slot, ``market/book.py``: static for the
  journal, so the engine that opens or audits it builds its exchange with them and replays every
  match within them again; a journal without limits has no such key), ``participant``, ``batch``,
  ``order`` / ``modify`` / ``cancel`` / ``reject`` (action, nonce, ``signature`` or ``batch``,
  ``at``; a reject adds ``field`` and ``reason``), ``self_cancel``, ``trade``,
  ``close`` (with ``network_limits``: the feeder's linearised limits a call auction cleared within,
  ``network/auction.py``, which the replay clears within again),
  ``meter`` (participant, slot, values; a participant's own reading adds ``nonce`` and
  ``signature``), ``balancing`` (a trade body: an island's balancing trade in an outage, struck by
  the operator from the slot's journalled meters and exchange trades — ``ledger/balancing.py``;
  replay recomputes it and a row that differs is named), ``certificate`` (a provenance event),
  ``commit`` (the slot's Merkle roots, the journal head it follows, energy per tag, certificates
  per device) and ``chain_tx`` (the transaction that carried a commit).
* **Commit.** :meth:`Engine.prepare_commit` journals the ``commit`` row right after the head
  it commits and flushes it — under the driver's lock, so no row can slip in between —
  and :meth:`Engine.send_commit` hands it to the committer (a :class:`Committer`: the chain,
  or a queue that retries it) outside the lock.
* **Restart and replay.** :meth:`Engine.open` streams a journal once: it checks the hash
  chain (the first broken row is named), re-applies every action through the same code as
  live trading, and checks that the exchange produces exactly the journalled trades,
  self-trade cancels and refusals.

Drivers learn what happened through the returned values and, for state they keep
themselves (the service's order views, balances, readings), through a :class:`Listener`
that the engine calls the same way live and on replay.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from p2penergy.ledger.actions import Action, Cancel, Modify, action_from_dict, action_to_dict, canonical_json
from p2penergy.ledger.balancing import balance_wh, balancing_trades
from p2penergy.ledger.journal import GENESIS_PREV, Journal, JournalRow, row_bytes
from p2penergy.ledger.merkle import leaf_hash, merkle_root
from p2penergy.ledger.order_scope import ScopedExchange
from p2penergy.ledger.signing import (
    CANONICAL_HINT,
    Admit,
    Domain,
    SignatureError,
    Signed,
    SignedBatch,
    Verifier,
    meter_digest,
    recover,
)
from p2penergy.market import MarketSettings, Order, Trade, make_exchange
from p2penergy.market.book import SiteLimitMap, site_limits_from_dict, site_limits_to_dict
from p2penergy.market.errors import MarketError
from p2penergy.market.exchange import ClearingLimits, SlotClose

if TYPE_CHECKING:
    from p2penergy.provenance import Registry, SiteSlot, SlotProvenance

FORMAT_VERSION = 4
"""4: order ids are each participant's own (``ledger/order_scope.py``): two participants may use
the same id, and a cancel or modify addresses the signer's order only. Rows are written as in
format 3; what differs is which actions the exchange accepts, so a format 3 journal is replayed
(and continued) with one id space per exchange, exactly as it was written.
3: every signed request is an EIP-712 struct (typed attributes and requirements, ``MeterReading``).
Format 2 journals (bytes32 JSON hashes, raw meter digests) are refused on open and by the audit."""
READABLE_FORMATS = (3, 4)
SCOPED_IDS_FROM = 4
"""The first format whose order ids are scoped per participant."""
ACTION_KINDS = ("order", "modify", "cancel")
SIGNED_KINDS = (*ACTION_KINDS, "reject")
ROOT_GROUP = {"order": "orders", "modify": "orders", "cancel": "orders", "reject": "orders",
              "self_cancel": "orders", "trade": "trades", "balancing": "trades", "certificate": "certificates"}
"""Which Merkle root of its slot a journal row is a leaf of (rows of other kinds are in none)."""
ZERO_ADDRESS = "0x" + "00" * 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError, MarketError)
"""What reading a row that is not what the engine wrote may raise (a bad JSON value, a missing key,
a price that is not a number, ...): reported as a malformed row, never a crash."""


class JournalMismatch(ValueError):
    """The journal is not what the engine would have written: a broken hash chain, or
    replaying it does not give what it says happened. The message names the first row."""


# -- the journal format -------------------------------------------------------------------
@lru_cache(maxsize=8192)
def unix_seconds(when: datetime) -> int:
    """Whole Unix seconds of an aware datetime (slot starts are whole seconds).

    Memoised (by instant: equal aware datetimes are the same instant, so the same seconds): the engine
    asks it for the same few slot starts at every order, trade, meter row and certificate."""
    if when.tzinfo is None:
        raise ValueError("slot_start: a timezone-aware datetime")
    return (when - _EPOCH) // _SECOND


def leaf_of(kind: str, body: str) -> bytes:
    """Merkle leaf of a journal row: ``keccak256(0x00 || kind || 0x00 || body)``."""
    return leaf_hash(row_bytes(kind, body))


def trade_to_dict(trade: Trade) -> dict[str, Any]:
    body = trade.as_dict()
    body["buyer_limit_per_kwh"] = str(trade.buyer_limit_per_kwh)
    body["seller_limit_per_kwh"] = str(trade.seller_limit_per_kwh)
    return body


def _time(text: str, where: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise JournalMismatch(f"{where}: time {text!r} has no UTC offset")
    return value


# -- what the engine reports ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rejection:
    """A signed action the exchange refused, with why (``error`` is the market's exception)."""

    action: Action
    error: MarketError

    @property
    def field(self) -> str:
        return str(getattr(self.error, "field", "order"))

    @property
    def reason(self) -> str:
        return str(self.error)


@dataclass(frozen=True, slots=True)
class SelfTradeCancel:
    """``participant``'s resting order ``order_id`` (``remaining_wh`` open) cancelled by
    self-trade prevention when the same participant's order ``by`` would have traded with it."""

    order_id: str
    participant: str
    remaining_wh: int
    by: str


@dataclass(slots=True)
class Applied:
    """What :meth:`Engine.apply` did: accepted actions, trades, self-trade cancels, refusals."""

    accepted: list[Action] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    self_cancels: list[SelfTradeCancel] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    cancelled_wh: int = 0  # Wh that accepted cancels took off the book


@dataclass(frozen=True, slots=True)
class PendingCommit:
    """A slot's commitment as journalled (``seq`` is its ``commit`` row), to send to the chain."""

    slot_start: int
    seq: int
    orders_root: bytes
    trades_root: bytes
    certificates_root: bytes
    journal_head: bytes
    journal_seq: int
    tag_energy_wh: dict[str, int]
    device_certificates: list[tuple[str, int, int]]

    def call_args(self) -> tuple[Any, ...]:
        return (self.slot_start, self.orders_root, self.trades_root, self.certificates_root, self.journal_head,
                self.journal_seq, dict(self.tag_energy_wh), list(self.device_certificates))


class Committer(Protocol):
    """Where closed slots are committed: :class:`~p2penergy.ledger.chain.Chain`, the embedded
    chain in a worker (``pipeline.py``), or a queue that retries (same calls)."""

    def register(self, participants: dict[str, str]) -> object: ...

    def commit_slot(self, slot_start: int, orders_root: bytes, trades_root: bytes, certificates_root: bytes,
                    journal_head: bytes, journal_seq: int, tag_energy_wh: dict[str, int],
                    device_certificates: list[tuple[str, int, int]]) -> tuple[str, int | None, Any] | None: ...

    def close(self) -> None: ...


class Listener:
    """What a driver keeps of its own hears of every change, live and on replay (no-ops here)."""

    def on_participant(self, participant: str, address: str) -> None:
        return None

    def on_action(self, action: Action, now: datetime) -> None:
        return None

    def on_reject(self, rejection: Rejection) -> None:
        return None

    def on_self_cancel(self, cancel: SelfTradeCancel) -> None:
        return None

    def on_trades(self, trades: list[Trade]) -> None:
        return None

    def on_meter(self, participant: str, slot_start: datetime, values: dict[str, int]) -> None:
        return None

    def on_certificate(self, event: Mapping[str, Any]) -> None:
        return None

    def on_close(self, slot_start: datetime) -> None:
        return None

    def on_commit(self, slot_start: int) -> None:
        return None


@dataclass(slots=True)
class _Slot:
    """A slot until its commit: Merkle leaves, traded Wh per tag, trades, devices settled."""

    orders: list[bytes] = field(default_factory=list)
    trades: list[bytes] = field(default_factory=list)
    certificates: list[bytes] = field(default_factory=list)
    tag_wh: dict[str, int] = field(default_factory=dict)
    trade_list: list[Trade] = field(default_factory=list)
    order_ids: list[str] = field(default_factory=list)  # the exchange's keys (ScopedExchange.key)
    devices: list[str] = field(default_factory=list)
    metered_wh: dict[str, tuple[int, int]] = field(default_factory=dict)  # (p2p_buy_wh, p2p_sell_wh) metered
    slot_start: datetime | None = None  # as the meters name it (balancing trade ids use its offset)
    balancing: list[Trade] = field(default_factory=list)  # an island's balancing trades (outage)
    expected_balancing: deque[Trade] | None = None  # replay: still to be seen in the journal

    def leaves(self, group: str) -> list[bytes]:
        return getattr(self, group)  # type: ignore[no-any-return]


class Engine:
    """One market's exchange, journal, verifier, provenance registry and committer.

    Not thread-safe by itself: the live service calls it under its lock. ``journal`` is
    where rows go (a fresh journal gets its genesis from :meth:`create`; an existing one is
    read back by :meth:`open`). ``committer`` may be ``None`` (commit rows are still
    journalled with their roots; nothing is sent). ``registry`` issues certificates in
    :meth:`settle_slot`. ``site_limits``: the CDA's per-site P2P limits per slot that the exchange
    matches within (the genesis row's ``site_limits``; None: none).
    """

    def __init__(self, settings: MarketSettings, journal: Journal, domain: Domain, committer: Committer | None = None,
                 registry: Registry | None = None, listener: Listener | None = None,
                 format_version: int = FORMAT_VERSION, site_limits: SiteLimitMap | None = None) -> None:
        self.settings = settings
        self.site_limits = dict(site_limits) if site_limits else None
        self.journal = journal
        self.domain = domain
        self.committer = committer
        self.registry = registry
        self.listener = listener
        self.format_version = format_version
        # order ids per participant (format 4 on); a format 3 journal keeps its one id space
        self.exchange = ScopedExchange(make_exchange(settings, limits=self.site_limits),
                                       scoped=format_version >= SCOPED_IDS_FROM)
        self.verifier = Verifier(domain)
        self.addresses: dict[str, str] = {}
        self.closed: set[int] = set()
        self.committed: set[int] = set()  # commit row journalled
        self.sent: dict[int, str] = {}  # slot -> transaction hash, once the committer took it
        self.chain_seconds = 0.0
        self._slots: dict[int, _Slot] = defaultdict(_Slot)
        self._slot_of_order: dict[str, int] = {}
        self._open_books: dict[int, datetime] = {}  # slots with orders whose book has not closed
        self._issued: dict[str, int] = {}
        self._claimed: dict[str, int] = {}
        self._unsent: dict[int, PendingCommit] = {}  # journalled, not yet taken by the committer
        self.last_commit: tuple[int, int, str] | None = None  # (slot, journal seq, journal head) committed last
        self._iso_memo: tuple[datetime | None, str] = (None, "")  # the last meter slot and its ISO text

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(cls, settings: MarketSettings, journal: Journal, committer: Committer | None, *, chain: str,
               chain_id: int, contract: str, operator: str, extra: Mapping[str, Any] | None = None,
               registry: Registry | None = None, listener: Listener | None = None,
               site_limits: SiteLimitMap | None = None) -> Engine:
        """Start a new journal: its genesis row names the chain, contract, operator and market, and
        the CDA's ``site_limits`` if any (a genesis without limits is written as before)."""
        if journal.head[0] != 0:
            raise ValueError(f"db_url: the journal at {journal.url} is not empty; a new exchange starts a new journal")
        meta = {"format_version": FORMAT_VERSION, "chain": chain, "chain_id": chain_id, "contract": contract,
                "operator": operator, "market": settings.to_mapping(), **(extra or {})}
        if site_limits:
            meta["site_limits"] = site_limits_to_dict(site_limits)
        journal.append("genesis", meta)
        journal.flush()
        journal.set_meta({k: json.dumps(v) for k, v in meta.items()})
        return cls(settings, journal, Domain(chain_id, contract), committer, registry, listener,
                   site_limits=site_limits)

    @classmethod
    def of_genesis(cls, genesis: Mapping[str, Any], journal: Journal, committer: Committer | None = None,
                   registry: Registry | None = None, listener: Listener | None = None) -> Engine:
        """An engine configured as a journal's genesis row says (``genesis_of``: market, domain,
        format, site limits), ready to replay the rows after it (restart, ``replay``, the audit)."""
        limits = genesis.get("site_limits")
        return cls(MarketSettings.from_mapping(genesis["market"]), journal,
                   Domain(int(genesis["chain_id"]), str(genesis["contract"])), committer, registry, listener,
                   int(genesis["format_version"]), site_limits_from_dict(limits) if limits is not None else None)

    @classmethod
    def open(cls, journal: Journal, committer: Committer | None = None, registry: Registry | None = None,
             listener: Listener | None = None) -> Engine:
        """Rebuild the engine from an existing journal, checking it row by row (raises
        :class:`JournalMismatch` naming the first row that is not what the engine wrote)."""
        rows = journal.rows()
        first = next(rows, None)
        if first is None:
            raise JournalMismatch("journal: empty (no genesis row)")
        engine = cls.of_genesis(genesis_of(first), journal, committer, registry, listener)
        engine.replay_rows(_chained(first, rows))
        return engine

    # -- participants -------------------------------------------------------------------
    def register(self, addresses: Mapping[str, str]) -> dict[str, str]:
        """Journal and register participants' addresses (and on the committer's registry)."""
        addresses = {pid: address for pid, address in addresses.items() if self.addresses.get(pid) != address}
        owner = {a.lower(): pid for pid, a in self.addresses.items()}
        for pid, address in addresses.items():  # all checked before anything is written
            if pid in self.addresses:
                raise ValueError(f"participant: {pid!r} is already registered with another address")
            if owner.setdefault(address.lower(), pid) != pid:
                raise ValueError(f"address: {address} is already registered for {owner[address.lower()]!r}; "
                                 "an address signs for one participant only")
        for pid, address in addresses.items():
            self.journal.append("participant", {"participant": pid, "address": address}, ref=pid)
            self._registered(pid, address)
        self.journal.flush()
        if addresses and self.committer is not None:
            self._timed(self.committer.register, addresses)
        return addresses

    def _registered(self, pid: str, address: str) -> None:
        self.addresses[pid] = address
        self.verifier.register(pid, address)
        if self.listener is not None:
            self.listener.on_participant(pid, address)

    # -- actions ------------------------------------------------------------------------
    def apply(self, signed: Signed | SignedBatch, now: datetime, admit: Admit | None = None) -> Applied:
        """Verify (raises SignatureError / ReplayError, nothing written), then apply each action
        to the exchange at ``now`` and journal it, its trades and self-trade cancels, or its refusal.

        ``admit(participant, nonce)`` is called once the signature checks out, before the nonce is
        used (:meth:`Verifier.verify`): what it raises refuses the request with nothing written."""
        journal = self.journal
        if isinstance(signed, SignedBatch):
            items = self.verifier.verify_batch(signed, admit)
            seq, _ = journal.append("batch", {
                "participant": signed.participant, "items": [i.hex() for i in items],
                "signature": signed.signature.hex()}, ref=signed.participant)
            proof: dict[str, Any] = {"batch": seq}
            entries: Sequence[tuple[Action, int]] = signed.entries
        else:
            self.verifier.verify(signed, admit)
            proof = {"signature": signed.signature.hex()}
            entries = ((signed.action, signed.nonce),)
        at = now.isoformat()
        out = Applied()
        for action, nonce in entries:
            body = {"action": action_to_dict(action), "nonce": nonce, "at": at, **proof}
            try:
                trades, cancels, left = self._execute(action, now)
            except MarketError as exc:
                rejection = Rejection(action, exc)
                body.update(kind=_kind(action), field=rejection.field, reason=rejection.reason)
                self._append("reject", body, self._slot_of_action(action), action.order_id)
                out.rejected.append(rejection)
                if self.listener is not None:
                    self.listener.on_reject(rejection)
                continue
            self._accepted(action, body, now)
            out.accepted.append(action)
            out.cancelled_wh += left
            if cancels:
                out.self_cancels += self._journal_self_cancels(action, cancels)
            if trades:
                self._journal_trades(trades)
                out.trades += trades
        return out

    def _execute(self, action: Action, now: datetime) -> tuple[list[Trade], tuple[tuple[str, int], ...], int]:
        """The one dispatch of an action to the exchange: (trades, self-trade cancels, Wh cancelled)."""
        ex = self.exchange
        if type(action) is Order:
            trades = ex.submit(action, now)
            return trades, ex.last_self_trade_cancels, 0
        if type(action) is Cancel:
            return [], (), ex.cancel(action.order_id, action.participant, now)
        if type(action) is Modify:
            trades = ex.modify(action.order_id, action.participant, action.energy_wh, action.price_per_kwh, now)
            return trades, ex.last_self_trade_cancels, 0
        raise TypeError(f"action: an Order, Cancel or Modify, got {type(action).__name__}")

    def _slot_of_action(self, action: Action) -> int | None:
        if type(action) is Order:
            return unix_seconds(action.slot_start)
        return self._slot_of_order.get(self.exchange.key(action.participant, action.order_id))

    def _accepted(self, action: Action, body: dict[str, Any] | None, now: datetime,
                  row: JournalRow | None = None) -> None:
        """Book-keeping of an accepted action; journals ``body`` (live) or absorbs ``row`` (replay)."""
        key = self.exchange.key(action.participant, action.order_id)
        if type(action) is Order:
            slot = unix_seconds(action.slot_start)
            self._slot_of_order[key] = slot
            state = self._slots[slot]
            state.order_ids.append(key)
            if slot not in self.closed and slot not in self._open_books:
                self._open_books[slot] = action.slot_start
        else:
            slot = self._slot_of_order[key]  # the exchange accepted it: the order is known
        kind = _kind(action)
        if row is None:
            assert body is not None
            self._append(kind, body, slot, action.order_id)
        else:
            self._absorb(row)
        if self.listener is not None:
            self.listener.on_action(action, now)

    def _journal_self_cancels(self, action: Action, cancels: tuple[tuple[str, int], ...]) -> list[SelfTradeCancel]:
        out = []
        for order_id, remaining in cancels:
            c = SelfTradeCancel(order_id, action.participant, remaining, action.order_id)
            self._append("self_cancel", _self_cancel_body(c),
                         self._slot_of_order.get(self.exchange.key(action.participant, order_id)), order_id)
            out.append(c)
            if self.listener is not None:
                self.listener.on_self_cancel(c)
        return out

    def _journal_trades(self, trades: list[Trade]) -> None:
        for trade in trades:
            slot = unix_seconds(trade.slot_start)
            self._append("trade", trade_to_dict(trade), slot, trade.trade_id)
            self._traded(slot, trade)
        if self.listener is not None:
            self.listener.on_trades(trades)

    def _traded(self, slot: int, trade: Trade) -> None:
        state = self._slots[slot]
        tag = str(trade.tag)
        state.tag_wh[tag] = state.tag_wh.get(tag, 0) + trade.energy_wh
        state.trade_list.append(trade)

    def _append(self, kind: str, body: dict[str, Any], slot: int | None, ref: str | None = None) -> int:
        journal = self.journal
        seq, _ = journal.append(kind, body, slot, ref)
        group = ROOT_GROUP.get(kind)
        if group is not None and slot is not None:
            self._slots[slot].leaves(group).append(leaf_hash(journal.last_tail))  # leaf_of(kind, body)
        return seq

    def _absorb(self, row: JournalRow) -> None:
        """Replay: the row is already in the journal; take its leaf."""
        group = ROOT_GROUP.get(row.kind)
        if group is not None and row.slot_start is not None:
            self._slots[row.slot_start].leaves(group).append(leaf_of(row.kind, row.body))

    # -- slots ----------------------------------------------------------------------------
    def open_books(self) -> list[datetime]:
        """Slots with orders whose book has not closed, in time order."""
        return [self._open_books[s] for s in sorted(self._open_books)]

    def close_slot(self, slot_start: datetime, limits: ClearingLimits | None = None) -> SlotClose:
        """Close the slot's book (a call auction clears here, within the feeder's ``limits`` if given):
        journal the close — with the limits the auction cleared within (``network_limits``), which the
        replay clears within again — then its trades."""
        slot = unix_seconds(slot_start)
        closing = self.exchange.close(slot_start, limits)
        body: dict[str, Any] = {"slot_start": slot_start.isoformat()}
        if closing.limits is not None:
            body["network_limits"] = closing.limits.to_dict()
        self._append("close", body, slot)
        self._closed(slot, slot_start)
        if closing.trades:
            self._journal_trades(list(closing.trades))
        return closing

    def _closed(self, slot: int, slot_start: datetime) -> None:
        self.closed.add(slot)
        self._open_books.pop(slot, None)
        if self.listener is not None:
            self.listener.on_close(slot_start)

    def close_due(self, now: datetime) -> list[datetime]:
        """Close every book whose gate has closed by ``now``."""
        due = [s for s in self.open_books() if self.settings.gate_close(s) <= now]
        for slot_start in due:
            self.close_slot(slot_start)
        return due

    def trades_of_slot(self, slot_start: datetime) -> list[Trade]:
        """Trades of a slot not yet committed, in execution order."""
        state = self._slots.get(unix_seconds(slot_start))
        return list(state.trade_list) if state is not None else []

    # -- meters and certificates -------------------------------------------------------------
    def record_meter(self, participant: str, slot_start: datetime, values: Mapping[str, int],
                     nonce: int | None = None, signature: bytes | None = None, admit: Admit | None = None) -> int:
        """Journal one participant's metered values of a slot (whole numbers: Wh, W).

        With ``signature`` (and ``nonce``) the reading is the participant's own: the signature
        over :func:`~p2penergy.ledger.signing.meter_digest` must be its registered key's and
        the nonce above its last (raises SignatureError / ReplayError, nothing written; the
        signature is checked first, then ``admit`` as in :meth:`apply`, then the nonce).
        Without, the operator records it (the simulation's meters).
        """
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"values.{name}: a whole number (Wh, W), got {value!r}")
        memo = self._iso_memo
        if memo[0] is not slot_start:  # every participant's reading of a slot names the same datetime
            memo = self._iso_memo = (slot_start, slot_start.isoformat())
        body: dict[str, Any] = {"participant": participant, "slot_start": memo[1], "values": dict(values)}
        if signature is not None:
            if nonce is None:
                raise ValueError("nonce: a signed reading needs its nonce")
            body["nonce"] = nonce
            signer = self.verifier.address(participant)
            if recover(meter_digest(self.domain, signer, slot_start, values, nonce), signature) != signer:
                raise SignatureError(f"meter reading of {participant!r}: signature was not made by its registered "
                                     f"key over this reading (altered or forged; {CANONICAL_HINT})")
            if admit is not None:
                admit(participant, nonce)
            self.verifier.check_nonce(participant, nonce, "meter reading")
            self.verifier.use_nonce(participant, nonce)
            body["signature"] = signature.hex()
        slot = unix_seconds(slot_start)
        seq = self._append("meter", body, slot, participant)
        self._metered(slot, participant, slot_start, values)
        if self.listener is not None:
            self.listener.on_meter(participant, slot_start, dict(values))
        return seq

    def _metered(self, slot: int, participant: str, slot_start: datetime, values: Mapping[str, int]) -> None:
        """Keep a slot's metered P2P Wh until its commit (an island's balancing is struck from them)."""
        if slot in self.committed:  # a late reading (the live service): no balancing after the commit
            return
        state = self._slots[slot]
        state.metered_wh[participant] = (int(values.get("p2p_buy_wh", 0)), int(values.get("p2p_sell_wh", 0)))
        if state.slot_start is None:
            state.slot_start = slot_start

    def _island_trades(self, slot: int) -> tuple[Trade, ...]:
        """The balancing trades of an islanded slot from its journalled meters and exchange trades."""
        state = self._slots[slot]
        if state.slot_start is None:
            raise ValueError(f"slot {slot}: an island's balancing needs the slot's meters journalled first")
        return balancing_trades(state.slot_start, balance_wh(state.metered_wh, state.trade_list),
                                self.settings.price_max_per_kwh)

    def record_island(self, slot_start: datetime) -> list[Trade]:
        """Journal an islanded slot's balancing trades (one ``balancing`` row each, leaves of the slot's
        trades root), struck by the operator from the slot's meters (:meth:`record_meter`, first) and
        exchange trades by :func:`~p2penergy.ledger.balancing.balancing_trades`; returns them. They are
        settled with the exchange's trades in :meth:`settle_slot`."""
        slot = unix_seconds(slot_start)
        trades = self._island_trades(slot)
        state = self._slots[slot]
        for t in trades:
            self._append("balancing", trade_to_dict(t), slot, t.trade_id)
        state.balancing.extend(trades)
        return list(trades)

    def record_certificates(self, slot_start: datetime, events: Iterable[Mapping[str, Any]],
                            devices: Iterable[tuple[str, int, int]] = ()) -> None:
        """Journal a slot's certificate events; ``devices``: ``(device, issued_wh, claimed_wh)``
        of this slot, added to the per-device totals committed on chain."""
        slot = unix_seconds(slot_start)
        listener = self.listener
        for event in events:
            try:
                self._append("certificate", dict(event), slot, event.get("cert_id"))
            except TypeError as exc:
                raise ValueError(f"event: JSON-serialisable values only ({exc})") from exc
            if listener is not None:
                listener.on_certificate(event)
        state = self._slots[slot]
        for device, issued, claimed in devices:
            self._issued[device] = self._issued.get(device, 0) + int(issued)
            self._claimed[device] = self._claimed.get(device, 0) + int(claimed)
            state.devices.append(device)

    def settle_slot(self, slot_start: datetime, sites: Iterable[SiteSlot]) -> SlotProvenance:
        """Issue, transfer and cancel the slot's certificates through the provenance registry
        (with the slot's trades in execution order), and journal every event."""
        if self.registry is None:
            raise ValueError("registry: this engine issues no certificates (give it a provenance Registry)")
        state = self._slots.get(unix_seconds(slot_start))
        trades = self.trades_of_slot(slot_start) + (state.balancing if state is not None else [])
        result = self.registry.settle_slot(slot_start, slot_start + self.settings.slot_length, sites, trades)
        self.record_certificates(slot_start, result.events, result.devices)
        return result

    # -- commitment -------------------------------------------------------------------------
    def slot_roots(self, slot_start: datetime) -> dict[str, bytes]:
        state = self._slots.get(unix_seconds(slot_start)) or _Slot()
        return {name: merkle_root(state.leaves(name)) for name in ("orders", "trades", "certificates")}

    def prepare_commit(self, slot_start: datetime) -> PendingCommit:
        """Journal the slot's ``commit`` row (roots, the head it follows, energy per tag,
        certificates per device to date) and flush; the slot's book is closed first if needed."""
        slot = unix_seconds(slot_start)
        if slot in self.committed:
            raise ValueError(f"slot_start: {slot_start.isoformat()} is already committed")
        if slot not in self.closed:
            self.close_slot(slot_start)
        state = self._slots.pop(slot, None) or _Slot()
        roots = {name: merkle_root(state.leaves(name)) for name in ("orders", "trades", "certificates")}
        devices = [(d, self._issued[d], self._claimed.get(d, 0)) for d in dict.fromkeys(state.devices)]
        head_seq, head = self.journal.head
        seq = self.journal.append("commit", {
            "slot_start": slot_start.isoformat(), "orders_root": roots["orders"].hex(),
            "trades_root": roots["trades"].hex(), "certificates_root": roots["certificates"].hex(),
            "journal_head": head.hex(), "journal_seq": head_seq, "tag_energy_wh": dict(state.tag_wh),
            "device_certificates": [list(d) for d in devices]}, slot, str(slot))[0]
        self.journal.flush()
        self._committed(slot, state)
        pending = PendingCommit(slot, seq, roots["orders"], roots["trades"], roots["certificates"], head, head_seq,
                                dict(state.tag_wh), devices)
        self.last_commit = (slot, head_seq, head.hex())
        if self.committer is not None:
            self._unsent[slot] = pending
        return pending

    def unsent(self) -> list[PendingCommit]:
        """Commitments journalled but not (known to be) taken by the committer, oldest first
        (after a crash between the two; the driver sends them again)."""
        return [self._unsent[s] for s in sorted(self._unsent)]

    def _committed(self, slot: int, state: _Slot) -> None:
        self.committed.add(slot)
        self.closed.discard(slot)
        for key in state.order_ids:
            self._slot_of_order.pop(key, None)
        if self.listener is not None:
            self.listener.on_commit(slot)

    def send_commit(self, pending: PendingCommit) -> str | None:
        """Hand a journalled commitment to the committer; returns its transaction hash if known.
        (No journal write: call :meth:`record_sent` with the result, under the driver's lock.)"""
        if self.committer is None:
            return None
        result = self._timed(self.committer.commit_slot, *pending.call_args())
        return result[0] if result else None

    def record_sent(self, slot: int, tx_hash: str | None, block: int | None = None) -> None:
        """Journal the transaction that carried slot ``slot``'s commitment (a ``chain_tx`` row);
        a committer that queues (returns no hash) reports it later, when it has landed."""
        if tx_hash is None:
            return
        self.journal.append("chain_tx", {"slot_start": slot, "tx_hash": tx_hash, "block": block}, slot, tx_hash)
        self.sent[slot] = tx_hash
        self._unsent.pop(slot, None)

    def commit_slot(self, slot_start: datetime) -> str | None:
        """Prepare, send and record a slot's commitment in one go (the simulation)."""
        pending = self.prepare_commit(slot_start)
        tx_hash = self.send_commit(pending)
        self.record_sent(pending.slot_start, tx_hash)
        return tx_hash

    def _timed(self, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.chain_seconds += time.perf_counter() - start

    def flush(self) -> int:
        return self.journal.flush()

    def close(self) -> None:
        """Flush the journal; wait for every pending commit (raises ChainError if one failed)."""
        self.journal.close()
        if self.committer is not None:
            self._timed(self.committer.close)

    # -- replay ---------------------------------------------------------------------------------
    def replay_rows(self, rows: Iterable[JournalRow]) -> None:
        """Re-apply a journal's rows (after its genesis) through the engine, checking that the
        exchange produces exactly the journalled trades, self-trade cancels and refusals."""
        expected: deque[tuple[str, str, Any]] = deque()  # (kind, canonical body, object) still to be seen
        last_nonce = self.verifier.last_nonces
        for row in rows:
            kind = row.kind
            where = f"journal row {row.seq} ({kind}{' ' + row.ref if row.ref else ''})"
            if kind in ("trade", "self_cancel"):
                if not expected:
                    raise JournalMismatch(f"{where}: not produced by replaying the actions before it")
                want_kind, want_body, obj = expected.popleft()
                if want_kind != kind or (want_body != row.body and not _same_instants(want_body, row.body)):
                    raise JournalMismatch(f"{where}: differs from what replaying gives: journal {row.body} != "
                                          f"replay {want_kind} {want_body}")
                self._absorb(row)
                if kind == "trade":
                    self._traded(row.slot_start, obj)  # type: ignore[arg-type]
                    if self.listener is not None:
                        self.listener.on_trades([obj])
                elif self.listener is not None:
                    self.listener.on_self_cancel(obj)
                continue
            if expected:
                raise JournalMismatch(f"{where}: replaying produced {expected[0][0]} {expected[0][1]} that the "
                                      "journal does not hold before this row")
            try:
                body = json.loads(row.body)
                self._replay_row(row, body, where, expected, last_nonce)
            except JournalMismatch:
                raise
            except MALFORMED as exc:
                raise JournalMismatch(f"{where}: malformed ({type(exc).__name__}: {exc})") from exc
        if expected:
            raise JournalMismatch(f"end of journal: replaying produced {expected[0][0]} {expected[0][1]} that the "
                                  "journal does not hold")

    def _replay_row(self, row: JournalRow, body: dict[str, Any], where: str,
                    expected: deque[tuple[str, str, Any]], last_nonce: dict[str, int]) -> None:
        kind = row.kind
        if kind in SIGNED_KINDS:
            action = action_from_dict(body["kind"] if kind == "reject" else kind, body["action"])
            now = _time(body["at"], where) if "at" in body else _action_time(action)
            last_nonce[action.participant] = body["nonce"]
            try:
                trades, cancels, _ = self._execute(action, now)
            except MarketError as exc:
                if kind != "reject":
                    raise JournalMismatch(f"{where}: refused on replay: {exc}") from exc
                if str(exc) != body["reason"]:
                    raise JournalMismatch(f"{where}: refused on replay for another reason: {exc}") from exc
                self._absorb(row)
                if self.listener is not None:
                    self.listener.on_reject(Rejection(action, exc))
                return
            if kind == "reject":
                raise JournalMismatch(f"{where}: journalled as refused ({body['reason']}) but accepted on replay")
            self._accepted(action, None, now, row)
            for order_id, remaining in cancels:
                c = SelfTradeCancel(order_id, action.participant, remaining, action.order_id)
                expected.append(("self_cancel", canonical_json(_self_cancel_body(c)), c))
            expected.extend(("trade", canonical_json(trade_to_dict(t)), t) for t in trades)
        elif kind == "close":
            slot_start = _time(body["slot_start"], where)
            limits = None
            if "network_limits" in body:
                from p2penergy.network.auction import SlotLimits  # only journals of auctions within a feeder
                limits = SlotLimits.from_dict(body["network_limits"])
            closing = self.exchange.close(slot_start, limits)
            used = closing.limits.to_dict() if closing.limits is not None else None
            if used != body.get("network_limits"):
                raise JournalMismatch(f"{where}: the auction's orders reach other network limits on replay: "
                                      f"journal {body.get('network_limits')} != replay {used}")
            self._closed(row.slot_start if row.slot_start is not None else unix_seconds(slot_start), slot_start)
            expected.extend(("trade", canonical_json(trade_to_dict(t)), t) for t in closing.trades)
        elif kind == "participant":
            self._registered(body["participant"], body["address"])
        elif kind == "meter":
            if "nonce" in body:
                last_nonce[body["participant"]] = body["nonce"]
            if row.slot_start is not None and "slot_start" in body:
                self._metered(row.slot_start, body["participant"], _time(body["slot_start"], where), body["values"])
            if self.listener is not None:
                slot_start = _time(body["slot_start"], where) if "slot_start" in body else None
                if slot_start is not None:
                    self.listener.on_meter(body["participant"], slot_start, body["values"])
        elif kind == "balancing":
            self._replay_balancing(row, where)
        elif kind == "certificate":
            self._absorb(row)
            if self.listener is not None:
                self.listener.on_certificate(body)
        elif kind == "commit":
            slot = row.slot_start
            if slot is None or slot in self.committed:
                raise JournalMismatch(f"{where}: a second commitment of slot {slot}")
            state = self._slots.pop(slot, None) or _Slot()
            if state.expected_balancing:
                raise JournalMismatch(f"{where}: the slot's meters give balancing trade "
                                      f"{canonical_json(trade_to_dict(state.expected_balancing[0]))} that the journal "
                                      "does not hold")
            devices = [(str(d), int(i), int(c)) for d, i, c in body["device_certificates"]]
            for device, issued, claimed in devices:
                self._issued[device], self._claimed[device] = issued, claimed
            self._committed(slot, state)
            self.last_commit = (slot, int(body["journal_seq"]), str(body["journal_head"]))
            if self.committer is not None:
                self._unsent[slot] = PendingCommit(
                    slot, row.seq, bytes.fromhex(body["orders_root"]), bytes.fromhex(body["trades_root"]),
                    bytes.fromhex(body["certificates_root"]), bytes.fromhex(body["journal_head"]),
                    int(body["journal_seq"]), dict(body["tag_energy_wh"]), devices)
        elif kind == "chain_tx":
            self.sent[body["slot_start"]] = body["tx_hash"]
            self._unsent.pop(body["slot_start"], None)
        elif kind == "genesis":
            raise JournalMismatch(f"{where}: a second genesis row")
        elif kind != "batch":
            raise JournalMismatch(f"{where}: unknown kind")


    def _replay_balancing(self, row: JournalRow, where: str) -> None:
        """A ``balancing`` row must be the next balancing trade that the slot's journalled meters and
        exchange trades give (recomputed at the slot's first such row)."""
        if row.slot_start is None:
            raise JournalMismatch(f"{where}: names no slot")
        state = self._slots[row.slot_start]
        if state.expected_balancing is None:
            try:
                state.expected_balancing = deque(self._island_trades(row.slot_start))
            except ValueError as exc:
                raise JournalMismatch(f"{where}: the slot's journalled meters give no balancing ({exc})") from exc
        if not state.expected_balancing:
            raise JournalMismatch(f"{where}: a balancing trade that the slot's journalled meters and trades do not "
                                  "give")
        want = state.expected_balancing.popleft()
        want_body = canonical_json(trade_to_dict(want))
        if want_body != row.body:
            raise JournalMismatch(f"{where}: differs from the balancing trade the slot's journalled meters and "
                                  f"trades give: journal {row.body} != recomputed {want_body}")
        state.balancing.append(want)
        self._absorb(row)


def _kind(action: Action) -> str:
    t = type(action)
    return "order" if t is Order else "cancel" if t is Cancel else "modify"


def _action_time(action: Action) -> datetime:
    if isinstance(action, Order):
        return action.submitted_at
    return action.cancelled_at if isinstance(action, Cancel) else action.modified_at


def _same_instants(want: str, got: str) -> bool:
    """Two bodies equal but for how a slot's start is written (journals from before slots were
    UTC instants wrote them in the market's zone: the same instant, another offset)."""
    try:
        a, b = json.loads(want), json.loads(got)
        if a.keys() != b.keys() or "slot_start" not in a:
            return False
        same = datetime.fromisoformat(a.pop("slot_start")) == datetime.fromisoformat(b.pop("slot_start"))
        return bool(same and a == b)
    except (ValueError, TypeError, AttributeError):
        return False


def _self_cancel_body(c: SelfTradeCancel) -> dict[str, Any]:
    return {"order_id": c.order_id, "participant": c.participant, "remaining_wh": c.remaining_wh, "by": c.by}


def genesis_of(row: JournalRow) -> dict[str, Any]:
    """The genesis row's facts (chain, contract, operator, market, ...)."""
    if row.kind != "genesis" or row.seq != 1:
        raise JournalMismatch(f"journal row {row.seq} ({row.kind}): the first row must be the genesis row")
    try:
        body = json.loads(row.body)
        MarketSettings.from_mapping(body["market"])
        int(body["chain_id"]), str(body["contract"])
        if "site_limits" in body:
            site_limits_from_dict(body["site_limits"])
    except (KeyError, TypeError, ValueError, MarketError) as exc:
        raise JournalMismatch(f"journal row 1 (genesis): malformed ({exc})") from exc
    if body.get("format_version") not in READABLE_FORMATS:
        raise JournalMismatch(f"journal row 1 (genesis): format_version {body.get('format_version')!r}; this "
                              f"p2penergy reads formats {' and '.join(map(str, READABLE_FORMATS))} only (their "
                              "signatures are EIP-712 typed structs; a format 2 journal's are not): check it with "
                              "the p2penergy that wrote it")
    return body  # type: ignore[no-any-return]


def check_link(row: JournalRow, prev_hash: str, expect_seq: int) -> None:
    """Raise :class:`JournalMismatch` unless ``row`` is the next row of an intact hash chain."""
    where = f"journal row {row.seq} ({row.kind}{' ' + row.ref if row.ref else ''})"
    if row.seq != expect_seq:
        raise JournalMismatch(f"journal row {expect_seq}: missing (next row is {row.seq})")
    if row.prev_hash != prev_hash:
        raise JournalMismatch(f"{where}: prev_hash does not link to row {row.seq - 1} (rows removed or inserted)")
    try:
        ok = row.expected_hash() == row.hash
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:  # e.g. a NULL body, a foreign kind
        raise JournalMismatch(f"{where}: malformed ({exc})") from exc
    if not ok:
        raise JournalMismatch(f"{where}: hash does not match its content (the row was altered)")


def _chained(first: JournalRow, rows: Iterator[JournalRow]) -> Iterator[JournalRow]:
    """The rows after ``first``, each checked to link to the one before (hash chain)."""
    check_link(first, GENESIS_PREV.hex(), 1)
    prev, expect = first.hash, 2
    for row in rows:
        check_link(row, prev, expect)
        prev, expect = row.hash, row.seq + 1
        yield row


__all__ = [
    "ACTION_KINDS", "FORMAT_VERSION", "ROOT_GROUP", "Applied", "Committer", "Engine", "JournalMismatch", "Listener",
    "PendingCommit", "Rejection", "SelfTradeCancel", "check_link", "genesis_of", "leaf_of",
    "trade_to_dict", "unix_seconds",
]
