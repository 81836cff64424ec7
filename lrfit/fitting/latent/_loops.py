"""The numba loops behind :mod:`lrfit.fitting.latent_kernels` (imported on first use: numba loads slowly).

Every array is float32 and C-contiguous unless said otherwise; shapes use K members,
B trials per member, T steps, N units, R ranks, W = R + C + S latent columns.
"""

from __future__ import annotations

import numba
import numpy as np

from .compiled import TANH_CLIP, TANH_P, TANH_Q

_P = tuple(np.float32(c) for c in TANH_P)
_Q = tuple(np.float32(c) for c in TANH_Q)
_CLIP = np.float32(TANH_CLIP)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
_jit = numba.njit(cache=True, fastmath=True, nogil=True)
_pjit = numba.njit(cache=True, fastmath=True, nogil=True, parallel=True)


@numba.njit(inline="always", fastmath=True)
def _tanh(v):
    v = min(max(v, -_CLIP), _CLIP)
    s = v * v
    p = _P[6]
    p = p * s + _P[5]
    p = p * s + _P[4]
    p = p * s + _P[3]
    p = p * s + _P[2]
    p = p * s + _P[1]
    p = p * s + _P[0]
    q = _Q[4]
    q = q * s + _Q[3]
    q = q * s + _Q[2]
    q = q * s + _Q[1]
    q = q * s + _Q[0]
    return v * p / q


@_jit
def tanh_array(x, out):
    """``out[i] = tanh(x[i])`` for 1-d arrays."""
    for i in range(x.shape[0]):
        out[i] = _tanh(x[i])


@numba.njit(inline="always", fastmath=True)
def _residuals(pred, source, rows, weight, k, b, t, out):
    """``out = weight[k, b, t] * (pred - source[rows[k, b], t])`` over the observed units; the sum of squares."""
    y = source[rows[k, b], t]
    scale = weight[k, b, t] if weight.shape[0] > 0 else _ONE
    total = _ZERO
    for n in range(y.shape[0]):
        d = (pred[n] - y[n]) * scale
        out[n] = d
        total += d * d
    return total


@numba.njit(inline="always", fastmath=True)
def _combine(coefs, rows, out):
    """``out = coefs @ rows``: ``(W,)`` by ``(W, N)``, skipping zero coefficients."""
    for n in range(out.shape[0]):
        out[n] = _ZERO
    for w in range(coefs.shape[0]):
        c = coefs[w]
        if c != _ZERO:
            row = rows[w]
            for n in range(out.shape[0]):
                out[n] += c * row[n]


@numba.njit(inline="always", fastmath=True)
def _add_outer(coefs, g, rows):
    """``rows += outer(coefs, g)``: ``(W,)`` and ``(N,)`` into ``(W, N)``, skipping zero coefficients."""
    for w in range(coefs.shape[0]):
        c = coefs[w]
        if c != _ZERO:
            row = rows[w]
            for n in range(g.shape[0]):
                row[n] += c * g[n]


@_pjit
def forward(z, loadings, n_c, inputs, start_coef, alpha, source, rows, weight, rank, currents, squares, rates, states,
            sums):
    """Simulate every trajectory (parallel over them); ``sums[k, b]`` receives its sum of squares.

    ``z`` ``(T, K, B, W)`` receives the latent blocks: ``kappa[t+1]``, the filtered
    inputs ``u~[t+1]`` of ``inputs`` ``(K, B, T, C)``, and ``(1 - alpha)^(t+1) start_coef``
    (``(K, B, S)``, ``x[0] = start_coef @ table``).  ``rates`` ``(T + 1, K, B, N)`` and,
    with *currents*, ``states`` ``(T, K, B, N)`` receive ``tanh(x[0..T])`` and ``x[1..T]``;
    the target of trajectory ``(k, b)`` is ``source[rows[k, b]]`` ``(T, n_obs)``, masked by
    ``weight`` ``(K, B, T)`` (or an empty array).
    """
    steps, members, batch, width = z.shape
    units, n_in, n_start = loadings.shape[2], inputs.shape[3], start_coef.shape[2]
    decay = _ONE - alpha
    for j in numba.prange(members * batch):
        k, b = j // batch, j % batch
        x = np.empty(units, dtype=np.float32)
        residual = np.empty(source.shape[2], dtype=np.float32)
        filtered = np.zeros(n_in, dtype=np.float32)
        power = _ONE
        for t in range(steps):  # the given columns of z: filtered inputs and decaying start terms
            zt = z[t, k, b]
            for c in range(n_in):
                filtered[c] = decay * filtered[c] + alpha * inputs[k, b, t, c]
                zt[rank + c] = filtered[c]
            power *= decay
            for s in range(n_start):
                zt[width - n_start + s] = power * start_coef[k, b, s]
        _combine(start_coef[k, b], loadings[k, width - n_start :], x)
        r = rates[0, k, b]
        for n in range(units):
            r[n] = _tanh(x[n])
        total = 0.0
        for t in range(steps):
            zt = z[t, k, b]
            prev = rates[t, k, b]
            for q in range(rank):  # kappa[t+1] = decay kappa[t] + n_c^T r[t]
                acc = _ZERO
                for n in range(units):
                    acc += prev[n] * n_c[k, n, q]
                zt[q] = acc + decay * z[t - 1, k, b, q] if t else acc
            _combine(zt, loadings[k], x)
            r = rates[t + 1, k, b]
            for n in range(units):
                r[n] = _tanh(x[n])
            if currents:
                s = states[t, k, b]
                for n in range(units):
                    s[n] = x[n]
            if squares:
                total += _residuals(x if currents else r, source, rows, weight, k, b, t, residual)
        sums[k, b] = total


@_pjit
def backward(z, m, n_c_t, rates, states, errors, source, rows, weight, start_coef, decay, currents, chunks,
             grad_loadings, grad_n):
    """Adjoint pass of every trajectory, in *chunks* fixed groups of trajectories (parallel over them).

    Group ``c`` accumulates into ``grad_loadings[c]`` ``(K, W, N)`` and ``grad_n[c]``
    ``(K, N, R)``.  The injected derivative of step ``t`` is ``errors[t]`` ``(T, K, B, n_obs)``,
    or, when *errors* is empty, the masked residual recomputed from the target as in
    :func:`forward`.  The initial currents' gradient goes to the x0 rows of the loadings
    (the last S columns) through ``start_coef`` ``(K, B, S)``: ``x[0] = start_coef @ table``.
    """
    steps, members, batch, width = z.shape
    units, rank = m.shape[1], m.shape[2]
    recompute = errors.shape[0] == 0
    n_obs, n_start = source.shape[2] if recompute else errors.shape[3], start_coef.shape[2]
    total = members * batch
    for c in numba.prange(chunks):
        rec = np.empty(units, dtype=np.float32)
        g = np.empty(units, dtype=np.float32)
        e = np.empty(n_obs, dtype=np.float32)
        grad_kappa = np.zeros(rank, dtype=np.float32)
        for j in range(c * total // chunks, (c + 1) * total // chunks):
            k, b = j // batch, j % batch
            gl, gn = grad_loadings[c, k], grad_n[c, k]
            for q in range(rank):
                grad_kappa[q] = _ZERO
            for t in range(steps - 1, -1, -1):
                _combine(grad_kappa, n_c_t[k], rec)  # dL/dr[t+1], recurrent part
                r = rates[t + 1, k, b]
                if recompute:
                    _residuals(states[t, k, b] if currents else r, source, rows, weight, k, b, t, e)
                else:
                    for n in range(n_obs):
                        e[n] = errors[t, k, b, n]
                if currents:
                    for n in range(units):
                        g[n] = rec[n] * (_ONE - r[n] * r[n])
                    for n in range(n_obs):
                        g[n] += e[n]
                else:
                    for n in range(n_obs):
                        rec[n] += e[n]
                    for n in range(units):
                        g[n] = rec[n] * (_ONE - r[n] * r[n])
                _add_outer(z[t, k, b], g, gl)
                prev = rates[t, k, b]
                for q in range(rank):  # dL/dkappa[t+1] = decay dL/dkappa[t+2] + m^T g
                    acc = _ZERO
                    for n in range(units):
                        acc += g[n] * m[k, n, q]
                    gk = acc + decay * grad_kappa[q]
                    grad_kappa[q] = gk
                    for n in range(units):
                        gn[n, q] += prev[n] * gk
            _combine(grad_kappa, n_c_t[k], rec)  # r[0] = tanh(x[0]) feeds kappa[1]
            r = rates[0, k, b]
            for n in range(units):
                g[n] = rec[n] * (_ONE - r[n] * r[n])
            _add_outer(start_coef[k, b], g, gl[width - n_start :])
