"""Compare the latent dynamics of two networks whose units correspond (teacher and student)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LrfitError
from ._common import as_input_vector, jsonable, lowrank_params
from .fixed_points import FixedPointResult

__all__ = ["FixedPointMatch", "match_fixed_points"]


@dataclass(frozen=True)
class FixedPointMatch:
    """Fixed points of a reference network mapped into another network's latent coordinates.

    Attributes
    ----------
    counts_reference, counts_other : dict
        Number of fixed points per stability label in each network.
    same_counts : bool
        Whether the label counts agree.
    mapped : ndarray, (P, R_other)
        Reference fixed points in the other network's coordinates (see
        :func:`match_fixed_points`).
    stability : list of str
        Labels of the reference points.
    distance : ndarray, (P,)
        Distance from each mapped point to the nearest fixed point of the other
        network with the same label (NaN if there is none).
    scale : float
        Largest ``|kappa|`` among the other network's fixed points (to read ``distance``).
    """

    counts_reference: dict[str, int]
    counts_other: dict[str, int]
    same_counts: bool
    mapped: np.ndarray
    stability: list[str]
    distance: np.ndarray
    scale: float

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary."""
        return jsonable({k: getattr(self, k) for k in self.__dataclass_fields__})


def match_fixed_points(
    reference: Any,
    other: Any,
    ref_points: FixedPointResult,
    other_points: FixedPointResult,
    neuron_ids: Sequence[Any] | None = None,
) -> FixedPointMatch:
    """Map a reference network's fixed points into another network's latent space and pair them.

    Reference fixed point ``kappa^r`` is the state ``x^r = m^r kappa^r + W_in^r u``.  Unit
    ``i`` of *other* stands for reference unit ``id_i``, so its latent coordinates
    are the least-squares solution of ``m^o kappa^o ~ y - W_in^o u`` over the
    corresponding units, ``y = x^r[ids]`` (for an invertible ``phi`` matching rates
    means matching these states, so fits to rates and to currents align alike).
    Each mapped point is paired with the nearest fixed point of *other* that has
    the same stability label.

    Parameters
    ----------
    reference, other : LowRankRNN
        E.g. the teacher and the fitted student.
    ref_points, other_points : FixedPointResult
        Fixed points of each under the same constant input.
    neuron_ids : sequence, optional
        Reference index of each recorded unit of *other* (default ``0..N-1``).

    Returns
    -------
    FixedPointMatch
    """
    pr, po = lowrank_params(reference), lowrank_params(other)
    ids = np.arange(min(pr.n_units, po.n_units)) if neuron_ids is None else np.asarray([int(v) for v in neuron_ids])
    if ids.size > po.n_units or (ids.size and ids.max() >= pr.n_units):
        raise LrfitError("neuron ids do not map the fitted units onto the reference network; check the fit's neuron_ids.")
    u_r = as_input_vector(ref_points.input, pr.n_inputs)
    u_o = as_input_vector(other_points.input, po.n_inputs)
    pts = ref_points.kappas()
    mapped = np.zeros((len(pts), po.rank))
    if len(pts):
        x = pts @ pr.m.T + pr.w_in @ u_r  # (P, N_ref)
        y = x[:, ids] - (po.w_in @ u_o)[: ids.size]
        mapped = np.linalg.lstsq(po.m[: ids.size], y.T, rcond=None)[0].T
    labels = [fp.stability for fp in ref_points.fixed_points]
    other_k = other_points.kappas()
    other_lab = [fp.stability for fp in other_points.fixed_points]
    dist = np.full(len(pts), np.nan)
    for i, (pt, lab) in enumerate(zip(mapped, labels)):
        cand = [k for k, l2 in zip(other_k, other_lab) if l2 == lab]
        if cand:
            dist[i] = float(np.min(np.linalg.norm(np.asarray(cand) - pt, axis=1)))
    scale = float(np.max(np.linalg.norm(other_k, axis=1))) if len(other_k) else 0.0
    cr, co = ref_points.counts(), other_points.counts()
    return FixedPointMatch(cr, co, cr == co, mapped, labels, dist, scale)
