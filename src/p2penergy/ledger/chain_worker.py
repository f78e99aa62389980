"""The embedded chain's worker process (see ``pipeline.py``): ``python -m p2penergy.ledger.chain_worker FD``.

Serves requests ``(method, args)`` from the parent on an inherited socket; answers each with
``("ok", result)`` or ``("err", message)`` in order.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from p2penergy.ledger.chain import Chain
from p2penergy.ledger.keys import Key


def _serve(conn: Any) -> None:
    private_key, participant, tx_log = conn.recv()
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


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
