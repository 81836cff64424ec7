"""Cognitive tasks that teacher networks are trained on.

Each task defines its epochs in milliseconds and builds, for any ``dt``, the
inputs, targets, loss mask and a per-trial conditions table::

    from lrfit.tasks import get_task
    task = get_task("cdm", dt=0.02)
    trials = task.generate(256, seed=0)          # TaskTrials
    acc = task.accuracy(outputs, trials)          # outputs (trials, time, 1)

Tasks: ``"cdm"`` context-dependent decision making (Mante et al. 2013), ``"pdm"``
perceptual decision making, ``"dms"`` delayed match-to-sample, ``"romo"``
parametric working memory, ``"flipflop"`` the three-bit flip-flop (8 stable states).
"""

from __future__ import annotations

from typing import Any

from ..errors import LrfitError, check_choice
from .base import DT_REF, DelayTask, Task, TaskTrials, ms_to_step
from .cdm import ContextDecisionTask
from .dms import DelayedMatchTask
from .flipflop import FlipFlopTask
from .pdm import PerceptualDecisionTask
from .romo import ParametricWMTask

#: task name -> class
TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (ContextDecisionTask, PerceptualDecisionTask, DelayedMatchTask, ParametricWMTask,
                              FlipFlopTask)
}


def get_task(name: str, dt: float = 0.02, **params: Any) -> Task:
    """Build a task by name.

    Parameters
    ----------
    name : str
        One of :data:`TASKS` (``"cdm"``, ``"pdm"``, ``"dms"``, ``"romo"``, ``"flipflop"``).
    dt : float
        Step in seconds (default 0.02); must not exceed any epoch of the task.
    **params
        Task parameters (epoch durations in ms, coherences, noise, ...).

    Returns
    -------
    Task

    Raises
    ------
    LrfitError
        Unknown task or parameter, or ``dt`` longer than an epoch.

    Examples
    --------
    >>> task = get_task("pdm", dt=0.02)
    >>> task.name, task.input_names
    ('pdm', ('stimulus',))
    """
    if not isinstance(name, str):
        raise LrfitError(f"Task name must be a string, got {name!r}.")
    check_choice(name, TASKS, "task")
    return TASKS[name](dt=dt, **params)


__all__ = [
    "DT_REF",
    "TASKS",
    "ContextDecisionTask",
    "DelayTask",
    "DelayedMatchTask",
    "FlipFlopTask",
    "ParametricWMTask",
    "PerceptualDecisionTask",
    "Task",
    "TaskTrials",
    "get_task",
    "ms_to_step",
]
