"""The ledger as the simulation and the service use it: sign, verify, journal, commit.

Typical slot loop (see docs/ledger.md)::

    ledger = Ledger.create(settings, run_dir=out, seed=seed)      # journal + chain + contract
    ledger.register(participant_ids)                               # keys from the seed, on-chain registry
    batch = ledger.sign(pid, [order, ...])                         # one EIP-712 signature per agent step
    result = ledger.submit(exchange, batch)                        # verify -> book -> journal (+ trades)
    ledger.close_slot(exchange, slot_start)                        # close the book, journal its trades
    ledger.record_meter(slot_start, pid, {"load_wh": 812, ...})
    ledger.record_certificate_event(slot_start, {...})
    ledger.commit_slot(slot_start, {"source=solar": 3120}, [("pv-house-07", 900, 850)])
    ledger.close()
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from p2penergy.ledger.actions import Action, Cancel, action_to_dict, kind_of
from p2penergy.ledger.chain import EMBEDDED, Chain
from p2penergy.ledger.journal import Journal, sqlite_url
from p2penergy.ledger.keys import Key, derive_keys, operator_for, operator_label
from p2penergy.ledger.merkle import leaf_hash, merkle_root
from p2penergy.ledger.pipeline import PipelinedChain
from p2penergy.ledger.signing import Domain, Signed, SignedBatch, Verifier, sign_action, sign_batch
from p2penergy.market import Exchange, MarketSettings, Order, Trade
from p2penergy.market.errors import MarketError
from p2penergy.market.exchange import SlotClose

JOURNAL_FILE = "journal.sqlite"
CHAIN_LOG_FILE = "chain-transactions.jsonl"
LEDGER_FILE = "ledger.json"
FORMAT_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ORDER_KINDS = ("order", "modify", "cancel")


def unix_seconds(when: datetime) -> int:
    """Whole Unix seconds of an aware datetime (slot starts are whole seconds)."""
    if when.tzinfo is None:
        raise ValueError("slot_start: a timezone-aware datetime")
    return (when - _EPOCH) // timedelta(seconds=1)


def leaf_of(kind: str, body: str) -> bytes:
    """Merkle leaf of a journal row: ``keccak256(0x00 || kind || 0x00 || body)``."""
    return leaf_hash(kind.encode("ascii") + b"\x00" + body.encode("utf-8"))


def trade_to_dict(trade: Trade) -> dict[str, Any]:
    body = trade.as_dict()
    body["buyer_limit_per_kwh"] = str(trade.buyer_limit_per_kwh)
    body["seller_limit_per_kwh"] = str(trade.seller_limit_per_kwh)
    return body


@dataclass(slots=True)
class SubmitResult:
    """What :meth:`Ledger.submit` did: trades made, and actions the book refused (with why)."""

    trades: list[Trade] = field(default_factory=list)
    rejected: list[tuple[Action, str]] = field(default_factory=list)


class Ledger:
    """Journal + chain + keys behind the calls the simulation and the service make."""

    def __init__(self, settings: MarketSettings, journal: Journal, chain: Chain, seed: int,
                 run_dir: Path | None) -> None:
        self.settings = settings
        self.journal = journal
        self.chain = chain
        self.seed = seed
        self.run_dir = run_dir
        self.domain = Domain(chain.chain_id, chain.address)
        self.verifier = Verifier(self.domain)
        self.keys: dict[str, Key] = {}
        self._next_nonce: dict[str, int] = defaultdict(int)
        self._slot_of_order: dict[str, int] = {}  # open orders only: forgotten when their slot is committed
        self._orders_of_slot: dict[int, list[str]] = defaultdict(list)
        self._leaves: dict[int, dict[str, list[bytes]]] = defaultdict(lambda: {"orders": [], "trades": [],
                                                                             "certificates": []})
        self._closed: set[int] = set()
        self.chain_seconds = 0.0

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(cls, settings: MarketSettings, run_dir: Path | None = None, db_url: str | None = None,
               chain_url: str | None = None, seed: int = 0, operator: Key | None = None,
               pipelined: bool = False) -> Ledger:
        """Open a new journal, connect the chain (in-process unless ``chain_url``), deploy the contract.

        With ``run_dir`` the journal is ``run_dir/journal.sqlite`` (unless ``db_url``), the embedded
        chain's transactions go to ``run_dir/chain-transactions.jsonl`` and ``run_dir/ledger.json``
        says where everything is (what ``p2penergy audit RUN_DIR`` reads). ``pipelined`` runs the
        embedded chain in a worker process so commits overlap the simulation (see ``pipeline.py``):
        faster only when a core is free. ``operator``: the contract operator's own key (required with
        ``chain_url``; on the embedded chain the default is the demonstration key derived from ``seed``).
        """
        operator = operator_for(chain_url, operator, seed)  # refuses a seed-derived key on an external chain
        if run_dir is not None:
            run_dir = Path(run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
        url = db_url or (sqlite_url(run_dir / JOURNAL_FILE) if run_dir is not None else "sqlite://")
        journal = Journal(url)
        if journal.head[0] != 0:
            raise ValueError(f"db_url: the journal at {url} is not empty; a run starts a new journal")
        if chain_url:
            chain = Chain.connect(chain_url, operator)
        else:
            log = run_dir / CHAIN_LOG_FILE if run_dir is not None else None
            if log is not None and log.exists():
                log.unlink()
            chain = PipelinedChain(operator, log) if pipelined else Chain.in_process(operator, log)
        chain.deploy()
        ledger = cls(settings, journal, chain, seed, run_dir)
        meta = {
            "format_version": FORMAT_VERSION,
            "chain": chain.kind,
            "chain_id": chain.chain_id,
            "contract": chain.address,
            "operator": operator.address,
            "operator_key": operator_label(operator),
            "market": settings.to_mapping(),
        }
        journal.append("genesis", meta)
        journal.flush()
        journal.set_meta({k: json.dumps(v) for k, v in meta.items()})
        if run_dir is not None:
            doc = dict(meta, journal=url if db_url else JOURNAL_FILE,
                       chain_log=CHAIN_LOG_FILE if chain.kind == EMBEDDED else None)
            (run_dir / LEDGER_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        return ledger

    # -- participants -------------------------------------------------------------------
    def register(self, participants: Iterable[str], seed: int | None = None) -> dict[str, str]:
        """Derive keys from the seed (the ledger's unless given) and register the addresses."""
        keys = derive_keys(self.seed if seed is None else seed, list(participants))
        self.keys.update(keys)
        return self.register_addresses({pid: k.address for pid, k in keys.items()})

    def register_addresses(self, addresses: Mapping[str, str]) -> dict[str, str]:
        """Register participants whose keys they hold themselves (the live service)."""
        addresses = dict(addresses)
        for pid, address in addresses.items():
            self.verifier.register(pid, address)
            self.journal.append("participant", {"participant": pid, "address": address}, ref=pid)
        self.journal.flush()
        self._timed(self.chain.register, addresses)
        return addresses

    # -- signing (simulation: the ledger holds the derived keys) ---------------------------
    def _nonce(self, participant: str) -> int:
        n = self._next_nonce[participant]
        self._next_nonce[participant] = n + 1
        return n

    def sign(self, participant: str, actions: Iterable[Action]) -> SignedBatch:
        """One EIP-712 ``Batch`` signature over ``actions`` of one participant, with fresh nonces."""
        key = self._key(participant)
        return sign_batch(key, self.domain, [(a, self._nonce(participant)) for a in actions])

    def sign_one(self, action: Action) -> Signed:
        """An individually signed action (what a wallet in the live service produces)."""
        return sign_action(self._key(action.participant), self.domain, action, self._nonce(action.participant))

    def sign_orders(self, orders: Iterable[Action]) -> list[SignedBatch]:
        """Group ``orders`` by participant (keeping their order) and sign one batch each."""
        groups: dict[str, list[Action]] = defaultdict(list)
        for action in orders:
            groups[action.participant].append(action)
        return [self.sign(pid, actions) for pid, actions in groups.items()]

    def _key(self, participant: str) -> Key:
        try:
            return self.keys[participant]
        except KeyError:
            raise KeyError(f"participant: no key held for {participant!r}; register it first") from None

    # -- verify, book, journal -------------------------------------------------------------
    def verify(self, signed: Signed | SignedBatch) -> list[tuple[Action, int, dict[str, Any]]]:
        """Check signature and nonces (raises SignatureError / ReplayError); journal a batch's signature.

        Returns ``(action, nonce, proof)`` per action, ``proof`` being what its journal row cites.
        """
        if isinstance(signed, SignedBatch):
            items = self.verifier.verify_batch(signed)
            seq, _ = self.journal.append("batch", {
                "participant": signed.participant, "items": [i.hex() for i in items],
                "signature": signed.signature.hex()}, ref=signed.participant)
            return [(a, n, {"batch": seq}) for a, n in signed.entries]
        self.verifier.verify(signed)
        return [(signed.action, signed.nonce, {"signature": signed.signature.hex()})]

    def submit(self, exchange: Exchange, signed: Signed | SignedBatch) -> SubmitResult:
        """Verify, then apply each action to ``exchange``; journal what it accepts and the trades."""
        result = SubmitResult()
        for action, nonce, proof in self.verify(signed):
            try:
                if isinstance(action, Order):
                    trades = exchange.submit(action)
                elif isinstance(action, Cancel):
                    exchange.cancel(action.order_id, action.participant, action.cancelled_at)
                    trades = []
                else:
                    trades = exchange.modify(action.order_id, action.participant, action.energy_wh,
                                             action.price_per_kwh, action.modified_at)
            except MarketError as exc:
                result.rejected.append((action, str(exc)))
                continue
            self.record_action(action, nonce, proof)
            for trade in trades:
                self.record_trade(trade)
            result.trades += trades
        return result

    def record_action(self, action: Action, nonce: int, proof: dict[str, Any]) -> int:
        """Journal an accepted order/modify/cancel (already verified); returns its seq."""
        kind = kind_of(action)
        if isinstance(action, Order):
            slot = unix_seconds(action.slot_start)
            self._slot_of_order[action.order_id] = slot
            self._orders_of_slot[slot].append(action.order_id)
        else:
            slot = self._slot_of_order.get(action.order_id)
            if slot is None:
                raise ValueError(f"order_id: {action.order_id!r} was never recorded")
        body = {"action": action_to_dict(action), "nonce": nonce, **proof}
        seq, _ = self.journal.append(kind, body, slot, action.order_id)
        self._leaves[slot]["orders"].append(leaf_of(kind, self.journal.last_body))
        return seq

    def record_trade(self, trade: Trade) -> int:
        slot = unix_seconds(trade.slot_start)
        seq, _ = self.journal.append("trade", trade_to_dict(trade), slot, trade.trade_id)
        self._leaves[slot]["trades"].append(leaf_of("trade", self.journal.last_body))
        return seq

    def record_close(self, slot_start: datetime) -> None:
        slot = unix_seconds(slot_start)
        self.journal.append("close", {"slot_start": slot_start.isoformat()}, slot)
        self._closed.add(slot)

    def close_slot(self, exchange: Exchange, slot_start: datetime) -> SlotClose:
        """Close the slot's book on ``exchange`` and journal the close and its trades."""
        self.record_close(slot_start)
        closing = exchange.close(slot_start)
        for trade in closing.trades:
            self.record_trade(trade)
        return closing

    def record_meter(self, slot_start: datetime, participant: str, fields: Mapping[str, int]) -> int:
        """Journal one participant's metered values for a slot (integers: Wh, W, ...)."""
        for name, value in fields.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"fields.{name}: a whole number (Wh, W), got {value!r}")
        seq, _ = self.journal.append("meter", {"participant": participant, "values": dict(fields)},
                                     unix_seconds(slot_start), participant)
        return seq

    def record_certificate_event(self, slot_start: datetime, event: Mapping[str, Any]) -> int:
        """Journal a certificate event (issue / transfer / claim, from provenance); JSON values only."""
        try:
            seq, _ = self.journal.append("certificate", dict(event), unix_seconds(slot_start),
                                         str(event.get("certificate_id", "")) or None)
        except TypeError as exc:
            raise ValueError(f"event: JSON-serialisable values only ({exc})") from exc
        self._leaves[unix_seconds(slot_start)]["certificates"].append(leaf_of("certificate", self.journal.last_body))
        return seq

    # -- commitment -------------------------------------------------------------------------
    def slot_roots(self, slot_start: datetime) -> dict[str, bytes]:
        leaves = self._leaves.get(unix_seconds(slot_start), {"orders": [], "trades": [], "certificates": []})
        return {name: merkle_root(v) for name, v in leaves.items()}

    def commit_slot(self, slot_start: datetime, tag_energy_wh: Mapping[str, int],
                    device_certificates: Iterable[tuple[str, int, int]] = ()) -> str:
        """Flush the journal and commit the slot in one transaction; returns the tx hash.

        ``tag_energy_wh`` maps a tag's text (``str(Tag)``) to the Wh traded under it;
        ``device_certificates`` lists ``(device_id, issued_wh, claimed_wh)`` with claimed <= issued.
        """
        slot = unix_seconds(slot_start)
        if slot not in self._closed:
            self.record_close(slot_start)
        devices = [(str(d), int(i), int(c)) for d, i, c in device_certificates]
        roots = self.slot_roots(slot_start)
        self.journal.flush()
        head_seq, head = self.journal.head
        tx_hash, block, _event = self._timed(
            self.chain.commit_slot, slot, roots["orders"], roots["trades"], roots["certificates"], head, head_seq,
            dict(tag_energy_wh), devices)
        self.journal.append("commit", {
            "slot_start": slot_start.isoformat(), "orders_root": roots["orders"].hex(),
            "trades_root": roots["trades"].hex(), "certificates_root": roots["certificates"].hex(),
            "journal_head": head.hex(), "journal_seq": head_seq, "tag_energy_wh": dict(tag_energy_wh),
            "device_certificates": [list(d) for d in devices], "tx_hash": tx_hash, "block": block}, slot, tx_hash)
        self.journal.flush()
        self._leaves.pop(slot, None)
        self._closed.discard(slot)
        for order_id in self._orders_of_slot.pop(slot, ()):
            self._slot_of_order.pop(order_id, None)
        return tx_hash

    def _timed(self, fn: Any, *args: Any) -> Any:
        import time

        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.chain_seconds += time.perf_counter() - start

    def close(self) -> None:
        """Flush the journal; wait for every pending commit (raises ChainError if one failed)."""
        self.journal.close()
        self._timed(self.chain.close)
