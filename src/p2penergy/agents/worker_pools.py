"""Where a run's side work goes (forecasts split by site, plans made ahead): one rule for both pools.

With ``workers`` ≤ 1 there are none (the work is done in turn, in this process); inside a Dask task
(a sweep point) they are tasks on the point's own cluster, through ``distributed.worker_client``;
elsewhere a local pool (:func:`local_pool`) of one of two kinds (:data:`WORKER_KINDS`):

* ``processes`` started by a fork server: for work that runs Python most of its time (forecasts'
  features and models), which threads of one process would take turns at (one interpreter lock);
* ``threads`` of this process: for work that spends most of its time in native code that lets go
  of the interpreter lock (HiGHS's solve in ``highspy``), and whose inputs and results are cheap
  to share but dear to send to another process (a plan's arrays: measured 2026-12-02, plans made
  ahead in two processes made the main job's P2P month 1.5–1.8× slower than planning in turn).
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar


class Closable(Protocol):
    def close(self) -> None: ...


W = TypeVar("W", bound=Closable)


def in_dask_task() -> bool:
    """Whether this code runs inside a Dask worker's task (never where ``distributed`` is not imported:
    a Dask worker imports it; importing it to ask took 1–5 s of a plain run's start)."""
    if "distributed" not in sys.modules:
        return False
    try:
        from distributed import get_worker
    except ImportError:
        return False
    try:
        get_worker()
    except ValueError:
        return False
    return True


def local_processes(workers: int, **kw: Any) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes (``kw``: the executor's, e.g. an ``initializer``). Started by a
    fork server: a clean process, not a fork of one that may run threads (a chain client, Dask)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"), **kw)


WORKER_KINDS = ("processes", "threads")


def local_pool(kind: str, workers: int, **kw: Any) -> Executor:
    """A local pool of ``workers`` of ``kind`` (:data:`WORKER_KINDS`; ``kw``: the executor's, e.g. an
    ``initializer``)."""
    if kind == "processes":
        return local_processes(workers, **kw)
    if kind == "threads":
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="p2penergy-worker", **kw)
    raise ValueError(f"worker kind: one of {', '.join(WORKER_KINDS)}, got {kind!r}")


@contextmanager
def workers_for(workers: int, on_cluster: Callable[[Any], W], local: Callable[[], W]) -> Iterator[W | None]:
    """``None`` for ``workers`` ≤ 1; inside a Dask task ``on_cluster(client)`` (the task's
    ``worker_client``, which frees its thread while it waits); elsewhere ``local()``. Closed on exit."""
    if workers <= 1:
        yield None
        return
    if in_dask_task():
        from distributed import worker_client

        with worker_client() as client:
            pool = on_cluster(client)
            try:
                yield pool
            finally:
                pool.close()
        return
    pool = local()
    try:
        yield pool
    finally:
        pool.close()
