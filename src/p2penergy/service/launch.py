"""Run the service's app on a real socket from a background thread of this process.

``p2penergy demo --live`` (the service beside its agents in one process) and the tests use
:class:`ServiceThread`; ``p2penergy serve`` runs uvicorn in the foreground instead.
"""

from __future__ import annotations

import contextlib
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

# How long the app may take to start listening (wall seconds): opening and replaying a journal
# and loading the scenario take a few seconds on a busy 2-core machine; a minute is ample.
START_TIMEOUT_S = 60.0


class ServiceThread:
    """uvicorn serving ``app`` on ``host:port`` (``port`` 0: a free port, read back from the socket).

    Use as a context manager: on entry it waits until the server listens (or fails, saying why);
    on exit it asks the server to stop and waits for its shutdown, which runs the app's lifespan
    end (the slot closer stops, the journal is flushed and closed).
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0,
                 start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.start_timeout_s = start_timeout_s
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self._serve, name="p2penergy-service", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _serve(self) -> None:
        with contextlib.suppress(SystemExit):  # uvicorn's way of saying it could not start (it logged why):
            self.server.run()  # start() reports it

    def start(self) -> ServiceThread:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self.server.started:
            if not self.thread.is_alive():  # uvicorn exits its thread when it cannot listen
                raise RuntimeError(f"port: the service could not listen on {self.host}:{self.port} "
                                   "(in use? try another --port, or 0 for a free one)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"port: the service did not start listening on {self.host}:{self.port} "
                                   f"within {self.start_timeout_s:.0f} s")
            time.sleep(0.02)
        if self.port == 0:
            self.port = int(self.server.servers[0].sockets[0].getsockname()[1])
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=timeout_s)

    def __enter__(self) -> ServiceThread:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
