"""Sums over the valid bins of ``(trials, time, neurons)`` arrays, a block of trials at a time.

Scores, baselines and the closed-form start reduce a whole recording to per-neuron
numbers (means, sums of squares, a Gram matrix).  Done on the whole array at once, each
reduction makes float64 copies and temporaries of the data: a 512-unit, 800-trial
recording of 155 bins is 254 MB as float32, and one R^2 held eight times that.  Here
each reduction reads the data in blocks of about :data:`BLOCK_ELEMENTS` values and
accumulates in float64, so its memory does not grow with the recording.

Examples
--------
>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(6, 5, 3)).astype(np.float32)
>>> mask = np.ones((6, 5), dtype=bool); mask[0, 3:] = False
>>> count, mean, ss = column_moments(x, mask)
>>> rows = x[mask].astype(np.float64)
>>> count, np.allclose(mean, rows.mean(0)), np.allclose(ss, ((rows - rows.mean(0)) ** 2).sum(0))
(28, True, True)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: Values per block (8 MB as float64).
BLOCK_ELEMENTS = 1 << 20


def _blocks(*arrays: np.ndarray | None, mask: np.ndarray | None) -> Iterator[tuple[np.ndarray, ...]]:
    """Float64 ``(rows, neurons)`` blocks of the valid bins of each array, the same rows of each.

    The arrays are ``(trials, time, neurons)`` (or ``(rows, neurons)`` without a mask);
    blocks run over the first axis.
    """
    first = np.asarray(arrays[0])
    per_item = max(1, int(np.prod(first.shape[1:])))
    step = max(1, BLOCK_ELEMENTS // per_item)
    width = first.shape[-1]
    for start in range(0, first.shape[0], step):
        sl = slice(start, start + step)
        valid = None if mask is None else np.asarray(mask[sl], dtype=bool)
        out = []
        for array in arrays:
            block = np.asarray(array[sl])
            block = block.reshape(-1, width) if valid is None else block[valid]
            out.append(block.astype(np.float64))
        yield tuple(out)


def column_moments(values: np.ndarray, mask: np.ndarray | None = None) -> tuple[int, np.ndarray, np.ndarray]:
    """Count, mean and sum of squared deviations of each neuron over the valid bins.

    Blocks are merged with Chan et al.'s pairwise update (stable in float64).

    Parameters
    ----------
    values : ndarray
        ``(trials, time, neurons)``, or ``(rows, neurons)`` when *mask* is ``None``.
    mask : ndarray of bool, optional
        ``(trials, time)`` valid bins (all when ``None``).

    Returns
    -------
    count : int
    mean : ndarray
        ``(neurons,)``.
    ss : ndarray
        ``(neurons,)``: ``sum (x - mean)^2``.
    """
    width = np.asarray(values).shape[-1]
    count, mean, ss = 0, np.zeros(width), np.zeros(width)
    for (block,) in _blocks(values, mask=mask):
        n = block.shape[0]
        if not n:
            continue
        bmean = block.mean(0)
        block -= bmean
        bss = np.einsum("ij,ij->j", block, block)
        delta = bmean - mean
        total = count + n
        mean = mean + delta * (n / total)
        ss = ss + bss + delta**2 * (count * n / total)
        count = total
    return count, mean, ss


def residual_sums(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron ``sum (y - yhat)^2`` and ``sum (y - mean)^2`` over the valid bins (R^2's terms).

    Parameters
    ----------
    y_true, y_pred : ndarray
        ``(trials, time, neurons)`` (or ``(rows, neurons)`` without a mask).
    mask : ndarray of bool, optional
        ``(trials, time)`` valid bins.

    Returns
    -------
    ss_res, ss_tot : ndarray
        ``(neurons,)`` each.
    """
    _, _, ss_tot = column_moments(y_true, mask)
    ss_res = np.zeros_like(ss_tot)
    for yt, yp in _blocks(y_true, y_pred, mask=mask):
        yt -= yp
        ss_res += np.einsum("ij,ij->j", yt, yt)
    return ss_res, ss_tot


def masked_time_mean(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over trials of each bin's valid values ``(time, neurons)`` and the valid count per bin ``(time,)``."""
    values = np.asarray(values)
    sums = np.zeros(values.shape[1:])
    counts = np.asarray(mask, dtype=bool).sum(0).astype(np.float64)
    step = max(1, BLOCK_ELEMENTS // max(1, int(np.prod(values.shape[1:]))))
    for start in range(0, values.shape[0], step):
        sl = slice(start, start + step)
        block = np.where(np.asarray(mask[sl], dtype=bool)[..., None], values[sl], 0.0)
        sums += block.sum(0, dtype=np.float64)
    return sums / np.maximum(counts, 1)[:, None], counts


def centred_gram(values: np.ndarray, mask: np.ndarray | None, mean: np.ndarray) -> np.ndarray:
    """``sum (x - mean)^T (x - mean)`` over the valid bins: ``(neurons, neurons)`` float64."""
    width = np.asarray(values).shape[-1]
    gram = np.zeros((width, width))
    for (block,) in _blocks(values, mask=mask):
        block -= mean
        gram += block.T @ block
    return gram


def principal_axes(values: np.ndarray, mask: np.ndarray | None, k: int, mean: np.ndarray | None = None) -> np.ndarray:
    """The first *k* principal axes ``(neurons, k)`` of the valid bins (about *mean*, by default their mean).

    The axes are the leading eigenvectors of the centred Gram matrix, the right singular
    vectors of the centred data (signs may differ), without the data-sized SVD.
    """
    if mean is None:
        mean = column_moments(values, mask)[1]
    _, eigvec = np.linalg.eigh(centred_gram(values, mask, mean))
    return eigvec[:, ::-1][:, : int(k)]
