"""A step's plans made ahead in parallel, each used only where the agent's turn would plan the same.

In a planning step the agents act one after another in a seeded order, and each agent's plan
input reads the market: the reference price, its own open orders and fills, and a car the
office's best bids (:meth:`~p2penergy.agents.trader.TradingAgent.read_market`). The agents before
it in the same step can change all three (a CDA matches on submission). Speculation with
read-set validation keeps the sequential run's results bit for bit:

1. when the step begins, every acting agent reads the market as it stands and builds its plan
   input (cheap, here); the inputs go in chunks to other processes, which plan them
   (:func:`~p2penergy.agents.planner.plan`, a pure function of its input);
2. the agents then act in the seeded order as before, each reading the market afresh at its
   turn; where that read plans alike (:meth:`~p2penergy.agents.trader.MarketRead.plans_alike`:
   the same reference price, best bids and position, so the same plan input), or else the plan
   input rebuilt from it is the same bit for bit, the plan made ahead is used; otherwise the
   agent plans here, as it would have.

So a run with plans made ahead gives the same orders, trades and bills as one without (tested);
what it saves is the planning of the agents whose reads held, what it costs is a second read and
plan input per agent and a round trip per chunk. How many reads hold depends on the mechanism:
in a call auction nothing trades before the close and every read holds; in a CDA every trade
moves the public reference price, which every plan reads, so after the step's first trade the
later agents' plans made ahead are of no use (measured: docs/sweep.md, "What runs in parallel").

Workers are a local pool of processes (:class:`ProcessPlanWorkers`) or the Dask cluster a sweep
point runs on (:class:`DaskPlanWorkers`), like the forecasts' (:mod:`~p2penergy.agents.forecast_pool`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np

from p2penergy.agents.market_access import MarketAccess
from p2penergy.agents.plan_input import AgentInputError, Plan, PlanInput
from p2penergy.agents.plan_task import plan_each
from p2penergy.agents.trader import MarketRead, Observation, PlannedStep, TradingAgent
from p2penergy.agents.worker_pools import local_processes, workers_for

# A step's plans go out in this many chunks per worker, of consecutive agents in their turns' order:
# the first agents' plans come back while the later ones are still being made, so the first turns
# wait for a few plans, not for a worker's whole share (a chunk's round trip, about a millisecond,
# against about 3 ms per plan; assumption: 4 chunks keep the round trips under a tenth of the work).
CHUNKS_PER_WORKER = 4


class PlanFuture(Protocol):
    """A chunk's plans being made (``concurrent.futures.Future`` and ``distributed.Future`` are ones)."""

    def result(self) -> list[Plan | None]: ...

    def cancel(self) -> bool: ...


class PlanWorkers(Protocol):
    """Plans chunks of a step's plan inputs elsewhere."""

    workers: int

    def submit(self, chunk: Sequence[PlanInput]) -> PlanFuture: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class SpeculationCount:
    """Agent-steps whose plan was made ahead (``planned_ahead``), and of them those whose plan was used."""

    planned_ahead: int = 0
    used: int = 0

    @property
    def used_share(self) -> float:
        """``used / planned_ahead`` (0 before any)."""
        return self.used / self.planned_ahead if self.planned_ahead else 0.0


class _Chunk:
    """A chunk's plans, fetched once when a turn first needs one."""

    def __init__(self, future: PlanFuture) -> None:
        self.future = future
        self._plans: list[Plan | None] | None = None

    def plan(self, k: int) -> Plan | None:
        if self._plans is None:
            self._plans = self.future.result()
        return self._plans[k]


@dataclass(slots=True)
class StepPlans:
    """A step's plans made ahead, by participant; :meth:`cancel` when the step's turns are over."""

    steps: dict[str, PlannedStep]
    chunks: list[_Chunk]

    def get(self, participant: str) -> PlannedStep | None:
        return self.steps.get(participant)

    def cancel(self) -> None:
        """Drop the plans no turn asked for (those not started are never made)."""
        for chunk in self.chunks:
            chunk.future.cancel()


def plan_ahead(turns: Sequence[tuple[TradingAgent, Observation, MarketAccess]],
               workers: PlanWorkers) -> StepPlans:
    """For each (agent, observation, its market access) of a step, in the order of their turns: its
    plan input from the market as it stands now, sent to ``workers`` in :data:`CHUNKS_PER_WORKER`
    chunks per worker; returns at once (a turn waits for its own plan only if it uses it). An agent
    whose input fails here has none: it plans in its turn, and fails there as it would have (after
    the agents before it acted)."""
    ready: list[tuple[str, Observation, MarketRead, PlanInput]] = []
    for agent, obs, market in turns:
        read = agent.read_market(obs, market)
        try:
            inp = agent.plan_input_of(obs, market.settings.slot_minutes, read.plan)
        except AgentInputError:
            continue
        ready.append((agent.participant.id, obs, read, inp))
    steps: dict[str, PlannedStep] = {}
    chunks: list[_Chunk] = []
    if not ready:
        return StepPlans(steps, chunks)
    for part in np.array_split(np.arange(len(ready)), min(workers.workers * CHUNKS_PER_WORKER, len(ready))):
        members = [ready[int(i)] for i in part]
        chunk = _Chunk(workers.submit([inp for _, _, _, inp in members]))
        chunks.append(chunk)
        for k, (pid, obs, read, inp) in enumerate(members):
            steps[pid] = PlannedStep(obs, read, inp, partial(chunk.plan, k))
    return StepPlans(steps, chunks)


# -- a local pool of processes -------------------------------------------------------------------
class ProcessPlanWorkers:
    """``workers`` local processes (started by a fork server)."""

    def __init__(self, workers: int) -> None:
        if workers < 2:
            raise ValueError(f"plan_workers: at least 2 to plan ahead (1 plans in turn), got {workers}")
        self.workers = workers
        self._pool = local_processes(workers)
        # start the processes now (one per task while none is idle), not in the run's first step
        for started in [self._pool.submit(plan_each, []) for _ in range(workers)]:
            started.result()

    def submit(self, chunk: Sequence[PlanInput]) -> PlanFuture:
        return self._pool.submit(plan_each, chunk)

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


# -- the Dask cluster a sweep point runs on --------------------------------------------------------
class DaskPlanWorkers:
    """Chunks as tasks on a Dask cluster. ``client``: a ``distributed.Client``; inside a Dask task (a
    sweep point) the one from ``distributed.worker_client()``."""

    def __init__(self, workers: int, client: Any) -> None:
        if workers < 2:
            raise ValueError(f"plan_workers: at least 2 to plan ahead (1 plans in turn), got {workers}")
        self.workers = workers
        self._client = client

    def submit(self, chunk: Sequence[PlanInput]) -> PlanFuture:
        future: PlanFuture = self._client.submit(plan_each, list(chunk), pure=False)
        return future

    def close(self) -> None:
        return None


def plan_workers(workers: int) -> AbstractContextManager[PlanWorkers | None]:
    """Workers to make a run's plans ahead with (``None`` for ``workers`` ≤ 1: every agent plans in
    its turn): inside a Dask task, tasks on its cluster; elsewhere a local pool of processes
    (:func:`~p2penergy.agents.worker_pools.workers_for`)."""
    return workers_for(workers, lambda client: DaskPlanWorkers(workers, client), lambda: ProcessPlanWorkers(workers))
