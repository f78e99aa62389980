"""Group commit: requests that arrive together share one journal transaction.

A command handler applies its action under the exchange's lock and appends journal rows
without flushing, then awaits :meth:`GroupCommit.durable`. The first waiter schedules a
flush on the event loop's next turn; every action applied meanwhile is covered by it. An
action is acknowledged only once a flush that includes its last row has committed in the
same generation of memory; if a flush fails, memory is rebuilt from the journal
(dropping what was not written) and every waiter gets 503.
"""

from __future__ import annotations

import asyncio

from p2penergy.service.live import LiveExchange, ServiceError


class GroupCommit:
    def __init__(self, live: LiveExchange) -> None:
        self.live = live
        self._pending: asyncio.Future[None] | None = None

    async def durable(self, seq: int, generation: int) -> None:
        """Return once journal row ``seq`` of ``generation`` is committed; 503 if it was lost."""
        live = self.live
        while live.generation == generation and live.flushed_seq < seq:
            if self._pending is None:
                loop = asyncio.get_running_loop()
                self._pending = loop.create_future()
                loop.call_soon(self._flush)
            await asyncio.shield(self._pending)
        if live.generation != generation:
            raise ServiceError(503, "journal", "could not be written; the action was not accepted")

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        try:
            self.live.flush()
        except ServiceError:
            pass  # memory was rebuilt (generation changed): each waiter answers 503
        finally:
            if pending is not None and not pending.done():
                pending.set_result(None)
