"""A step's plans made ahead in parallel, each used only where the agent's turn would plan the same.

In a planning step the agents act one after another in a seeded order, and each agent's plan
input reads the market: the reference price, its own open orders and fills, and a car the
office's best bids (:meth:`~p2penergy.agents.trader.TradingAgent.read_market`). The agents before
it in the same step can change all three (a CDA matches on submission). Speculation with
read-set validation keeps the sequential run's results bit for bit:

1. when the step begins, every acting agent (of those :func:`worth_planning_ahead`: not the ones
   whose plans need no LP) reads the market as it stands and builds its plan input (cheap, here);
   the inputs go in chunks to workers (threads of this process, or other processes), which plan
   them (:func:`~p2penergy.agents.planner.plan`, a pure function of its input);
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
later agents' plans made ahead are of no use (measured: docs/sweep.md, "What runs in parallel";
on the demonstration, 2026-12-02, 4 days: 58 % of the plans made ahead were used, every miss but
a few cars' (the office's bids moved) a moved reference price).

Workers are a local pool (:class:`LocalPlanWorkers`) of threads (the default: HiGHS's solve lets
go of the interpreter lock, so solves overlap each other and the main thread's Python; each thread
has its own HiGHS instance, and plan inputs and plans are immutable) or processes, or the Dask
cluster a sweep point runs on (:class:`DaskPlanWorkers`), like the forecasts'
(:mod:`~p2penergy.agents.forecast_pool`). Threads share one interpreter lock: the Python half of a
plan (building the LP, reading its solution) takes turns with the main thread's, so only HiGHS's
half runs alongside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from p2penergy.agents.market_access import MarketAccess
from p2penergy.agents.plan_input import AgentInputError, Plan, PlanInput
from p2penergy.agents.plan_task import plan_each
from p2penergy.agents.planner import solved_in_closed_form
from p2penergy.agents.trader import Observation, PlannedStep, TradingAgent
from p2penergy.agents.worker_pools import local_pool, workers_for

# How far ahead of the turns plans are made: this many agents per worker, each planned from the market
# as it stands after the turns before it so far. Few, so that a plan is made from a recent market
# (a CDA's trade moves the reference price every plan reads: the fewer turns between a plan's read and
# its turn, the likelier the read still holds); enough that a worker's next plan is ready when its
# turn comes (a plan, about 3 ms, against a turn's 3-4 ms in the main thread; assumption: two per
# worker leave a plan's time to spare).
PLANS_AHEAD_PER_WORKER = 2


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
    """Agent-steps whose plan was made ahead (``planned_ahead``), of them those whose plan was used, and
    those whose plan was not made ahead (``not_ahead``: not :func:`worth_planning_ahead`, or its input failed)."""

    planned_ahead: int = 0
    used: int = 0
    not_ahead: int = 0

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


def worth_planning_ahead(agent: TradingAgent) -> bool:
    """Whether ``agent``'s plan is made ahead: unless its last plan was solved in closed form
    (:func:`~p2penergy.agents.planner.solved_in_closed_form`; its next one most likely is too, a home
    without a battery). Such a plan costs about as much Python (measured 2026-12-02: 0.3–0.6 ms) as
    checking a plan made ahead costs the agent's turn (a second market read: 0.3–0.7 ms), and being
    Python it would take turns with the main thread's at the interpreter lock: made ahead it saves
    nothing. Half of the demonstration's plans are of that kind. Which plans are made ahead never
    changes what a turn does."""
    return agent.last_input is None or not solved_in_closed_form(agent.last_input)


class StepPlans:
    """A step's plans made ahead, a few agents at a time (:data:`PLANS_AHEAD_PER_WORKER` per worker):
    when the step begins the first agents', and after each agent's turn (:meth:`turn_over`) those of
    the agents next in line, each from the market as it stands then. :meth:`cancel` when the step's
    turns are over."""

    def __init__(self, turns: Sequence[tuple[TradingAgent, Observation, MarketAccess]],
                 workers: PlanWorkers) -> None:
        self._turns = [turn for turn in turns if worth_planning_ahead(turn[0])]
        self._place = {turn[0].participant.id: k for k, turn in enumerate(self._turns)}
        self._workers = workers
        self._window = workers.workers * PLANS_AHEAD_PER_WORKER
        self._sent = 0
        self._made: dict[str, PlannedStep] = {}
        self._chunks: list[_Chunk] = []
        self._send(self._window)

    def _send(self, upto: int) -> None:
        """Plan ahead the agents before place ``upto`` not planned yet, from the market as it stands."""
        while self._sent < min(upto, len(self._turns)):
            agent, obs, market = self._turns[self._sent]
            self._sent += 1
            read = agent.read_market(obs, market)
            try:
                inp = agent.plan_input_of(obs, market.settings.slot_minutes, read.plan)
            except AgentInputError:
                continue  # it plans in its turn, and fails there as it would have
            chunk = _Chunk(self._workers.submit([inp]))
            self._chunks.append(chunk)
            self._made[agent.participant.id] = PlannedStep(obs, read, inp, partial(chunk.plan, 0))

    def get(self, participant: str) -> PlannedStep | None:
        """``participant``'s plan made ahead this step, if any."""
        return self._made.get(participant)

    def turn_over(self, participant: str) -> None:
        """After ``participant``'s turn (its actions on the market): plan ahead the agents up to the
        window past it, from the market as it stands now."""
        place = self._place.get(participant)
        if place is not None:
            self._send(place + 1 + self._window)

    def cancel(self) -> None:
        """Drop the plans no turn asked for (those not started are never made)."""
        for chunk in self._chunks:
            chunk.future.cancel()


def plan_ahead(turns: Sequence[tuple[TradingAgent, Observation, MarketAccess]],
               workers: PlanWorkers) -> StepPlans:
    """A step's plans made ahead by ``workers``, for each (agent, observation, its market access) of the
    step in the order of their turns, of the agents :func:`worth_planning_ahead`: each from its plan
    input as it reads the market when it is sent (:class:`StepPlans`); returns once the first are
    sent (a turn waits for its own plan only if it uses it). An agent whose input fails then has
    none: it plans in its turn, and fails there as it would have (after the agents before it acted)."""
    return StepPlans(turns, workers)


# -- a local pool of threads or processes ------------------------------------------------------
PLAN_WORKER_KIND = "threads"
"""The kind of local plan workers (:data:`~p2penergy.agents.worker_pools.WORKER_KINDS`) unless told:
threads. A plan spends about two thirds of its time in HiGHS's solve, which lets go of the interpreter
lock, so the solves of several agents run alongside each other and the main thread's Python, and a
plan's input and result are shared, not sent (measured 2026-12-02, README "The main job")."""


class LocalPlanWorkers:
    """``workers`` local threads of this process (``kind="threads"``; each makes its plans on its own
    HiGHS instance, :func:`~p2penergy.agents.planner.plan`) or processes started by a fork server."""

    def __init__(self, workers: int, kind: str = PLAN_WORKER_KIND) -> None:
        if workers < 2:
            raise ValueError(f"plan_workers: at least 2 to plan ahead (1 plans in turn), got {workers}")
        self.workers = workers
        self.kind = kind
        self._pool = local_pool(kind, workers)
        # start the workers now (one per task while none is idle), not in the run's first step
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


def plan_workers(workers: int, kind: str = PLAN_WORKER_KIND) -> AbstractContextManager[PlanWorkers | None]:
    """Workers to make a run's plans ahead with (``None`` for ``workers`` ≤ 1: every agent plans in
    its turn): inside a Dask task, tasks on its cluster; elsewhere a local pool of ``kind``, threads
    unless told (:func:`~p2penergy.agents.worker_pools.workers_for`)."""
    return workers_for(workers, lambda client: DaskPlanWorkers(workers, client),
                       lambda: LocalPlanWorkers(workers, kind))
