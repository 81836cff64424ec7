"""Compiled time loops of the latent-coordinate loss (numba): one trajectory at a time, all in cache.

The numpy loops of :mod:`.simulation` step a whole ``(members, batch, N)`` block through time
with one numpy or torch call per operation; on a CPU the cost of those calls, not
arithmetic, then bounds an epoch.  The kernels here run the same recursion compiled,
one trajectory (a trial of a member) at a time: its ``N`` currents stay in the
first-level cache for all ``T`` steps, every elementwise operation of a step is one
pass, the targets are read straight from the recording's trials (no gathered copy per
mini-batch) and the residuals are recomputed in the backward pass instead of stored.
The trajectories are spread over numba's threads (``prange``; each is independent until
the weight gradients are summed, in a fixed number of groups so that the result does
not depend on the number of threads), as many as :mod:`lrfit.threads` says
(:func:`lrfit.threads.loop_threads`).

``tanh`` is evaluated as a rational function of ``x**2`` (degree 6 over degree 4, fitted
for this module to ``tanh`` on ``[0, 9]`` in relative error: 1e-10 in exact arithmetic,
3e-7 absolute in float32, against numpy's 6e-8), so that the loops vectorise; beyond
``|x| = 9`` it is ``+-1`` (``tanh(9) = 1 - 3e-8``).  The kernels cover float32 networks
with ``tanh``, the fitter's default; :func:`available` says whether they can run a
problem, and the numpy loops of :mod:`.simulation` run the rest (and every
problem when ``LRFIT_KERNELS=numpy`` is set, or numba is missing).

Compiled code is cached on disk beside this file (numba's ``cache=True``), so only the
first fit on a machine pays the compilation (about ten seconds); numba is imported on
first use.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from types import ModuleType

import numpy as np

from ...threads import loop_threads_in_force

#: ``tanh(x) ~ x P(x^2) / Q(x^2)`` on ``|x| <= TANH_CLIP``; coefficients of ``x^0, x^2, ...``.
TANH_P = (1.0, 1.38559125e-01, 4.09427283e-03, 3.30038107e-05, 4.57370874e-08, -3.17485256e-11, 2.57913689e-14)
TANH_Q = (1.0, 4.71892457e-01, 2.80584270e-02, 4.35071104e-04, 1.67000008e-06)
TANH_CLIP = 9.0

#: Trajectory groups of the backward pass (fixed, so the gradient sums' order is too).
GROUPS = 8

_HAVE_NUMBA = importlib.util.find_spec("numba") is not None


def enabled() -> bool:
    """Whether the compiled loops run: numba is installed and ``LRFIT_KERNELS`` is not ``numpy``."""
    return _HAVE_NUMBA and os.environ.get("LRFIT_KERNELS", "").lower() != "numpy"


def available(dtype: object, nonlin: str) -> bool:
    """Whether the compiled loops can run a problem of this float type (numpy or torch) and transfer function."""
    return str(dtype).rsplit(".", 1)[-1] == "float32" and nonlin == "tanh" and enabled()


def _loops() -> ModuleType:
    """The compiled loops, with numba's thread count set to :func:`lrfit.threads.loop_threads_in_force`."""
    _launch()
    from . import _loops

    wanted = loop_threads_in_force()
    if wanted is not None:
        import numba

        wanted = min(wanted, numba.config.NUMBA_NUM_THREADS)
        if numba.get_num_threads() != wanted:
            numba.set_num_threads(wanted)
    return _loops


@functools.cache
def _launch() -> None:
    """Start numba's thread pool, keeping torch's thread count.

    numba's OpenMP layer can share torch's OpenMP runtime, and starting its pool sets
    that runtime's thread count to numba's pool size (torch then ran a one-thread fit on
    every CPU).
    """
    import numba
    import torch

    before = torch.get_num_threads()
    numba.get_num_threads()  # starts the pool
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)


def tanh(x: np.ndarray) -> np.ndarray:
    """The kernels' ``tanh`` of an array, in float32 (for tests and comparisons)."""
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    out = np.empty_like(flat)
    _loops().tanh_array(flat, out)
    return out.reshape(np.shape(x))


def _empty(ndim: int) -> np.ndarray:
    return np.zeros((0,) * ndim, dtype=np.float32)


def _target(source: np.ndarray | None, rows: np.ndarray | None, weight: np.ndarray | None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The loops' source, rows and weight arguments, with empty arrays for those absent."""
    return (_empty(3) if source is None else source, np.zeros((0, 0), np.int64) if rows is None else rows,
            _empty(3) if weight is None else weight)


def forward(z: np.ndarray, loadings: np.ndarray, n_c: np.ndarray, inputs: np.ndarray, start_coef: np.ndarray,
            alpha: float, source: np.ndarray | None, rows: np.ndarray | None, weight: np.ndarray | None, rank: int,
            currents: bool, squares: bool, rates: np.ndarray, states: np.ndarray | None) -> np.ndarray:
    """Run the networks of one mini-batch; each member's sum of squared (masked) residuals.

    Parameters
    ----------
    z : ndarray
        ``(T, K, B, W)``, filled: ``kappa[t+1]``, the filtered inputs ``u~[t+1]`` and the
        start terms ``(1 - alpha)^(t+1) start_coef`` (what the backward pass needs).
    loadings : ndarray
        ``(K, W, N)``: rows ``m^T``, ``W_in^T``, x0 table.
    n_c : ndarray
        ``(K, N, R)``: ``alpha N / N_units``.
    inputs : ndarray
        ``(K, B, T, C)``.
    start_coef : ndarray
        ``(K, B, S)``: ``x[0] = start_coef @ table`` (one-hot rows for a start index).
    alpha : float
        ``dt / tau``.
    source : ndarray or None
        ``(n_trials, T, n_obs)`` recording; trajectory ``(k, b)`` is compared with trial
        ``rows[k, b]`` (None without *squares*).
    rows : ndarray or None
        ``(K, B)`` integer trial indices.
    weight : ndarray or None
        ``(K, B, T)`` mask.
    rank : int
    currents : bool
        Compare ``x`` (True) or ``tanh(x)`` with the target.
    squares : bool
        Squared residuals (True); False only fills *rates* and *states* (for counts).
    rates, states : ndarray
        Receive ``tanh(x[0..T])`` ``(T + 1, K, B, N)`` and, when *currents*, ``x[1..T]``.

    Returns
    -------
    ndarray
        ``(K,)`` float64 sums of squares (zeros without *squares*).
    """
    members, batch = z.shape[1:3]
    sums = np.zeros((members, batch))
    _loops().forward(z, loadings, n_c, inputs, start_coef, np.float32(alpha), *_target(source, rows, weight),
                     rank, currents, squares, rates, _empty(4) if states is None else states, sums)
    return sums.sum(1)


def backward(z: np.ndarray, m: np.ndarray, n_c_t: np.ndarray, rates: np.ndarray, states: np.ndarray | None,
             errors: np.ndarray | None, source: np.ndarray | None, rows: np.ndarray | None, weight: np.ndarray | None,
             start_coef: np.ndarray, decay: float, currents: bool) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of half the sums of squares (or of the terms whose derivatives *errors* holds).

    Parameters
    ----------
    z, rates, states, source, rows, weight, decay, currents
        As given to and filled by :func:`forward`.
    m : ndarray
        ``(K, N, R)`` contiguous.
    n_c_t : ndarray
        ``(K, R, N)``: ``n_c`` transposed, contiguous.
    errors : ndarray or None
        ``(T, K, B, n_obs)`` derivatives to inject at each step (counts), or None for the
        masked residuals of the target.
    start_coef : ndarray
        ``(K, B, S)``: ``x[0] = start_coef @ table`` (one-hot rows for a start index).

    Returns
    -------
    tuple of ndarray
        ``(K, W, N)`` gradient of the loadings (the x0 rows include the initial
        currents' part) and ``(K, N, R)`` of ``n_c`` (before its ``alpha / N`` scale).
    """
    members, batch, width = z.shape[1:]
    units, rank = m.shape[1], m.shape[2]
    groups = min(members * batch, GROUPS)
    grad_loadings = np.zeros((groups, members, width, units), dtype=np.float32)
    grad_n = np.zeros((groups, members, units, rank), dtype=np.float32)
    _loops().backward(
        z,
        m,
        n_c_t,
        rates,
        _empty(4) if states is None else states,
        _empty(4) if errors is None else errors,
        *_target(source, rows, weight),
        start_coef,
        np.float32(decay),
        currents,
        groups,
        grad_loadings,
        grad_n,
    )
    return grad_loadings.sum(0), grad_n.sum(0)
