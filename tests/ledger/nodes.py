"""Real EVM nodes for outage tests: an anvil that can be stopped and started again with its chain,
and a TCP relay in front of a node that can refuse connections or swallow one reply."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from eth_hash.auto import keccak

from p2penergy.ledger.keys import OPERATOR_ID, Key

# A fixed key for tests (a constant, not derived from a seed: it stands for an operator's own key).
TEST_OPERATOR = Key.from_hex(OPERATOR_ID, keccak(b"p2penergy tests: the operator's own key").hex(), "environment")
TEST_OPERATOR_2 = Key.from_hex(OPERATOR_ID, keccak(b"p2penergy tests: the next operator's key").hex(), "environment")


def anvil_binary() -> str:
    root = Path(__file__).resolve().parents[2]
    found = sorted(root.glob(".tools/anvil/node_modules/@foundry-rs/anvil-*/bin/anvil"))
    binary = os.environ.get("P2PENERGY_ANVIL") or (str(found[0]) if found else shutil.which("anvil") or "anvil")
    if not Path(binary).exists():
        raise RuntimeError(f"anvil not found at {binary}: run scripts/setup.sh (installs @foundry-rs/anvil into .tools/)")
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port}") from None
            time.sleep(0.05)


class Anvil:
    """An anvil node whose chain survives :meth:`stop` / :meth:`start` (``--state FILE``: loaded at start,
    written when it exits on SIGTERM), on the same port: a node that goes down and comes back."""

    def __init__(self, state: Path, port: int | None = None) -> None:
        self.state = state
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        assert self.proc is None
        self.proc = subprocess.Popen([anvil_binary(), "--host", "127.0.0.1", "--port", str(self.port),
                                      "--state", str(self.state), "--silent"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        """SIGTERM (anvil writes its state) and wait; nothing answers on the port afterwards."""
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


class Relay:
    """A TCP relay 127.0.0.1:port -> a node. ``up = False`` refuses (resets) every connection, as a node
    that is down; :meth:`swallow_reply_of` forwards the next request naming ``method`` and drops its reply,
    as a connection lost after the node acted (the client sees an error, the node did it)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.up = True
        self._swallow: bytes | None = None
        self._down_after_swallow = False
        self.swallowed = 0
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def swallow_reply_of(self, method: str, then_down: bool = False) -> None:
        """Drop the reply to the next request naming ``method``; with ``then_down`` the node is away from then on."""
        self._swallow = method.encode()
        self._down_after_swallow = then_down

    def set_up(self, up: bool) -> None:
        self.up = up
        if not up:
            with self._lock:
                for c in self._conns:
                    _close(c)
                self._conns.clear()

    def close(self) -> None:
        self.set_up(False)
        _close(self._server)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self.up:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                _close(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._conns += [client, upstream]
            state = {"drop": False}
            threading.Thread(target=self._pump, args=(client, upstream, state, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, state, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, state: dict[str, bool], request: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if request and self._swallow is not None and self._swallow in data:
                    self._swallow = None
                    state["drop"] = True
                if not request and state["drop"]:
                    self.swallowed += 1
                    if self._down_after_swallow:
                        self.up = False
                    break  # the node answered; the client never hears it
                dst.sendall(data)
        except OSError:
            pass
        _close(src)
        _close(dst)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)  # at once, even while another thread is blocked reading it
    with contextlib.suppress(OSError):
        s.close()
