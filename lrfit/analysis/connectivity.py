"""Connectivity statistics of a low-rank network: overlaps and per-neuron loadings.

Every neuron ``i`` of a rank-``R`` network is a point in connectivity space
``(m_i1..m_iR, n_i1..n_iR, w_in_i1..w_in_iC, w_out_i1..w_out_iO)``; the overlaps are
empirical second moments of these loadings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LrfitError
from ._common import fields_json, lowrank_params

__all__ = ["ConnectivityStats", "connectivity_stats", "loading_columns", "loading_table", "loading_matrix"]


@dataclass(frozen=True)
class ConnectivityStats:
    """Overlaps of a low-rank network (all divided by the number of units ``N``).

    Attributes
    ----------
    overlaps : ndarray, (R, R)
        ``sigma_{n_k m_l} = n_k . m_l / N`` (row k: left vector n_k, column l: m_l).
    input_overlaps : ndarray, (R, C)
        ``sigma_{n_k w_c} = n_k . w_in_c / N``.
    readout_overlaps : ndarray, (O, R)
        ``sigma_{w_o m_l} = w_out_o . m_l / N``.
    mm : ndarray, (R, R)
        Gram matrix ``m_k . m_l / N``.
    nn : ndarray, (R, R)
        Gram matrix ``n_k . n_l / N``.
    eigenvalues : ndarray, (R,) complex
        Non-zero eigenvalues of ``J = m n^T / N``, which equal those of ``overlaps``.
    """

    overlaps: np.ndarray
    input_overlaps: np.ndarray
    readout_overlaps: np.ndarray
    mm: np.ndarray
    nn: np.ndarray
    eigenvalues: np.ndarray

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary (keys are the attribute names)."""
        return fields_json(self)


def connectivity_stats(model: Any) -> ConnectivityStats:
    """Overlap matrices of a low-rank network.

    Implements ``sigma_{ab} = (1/N) sum_i a_i b_i`` for the pairs
    ``(n_k, m_l)``, ``(n_k, w_in_c)``, ``(w_out_o, m_l)``, ``(m_k, m_l)`` and
    ``(n_k, n_l)``.  The non-zero eigenvalues of ``J = m n^T / N`` are those of the
    ``R x R`` matrix ``n^T m / N`` (``J m v = m (n^T m / N) v``).

    Parameters
    ----------
    model : LowRankRNN
        The network.

    Returns
    -------
    ConnectivityStats

    Examples
    --------
    >>> import torch
    >>> from lrfit import LowRankRNN
    >>> net = LowRankRNN(200, rank=1, seed=0)
    >>> with torch.no_grad():
    ...     _ = net.n.copy_(2.0 * net.m)  # n = 2 m: overlap n.m / N close to 2
    >>> print(f"{connectivity_stats(net).overlaps[0, 0]:.2f}")
    1.86
    """
    p = lowrank_params(model)
    n_units = p.n_units
    ov = p.n.T @ p.m / n_units
    return ConnectivityStats(
        overlaps=ov,
        input_overlaps=p.n.T @ p.w_in / n_units,
        readout_overlaps=p.w_out.T @ p.m / n_units,
        mm=p.m.T @ p.m / n_units,
        nn=p.n.T @ p.n / n_units,
        eigenvalues=np.linalg.eigvals(ov),
    )


def loading_columns(
    rank: int,
    n_inputs: int,
    n_outputs: int,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> list[str]:
    """Column names of the loading vector: ``m_1..m_R, n_1..n_R, w_in_<name>.., w_out_<name>..``.

    Input/output names default to the channel numbers (``w_in_0``, ``w_out_0``).
    """
    input_names = [str(i) for i in range(n_inputs)] if input_names is None else [str(s) for s in input_names]
    output_names = [str(i) for i in range(n_outputs)] if output_names is None else [str(s) for s in output_names]
    if len(input_names) != n_inputs or len(output_names) != n_outputs:
        raise LrfitError(
            f"Got {len(input_names)} input names and {len(output_names)} output names for a network with "
            f"{n_inputs} inputs and {n_outputs} outputs; pass one name per channel."
        )
    return (
        [f"m_{k + 1}" for k in range(rank)]
        + [f"n_{k + 1}" for k in range(rank)]
        + [f"w_in_{s}" for s in input_names]
        + [f"w_out_{s}" for s in output_names]
    )


def loading_matrix(model: Any) -> np.ndarray:
    """Per-neuron loadings ``[m, n, w_in, w_out]`` stacked as an ``(N, 2R + C + O)`` array.

    Row ``i`` is neuron ``i``'s point in connectivity space, in the column order of
    :func:`loading_columns`.
    """
    p = lowrank_params(model)
    return np.concatenate([p.m, p.n, p.w_in, p.w_out], axis=1)


def loading_table(
    model: Any,
    neuron_ids: Sequence[Any] | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-neuron loading table: one row per neuron, columns ``m_1..m_R, n_1..n_R, w_in_*, w_out_*``.

    The rows are the neurons' coordinates in connectivity space, i.e. the entries
    ``m_ik``, ``n_ik``, ``(W_in)_ic`` and ``(W_out)_io`` of the network
    ``x_dot = -x + m n^T phi(x) / N + W_in u``, ``z = W_out^T phi(x) / N``.

    Parameters
    ----------
    model : LowRankRNN
        The network.
    neuron_ids : sequence, optional
        Index of the table (defaults to ``0..N-1``).
    input_names, output_names : sequence of str, optional
        Channel names used in the column names.

    Returns
    -------
    pandas.DataFrame
        ``(N, 2R + C + O)``, index named ``neuron``.
    """
    p = lowrank_params(model)
    cols = loading_columns(p.rank, p.n_inputs, p.n_outputs, input_names, output_names)
    index = pd.RangeIndex(p.n_units) if neuron_ids is None else pd.Index(list(neuron_ids))
    if len(index) != p.n_units:
        raise LrfitError(f"Got {len(index)} neuron ids for a network of {p.n_units} units; pass one id per unit.")
    table = pd.DataFrame(loading_matrix(model), columns=cols, index=index)
    table.index.name = "neuron"
    return table
