"""The embedded chain in a worker process, with commits pipelined.

py-evm is pure Python: executing a slot's commit takes tens of milliseconds of CPU. Run in
the simulation's own process, that time adds up to a large share of a month's run. Here the
same in-process chain (eth-tester/py-evm, no node, nothing on the network) lives in a child
process: the parent signs each commit itself (so it knows the transaction hash at once),
hands the raw transaction over a pipe and carries on with the next slot while the child
executes it on the other core. Receipts are checked as they come back (at the latest one
slot later, and all of them at :meth:`PipelinedChain.close`); a failed commit raises
:class:`ChainError` naming its slot.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from p2penergy.ledger.chain import EMBEDDED, ChainError, OnChainCommitment, TxSigner, commit_call
from p2penergy.ledger.hashing import keccak
from p2penergy.ledger.keys import Key


class PipelinedChain:
    """Same calls as :class:`Chain` for what the :class:`~p2penergy.ledger.engine.Engine` needs; commits do not wait."""

    kind = EMBEDDED

    def __init__(self, operator: Key, tx_log: Path | None = None) -> None:
        # A fresh interpreter (not multiprocessing's spawn, which re-runs the parent's main script,
        # nor fork, which copies the parent's threads and database handles) on a socket pair.
        ours, theirs = socket.socketpair()
        self._proc = subprocess.Popen([sys.executable, "-m", "p2penergy.ledger.chain_worker", str(theirs.fileno())],
                                      pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        theirs.close()
        self._conn = Connection(ours.detach())
        self._conn.send((operator.private_key, operator.participant, str(tx_log) if tx_log else None))
        self.operator = operator
        self._waiting: deque[int] = deque()  # slots whose receipts are still to come
        self._call("start")
        self.chain_id: int = 0
        self.address: str = ""
        self._signer: TxSigner | None = None

    def _call(self, method: str, *args: Any) -> Any:
        self.drain()
        self._conn.send((method, args))
        status, result = self._conn.recv()
        if status != "ok":
            raise ChainError(result)
        return result

    def deploy(self) -> str:
        self._call("deploy")
        self._sync()
        return self.address

    def _sync(self) -> None:
        chain_id, address, nonce, max_fee, tip = self._call("state")
        self.chain_id, self.address = chain_id, address
        self._signer = TxSigner(self.operator, chain_id, address, nonce, max_fee, tip)

    def register(self, participants: dict[str, str]) -> list[dict[str, Any]]:
        events = self._call("register", participants)
        self._sync()
        return events

    def commit_slot(self, slot_start: int, *args: Any) -> tuple[str, int | None, None]:
        """Sign here, execute in the worker; returns (tx hash, None, None) without waiting."""
        data, gas = commit_call(slot_start, *args)
        assert self._signer is not None, "deploy first"
        raw = self._signer.sign(data, gas)
        self.poll()
        self._conn.send(("raw", (raw, slot_start)))
        self._waiting.append(slot_start)
        return "0x" + keccak(raw).hex(), None, None

    def poll(self) -> None:
        """Check every receipt that has come back; raise on the first failed commit."""
        while self._waiting and self._conn.poll():
            self._receive()

    def drain(self) -> None:
        while self._waiting:
            self._receive()

    def _receive(self) -> None:
        slot = self._waiting.popleft()
        status, result = self._conn.recv()
        if status != "ok":
            raise ChainError(f"commit of slot {slot} failed in the embedded chain: {result}")

    def commitment(self, slot_start: int) -> OnChainCommitment | None:
        return self._call("commitment", slot_start)

    def committed_slots(self) -> list[int]:
        return self._call("committed_slots")

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self.drain()
            finally:
                self._conn.send(("stop", ()))
                self._conn.recv()
                self._conn.close()
                self._proc.wait(timeout=30)

