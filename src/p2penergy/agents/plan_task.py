"""What a process planning ahead runs (:mod:`~p2penergy.agents.plan_pool`): the plans of a chunk of inputs.

Apart from the pool's module so that a worker imports the planner and its inputs only (about 0.4 s
here), not the agents' forecasting stack that the pool's module pulls in (6 s at a load of 4).
"""

from __future__ import annotations

from collections.abc import Sequence

from p2penergy.agents.plan_input import AgentInputError, Plan, PlanInput
from p2penergy.agents.planner import PlanningError, plan


def plan_each(inputs: Sequence[PlanInput]) -> list[Plan | None]:
    """The plan of each input, in order (a chunk's task); ``None`` where the planner refused it."""
    out: list[Plan | None] = []
    for inp in inputs:
        try:
            out.append(plan(inp))
        except (PlanningError, AgentInputError):
            out.append(None)
    return out
