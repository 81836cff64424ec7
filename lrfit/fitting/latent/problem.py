"""One mini-batch of K low-rank networks as numpy views: loadings, latent blocks, targets and masks.

The latent simulation (:mod:`lrfit.fitting.latent`) works on these views; :class:`TrialRows` names
targets by trial so that the compiled loops read them where they lie in the recording.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from ..losses import CountReadout
from . import compiled as kernels
from . import workspace

Tensor = torch.Tensor


class TrialRows(NamedTuple):
    """Targets named by trial: trial ``index[k, b]`` of a ``(n_trials, T, n_obs)`` recording, member k's trajectory b.

    The latent loss's compiled loops read the trials where they lie; other paths gather
    them (:meth:`gather`).  Accepted wherever :func:`lowrank_loss_members` takes a target
    (with ``(B,)`` indices for :func:`lowrank_loss`).
    """

    source: Tensor
    index: Tensor

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the gathered target: ``(*index.shape, T, n_obs)``."""
        return (*self.index.shape, *self.source.shape[1:])

    def gather(self) -> Tensor:
        """The targets as one tensor of :attr:`shape`."""
        return self.source.index_select(0, self.index.reshape(-1)).view(self.shape)


def gathered(target: Tensor | TrialRows) -> Tensor:
    """The targets as one tensor (named trials gathered)."""
    return target.gather() if isinstance(target, TrialRows) else target


@functools.lru_cache(maxsize=32)
def _filters(steps: int, alpha: float, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """``(L, p)``: ``u~[1..T] = L @ u[0..T-1]`` and ``p[t-1] = (1 - alpha)^t`` for ``t = 1..T``."""
    decay = 1.0 - alpha
    t = torch.arange(steps, dtype=torch.float64)
    lag = t[:, None] - t[None, :]
    filt = torch.where(lag >= 0, alpha * decay ** lag.clamp_min(0), torch.zeros(()))
    return filt.to(dtype), (decay ** (t + 1)).to(dtype)


@dataclass
class Problem:
    """Numpy views of one mini-batch of K networks (members): loadings, latent blocks and data."""

    loadings: np.ndarray  # (K, R + C + S, N): rows m^T, W_in^T, x0 table
    n_c: np.ndarray  # (K, N, R): alpha N / N_units
    z: np.ndarray  # (T, K, B, R + C + S): kappa[t+1], u~[t+1], (1 - alpha)^(t+1) onehot(start row)
    start: np.ndarray | None  # (K, B, N): x[0] (numpy loops; the compiled ones compute it)
    start_coef: np.ndarray | None  # (K, B, S): x[0] = start_coef @ table (compiled loops only)
    inputs: np.ndarray | None  # (K, B, T, C) (compiled loops only)
    alpha: float
    n_obs: int
    target: np.ndarray | None  # (T, K, B, n_obs), time-major so that a step's block is contiguous (numpy loops, counts)
    target_leased: bool  # target is a workspace copy (given back with the other arrays)
    source: np.ndarray | None  # (n_trials, T, n_obs) and (K, B) rows: the compiled loops' squared residuals
    rows: np.ndarray | None
    compiled: bool  # run by the compiled loops of :mod:`.compiled`
    weight: np.ndarray | None  # (K, B, T)
    rank: int
    decay: float
    nonlin: str
    currents: bool  # compare x (True) or phi(x) (False) with the target
    counts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (K, n_obs) gain, bias, scale: Poisson counts
    grad_factor: float = 2.0  # d loss / d pred = grad_factor * errors (2 residuals for squares, 1 for counts)


def build_problem(m, n, w_in, table, index, inputs, target, weight, alpha, nonlin, target_kind,
                  readout: CountReadout | None = None) -> Problem:
    """Numpy views of one mini-batch of K networks (the compiled loops' layout where they run it)."""
    members, batch, steps, n_obs = target.shape
    units, rank = m.shape[1:]
    n_in, n_start = inputs.shape[3], table.shape[1]
    loadings = torch.cat([m, w_in, table.transpose(1, 2)], 2).transpose(1, 2).contiguous()
    compiled = kernels.available(m.dtype, nonlin)
    start = coef = None
    if compiled:  # the loops fill z and the start themselves
        z = np.empty((steps, members, batch, rank + n_in + n_start), dtype=np.float32)
        if index.is_floating_point():
            coef = index.to(m.dtype).contiguous().numpy()
        else:
            coef = np.zeros((members, batch, n_start), dtype=np.float32)
            np.put_along_axis(coef, index.numpy()[..., None], 1.0, axis=2)
    else:
        z, start = _latent_blocks(table, index, inputs, steps, rank, alpha)
    source = rows = target_steps = None
    leased = False
    if compiled and readout is None:  # squared residuals of the compiled loops: the trials where they lie
        source, rows = _trial_major(target, m.dtype)
    else:
        target_steps, leased = _time_major(gathered(target))
    return Problem(
        loadings=loadings.numpy(),
        n_c=(n * (alpha / units)).numpy(),
        z=z,
        start=start,
        start_coef=coef,
        inputs=np.ascontiguousarray(inputs.numpy()) if compiled else None,
        alpha=float(alpha),
        n_obs=n_obs,
        target=target_steps,
        target_leased=leased,
        source=source,
        rows=rows,
        compiled=compiled,
        weight=None if weight is None else weight.numpy(),
        rank=rank,
        decay=1.0 - alpha,
        nonlin=nonlin,
        currents=target_kind == "currents",
        counts=None if readout is None else tuple(v.detach().numpy() for v in readout),
        grad_factor=2.0 if readout is None else 1.0,
    )


def _latent_blocks(table: Tensor, index: Tensor, inputs: Tensor, steps: int, rank: int, alpha: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``z`` ``(T, K, B, W)`` with the filtered inputs and start terms filled (kappa left 0), and ``x[0]``."""
    members, batch, _, n_in = inputs.shape
    n_start, dtype = table.shape[1], table.dtype
    filt, powers = _filters(steps, float(alpha), dtype)
    z = torch.zeros((steps, members, batch, rank + n_in + n_start), dtype=dtype)
    if n_in:
        filtered = filt @ inputs.permute(2, 0, 1, 3).reshape(steps, -1)
        z[..., rank : rank + n_in] = filtered.view(steps, members, batch, n_in)
    member = torch.arange(members)[:, None]
    if index.is_floating_point():  # (K, B, S) coefficients of the start rows: x[0] = coef @ table
        coef = index.to(dtype)
        z[..., rank + n_in :] = powers[:, None, None, None] * coef[None]
        start = torch.bmm(coef, table)
    else:
        z[:, member, torch.arange(batch)[None, :], rank + n_in + index] = powers[:, None, None]
        start = table[member, index].contiguous()
    return z.numpy(), start.numpy()


def _trial_major(target: Tensor | TrialRows, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(n_trials, T, n_obs)`` trials and ``(K, B)`` rows of a target, without copying a recording."""
    if isinstance(target, TrialRows):
        source, rows = target.source, target.index
        if source.dtype != dtype or not source.is_contiguous():  # not a recording of the model's type: gather
            source, rows = target.gather().to(dtype), None
    else:
        source, rows = target, None
    if rows is None:
        members, batch = source.shape[:2]
        source = source.to(dtype).contiguous().view(members * batch, *source.shape[2:])
        rows = torch.arange(members * batch).view(members, batch)
    return source.numpy(), rows.to(torch.int64).contiguous().numpy()


def _time_major(target: Tensor) -> tuple[np.ndarray, bool]:
    """``(T, K, B, n_obs)`` layout of a ``(K, B, T, n_obs)`` target, and whether it is a workspace copy.

    A target that is a view of time-major storage is used as it is; any other is
    copied into a workspace array (see :class:`~.workspace.Workspace`).
    """
    steps_first = target.permute(2, 0, 1, 3)
    view = steps_first.numpy()
    if view.flags.c_contiguous:
        return view, False
    out = workspace.WORKSPACE.take(view.shape, view.dtype)
    torch.from_numpy(out).copy_(steps_first)
    return out, True


def denominators(target: Tensor | TrialRows, weight: Tensor | None) -> np.ndarray:
    """Entries that count per member: ``sum(weight) * n_obs`` (at least 1), shape ``(K,)``."""
    if weight is None:
        return np.full(target.shape[0], float(math.prod(target.shape[1:])))
    return np.maximum(weight.double().sum((1, 2)).numpy() * target.shape[3], 1.0)
