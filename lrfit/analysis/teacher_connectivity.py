"""Compare two networks whose units correspond (teacher and student): connectivity and latent dynamics.

Pure functions: the principal angles between connectivity spaces, the effective-connectivity
correlation (ECC), the recovery of a low-rank teacher's connectivity by a student, and the
pairing of fixed points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import subspace_angles

from ..errors import LrfitError
from ._common import as_input_vector, fields_json, lowrank_params
from .fixed_points import FixedPointResult

__all__ = [
    "FixedPointMatch",
    "connectivity_recovery",
    "ecc",
    "effective_connectivity",
    "map_teacher_fixed_points",
    "principal_angle_cosines",
]


def principal_angle_cosines(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Cosines of the principal angles between ``span(a)`` and ``span(b)``, largest first.

    ``cos theta_k = sigma_k(Q_a^T Q_b)`` with ``Q`` orthonormal bases of the column spaces.

    Parameters
    ----------
    a, b : ndarray
        ``(N, Ra)`` and ``(N, Rb)`` matrices on the same rows.

    Returns
    -------
    list of float
        ``min(Ra, Rb)`` cosines.

    Examples
    --------
    >>> np.round(principal_angle_cosines(np.eye(3)[:, :2], np.eye(3)[:, 1:]), 6).tolist()
    [1.0, 0.0]
    """
    return sorted((float(c) for c in np.cos(subspace_angles(np.asarray(a, float), np.asarray(b, float)))),
                  reverse=True)


def _projector(basis: np.ndarray) -> np.ndarray:
    q, r = np.linalg.qr(basis)
    keep = np.abs(np.diag(r)) > 1e-10 * max(1.0, float(np.abs(r).max()))
    q = q[:, keep]
    return q @ q.T


def effective_connectivity(m: np.ndarray, n: np.ndarray, w_in: np.ndarray | None = None) -> np.ndarray:
    """``M P(N)^T``: the connectivity the dynamics see.

    ``P`` projects onto ``span([M, W_in])``; the components of ``N`` outside that
    span never meet the activity (which lives in it) and are not identifiable.

    Parameters
    ----------
    m, n : ndarray
        ``(N, R)`` connectivity vectors.
    w_in : ndarray, optional
        ``(N, C)`` input weights.

    Returns
    -------
    ndarray
        ``(N, N)``.
    """
    basis = m if w_in is None or w_in.size == 0 else np.concatenate([m, w_in], axis=1)
    return m @ (_projector(basis) @ n).T


def ecc(student: tuple[np.ndarray, ...], teacher: tuple[np.ndarray, ...]) -> float:
    """Effective-connectivity correlation between two ``(M, N, W_in)`` triples on the same neurons.

    Parameters
    ----------
    student, teacher : tuple of ndarray
        ``(M, N)`` or ``(M, N, W_in)`` of each network, rows on the same neurons.

    Returns
    -------
    float
        ``<vec(M P(N)^T)_s, vec(M P(N)^T)_t> / (|.| |.|)`` (NaN for a zero connectivity).
    """
    a = effective_connectivity(*student).ravel()
    b = effective_connectivity(*teacher).ravel()
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / denom) if denom > 0 else float("nan")


def connectivity_recovery(student: Any, teacher: Any, ids: np.ndarray) -> dict[str, Any]:
    """How well a low-rank student recovers a low-rank teacher's connectivity on the recorded units.

    Parameters
    ----------
    student, teacher : LowRankRNN
        The student's first ``len(ids)`` units stand for the teacher's units *ids*.
    ids : ndarray of int
        Teacher unit of each recorded neuron.

    Returns
    -------
    dict
        ``rank_teacher``, ``m_cosines``, ``n_cosines`` (principal-angle cosines) and ``ecc``.
    """
    ps, pt = lowrank_params(student), lowrank_params(teacher)
    n_obs = ids.size
    sm, sn, sw = ps.m[:n_obs], ps.n[:n_obs], ps.w_in[:n_obs]
    tm, tn, tw = pt.m[ids], pt.n[ids], pt.w_in[ids]
    return {
        "rank_teacher": int(pt.rank),
        "m_cosines": principal_angle_cosines(sm, tm),
        "n_cosines": principal_angle_cosines(sn, tn),
        "ecc": ecc((sm, sn, sw), (tm, tn, tw)),
    }


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
        :func:`map_teacher_fixed_points`).
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
        return fields_json(self)


def map_teacher_fixed_points(
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
        raise LrfitError(
            "neuron ids do not map the fitted units onto the reference network; check the fit's neuron_ids."
        )
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
