"""Audit a run: hash chain, signatures, nonces, Merkle roots against the chain, replay.

:func:`audit` streams the journal once (bounded memory) and stops at the first problem,
which it names; :func:`prove_trade` gives the Merkle proof of one trade against the root
committed on chain.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from p2penergy.ledger.actions import action_from_dict
from p2penergy.ledger.chain import EMBEDDED, Chain, ChainError
from p2penergy.ledger.journal import GENESIS_PREV, Journal, sqlite_url
from p2penergy.ledger.keys import OPERATOR_ID, Key
from p2penergy.ledger.merkle import merkle_proof, merkle_root, verify_proof
from p2penergy.ledger.recorder import CHAIN_LOG_FILE, JOURNAL_FILE, LEDGER_FILE, ORDER_KINDS, leaf_of
from p2penergy.ledger.replay import JournalMismatch, replay
from p2penergy.ledger.signing import Domain, SignatureError, batch_hash, recover, struct_hash

ROOT_GROUP = {"order": "orders", "modify": "orders", "cancel": "orders", "trade": "trades",
              "certificate": "certificates"}


class AuditFailure(Exception):
    """The first thing that does not check out."""


@dataclass(slots=True)
class AuditReport:
    ok: bool
    rows: int = 0
    signed_actions: int = 0
    slots_committed: int = 0
    trades_replayed: int = 0
    uncommitted_slots: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def open_run(run_dir: Path | None = None, db_url: str | None = None,
             chain_url: str | None = None) -> tuple[Journal, Chain]:
    """Open a run's journal and chain (the embedded chain is re-executed from its transaction log)."""
    meta: dict[str, Any] = {}
    if run_dir is not None:
        path = Path(run_dir) / LEDGER_FILE
        if not path.exists():
            raise FileNotFoundError(f"RUN_DIR: {path} not found (not a run folder with a ledger)")
        meta = json.loads(path.read_text(encoding="utf-8"))
        if db_url is None:
            db_url = (sqlite_url(Path(run_dir) / JOURNAL_FILE) if meta.get("journal") == JOURNAL_FILE
                      else meta.get("journal"))
    if db_url is None:
        raise ValueError("db_url: give RUN_DIR or --db URL")
    journal = Journal(db_url)
    if not meta:
        meta = {k: json.loads(v) for k in ("chain", "contract", "operator")
                if (v := journal.get_meta(k)) is not None}
    if not meta:
        raise ValueError(f"db_url: {db_url} holds no ledger metadata")
    operator = Key(OPERATOR_ID, b"", meta["operator"])
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
                         f"the run recorded {meta['contract']}")
    return journal, chain


def _slot_text(slot: int, body: dict[str, Any] | None = None) -> str:
    return body["slot_start"] if body and "slot_start" in body else str(slot)


def audit(journal: Journal, chain: Chain, check_replay: bool = True) -> AuditReport:
    report = AuditReport(ok=True)
    try:
        _audit(journal, chain, report)
        if check_replay:
            report.trades_replayed = len(replay(journal).trades)
    except (AuditFailure, JournalMismatch, SignatureError, ChainError) as exc:
        report.ok = False
        report.error = str(exc)
    return report


def _audit(journal: Journal, chain: Chain, report: AuditReport) -> None:
    prev, expect_seq = GENESIS_PREV.hex(), 1
    domain: Domain | None = None
    address: dict[str, bytes] = {}
    batches: dict[int, tuple[str, set[bytes]]] = {}
    last_nonce: dict[str, int] = {}
    leaves: dict[int, dict[str, list[bytes]]] = defaultdict(lambda: defaultdict(list))
    committed: set[int] = set()
    for row in journal.rows():
        where = f"journal row {row.seq} ({row.kind}{' ' + row.ref if row.ref else ''})"
        if row.seq != expect_seq:
            raise AuditFailure(f"journal row {expect_seq}: missing (next row is {row.seq})")
        if row.prev_hash != prev:
            raise AuditFailure(f"{where}: prev_hash does not link to row {row.seq - 1} (rows removed or inserted)")
        if row.expected_hash() != row.hash:
            raise AuditFailure(f"{where}: hash does not match its content (the row was altered)")
        prev, expect_seq = row.hash, row.seq + 1
        report.rows += 1
        body = json.loads(row.body)
        if row.kind == "genesis":
            domain = Domain(body["chain_id"], body["contract"])
            if body["contract"].lower() != chain.contract.address.lower():
                raise AuditFailure(f"{where}: contract {body['contract']} is not the chain's {chain.contract.address}")
        elif row.kind == "participant":
            address[body["participant"]] = bytes.fromhex(body["address"].removeprefix("0x"))
            on_chain = chain.account_of(body["participant"])
            if on_chain.lower() != body["address"].lower():
                raise AuditFailure(f"{where}: address {body['address']} differs from the registry's {on_chain}")
        elif row.kind == "batch":
            assert domain is not None
            signer = _address(address, body["participant"], where)
            items = [bytes.fromhex(i) for i in body["items"]]
            if recover(domain.digest(batch_hash(signer, items)), bytes.fromhex(body["signature"])) != signer:
                raise AuditFailure(f"{where}: batch signature was not made by {body['participant']!r}'s key")
            batches[row.seq] = (body["participant"], set(items))
        elif row.kind in ORDER_KINDS:
            assert domain is not None
            action = action_from_dict(row.kind, body["action"])
            signer = _address(address, action.participant, where)
            nonce = body["nonce"]
            if nonce <= last_nonce.get(action.participant, -1):
                raise AuditFailure(f"{where}: nonce {nonce} not above {action.participant!r}'s previous (replay)")
            last_nonce[action.participant] = nonce
            sh = struct_hash(action, nonce, signer)
            if "signature" in body:
                if recover(domain.digest(sh), bytes.fromhex(body["signature"])) != signer:
                    raise AuditFailure(f"{where}: signature does not match the content (altered or forged)")
            else:
                owner, items = batches.get(body.get("batch", -1), ("", set()))
                if owner != action.participant or sh not in items:
                    raise AuditFailure(f"{where}: not among the actions its signed batch {body.get('batch')} covers "
                                       "(altered or forged)")
            report.signed_actions += 1
        if row.kind in ROOT_GROUP:
            leaves[row.slot_start][ROOT_GROUP[row.kind]].append(leaf_of(row.kind, row.body))
        elif row.kind == "commit":
            slot = row.slot_start
            group = leaves.pop(slot, {})
            if body["journal_seq"] != row.seq - 1 or body["journal_head"] != row.prev_hash:
                raise AuditFailure(f"{where}: committed journal head is not the row before the commit")
            c = chain.commitment(slot)
            if c is None:
                raise AuditFailure(f"slot {_slot_text(slot, body)}: journal says committed in {body['tx_hash']}, "
                                   "the chain holds no commitment")
            for name in ("orders", "trades", "certificates"):
                root = merkle_root(group.get(name, []))
                if root.hex() != body[f"{name}_root"]:
                    raise AuditFailure(f"slot {_slot_text(slot, body)}: {name} root recomputed from the journal "
                                       f"0x{root.hex()} != 0x{body[name + '_root']} in its commit row")
                on_chain = getattr(c, f"{name}_root")
                if root != on_chain:
                    raise AuditFailure(f"slot {_slot_text(slot, body)}: {name} root recomputed from the journal "
                                       f"0x{root.hex()} != 0x{on_chain.hex()} committed on chain")
            if c.journal_head.hex() != body["journal_head"] or c.journal_seq != body["journal_seq"]:
                raise AuditFailure(f"slot {_slot_text(slot, body)}: journal head on chain differs from the journal")
            committed.add(slot)
            report.slots_committed += 1
    on_chain_slots = chain.committed_slots()
    extra = sorted(set(on_chain_slots) - committed)
    if extra:
        raise AuditFailure(f"slot {extra[0]}: committed on chain but absent from the journal")
    report.uncommitted_slots = len(leaves)
    if leaves:
        report.notes.append(f"{len(leaves)} slots have journal entries but no commitment yet (open books)")


def _address(address: dict[str, bytes], participant: str, where: str) -> bytes:
    try:
        return address[participant]
    except KeyError:
        raise AuditFailure(f"{where}: participant {participant!r} was never registered") from None


def prove_trade(journal: Journal, chain: Chain, trade_id: str) -> dict[str, Any]:
    """Merkle proof of trade ``trade_id`` against its slot's trades root on chain."""
    target = next((r for r in journal.rows(kinds=("trade",)) if r.ref == trade_id), None)
    if target is None:
        raise KeyError(f"TRADE_ID: no trade {trade_id!r} in the journal")
    slot_rows = [r for r in journal.rows(kinds=("trade",)) if r.slot_start == target.slot_start]
    leaves = [leaf_of(r.kind, r.body) for r in slot_rows]
    index = next(i for i, r in enumerate(slot_rows) if r.seq == target.seq)
    proof = merkle_proof(leaves, index)
    c = chain.commitment(target.slot_start)
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
