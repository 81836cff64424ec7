"""Training losses: the masked mean squared error, and the same loss of a noise-free
low-rank network computed in latent coordinates.

A low-rank network's state splits into a part driven by the inputs and the initial
state, and a part on the columns of ``M`` (DESIGN.md):

    x[t] = (1 - alpha)^t x[0] + W_in u~[t] + M kappa[t]
    u~[t+1] = (1 - alpha) u~[t] + alpha u[t]
    kappa[t+1] = (1 - alpha) kappa[t] + alpha N^T phi(x[t]) / N_units

with ``u~[0] = kappa[0] = 0``.  The filtered inputs ``u~`` are one small matrix
product for all steps, so a step of the simulation is one thin product of the
loadings ``[M, W_in, x0 table]`` with the step's ``(kappa, u~, start)`` block, the
transfer function, and the update of the ``R`` latents; the hand-written backward
pass runs through the latents the same way, accumulating the weight gradients as it
goes.  Each step works on one ``(batch, N)`` block while it is in cache.

On a CPU, float32 networks with ``tanh`` (the fitter's default) run the compiled loops
of :mod:`lrfit.fitting.latent_kernels`: one trajectory at a time, with the targets read
where they lie in the recording (:class:`TrialRows`) and the residuals recomputed in the
backward pass.  Other problems (float64, other transfer functions, or every problem with
``LRFIT_KERNELS=numpy``) run numpy loops over ``(members, batch, N)`` blocks, whose cost is
mostly that of launching a kernel per operation; numpy's small kernels cost a third of
torch's, so they run on numpy views of the tensors.  On other devices
:func:`lowrank_loss` simulates the network with :func:`lrfit.models.rollout.rollout`
instead.  All give the same loss and gradients to float rounding.

Two observation models share that simulation: the masked mean squared error of the
observed units' rates or currents (:func:`masked_mse`), and for spike counts the
Poisson negative log-likelihood of :class:`CountReadout` (:func:`poisson_nll`), whose
per-bin terms do not feed back into the dynamics and are computed after the time loop
on the whole stack of states at once.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from ..models.rollout import NONLINEARITIES, rollout
from . import latent_kernels

Tensor = torch.Tensor


def masked_mse(pred: Tensor, target: Tensor, weight: Tensor | None, dims: tuple[int, ...] | None = None) -> Tensor:
    """``sum(weight * (pred - target)**2) / (sum(weight) * n_obs)`` over *dims* (all by default).

    Parameters
    ----------
    pred, target : Tensor
        ``(..., n_obs)`` activity; the last axis holds the neurons.
    weight : Tensor or None
        Mask of *pred* without its last axis (1 where the bin counts), or ``None``
        when every bin counts.
    dims : tuple of int, optional
        Axes to average over (including the last); all of them by default.

    Returns
    -------
    Tensor
        The loss (one value per remaining index when *dims* leaves some axes).
    """
    return _masked_mean((pred - target).square(), weight, dims)


def _masked_mean(terms: Tensor, weight: Tensor | None, dims: tuple[int, ...] | None) -> Tensor:
    """``sum(weight * terms) / (sum(weight) * n_obs)`` over *dims* (all by default); *weight* lacks the last axis."""
    if weight is None:
        return terms.mean() if dims is None else terms.mean(dim=dims)
    w = weight.unsqueeze(-1).to(terms.dtype)
    if dims is None:
        return (terms * w).sum() / (w.sum() * terms.shape[-1]).clamp_min(1.0)
    return (terms * w).sum(dim=dims) / (w.sum(dim=dims) * terms.shape[-1]).clamp_min(1.0)


#: Floor of ``softplus`` in the Poisson terms: keeps ``log(rate)`` finite far below a neuron's range.
RATE_FLOOR = 1e-8


class CountReadout(NamedTuple):
    """Poisson observation of the observed units: expected count per bin ``scale * softplus(gain * s + bias)``.

    ``s`` is each observed unit's current ``x`` or rate ``phi(x)`` (the loss's
    ``target_kind``).  Every field is ``(n_obs,)``, or ``(K, n_obs)`` for K members.

    Attributes
    ----------
    gain, bias : Tensor
        Learnt per-neuron gain ``a_i`` and offset ``b_i`` of the softplus argument.
    scale : Tensor
        Fixed per-neuron unit of the expected count (counts per bin at ``softplus = 1``).
    """

    gain: Tensor
    bias: Tensor
    scale: Tensor


def count_terms(s: Tensor, counts: Tensor, gain: Tensor, bias: Tensor, scale: Tensor,
                grad: bool = False) -> tuple[Tensor, Tensor | None]:
    """Per-entry Poisson negative log-likelihood (without ``log(y!)``) and its derivative in ``eta``.

    ``eta = gain * s + bias``, ``lambda = scale * softplus(eta)``; the terms are
    ``lambda - y log(lambda)`` and ``d/d eta = sigmoid(eta) (scale - y / softplus(eta))``.

    Parameters
    ----------
    s : Tensor
        ``(..., n_obs)`` currents or rates of the observed units.
    counts : Tensor
        ``(..., n_obs)`` counts ``y`` (non-negative, integers or not).
    gain, bias, scale : Tensor
        Broadcastable to ``s``.
    grad : bool
        Also return the derivative in ``eta``.

    Returns
    -------
    tuple of Tensor
        The terms, and the derivative (or None).
    """
    eta = torch.addcmul(bias, s, gain)
    soft = torch.nn.functional.softplus(eta).clamp_min_(RATE_FLOOR)
    rate = soft * scale
    terms = rate - torch.xlogy(counts, rate)
    if not grad:
        return terms, None
    return terms, torch.sigmoid(eta).mul_(scale - counts / soft)


def poisson_nll(s: Tensor, counts: Tensor, weight: Tensor | None, readout: CountReadout,
                dims: tuple[int, ...] | None = None) -> Tensor:
    """Masked mean Poisson negative log-likelihood of counts under :class:`CountReadout` (autograd).

    The same normalisation as :func:`masked_mse`: ``sum(weight * terms) / (sum(weight) * n_obs)``,
    with the terms of :func:`count_terms` (``log(y!)`` left out: it does not depend on the model).

    Parameters
    ----------
    s : Tensor
        ``(..., T, n_obs)`` currents or rates of the observed units.
    counts : Tensor
        Counts of the same shape.
    weight : Tensor or None
        Mask of *s* without its last axis, or None.
    readout : CountReadout
        Gain, offset and scale, broadcastable to *s* along the last axis (members first).
    dims : tuple of int, optional
        Axes to average over (all by default).

    Returns
    -------
    Tensor
    """
    lead = s.dim() - readout.gain.dim()
    shape = readout.gain.shape[:-1] + (1,) * lead + readout.gain.shape[-1:]
    gain, bias, scale = (v.reshape(shape) for v in readout)
    return _masked_mean(count_terms(s, counts, gain, bias, scale)[0], weight, dims)


class TrialRows(NamedTuple):
    """Targets named by trial: trial ``index[k, b]`` of a ``(n_trials, T, n_obs)`` recording for member k's b-th trajectory.

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


def _gathered(target: Tensor | TrialRows) -> Tensor:
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
class _Problem:
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
    compiled: bool  # run by the compiled loops of latent_kernels
    weight: np.ndarray | None  # (K, B, T)
    rank: int
    decay: float
    nonlin: str
    currents: bool  # compare x (True) or phi(x) (False) with the target
    counts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (K, n_obs) gain, bias, scale: Poisson counts
    grad_factor: float = 2.0  # d loss / d pred = grad_factor * errors (2 residuals for squares, 1 for counts)


def _problem(m, n, w_in, table, index, inputs, target, weight, alpha, nonlin, target_kind,
             readout: CountReadout | None = None) -> _Problem:
    members, batch, steps, n_obs = target.shape
    units, rank = m.shape[1:]
    n_in, n_start = inputs.shape[3], table.shape[1]
    loadings = torch.cat([m, w_in, table.transpose(1, 2)], 2).transpose(1, 2).contiguous()
    compiled = latent_kernels.available(m.dtype, nonlin)
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
        target_steps, leased = _time_major(_gathered(target))
    return _Problem(
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
    """``z`` ``(T, K, B, W)`` with the filtered inputs and start terms filled (kappa left 0), and ``x[0]`` ``(K, B, N)``."""
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
    copied into a workspace array (see :class:`_Workspace`).
    """
    steps_first = target.permute(2, 0, 1, 3)
    view = steps_first.numpy()
    if view.flags.c_contiguous:
        return view, False
    out = _WORKSPACE.take(view.shape, view.dtype)
    torch.from_numpy(out).copy_(steps_first)
    return out, True


def _phi_into(nonlin: str, x: np.ndarray, out: np.ndarray) -> None:
    NONLINEARITIES[nonlin][1](torch.from_numpy(x), torch.from_numpy(out))


def _sum_squares(residual: np.ndarray, out: np.ndarray) -> None:
    """*out* ``(K,)`` receives the sums of squares of a ``(K, B, n_obs)`` block."""
    if residual.shape[0] == 1:
        out[0] = np.vdot(residual, residual)
    else:
        flat = residual.reshape(residual.shape[0], 1, -1)
        out[:] = np.matmul(flat, flat.transpose(0, 2, 1)).reshape(-1)


def _simulate(
    prob: _Problem, rates: np.ndarray | None, states: np.ndarray | None, errors: np.ndarray | None
) -> tuple[np.ndarray, tuple[Tensor, Tensor] | None]:
    """Run the networks; returns each member's loss sum ``(K,)`` and, for counts with *errors*, the
    gradient sums of the readout's gain and bias ``(K, n_obs)`` each.

    ``rates`` ``(T + 1, K, B, N)``, ``states`` ``(T, K, B, N)`` and ``errors``
    ``(T, K, B, n_obs)``, when given, receive ``phi(x[0..T])``, ``x[1..T]`` and the
    masked residuals, or for counts the masked derivatives of the Poisson terms in the
    compared quantity (what the backward pass needs).  Counts need the whole stack of
    the compared quantity (``states`` for currents, ``rates`` otherwise).
    """
    if prob.compiled:
        return _simulate_compiled(prob, rates, states, errors)
    steps, members, batch, _ = prob.z.shape
    units, rank, n_obs, dtype = prob.loadings.shape[2], prob.rank, prob.n_obs, prob.z.dtype
    block = (members, batch, units)
    squares = prob.counts is None
    # Per-step views and bound functions, made once: the loop's cost is mostly per call.
    z, loadings, n_c, decay, targets = list(prob.z), prob.loadings, prob.n_c, prob.decay, list(prob.target)
    kappas = [step[..., :rank] for step in z]
    xs = list(states) if states is not None else [np.empty(block, dtype=dtype)] * steps
    if rates is None:
        pair = [np.empty(block, dtype=dtype), np.empty(block, dtype=dtype)]
        rs = [pair[t % 2] for t in range(steps + 1)]
    else:
        rs = list(rates)
    errs = list(errors) if errors is not None else [np.empty((members, batch, n_obs), dtype=dtype)] * steps
    preds = xs if prob.currents else rs[1:]
    if n_obs < units:
        preds = [p[..., :n_obs] for p in preds]
    weights = None if prob.weight is None else list(np.moveaxis(prob.weight, 2, 0)[..., None])
    phi = np.tanh if prob.nonlin == "tanh" else functools.partial(_phi_into, prob.nonlin)
    kappa_prev = np.empty((members, batch, rank), dtype=dtype)
    matmul, multiply, subtract = np.matmul, np.multiply, np.subtract

    phi(prob.start, out=rs[0])
    step_sums = np.zeros((steps, members))  # each step's sums of squares (float64)
    for t in range(steps):
        kappa = kappas[t]
        matmul(rs[t], n_c, out=kappa)
        if t:
            multiply(kappas[t - 1], decay, out=kappa_prev)
            kappa += kappa_prev
        x = xs[t]
        matmul(z[t], loadings, out=x)
        phi(x, out=rs[t + 1])
        if squares:
            residual = subtract(preds[t], targets[t], out=errs[t])
            if weights is not None:
                multiply(residual, weights[t], out=residual)
            _sum_squares(residual, step_sums[t])
    if squares:
        return step_sums.sum(0), None
    return _count_loss(prob, states if prob.currents else rates[1:], errors)


def _simulate_compiled(
    prob: _Problem, rates: np.ndarray | None, states: np.ndarray | None, errors: np.ndarray | None
) -> tuple[np.ndarray, tuple[Tensor, Tensor] | None]:
    """:func:`_simulate` by the compiled loops of :mod:`lrfit.fitting.latent_kernels` (float32, tanh).

    The squared residuals are not stored (the backward pass recomputes them), so *errors*
    is only filled for counts.
    """
    steps, members, batch, _ = prob.z.shape
    block, dtype = (members, batch, prob.loadings.shape[2]), prob.z.dtype
    squares = prob.counts is None
    scratch = []
    if rates is None:  # the loops keep every step's rates; an evaluation borrows them for the call
        rates = _WORKSPACE.take((steps + 1, *block), dtype)
        scratch.append(rates)
    if states is None and prob.currents:
        states = _WORKSPACE.take((steps, *block), dtype)
        scratch.append(states)
    sums = latent_kernels.forward(prob.z, prob.loadings, prob.n_c, prob.inputs, prob.start_coef, prob.alpha,
                                  prob.source, prob.rows, prob.weight, prob.rank, prob.currents, squares, rates, states)
    result = (sums, None) if squares else _count_loss(prob, states if prob.currents else rates[1:], errors)
    _WORKSPACE.give(tuple(scratch))
    return result


def _count_loss(prob: _Problem, stack: np.ndarray, errors: np.ndarray | None
                ) -> tuple[np.ndarray, tuple[Tensor, Tensor] | None]:
    """Poisson terms of a whole ``(T, K, B, N)`` stack of currents or rates, after the time loop.

    Returns the members' sums ``(K,)`` and, with *errors*, the gradient sums of the gain and
    bias; *errors* receives ``d terms / d s`` (masked), which the backward pass injects as
    it injects residuals.  The same terms as :func:`count_terms`, computed in a few passes
    over preallocated buffers (``sum(y log(scale softplus))`` splits into per-neuron sums).
    """
    n_obs = prob.target.shape[3]
    s = stack[..., :n_obs]
    y = prob.target
    shape, dtype = y.shape, y.dtype
    gain, bias, scale = (v[None, :, None, :] for v in prob.counts)  # (1, K, 1, n_obs)
    eta, soft, work = (_WORKSPACE.take(shape, dtype) for _ in range(3))
    t_eta, t_soft, t_work, t_y = (torch.from_numpy(a) for a in (eta, soft, work, y))
    torch.addcmul(torch.from_numpy(bias), torch.from_numpy(s), torch.from_numpy(gain), out=t_eta)
    torch._C._nn.softplus(t_eta, 1, 20, out=t_soft)
    t_soft.clamp_min_(RATE_FLOOR)
    np.log(soft, out=work)
    # per-neuron sums (accumulated in the data's precision within a batch, in float64 across neurons)
    if prob.weight is None:
        rate_sum, spikes = t_soft.sum((0, 2)), t_y.sum((0, 2))
        log_sum = torch.from_numpy(np.einsum("tkbn,tkbn->kn", y, work))
        weight = None
    else:
        weight = np.moveaxis(prob.weight, 2, 0)[..., None]  # (T, K, B, 1)
        rate_sum = torch.from_numpy(np.einsum("tkbn,tkbx->kn", soft, weight))
        spikes = torch.from_numpy(np.einsum("tkbn,tkbx->kn", y, weight))
        log_sum = torch.from_numpy(np.einsum("tkbn,tkbn,tkbx->kn", y, work, weight))
    log_scale = np.log(prob.counts[2].astype(np.float64))
    total = (rate_sum.double().numpy() * prob.counts[2] - log_sum.double().numpy()
             - spikes.double().numpy() * log_scale).sum(1)
    if errors is None:
        _WORKSPACE.give((eta, soft, work))
        return total, None
    torch.sigmoid(t_eta, out=t_eta)  # d terms / d eta = sigmoid(eta) (scale - y / softplus(eta))
    torch.div(t_y, t_soft, out=t_work)
    np.subtract(scale, work, out=work)
    work *= eta
    if weight is not None:
        work *= weight
    sums = (torch.from_numpy(np.einsum("tkbn,tkbn->kn", work, s)).double(), t_work.sum((0, 2)).double())
    np.multiply(work, gain, out=errors)
    _WORKSPACE.give((eta, soft, work))
    return total, sums


class _Workspace:
    """The large per-batch arrays, kept from one mini-batch to the next.

    A fresh multi-megabyte array is mapped page by page on first touch; on a virtual
    machine those page faults can cost more than the simulation itself (0.1-1 s for the
    72 MB of an 8-member ensemble's first batch, see :mod:`lrfit.pages`).  A forward pass
    leases its arrays; they come back when its graph is freed (after the backward pass,
    once the loss is dropped), so a retained graph keeps them.  Buffers are flat and
    handed out as views of their first entries, the smallest free one that is large
    enough, so the last, smaller mini-batch of an epoch and an evaluation reuse the
    training batches' memory instead of mapping their own.
    """

    def __init__(self, keep: int = 8) -> None:
        self._free: dict[np.dtype, list[np.ndarray]] = {}
        self._keep = keep
        self.allocated = 0  # buffers mapped so far (a steady fit stops adding to it after its first batches)

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        size, free = math.prod(shape), self._free.get(np.dtype(dtype), [])
        large_enough = [i for i, buffer in enumerate(free) if buffer.size >= size]
        if large_enough:
            flat = free.pop(min(large_enough, key=lambda i: free[i].size))
        else:
            flat = np.empty(size, dtype=dtype)
            self.allocated += 1
        return flat[:size].reshape(shape)

    def give(self, arrays: tuple[np.ndarray | None, ...]) -> None:
        for array in arrays:
            if array is None:
                continue
            flat = array
            while isinstance(flat.base, np.ndarray):
                flat = flat.base
            free = self._free.setdefault(flat.dtype, [])
            if flat.ndim == 1 and flat.flags.c_contiguous and not any(flat is b for b in free):
                free.append(flat)
                if len(free) > self._keep:
                    free.pop(min(range(len(free)), key=lambda i: free[i].size))


class _Lease:
    """Arrays borrowed from a workspace, given back when the lease is dropped."""

    def __init__(self, workspace: _Workspace, *arrays: np.ndarray | None) -> None:
        self.workspace, self.arrays = workspace, arrays

    def __del__(self) -> None:
        self.workspace.give(self.arrays)


_WORKSPACE = _Workspace()


class _LowRankLoss(torch.autograd.Function):
    """The losses of :func:`lowrank_loss_members`, with a backward pass through the latents."""

    @staticmethod
    def forward(ctx, m, n, w_in, table, index, inputs, target, weight, alpha, nonlin, target_kind, gain, bias, scale):
        readout = None if gain is None else CountReadout(gain, bias, scale)
        prob = _problem(m, n, w_in, table, index, inputs, target, weight, alpha, nonlin, target_kind, readout)
        steps, members, batch, _ = prob.z.shape
        units, dtype = m.shape[1], prob.z.dtype
        rates = _WORKSPACE.take((steps + 1, members, batch, units), dtype)
        states = _WORKSPACE.take((steps, members, batch, units), dtype) if prob.currents else None
        # the compiled loops recompute squared residuals in the backward pass; counts inject stored derivatives
        errors = None if prob.compiled and readout is None else _WORKSPACE.take((steps, members, batch, prob.n_obs), dtype)
        denom = _denominators(target, weight)
        sums, ctx.readout_grads = _simulate(prob, rates, states, errors)
        losses = sums / denom
        ctx.prob, ctx.rates, ctx.states, ctx.errors, ctx.denom, ctx.index = prob, rates, states, errors, denom, index
        ctx.lease = _Lease(_WORKSPACE, rates, states, errors, prob.target if prob.target_leased else None)
        ctx.n_start = table.shape[1]
        return torch.as_tensor(losses, dtype=m.dtype)

    @staticmethod
    def backward(ctx, grad_losses):
        prob = ctx.prob
        members, width, units = prob.loadings.shape
        rank, dtype, decay = prob.rank, prob.z.dtype, prob.decay
        n_c_t = np.ascontiguousarray(prob.n_c.transpose(0, 2, 1))  # (K, R, N)
        m = np.ascontiguousarray(prob.loadings[:, :rank].transpose(0, 2, 1))  # (K, N, R)
        if prob.compiled:  # the initial currents' gradient is already in the x0 rows of the loadings
            grad_loadings, grad_n = latent_kernels.backward(
                prob.z, m, n_c_t, ctx.rates, ctx.states, ctx.errors, prob.source, prob.rows, prob.weight,
                prob.start_coef, decay, prob.currents)
            g = None
        else:
            grad_loadings, grad_n, g = _adjoint(prob, ctx.rates, ctx.errors, m, n_c_t)

        factor = prob.grad_factor * grad_losses.double().numpy() / ctx.denom
        scale = factor.astype(dtype)[:, None, None]
        n_in = width - rank - ctx.n_start
        grad_loadings = torch.from_numpy(grad_loadings * scale)
        grad_m = grad_loadings[:, :rank].transpose(1, 2).contiguous()
        grad_w_in = grad_loadings[:, rank : rank + n_in].transpose(1, 2).contiguous()
        grad_table = grad_loadings[:, rank + n_in :].contiguous()
        if g is not None:  # the numpy loops return the initial currents' gradient apart
            _add_start_gradient(grad_table, ctx.index, torch.from_numpy(g * scale))
        grad_n = torch.from_numpy(grad_n * (scale * (1.0 - decay) / units))
        grad_gain = grad_bias = None
        if ctx.readout_grads is not None:
            member_factor = torch.from_numpy(factor)[:, None]
            grad_gain, grad_bias = ((g * member_factor).to(grad_m.dtype) for g in ctx.readout_grads)
        return (grad_m, grad_n, grad_w_in, grad_table, None, None, None, None, None, None, None,
                grad_gain, grad_bias, None)


def _add_start_gradient(grad_table: Tensor, index: Tensor, grad_start: Tensor) -> None:
    """Add the initial currents' gradient ``(K, B, N)`` to the x0 table's ``(K, S, N)`` through *index*."""
    members, n_start, units = grad_table.shape
    if index.is_floating_point():  # x[0] = coef @ table
        grad_table += torch.bmm(index.to(grad_table.dtype).transpose(1, 2), grad_start)
    else:
        rows = (index + torch.arange(members)[:, None] * n_start).reshape(-1)
        grad_table.view(members * n_start, units).index_add_(0, rows, grad_start.reshape(-1, units))


def _adjoint(prob: _Problem, rates: np.ndarray, errors: np.ndarray, m: np.ndarray, n_c_t: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The backward pass through the latents, by numpy loops over ``(K, B, N)`` blocks.

    Returns the gradients of half the sums of squares (or of the terms whose derivatives
    *errors* holds) in the loadings ``(K, W, N)``, in ``n_c`` before its scale ``(K, N, R)``
    and in the initial currents ``(K, B, N)``.
    """
    steps, members, batch, width = prob.z.shape
    units, rank, dtype = prob.loadings.shape[2], prob.rank, prob.z.dtype
    tanh = prob.nonlin == "tanh"
    deriv = None if tanh else NONLINEARITIES[prob.nonlin][2](torch.from_numpy(rates)).numpy()
    n_obs = prob.n_obs
    # Everything below is the gradient of the sums of squared residuals over 2;
    # each member's factor 2 * grad_loss / denom is applied at the end.
    block = (members, batch, units)
    g = np.empty(block, dtype=dtype)  # dL/dx[t+1]
    rec = np.empty_like(g)
    grad_kappa = np.zeros((members, batch, rank), dtype=dtype)  # dL/dkappa[t+2], then [t+1]
    decayed = np.empty_like(grad_kappa)
    grad_loadings = np.zeros((members, width, units), dtype=dtype)
    part_loadings = np.empty_like(grad_loadings)
    grad_n, part_n = np.zeros((members, units, rank), dtype=dtype), np.empty((members, units, rank), dtype=dtype)
    matmul, multiply = np.matmul, np.multiply
    rs, errs = list(rates), list(errors)
    rs_t = [r.transpose(0, 2, 1) for r in rs]
    z_t = [step.transpose(0, 2, 1) for step in prob.z]
    derivs = None if tanh else list(deriv)
    decay, currents = prob.decay, prob.currents
    rec_obs, g_obs = rec[..., :n_obs], g[..., :n_obs]
    # The elementwise steps run as torch kernels on views of the same memory: a broadcast
    # product fused with the residuals' injection, and tanh's derivative in one pass,
    # cost a third of numpy's separate passes over a (K, B, N) block.
    t_rec, t_g, t_grad_kappa, t_n_c = (torch.from_numpy(a) for a in (rec, g, grad_kappa, n_c_t))
    t_rs, t_errs = [torch.from_numpy(r) for r in rs], [torch.from_numpy(e) for e in errs]
    fused = not currents and n_obs == units  # the residuals join the recurrent part in one kernel
    addcmul, bmm, baddbmm = torch.addcmul, torch.bmm, torch.baddbmm
    thin = rank == 1

    def recurrent_part(t: int | None) -> None:
        """``rec = dkappa @ n_c^T`` (+ the residuals of step *t* when fused)."""
        if t is not None and fused:
            if thin:
                addcmul(t_errs[t], t_grad_kappa, t_n_c, out=t_rec)
            else:
                baddbmm(t_errs[t], t_grad_kappa, t_n_c, out=t_rec)
        elif thin:
            torch.mul(t_grad_kappa, t_n_c, out=t_rec)
        else:
            bmm(t_grad_kappa, t_n_c, out=t_rec)

    def times_derivative(t: int) -> None:
        """``g = rec * phi'(x[t])``."""
        if tanh:
            torch.ops.aten.tanh_backward.grad_input(t_rec, t_rs[t], grad_input=t_g)
        else:
            multiply(rec, derivs[t], out=g)

    for t in range(steps - 1, -1, -1):
        recurrent_part(t)  # dL/dr[t+1]: recurrent part (and the residuals)
        if currents:
            times_derivative(t + 1)
            g_obs += errs[t]
        else:
            if not fused:
                rec_obs += errs[t]
            times_derivative(t + 1)
        grad_loadings += matmul(z_t[t], g, out=part_loadings)
        multiply(grad_kappa, decay, out=decayed)
        matmul(g, m, out=grad_kappa)
        grad_kappa += decayed
        grad_n += matmul(rs_t[t], grad_kappa, out=part_n)  # kappa[t+1] = ... + n_c^T r[t]
    recurrent_part(None)  # r[0] = phi(x[0]) feeds kappa[1]
    times_derivative(0)
    return grad_loadings, grad_n, g


def _denominators(target: Tensor | TrialRows, weight: Tensor | None) -> np.ndarray:
    """Entries that count per member: ``sum(weight) * n_obs`` (at least 1), shape ``(K,)``."""
    if weight is None:
        return np.full(target.shape[0], float(math.prod(target.shape[1:])))
    return np.maximum(weight.double().sum((1, 2)).numpy() * target.shape[3], 1.0)


def lowrank_loss_members(
    m: Tensor,
    n: Tensor,
    w_in: Tensor,
    x0_table: Tensor,
    x0_index: Tensor,
    inputs: Tensor,
    target: Tensor | TrialRows,
    weight: Tensor | None,
    alpha: float,
    nonlin: str = "tanh",
    target_kind: str = "rates",
    readout: CountReadout | None = None,
) -> Tensor:
    """:func:`lowrank_loss` of K networks at once, each on its own trials: ``(K,)`` losses.

    Every argument of :func:`lowrank_loss` gains a leading axis of length K (``alpha``,
    ``nonlin`` and ``target_kind`` are shared; the fields of *readout* are ``(K, n_obs)``).
    The members are simulated together, so each step is the same few kernels on a K
    times larger block.
    """
    alpha = float(alpha)
    if m.device.type != "cpu":
        target = _gathered(target)
        return torch.stack([
            lowrank_loss(*(a[k] for a in (m, n, w_in, x0_table, x0_index, inputs, target)),
                         None if weight is None else weight[k], alpha, nonlin, target_kind,
                         None if readout is None else CountReadout(*(v[k] for v in readout)))
            for k in range(m.shape[0])
        ])
    weights = (m, n, w_in, x0_table)
    learnt = weights if readout is None else (*weights, readout.gain, readout.bias)
    if torch.is_grad_enabled() and any(w.requires_grad for w in learnt):
        extra = (None, None, None) if readout is None else tuple(readout)
        return _LowRankLoss.apply(*weights, x0_index, inputs, target, weight, alpha, nonlin, target_kind, *extra)
    with torch.no_grad():
        prob = _problem(*weights, x0_index, inputs, target, weight, alpha, nonlin, target_kind, readout)
        leased: tuple[np.ndarray | None, ...] = (prob.target if prob.target_leased else None,)
        rates = states = None
        if readout is not None:  # the Poisson terms are taken over the whole stack after the time loop
            steps, members, batch, _ = prob.z.shape
            block = (members, batch, m.shape[1])
            if target_kind == "currents":
                states = _WORKSPACE.take((steps, *block), prob.z.dtype)
            else:
                rates = _WORKSPACE.take((steps + 1, *block), prob.z.dtype)
            leased += (rates, states)
        sums, _ = _simulate(prob, rates, states, None)
        _WORKSPACE.give(leased)
        return torch.as_tensor(sums / _denominators(target, weight), dtype=m.dtype)


def lowrank_loss(
    m: Tensor,
    n: Tensor,
    w_in: Tensor,
    x0_table: Tensor,
    x0_index: Tensor,
    inputs: Tensor,
    target: Tensor | TrialRows,
    weight: Tensor | None,
    alpha: float,
    nonlin: str = "tanh",
    target_kind: str = "rates",
    readout: CountReadout | None = None,
) -> Tensor:
    """Masked loss of a noise-free low-rank network's observed units: squared error, or Poisson for counts.

    Equal, to float rounding, to simulating the network with
    :func:`lrfit.models.rollout.rollout` from ``x0_table[x0_index]`` and taking
    :func:`masked_mse` (or, with a *readout*, :func:`poisson_nll`) of its first
    ``n_obs`` units; on a CPU it runs the latent-coordinate simulation of this module,
    several times faster.

    Parameters
    ----------
    m, n : Tensor
        ``(N, R)`` connectivity vectors (``J = m n^T / N``).
    w_in : Tensor
        ``(N, C)`` input weights.
    x0_table : Tensor
        ``(S, N)`` initial states to choose from.
    x0_index : Tensor
        ``(B,)`` long: the row of *x0_table* each trial starts from; or ``(B, S)`` float:
        each trial's coefficients of the rows, ``x[0] = x0_index @ x0_table`` (e.g. a start
        that is a linear function of the trial's inputs).
    inputs : Tensor
        ``(B, T, C)`` inputs.
    target : Tensor
        ``(B, T, n_obs)`` activity of the first ``n_obs`` units at steps ``1..T`` (counts
        with a *readout*).
    weight : Tensor or None
        ``(B, T)`` mask (1 where the bin counts, 0 elsewhere), or ``None`` when all count.
    alpha : float
        ``dt / tau``.
    nonlin : str
        Name in :data:`lrfit.models.rollout.NONLINEARITIES`.
    target_kind : {"rates", "currents"}
        Compare ``phi(x)`` or ``x`` with the target; with a *readout*, what drives it.
    readout : CountReadout, optional
        For spike counts: the Poisson observation ``scale * softplus(gain * s + bias)``,
        differentiable in its gain and bias.

    Returns
    -------
    Tensor
        ``sum(weight * terms) / (sum(weight) * n_obs)`` with squared residuals or Poisson
        terms, differentiable in ``m``, ``n``, ``w_in`` and ``x0_table`` (and the readout).

    Examples
    --------
    >>> gen = torch.Generator().manual_seed(0)
    >>> m, n, w_in = torch.randn(8, 1, generator=gen), torch.randn(8, 1, generator=gen), torch.zeros(8, 0)
    >>> table, index, inputs = torch.zeros(1, 8), torch.zeros(2, dtype=torch.long), torch.zeros(2, 5, 0)
    >>> target = torch.zeros(2, 5, 8)
    >>> float(lowrank_loss(m, n, w_in, table, index, inputs, target, None, 0.2))  # at rest, as the target
    0.0
    """
    alpha = float(alpha)
    if m.device.type != "cpu":
        target = _gathered(target)
        drive = (inputs @ (w_in.T * alpha)).transpose(0, 1)
        start = x0_index.to(x0_table.dtype) @ x0_table if x0_index.is_floating_point() else x0_table[x0_index]
        states, rates = rollout(start, drive, "lowrank", alpha, nonlin, m, n, float(m.shape[0]))
        pred = (rates if target_kind == "rates" else states)[..., : target.shape[2]]
        return masked_mse(pred, target, weight) if readout is None else poisson_nll(pred, target, weight, readout)
    one = [a.unsqueeze(0) for a in (m, n, w_in, x0_table, x0_index, inputs)]
    target = (TrialRows(target.source, target.index.unsqueeze(0)) if isinstance(target, TrialRows)
              else target.unsqueeze(0))
    weight = None if weight is None else weight.unsqueeze(0)
    members = None if readout is None else CountReadout(*(v.unsqueeze(0) for v in readout))
    return lowrank_loss_members(*one, target, weight, alpha, nonlin, target_kind, members)[0]
