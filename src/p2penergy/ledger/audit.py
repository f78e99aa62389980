"""Audit a journal — a run folder's or a live service's: hash chain, signatures, nonces,
Merkle roots against the chain, replay.

:func:`audit` streams the journal once (bounded memory): each row's link in the hash chain,
its signature and nonce are checked as it passes, and the same rows feed the engine's replay
(:meth:`~p2penergy.ledger.engine.Engine.replay_rows`), which re-applies every action and
checks the journalled trades. It stops at the first problem and names its row; a malformed
row is a failure naming the row, never a crash. :func:`prove_trade` gives the Merkle proof
of one trade against the root committed on chain.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from p2penergy.ledger.actions import action_from_dict
from p2penergy.ledger.chain import EMBEDDED, Chain, ChainError
from p2penergy.ledger.engine import (
    MALFORMED,
    ROOT_GROUP,
    SIGNED_KINDS,
    Engine,
    JournalMismatch,
    Listener,
    check_link,
    genesis_of,
    leaf_of,
)
from p2penergy.ledger.journal import GENESIS_PREV, Journal, JournalRow, sqlite_url
from p2penergy.ledger.keys import OPERATOR_ID, Key
from p2penergy.ledger.merkle import merkle_proof, merkle_root, verify_proof
from p2penergy.ledger.run_folder import CHAIN_LOG_FILE, JOURNAL_FILE, LEDGER_FILE
from p2penergy.ledger.signing import Domain, SignatureError, batch_hash, meter_digest, recover, struct_hash
from p2penergy.market import Trade
from p2penergy.textfile import InputFileError, read_json

NO_CHAIN = "none"  # the genesis "chain" of a service that runs without one


class AuditFailure(Exception):
    """The first thing that does not check out."""


@dataclass(slots=True)
class AuditReport:
    ok: bool
    rows: int = 0
    signed_actions: int = 0
    signed_readings: int = 0
    slots_committed: int = 0
    trades_replayed: int = 0
    uncommitted_slots: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def open_run(run_dir: Path | None = None, db_url: str | None = None,
             chain_url: str | None = None) -> tuple[Journal, Chain | None]:
    """Open a journal and its chain: a run folder's (the embedded chain is re-executed from its
    transaction log), or any journal by URL — a live service's too — with the chain its
    genesis names or ``chain_url``. The chain is ``None`` when the journal was kept without one."""
    meta: dict[str, Any] = {}
    if run_dir is not None:
        path = Path(run_dir) / LEDGER_FILE
        if not path.exists():
            raise FileNotFoundError(f"RUN_DIR: {path} not found (not a run folder with a ledger)")
        meta = read_json(path)  # not UTF-8 or not JSON: InputFileError naming the line
        if not isinstance(meta, dict):
            raise InputFileError(path, 1, "file", "a JSON object (the run's ledger metadata)")
        for name in ("journal", "chain", "contract", "operator"):
            if name in meta and not isinstance(meta[name], str):
                raise InputFileError(path, None, name, f"a string, got {meta[name]!r}")
        if db_url is None:
            db_url = (sqlite_url(Path(run_dir) / JOURNAL_FILE) if meta.get("journal") == JOURNAL_FILE
                      else meta.get("journal"))
    if db_url is None:
        raise ValueError("db_url: give RUN_DIR or --db URL")
    journal = Journal(db_url, create=False)
    if not meta:
        try:
            meta = {k: json.loads(v) for k in ("chain", "contract", "operator")
                    if (v := journal.get_meta(k)) is not None}
        except ValueError as exc:
            raise ValueError(f"db_url: {db_url}: unreadable ledger metadata ({exc})") from exc
    if not {"chain", "contract", "operator"} <= set(meta):
        raise ValueError(f"db_url: {db_url} holds no ledger metadata (not a p2penergy journal)")
    operator = Key(OPERATOR_ID, b"", meta["operator"])
    if chain_url is None and meta["chain"] == NO_CHAIN:
        return journal, None
    url = chain_url or (None if meta["chain"] == EMBEDDED else meta["chain"])
    if url is None:
        if run_dir is None:
            raise ValueError("chain_url: the run used the embedded chain; give RUN_DIR (its transaction log) instead")
        chain = Chain.replay_in_process(Path(run_dir) / CHAIN_LOG_FILE, operator)
    else:
        chain = Chain.connect(url, operator, read_only=True)
        chain.attach(meta["contract"])
    if chain.contract.address.lower() != meta["contract"].lower():
        raise ChainError(f"contract: the chain's settlement contract is {chain.contract.address}, "
                         f"the journal recorded {meta['contract']}")
    return journal, chain


def audit_run(run_dir: Path | None = None, db_url: str | None = None, chain_url: str | None = None,
              check_replay: bool = True) -> AuditReport:
    """Open a run folder's or a journal's ledger (:func:`open_run`), audit it and close both."""
    journal, chain = open_run(run_dir, db_url, chain_url)
    try:
        return audit(journal, chain, check_replay)
    finally:
        journal.close()
        if chain is not None:
            chain.close()


def _slot_text(slot: int | None, body: dict[str, Any] | None = None) -> str:
    return body["slot_start"] if body and "slot_start" in body else str(slot)


def audit(journal: Journal, chain: Chain | None, check_replay: bool = True) -> AuditReport:
    """Check everything; ``chain`` ``None`` checks the journal alone (roots against its own rows)."""
    report = AuditReport(ok=True)
    try:
        _audit(journal, chain, report, check_replay)
    except (AuditFailure, JournalMismatch, ChainError) as exc:
        report.ok = False
        report.error = str(exc)
    return report


class _Checks:
    """The per-row checks, as the rows stream past on their way to the replay."""

    def __init__(self, chain: Chain | None, report: AuditReport) -> None:
        self.chain = chain
        self.report = report
        self.domain: Domain | None = None
        self.address: dict[str, bytes] = {}
        self.batches: dict[int, tuple[str, set[bytes]]] = {}
        self.last_nonce: dict[str, int] = {}
        self.leaves: dict[int, dict[str, list[bytes]]] = defaultdict(lambda: defaultdict(list))
        self.committed: set[int] = set()
        self.sent: set[int] = set()
        self.pending_on_chain: list[tuple[int, str]] = []  # committed in the journal, not found on chain

    def rows(self, rows: Iterator[JournalRow]) -> Iterator[JournalRow]:
        prev, expect = GENESIS_PREV.hex(), 1
        for row in rows:
            check_link(row, prev, expect)
            prev, expect = row.hash, row.seq + 1
            self.report.rows += 1
            where = f"journal row {row.seq} ({row.kind}{' ' + row.ref if row.ref else ''})"
            try:
                self.check(row, json.loads(row.body), where)
            except (AuditFailure, JournalMismatch, ChainError):
                raise
            except (*MALFORMED, SignatureError) as exc:
                raise AuditFailure(f"{where}: malformed ({type(exc).__name__}: {exc})") from exc
            if row.seq > 1:
                yield row

    def check(self, row: JournalRow, body: dict[str, Any], where: str) -> None:
        kind = row.kind
        chain = self.chain
        if kind == "genesis":
            genesis_of(row)
            self.domain = Domain(int(body["chain_id"]), str(body["contract"]))
            if chain is not None and body["contract"].lower() != chain.contract.address.lower():
                raise AuditFailure(f"{where}: contract {body['contract']} is not the chain's {chain.contract.address}")
            return
        if self.domain is None:
            raise AuditFailure(f"{where}: comes before the genesis row")
        if kind == "participant":
            self.address[body["participant"]] = bytes.fromhex(body["address"].removeprefix("0x"))
            if chain is not None:
                on_chain = chain.account_of(body["participant"])
                if on_chain.lower() != body["address"].lower():
                    raise AuditFailure(f"{where}: address {body['address']} differs from the registry's {on_chain}")
        elif kind == "batch":
            signer = self._signer(body["participant"], where)
            items = [bytes.fromhex(i) for i in body["items"]]
            if recover(self.domain.digest(batch_hash(signer, items)), bytes.fromhex(body["signature"])) != signer:
                raise AuditFailure(f"{where}: batch signature was not made by {body['participant']!r}'s key")
            self.batches[row.seq] = (body["participant"], set(items))
        elif kind in SIGNED_KINDS:
            action = action_from_dict(body["kind"] if kind == "reject" else kind, body["action"])
            signer = self._signer(action.participant, where)
            self._nonce(action.participant, body["nonce"], where)
            sh = struct_hash(action, body["nonce"], signer)
            if "signature" in body:
                if recover(self.domain.digest(sh), bytes.fromhex(body["signature"])) != signer:
                    raise AuditFailure(f"{where}: signature does not match the content (altered or forged)")
            else:
                owner, items = self.batches.get(body.get("batch", -1), ("", set()))
                if owner != action.participant or sh not in items:
                    raise AuditFailure(f"{where}: not among the actions its signed batch {body.get('batch')} covers "
                                       "(altered or forged)")
            self.report.signed_actions += 1
        elif kind == "meter" and "signature" in body:
            signer = self._signer(body["participant"], where)
            self._nonce(body["participant"], body["nonce"], where)
            digest = meter_digest(self.domain, signer, datetime.fromisoformat(body["slot_start"]), body["values"],
                                  body["nonce"])
            if recover(digest, bytes.fromhex(body["signature"])) != signer:
                raise AuditFailure(f"{where}: reading's signature does not match its content (altered or forged)")
            self.report.signed_readings += 1
        elif kind == "commit":
            self._commit(row, body, where)
        elif kind == "chain_tx":
            self.sent.add(int(body["slot_start"]))
        group = ROOT_GROUP.get(kind)
        if group is not None and row.slot_start is not None:
            if row.slot_start in self.committed:
                raise AuditFailure(f"{where}: belongs to slot {row.slot_start}, which was already committed")
            self.leaves[row.slot_start][group].append(leaf_of(kind, row.body))

    def _signer(self, participant: str, where: str) -> bytes:
        try:
            return self.address[participant]
        except KeyError:
            raise AuditFailure(f"{where}: participant {participant!r} was never registered") from None

    def _nonce(self, participant: str, nonce: int, where: str) -> None:
        if isinstance(nonce, bool) or not isinstance(nonce, int):
            raise AuditFailure(f"{where}: nonce {nonce!r} is not a whole number")
        if nonce <= self.last_nonce.get(participant, -1):
            raise AuditFailure(f"{where}: nonce {nonce} not above {participant!r}'s previous (replay)")
        self.last_nonce[participant] = nonce

    def _commit(self, row: JournalRow, body: dict[str, Any], where: str) -> None:
        slot = row.slot_start
        if slot is None or slot in self.committed:
            raise AuditFailure(f"{where}: slot {slot} committed twice or not named")
        group = self.leaves.pop(slot, {})
        if body["journal_seq"] != row.seq - 1 or body["journal_head"] != row.prev_hash:
            raise AuditFailure(f"{where}: committed journal head is not the row before the commit")
        roots = {}
        for name in ("orders", "trades", "certificates"):
            roots[name] = merkle_root(group.get(name, []))
            if roots[name].hex() != body[f"{name}_root"]:
                raise AuditFailure(f"slot {_slot_text(slot, body)}: {name} root recomputed from the journal "
                                   f"0x{roots[name].hex()} != 0x{body[name + '_root']} in its commit row")
        self.committed.add(slot)
        self.report.slots_committed += 1
        if self.chain is None:
            return
        c = self.chain.commitment(slot)
        if c is None:
            self.pending_on_chain.append((slot, _slot_text(slot, body)))
            return
        for name in ("orders", "trades", "certificates"):
            on_chain = getattr(c, f"{name}_root")
            if roots[name] != on_chain:
                raise AuditFailure(f"slot {_slot_text(slot, body)}: {name} root recomputed from the journal "
                                   f"0x{roots[name].hex()} != 0x{on_chain.hex()} committed on chain")
        if c.journal_head.hex() != body["journal_head"] or c.journal_seq != body["journal_seq"]:
            raise AuditFailure(f"slot {_slot_text(slot, body)}: journal head on chain (row {c.journal_seq}, "
                               f"0x{c.journal_head.hex()}) differs from the journal's (row {body['journal_seq']}, "
                               f"0x{body['journal_head']})")


def _audit(journal: Journal, chain: Chain | None, report: AuditReport, check_replay: bool) -> None:
    checks = _Checks(chain, report)
    rows = checks.rows(journal.rows())
    first = next(journal.rows(), None)
    if first is None:
        raise AuditFailure("journal: empty (no genesis row)")
    if check_replay:
        engine = Engine.of_genesis(genesis_of(first), journal)
        trades = _Count()
        engine.listener = trades
        engine.replay_rows(rows)
        report.trades_replayed = trades.n
    else:
        for _ in rows:
            pass
    sent_missing = [text for slot, text in checks.pending_on_chain if slot in checks.sent]
    if sent_missing:
        raise AuditFailure(f"slot {sent_missing[0]}: the journal holds the transaction that committed it, "
                           "the chain holds no commitment")
    if chain is not None:
        extra = sorted(set(chain.committed_slots()) - checks.committed)
        if extra:
            raise AuditFailure(f"slot {extra[0]}: committed on chain but absent from the journal")
    else:
        report.notes.append("no chain: roots checked against the journal's own commit rows only")
    if checks.pending_on_chain:
        report.notes.append(f"{len(checks.pending_on_chain)} slots committed in the journal are not on chain yet "
                            f"(queued), first {checks.pending_on_chain[0][1]}")
    report.uncommitted_slots = len(checks.leaves)
    if checks.leaves:
        report.notes.append(f"{len(checks.leaves)} slots have journal entries but no commitment yet (open books)")


class _Count(Listener):
    """Counts the replayed trades."""

    def __init__(self) -> None:
        self.n = 0

    def on_trades(self, trades: list[Trade]) -> None:
        self.n += len(trades)


def prove_trade(journal: Journal, chain: Chain | None, trade_id: str) -> dict[str, Any]:
    """Merkle proof of trade ``trade_id`` against its slot's trades root on chain."""
    target = next((r for r in journal.rows(kinds=("trade",)) if r.ref == trade_id), None)
    if target is None:
        raise KeyError(f"TRADE_ID: no trade {trade_id!r} in the journal")
    slot_rows = [r for r in journal.rows(kinds=("trade",)) if r.slot_start == target.slot_start]
    leaves = [leaf_of(r.kind, r.body) for r in slot_rows]
    index = next(i for i, r in enumerate(slot_rows) if r.seq == target.seq)
    proof = merkle_proof(leaves, index)
    c = chain.commitment(target.slot_start) if chain is not None and target.slot_start is not None else None
    root = c.trades_root if c is not None else merkle_root(leaves)
    return {
        "trade_id": trade_id,
        "slot_start": datetime.fromisoformat(json.loads(target.body)["slot_start"]).isoformat(),
        "leaf": "0x" + leaves[index].hex(),
        "index": index,
        "leaves": len(leaves),
        "proof": [{"sibling": "0x" + s.hex(), "position": "left" if left else "right"} for s, left in proof],
        "root_on_chain": "0x" + root.hex() if c is not None else None,
        "verified": c is not None and verify_proof(leaves[index], proof, root),
        "trade": json.loads(target.body),
    }
