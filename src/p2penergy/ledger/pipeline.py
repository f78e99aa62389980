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

import multiprocessing
from collections import deque
from pathlib import Path
from typing import Any

from p2penergy.ledger.chain import EMBEDDED, Chain, ChainError, OnChainCommitment, TxSigner, commit_call
from p2penergy.ledger.hashing import keccak
from p2penergy.ledger.keys import Key


def _serve(conn: Any, private_key: bytes, participant: str, tx_log: str | None) -> None:
    chain = None
    while True:
        method, args = conn.recv()
        if method == "stop":
            if chain is not None:
                chain.close()
            conn.send(("ok", None))
            return
        try:
            if method == "start":
                chain = Chain.in_process(Key.from_hex(participant, private_key.hex()),
                                         Path(tx_log) if tx_log else None)
                result: Any = None
            elif method == "raw":
                raw, slot = args
                assert chain is not None
                receipt = chain._send_raw(raw, f"commit slot {slot}")
                chain._nonce += 1
                result = chain.settled(receipt, slot)
            elif method == "state":
                assert chain is not None
                signer = chain.signer()
                result = (signer.chain_id, signer.to, signer.nonce, signer.max_fee, signer.tip)
            else:
                result = getattr(chain, method)(*args)
            conn.send(("ok", result))
        except Exception as exc:  # report, keep serving: the parent decides
            conn.send(("err", f"{exc}"))


class PipelinedChain:
    """Same calls as :class:`Chain` for what the :class:`Ledger` needs; commits do not wait."""

    kind = EMBEDDED

    def __init__(self, operator: Key, tx_log: Path | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, operator.private_key, operator.participant,
                                                      str(tx_log) if tx_log else None), daemon=True)
        self._proc.start()
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
        if self._proc.is_alive():
            try:
                self.drain()
            finally:
                self._conn.send(("stop", ()))
                self._conn.recv()
                self._proc.join(timeout=30)
