"""Populations of neurons in connectivity space: Gaussian mixtures on the loadings.

Each neuron ``i`` of a low-rank network is the point
``(m_i, n_i, w_in_i, w_out_i)`` of connectivity space (see
:func:`lrfit.analysis.connectivity.loading_table`).  A Gaussian mixture there
(populations ``p`` with weights ``alpha_p``, means ``mu^p`` and covariances
``Sigma^p``) is the statistical description used by the mean-field theory
(:mod:`lrfit.analysis.meanfield`) and by resampling (:mod:`lrfit.analysis.resample`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from ..errors import LrfitError
from ..threads import single_threaded
from ._common import fields_json, jsonable
from .connectivity import loading_columns, loading_matrix

__all__ = ["MixtureStats", "PopulationResult", "fit_populations", "mixture_from_labels"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MixtureStats:
    """A Gaussian mixture over the full loading vector ``[m (R), n (R), w_in (C), w_out (O)]``.

    Attributes
    ----------
    weights : ndarray, (P,)
        Population fractions ``alpha_p`` (sum to 1).
    means : ndarray, (P, D)
        ``mu^p``, ``D = 2R + C + O``.
    covariances : ndarray, (P, D, D)
        ``Sigma^p`` (covariances, not second moments).
    rank, n_inputs, n_outputs : int
        Block sizes ``R``, ``C``, ``O``.
    columns : tuple of str
        Names of the ``D`` loading columns.
    symmetric : bool
        The mixture describes sign-folded loadings ``s_i y_i`` (``s_i = sign(m_i1)``):
        the density of the loadings is ``(p(y) + p(-y)) / 2`` and samples get a random
        sign per neuron (see :func:`fit_populations`, ``fold_signs``).
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    rank: int
    n_inputs: int
    n_outputs: int
    columns: tuple[str, ...]
    symmetric: bool = False

    def __post_init__(self) -> None:
        d = 2 * self.rank + self.n_inputs + self.n_outputs
        p = self.weights.shape[0]
        if self.means.shape != (p, d) or self.covariances.shape != (p, d, d):
            raise LrfitError(
                f"Mixture statistics have inconsistent shapes: weights {self.weights.shape}, means {self.means.shape}, "
                f"covariances {self.covariances.shape} for a loading vector of length {d}."
            )

    @property
    def n_populations(self) -> int:
        """Number of populations ``P``."""
        return int(self.weights.shape[0])

    @property
    def slices(self) -> dict[str, slice]:
        """Blocks of the loading vector: ``"m"``, ``"n"``, ``"w_in"``, ``"w_out"``."""
        r, c, o = self.rank, self.n_inputs, self.n_outputs
        return {
            "m": slice(0, r),
            "n": slice(r, 2 * r),
            "w_in": slice(2 * r, 2 * r + c),
            "w_out": slice(2 * r + c, 2 * r + c + o),
        }

    def select(self, populations: Sequence[int]) -> MixtureStats:
        """The mixture restricted to some populations (weights renormalised)."""
        idx = np.asarray(list(populations), int)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= self.n_populations:
            raise LrfitError(
                f"Population indices {list(idx)} are out of range; this mixture has populations "
                f"0..{self.n_populations - 1}."
            )
        w = self.weights[idx]
        return MixtureStats(
            w / w.sum(),
            self.means[idx],
            self.covariances[idx],
            self.rank,
            self.n_inputs,
            self.n_outputs,
            self.columns,
            self.symmetric,
        )

    def merged(self) -> MixtureStats:
        """A single Gaussian with the mixture's overall mean and covariance (moment matching).

        ``mu = sum_p alpha_p mu^p``, ``Sigma = sum_p alpha_p (Sigma^p + (mu^p - mu)(mu^p - mu)^T)``.
        """
        mu = self.weights @ self.means
        dev = self.means - mu
        cov = np.einsum("p,pij->ij", self.weights, self.covariances) + np.einsum("p,pi,pj->ij", self.weights, dev, dev)
        return MixtureStats(
            np.ones(1), mu[None], cov[None], self.rank, self.n_inputs, self.n_outputs, self.columns, self.symmetric
        )

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary."""
        return fields_json(self)


def mixture_from_labels(
    loadings: np.ndarray,
    labels_or_resp: np.ndarray,
    rank: int,
    n_inputs: int,
    n_outputs: int,
    columns: Sequence[str] | None = None,
) -> MixtureStats:
    """Per-population weights, means and covariances of the loadings.

    With responsibilities ``r_ip`` (one-hot for hard labels):
    ``alpha_p = (1/N) sum_i r_ip``, ``mu^p = sum_i r_ip y_i / sum_i r_ip``,
    ``Sigma^p = sum_i r_ip (y_i - mu^p)(y_i - mu^p)^T / sum_i r_ip``.

    Parameters
    ----------
    loadings : ndarray, (N, D)
        Loading vectors (:func:`~lrfit.analysis.connectivity.loading_matrix`).
    labels_or_resp : ndarray, (N,) int or (N, P) float
        Hard labels ``0..P-1`` or responsibilities.
    rank, n_inputs, n_outputs : int
        Block sizes.
    columns : sequence of str, optional
        Column names.

    Returns
    -------
    MixtureStats
    """
    y = np.asarray(loadings, float)
    lab = np.asarray(labels_or_resp)
    if lab.ndim == 1:
        resp = np.zeros((lab.size, int(lab.max()) + 1))
        resp[np.arange(lab.size), lab.astype(int)] = 1.0
    else:
        resp = lab.astype(float)
    tot = resp.sum(0)
    if np.any(tot <= 0):
        raise LrfitError("A population has no neurons; relabel the populations as consecutive integers 0..P-1.")
    means = resp.T @ y / tot[:, None]
    covs = np.stack([((y - means[p]) * resp[:, p : p + 1]).T @ (y - means[p]) / tot[p] for p in range(resp.shape[1])])
    cols = tuple(columns) if columns is not None else tuple(loading_columns(rank, n_inputs, n_outputs))
    return MixtureStats(tot / tot.sum(), means, covs, rank, n_inputs, n_outputs, cols)


@dataclass(frozen=True)
class _MixtureFits:
    """The best Gaussian mixture per number of populations, with the data they were fitted to.

    Kept by :class:`PopulationResult` so that :meth:`PopulationResult.with_count` can
    switch to another number without refitting.
    """

    best: dict[int, GaussianMixture]  # lowest-BIC mixture per number of populations
    loadings: np.ndarray  # (N, D) loading vectors (sign-folded with fold_signs)
    standardised: np.ndarray  # (N, F) the fitted features, standardised
    mean: np.ndarray  # (F,) feature means used to standardise
    std: np.ndarray  # (F,) feature standard deviations used to standardise
    rank: int
    n_inputs: int
    n_outputs: int
    columns: tuple[str, ...]  # names of the D loading columns
    covariance_type: str
    symmetric: bool  # sign-folded loadings: the full-loading mixture is symmetric

    def selection(self, k: int) -> dict[str, Any]:
        """The fields of :class:`PopulationResult` that depend on the number of populations *k*."""
        gm = self.best[k]
        resp = gm.predict_proba(self.standardised)
        order = np.argsort(-resp.sum(0), kind="stable")
        resp = resp[:, order]
        mixture = mixture_from_labels(self.loadings, resp, self.rank, self.n_inputs, self.n_outputs, self.columns)
        if self.symmetric:
            mixture = replace(mixture, symmetric=True)
        covariances = _full_covariances(gm, self.covariance_type, self.standardised.shape[1])
        return {
            "n_populations": k,
            "labels": np.argmax(resp, axis=1),
            "responsibilities": resp,
            "weights": resp.mean(0),
            "means": gm.means_[order] * self.std + self.mean,
            "covariances": covariances[order] * np.outer(self.std, self.std),
            "mixture": mixture,
        }


@dataclass(frozen=True)
class PopulationResult:
    """Populations found by a Gaussian mixture on the connectivity loadings.

    Attributes
    ----------
    n_populations : int
        Number chosen.  By :func:`fit_populations`: the lowest-BIC number among those
        whose fits are stable across seeds (mean pairwise ARI >= ``ari_threshold``);
        :func:`lrfit.analysis.choose_populations_by_task` may choose another
        (see ``rule``).
    n_bic : int
        Number with the lowest BIC, regardless of stability.
    candidates : ndarray, (K,)
        Numbers of populations tried (``1..max_populations``).
    bic : ndarray, (K,)
        Best (lowest over seeds) BIC per candidate, on the standardised features.
    ari : ndarray, (K,)
        Mean pairwise adjusted Rand index between the seeds' labellings per candidate.
    labels : ndarray, (N,) int
        Population of each neuron (populations ordered by decreasing weight).
    responsibilities : ndarray, (N, P)
        Posterior probabilities of the populations.
    weights : ndarray, (P,)
        Mixture weights.
    means : ndarray, (P, F)
        Means of the fitted features (original units).
    covariances : ndarray, (P, F, F)
        Covariances of the fitted features (original units).
    features : tuple of str
        Names of the fitted features (subset of the loading columns).
    mixture : MixtureStats
        Weights/means/covariances of the *full* loading vector under the
        responsibilities (used for resampling and mean-field theory).
    ari_threshold : float
        Stability threshold used.
    signs : ndarray, (N,) or None
        With ``fold_signs``: the sign ``s_i`` each neuron's loadings were multiplied by.
    rule : str
        How ``n_populations`` was chosen: ``"bic"`` (lowest BIC among seed-stable
        numbers) or ``"task"`` (fewest stable populations whose resampled networks
        perform the task, :func:`lrfit.analysis.choose_populations_by_task`).
    task_accuracy : dict of int to float, optional
        With ``rule="task"``: mean accuracy of networks resampled with each number of
        populations tried.
    """

    n_populations: int
    n_bic: int
    candidates: np.ndarray
    bic: np.ndarray
    ari: np.ndarray
    labels: np.ndarray
    responsibilities: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    features: tuple[str, ...]
    mixture: MixtureStats
    ari_threshold: float
    signs: np.ndarray | None = None
    rule: str = "bic"
    task_accuracy: dict[int, float] | None = None
    _mixture_fits: _MixtureFits | None = field(default=None, repr=False, compare=False)

    @property
    def stable_counts(self) -> np.ndarray:
        """Numbers of populations whose fits are stable across seeds (``ari >= ari_threshold``), ascending."""
        return self.candidates[self.ari >= self.ari_threshold]

    def with_count(self, n_populations: int) -> PopulationResult:
        """The same analysis with ``n_populations`` populations (that number's lowest-BIC mixture).

        Parameters
        ----------
        n_populations : int
            One of ``candidates``.

        Returns
        -------
        PopulationResult
            Labels, weights, statistics and ``mixture`` of the best fit with that many
            components; the BIC and ARI curves are shared.
        """
        k = int(n_populations)
        if self._mixture_fits is None or k not in self._mixture_fits.best:
            raise LrfitError(f"No mixture with {k} populations was fitted; choose among {self.candidates.tolist()}.")
        return replace(self, **self._mixture_fits.selection(k))

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary (number chosen, labels per neuron, BIC curve, ARI, statistics)."""
        return jsonable(
            {
                "n_populations": self.n_populations,
                "n_bic": self.n_bic,
                "rule": self.rule,
                "task_accuracy": None
                if self.task_accuracy is None
                else {str(k): v for k, v in self.task_accuracy.items()},
                "candidates": self.candidates,
                "bic": self.bic,
                "ari": self.ari,
                "ari_threshold": self.ari_threshold,
                "fold_signs": self.signs is not None,
                "signs": self.signs,
                "labels": self.labels,
                "weights": self.weights,
                "features": list(self.features),
                "means": self.means,
                "covariances": self.covariances,
                "mixture": self.mixture.to_json_dict(),
            }
        )


def _model_loadings(model_or_loadings: Any, input_names: Sequence[str] | None, output_names: Sequence[str] | None):
    if hasattr(model_or_loadings, "m"):
        y = loading_matrix(model_or_loadings)
        r = int(model_or_loadings.m.shape[1])
        c = int(model_or_loadings.w_in.shape[1])
        o = int(model_or_loadings.w_out.shape[1])
        return y, r, c, o, loading_columns(r, c, o, input_names, output_names)
    raise LrfitError("fit_populations needs a LowRankRNN (for a raw loading array use mixture_from_labels).")


def fit_populations(
    model: Any,
    max_populations: int = 6,
    n_seeds: int = 5,
    features: Sequence[str] | None = None,
    ari_threshold: float = 0.9,
    covariance_type: str = "full",
    reg_covar: float = 1e-4,
    seed: int = 0,
    n_init: int = 1,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    fold_signs: bool = False,
) -> PopulationResult:
    """Fit Gaussian mixtures to the neurons' loadings and choose the number of populations.

    For each ``P = 1..max_populations`` a :class:`sklearn.mixture.GaussianMixture`
    (density ``p(y) = sum_p alpha_p N(y; mu^p, Sigma^p)``) is fitted with
    ``n_seeds`` seeds on the standardised features.  ``BIC(P) = -2 log L +
    k_P log N`` (best over seeds) and the stability ``ARI(P)`` = mean adjusted Rand
    index over pairs of seeds are recorded.  The number chosen is the lowest-BIC
    ``P`` among those with ``ARI(P) >= ari_threshold`` (``P = 1`` is always stable).

    Parameters
    ----------
    model : LowRankRNN
        The network (preferably SVD-normalised, :meth:`LowRankRNN.svd_normalize_`, so
        that the loadings are unique up to sign).
    max_populations : int
        Largest number of populations tried (capped at the number of neurons).
    n_seeds : int
        Seeds per candidate (for stability and to keep the best BIC).
    features : sequence of str, optional
        Loading columns to cluster on (default: all, ``m_*, n_*, w_in_*, w_out_*``).
    ari_threshold : float
        Minimum mean pairwise ARI for a candidate to count as stable.
    covariance_type : str
        Passed to scikit-learn (``"full"``, ``"diag"``, ...).
    reg_covar : float
        Regularisation added to the diagonal of the (standardised) covariances.
    seed : int
        First seed; seeds are ``seed .. seed + n_seeds - 1``.
    n_init : int
        Initialisations per scikit-learn fit.
    input_names, output_names : sequence of str, optional
        Channel names for the column names.
    fold_signs : bool
        Multiply each neuron's loading vector by ``s_i = sign(m_i1)`` before fitting.
        For an odd ``phi`` (tanh) negating all loadings of unit ``i`` maps ``x_i -> -x_i``
        and leaves the network's computation unchanged, so the loadings are only
        defined up to this per-neuron sign; without folding, a mixture spends
        components on the mirror images ``y`` and ``-y``.  The mixture is then marked
        ``symmetric`` and resampled networks draw a random sign per neuron.

    Returns
    -------
    PopulationResult

    Examples
    --------
    The loadings of a random network are one Gaussian: one population.

    >>> from lrfit import LowRankRNN
    >>> result = fit_populations(LowRankRNN(200, rank=1, seed=0), max_populations=3, n_seeds=2)
    >>> result.n_populations, result.labels.shape, result.with_count(2).n_populations
    (1, (200,), 2)
    """
    y, r, c, o, cols = _model_loadings(model, input_names, output_names)
    n = y.shape[0]
    signs = None
    if fold_signs:
        nonlin = str(getattr(model, "nonlinearity", "tanh"))
        if nonlin not in ("tanh", "identity"):
            raise LrfitError(
                f"fold_signs needs an odd nonlinearity (tanh or identity), the network uses '{nonlin}'; fit without "
                "folding."
            )
        signs = np.where(y[:, 0] < 0, -1.0, 1.0)
        y = y * signs[:, None]
    feats = list(cols) if features is None else list(features)
    unknown = [f for f in feats if f not in cols]
    if unknown:
        raise LrfitError(f"Unknown loading column(s) {unknown}; choose among {cols}.")
    x = y[:, [cols.index(f) for f in feats]]
    if not np.all(np.isfinite(x)):
        raise LrfitError("The network's loadings contain NaN or infinite values; the model is broken, refit it.")
    mu, sd = x.mean(0), x.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (x - mu) / sd
    max_populations = int(max(1, min(max_populations, n // 2 if n >= 2 else 1)))
    candidates = np.arange(1, max_populations + 1)
    bic = np.empty(len(candidates))
    ari = np.empty(len(candidates))
    best: dict[int, GaussianMixture] = {}
    # The matrices are tiny (D x D, D = a few loadings): more threads only add overhead, and the
    # threads of BLAS, of scikit-learn's OpenMP (the KMeans start) and of torch's OpenMP pool fight
    # each other on a busy machine (25x slower on 2 busy cores): every pool runs one thread here.
    with single_threaded():
        for i, k in enumerate(candidates):
            fits, labs = [], []
            for s in range(n_seeds):
                gm = GaussianMixture(
                    k, covariance_type=covariance_type, reg_covar=reg_covar, random_state=seed + s, n_init=n_init
                )
                gm.fit(z)
                fits.append(gm)
                labs.append(gm.predict(z))
            bics = [gm.bic(z) for gm in fits]
            bic[i] = min(bics)
            best[int(k)] = fits[int(np.argmin(bics))]
            pairs = list(itertools.combinations(range(len(labs)), 2))
            ari[i] = (
                1.0
                if not pairs or k == 1
                else float(np.mean([adjusted_rand_score(labs[a], labs[b]) for a, b in pairs]))
            )
    n_bic = int(candidates[np.argmin(bic)])
    stable = ari >= ari_threshold
    n_pop = int(candidates[stable][np.argmin(bic[stable])])
    log.info("populations: BIC picks %d, stable choice %d (ARI %s)", n_bic, n_pop, np.round(ari, 3).tolist())
    fits = _MixtureFits(best=best, loadings=y, standardised=z, mean=mu, std=sd, rank=r, n_inputs=c, n_outputs=o,
                        columns=tuple(cols), covariance_type=covariance_type, symmetric=signs is not None)
    return PopulationResult(
        n_bic=n_bic, candidates=candidates, bic=bic, ari=ari, features=tuple(feats), ari_threshold=float(ari_threshold),
        signs=signs, _mixture_fits=fits, **fits.selection(n_pop),
    )


def _full_covariances(gm: GaussianMixture, covariance_type: str, d: int) -> np.ndarray:
    cov = np.asarray(gm.covariances_)
    k = gm.n_components
    if covariance_type == "full":
        return cov
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    if covariance_type == "spherical":
        return np.stack([np.eye(d) * c for c in cov])
    return np.broadcast_to(cov, (k, d, d)).copy()  # tied

