"""Initial states of a fit's trials: one learnt state, one per condition, or a linear function of the inputs.

A fit keeps a table of initial states ``x0_table_`` (see :class:`lrfit.LowRankFit`'s ``x0``):
one row (``"shared"``), one row per training condition (``"per_condition"``; trials of unseen
conditions start from the table's mean), or the rows ``[x0, B]`` of ``x[0] = x0 + B u[first bin]``
(``"inputs"``).  Each trial reaches the table through its *start index*: a row number, or the
coefficients ``[1, u[first bin]]`` of the rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .metrics import condition_labels
from .regression_init import to_currents

if TYPE_CHECKING:
    from data_adapters import TrialData


def trial_labels(data: TrialData, columns: list[str] | None = None) -> np.ndarray:
    """Each trial's condition label (``"all"`` for data without condition columns)."""
    return condition_labels(data.conditions, columns, single="all")


def condition_table(mode: str, data: TrialData, columns: list[str] | None = None) -> list[str]:
    """The conditions with a row of their own: the training conditions for ``"per_condition"``, else ``["all"]``."""
    return list(dict.fromkeys(trial_labels(data, columns))) if mode == "per_condition" else ["all"]


def table_rows(mode: str, n_inputs: int, table: list[str]) -> int:
    """Rows of the initial-state table."""
    return 1 + n_inputs if mode == "inputs" else len(table)


def start_index(mode: str, data: TrialData, table: list[str], columns: list[str] | None = None) -> np.ndarray:
    """Each trial's row of the table (-1: a condition not seen in training), or for ``"inputs"`` its coefficients.

    Parameters
    ----------
    mode : {"shared", "per_condition", "inputs"}
        The fit's ``x0``.
    data : TrialData
        The trials.
    table : list of str
        The fit's condition table.
    columns : list of str, optional
        Condition columns that define a condition.

    Returns
    -------
    ndarray
        ``(trials,)`` int64, or ``(trials, 1 + inputs)`` float32.
    """
    if mode == "per_condition":
        lookup = {c: i for i, c in enumerate(table)}
        return np.array([lookup.get(c, -1) for c in trial_labels(data, columns)], dtype=np.int64)
    if mode == "inputs":
        first = np.asarray(data.inputs, dtype=np.float32)[:, 0]
        return np.concatenate([np.ones((data.n_trials, 1), dtype=np.float32), first], 1)
    return np.zeros(data.n_trials, dtype=np.int64)


def start_rows(table: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The table and each trial's row in it; trials of unseen conditions (-1) get the table's mean, appended."""
    if index.is_floating_point():  # x0="inputs": coefficients of the rows
        return table, index
    if table.shape[0] == 1:
        return table, torch.zeros_like(index)
    if bool((index < 0).any()):
        table = torch.cat([table, table.mean(0, keepdim=True)], 0)
        index = torch.where(index < 0, table.shape[0] - 1, index)
    return table, index


def start_states(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Initial states ``(B, N)`` of trials with start indices *index*."""
    table, rows = start_rows(table, index)
    return rows @ table if rows.is_floating_point() else table[rows]


def first_bin_states(mode: str, train: TrialData, activity: np.ndarray, signal: str, table: list[str],
                     columns: list[str] | None = None) -> np.ndarray:
    """The table's start from the first bin of *activity*: ``(rows, n_obs)`` currents.

    Trials whose first bin is not valid (e.g. the first bin of a lead-in) start from rest (0).
    ``"shared"`` averages over trials, ``"per_condition"`` over each condition's trials,
    ``"inputs"`` regresses the first bin's currents on ``[1, u[first bin]]``.
    """
    first = to_currents(np.asarray(activity)[:, 0], signal)
    first = np.where(np.asarray(train.mask)[:, :1], first, 0.0)
    if mode == "shared":
        return first.mean(0, keepdims=True)
    if mode == "inputs":
        design = np.concatenate([np.ones((train.n_trials, 1)), np.asarray(train.inputs)[:, 0]], 1)
        return np.linalg.lstsq(design, first, rcond=None)[0]
    labels = trial_labels(train, columns)
    return np.stack([first[labels == c].mean(0) for c in table])
