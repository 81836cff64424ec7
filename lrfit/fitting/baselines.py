"""Trivial baselines and noise ceilings that stand beside every held-out score on recorded data.

Every score is the pooled R^2 of :func:`lrfit.fitting.metrics.r2_score` on the *test*
data (valid bins of its mask), so baselines and fits are directly comparable.  All
predictors are built from the *training* data only.

Baselines (:func:`compute_baselines`)
-------------------------------------
``mean``
    Each neuron's training mean (over all valid training bins), constant in time.
    Scores about 0 (slightly below) on data from the same distribution.
``time_mean``
    Each neuron's training mean time course, averaged over all training trials
    (the condition-independent response).  Needs the same number of time bins.
``condition_mean``
    Each neuron's training condition-mean time course, for the test trial's
    condition (label from :func:`lrfit.fitting.metrics.condition_labels` over
    ``columns``).  Skipped, with the reason in ``Baselines.skipped``, when some test
    condition does not occur in training (e.g. held-out conditions) or the time
    axes differ.
``pca_k``
    The PCA-k reconstruction of the training activity, as a predictor: the
    training activity's top-``k`` principal components (fitted on the centred valid
    training bins; ``k`` = rank + number of inputs, clipped to the number of neurons)
    and, for each test trial, the best training-only guess of its time course --
    the condition mean when its condition was trained, else the time mean (else
    the neuron mean) -- projected onto those components: ``mu + (g - mu) V V^T``.
    It asks whether a k-dimensional summary of the training activity already
    predicts the test data; it never looks at the test activity.

Reference, not a baseline
-------------------------
``pca_k_oracle``
    The *test* activity projected onto the training top-``k`` PCs.  It uses the test
    data, so it is an upper reference (how much of the test variance lies in the
    training k-dimensional subspace), reported in ``Baselines.references`` and
    never used by :meth:`Baselines.best` / :meth:`Baselines.below_baseline`.

Noise ceiling (:func:`noise_ceiling`, :func:`split_half_ceiling`)
----------------------------------------------------------------
Each condition's trials are split at random into two halves
(:func:`data_adapters.neuron_trials.half_assignment`: of ``m`` trials, ``ceil(m/2)``
and ``floor(m/2)``; each neuron's trials independently, so neurons recorded in
separate sessions are handled alike); the halves are averaged into condition
means ``A`` and ``B``; ``r`` is their pooled correlation after removing each
neuron's mean (the same centring as the R^2), over the bins valid in both.  ``r``
is averaged over ``n_splits`` seeded splits (``seed``, ``seed + 1``, ...).  Only
conditions in which every neuron has at least two trials take part.

``r_half`` (that mean) is the reliability of a half-trial mean: the expected R^2 of the
noise-free prediction scored against a half mean.  The Spearman-Brown formula
``rho_k = k r / (1 + (k - 1) r)`` moves it to other trial counts:

- ``full`` = ``2 r / (1 + r)``: scored against condition means of all trials (the
  definition of DESIGN.md);
- ``single`` = ``rho_(1/h)`` with ``h`` the harmonic mean half size: scored against
  single trials.

``NoiseCeiling.value`` is the one matching what the test data are (``scored_on``):
``"halves"`` (split-half hold-out: test = half means), ``"means"`` or ``"single_trials"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from data_adapters.neuron_trials import half_assignment
from data_adapters.trialdata import TrialData

from .metrics import condition_labels, r2_score
from .reductions import column_moments, masked_time_mean, principal_axes

__all__ = ["BASELINES", "Baselines", "CountBaselines", "NoiseCeiling", "baselines_not_beaten", "best_baseline",
           "compute_baselines", "compute_count_baselines", "noise_ceiling", "spearman_brown",
           "split_half_ceiling"]

BASELINES = ("mean", "time_mean", "condition_mean", "pca_k")
BOOKKEEPING_COLUMNS = ("n_trials", "min_trials", "trial", "trial_index", "split")
SCORED_ON = ("halves", "means", "single_trials")


# ---------------------------------------------------------------------- noise ceiling
def spearman_brown(r: float, factor: float) -> float:
    """Reliability of a mean over ``factor`` times as many trials: ``k r / (1 + (k - 1) r)``."""
    if not np.isfinite(r):
        return float("nan")
    den = 1.0 + (factor - 1.0) * r
    return float(factor * r / den) if den > 0 else float("nan")


@dataclass(frozen=True)
class NoiseCeiling:
    """Split-half reliability of condition means (definitions in the module docstring).

    Attributes
    ----------
    r_half
        Mean over splits of the pooled, per-neuron-centred correlation of the halves' condition means.
    full
        Spearman-Brown ``2 r / (1 + r)``: the ceiling against means of all trials.
    single
        Spearman-Brown to one trial: the ceiling against single trials.
    scored_on
        ``"halves"``, ``"means"`` or ``"single_trials"``: what the test data are.
    value
        The ceiling for ``scored_on`` (``r_half``, ``full`` or ``single``).
    n_splits, n_conditions
        Random splits averaged; conditions used.
    half_trials
        Harmonic mean number of trials in a half.
    """

    r_half: float
    full: float
    single: float
    scored_on: str
    value: float
    n_splits: int
    n_conditions: int
    half_trials: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict of the fields."""
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in self.__dict__.items()}


def _centred_corr(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> float:
    """Pooled correlation of ``(C, T, N)`` arrays over valid ``(C, T, N)`` entries, each neuron centred."""
    w = valid.astype(np.float64)
    n = np.maximum(w.sum(axis=(0, 1)), 1)
    a = (a - (np.where(valid, a, 0).sum(axis=(0, 1)) / n)) * w
    b = (b - (np.where(valid, b, 0).sum(axis=(0, 1)) / n)) * w
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


def _half_means(x: np.ndarray, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means over the selected trials of ``(C, R, T, N)``; ``sel`` is ``(C, R, N)``. Returns mean, count."""
    s = sel[:, :, None, :] & np.isfinite(x)
    n = s.sum(axis=1)
    return np.where(s, x, 0.0).sum(axis=1) / np.maximum(n, 1), n


def split_half_ceiling(responses: np.ndarray, *, n_splits: int = 10, seed: int = 0,
                       scored_on: str = "halves") -> NoiseCeiling | None:
    """Noise ceiling from NaN-padded single trials ``(conditions, trials, time, neurons)``.

    Parameters
    ----------
    responses
        NaN where a neuron has no such trial (``NeuronTrials.responses``); a trial is
        present for a neuron when it has a finite bin.
    n_splits
        Random half splits averaged.
    seed
        Seed of the first split (split ``i`` uses ``seed + i``).
    scored_on
        What the test data are: ``"halves"`` (default; the split-half hold-out of
        separately recorded neurons), ``"means"`` or ``"single_trials"``.

    Returns
    -------
    NoiseCeiling or None
        None when no condition has at least two trials for every neuron.
    """
    if scored_on not in SCORED_ON:
        raise ValueError(f"scored_on={scored_on!r} is not known; use one of {SCORED_ON}")
    x = np.asarray(responses, dtype=np.float64)
    present = np.isfinite(x).any(axis=2)
    ok = present.sum(axis=1).min(axis=1) >= 2
    if not ok.any():
        return None
    x, present = x[ok], present[ok]
    rs, sizes = [], None
    for i in range(max(1, int(n_splits))):
        assign = half_assignment(present, seed + i)
        a, na = _half_means(x, assign == 0)
        b, nb = _half_means(x, assign == 1)
        rs.append(_centred_corr(a, b, (na > 0) & (nb > 0)))
        if sizes is None:
            sizes = np.concatenate([(assign == 0).sum(1).ravel(), (assign == 1).sum(1).ravel()])
    r = float(np.nanmean(rs)) if np.isfinite(rs).any() else float("nan")
    h = float(len(sizes) / np.sum(1.0 / sizes))
    full, single = spearman_brown(r, 2.0), spearman_brown(r, 1.0 / h)
    value = {"halves": r, "means": full, "single_trials": single}[scored_on]
    return NoiseCeiling(r_half=r, full=full, single=single, scored_on=scored_on, value=value,
                        n_splits=max(1, int(n_splits)), n_conditions=int(ok.sum()), half_trials=h)


def _padded_by_condition(data: TrialData, labels: np.ndarray) -> np.ndarray:
    """Single trials grouped by label into ``(conditions, trials, time, neurons)``, NaN-padded (masked bins NaN)."""
    act = np.where(data.mask[:, :, None], data.activity.astype(np.float64), np.nan)
    groups = [np.flatnonzero(labels == lab) for lab in pd.unique(labels)]
    out = np.full((len(groups), max(len(g) for g in groups), data.n_time, data.n_neurons), np.nan)
    for c, g in enumerate(groups):
        out[c, :len(g)] = act[g]
    return out


def noise_ceiling(data: TrialData, columns: Sequence[str] | None = None, *, n_splits: int = 10, seed: int = 0,
                  scored_on: str = "single_trials") -> NoiseCeiling | None:
    """Noise ceiling of single-trial :class:`TrialData` (trials grouped by condition label).

    Parameters
    ----------
    data
        Single trials (e.g. the test split by trials).
    columns
        Condition columns defining the conditions (default :func:`default_condition_columns`).
    n_splits, seed
        See :func:`split_half_ceiling`.
    scored_on
        ``"single_trials"`` (default: ``data`` itself is scored), ``"means"`` or ``"halves"``.

    Returns
    -------
    NoiseCeiling or None
        None when no condition has two trials.

    Examples
    --------
    Four conditions of six noisy repeats each:

    >>> import pandas as pd
    >>> from data_adapters import TrialData
    >>> rng = np.random.default_rng(0)
    >>> signal = np.repeat(rng.normal(size=(4, 1, 10, 3)), 6, axis=1).reshape(24, 10, 3)
    >>> data = TrialData(activity=signal + 0.1 * rng.normal(size=signal.shape), dt=0.02,
    ...                  conditions=pd.DataFrame({"c": np.repeat(np.arange(4), 6)}))
    >>> ceiling = noise_ceiling(data)
    >>> ceiling.n_conditions, round(ceiling.value, 2)
    (4, 0.99)
    """
    cols = default_condition_columns(data, data) if columns is None else list(columns)
    labels = condition_labels(data.conditions, cols)
    return split_half_ceiling(_padded_by_condition(data, labels), n_splits=n_splits, seed=seed, scored_on=scored_on)


# ---------------------------------------------------------------------- baselines
@dataclass(frozen=True)
class Baselines:
    """R^2 of trivial predictors on the test data, an oracle reference, and the noise ceiling.

    Attributes
    ----------
    mean, time_mean, condition_mean, pca_k
        R^2 of each baseline (module docstring); None when skipped.
    pca_k_oracle
        Upper reference (uses the test activity); not a baseline.
    k
        Number of principal components used.
    ceiling
        Noise ceiling, or None.
    skipped
        Name -> reason, for every baseline (or ``"ceiling"``) not computed.
    """

    mean: float
    time_mean: float | None
    condition_mean: float | None
    pca_k: float | None
    pca_k_oracle: float | None
    k: int
    ceiling: NoiseCeiling | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def scores(self) -> dict[str, float]:
        """Baseline name -> R^2, for the baselines computed (oracle excluded)."""
        return {n: float(getattr(self, n)) for n in BASELINES if getattr(self, n) is not None}

    @property
    def best(self) -> tuple[str, float] | None:
        """Name and R^2 of the strongest baseline (None if no finite score)."""
        return best_baseline(self.scores)

    def below_baseline(self, score: float) -> list[str]:
        """Names of the baselines that ``score`` does not beat (see :func:`baselines_not_beaten`)."""
        return baselines_not_beaten(score, self.scores)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict (for metrics.json)."""
        best = self.best
        return {"k": int(self.k), "scores": self.scores,
                "references": {} if self.pca_k_oracle is None else {"pca_k_oracle": float(self.pca_k_oracle)},
                "best": None if best is None else {"name": best[0], "r2": best[1]},
                "ceiling": None if self.ceiling is None else self.ceiling.to_dict(),
                "skipped": dict(self.skipped)}


def best_baseline(scores: dict[str, float]) -> tuple[str, float] | None:
    """Name and R^2 of the strongest of *scores* (baseline name -> R^2); None if none is finite."""
    finite = {n: float(v) for n, v in scores.items() if v is not None and np.isfinite(v)}
    if not finite:
        return None
    name = max(finite, key=finite.get)
    return name, finite[name]


def baselines_not_beaten(score: float | None, scores: dict[str, float]) -> list[str]:
    """Names of the baselines of *scores* that ``score`` does not beat (R^2 >= score); all of them for a NaN score.

    A fit beats a baseline only with a strictly higher R^2; an empty list means it
    beats every baseline.

    Examples
    --------
    >>> baselines_not_beaten(0.2, {"mean": -0.01, "time_mean": 0.39})
    ['time_mean']
    """
    if score is None or not np.isfinite(score):
        return list(scores)
    return [n for n, v in scores.items() if v is not None and np.isfinite(v) and v >= score]


def default_condition_columns(train: TrialData, test: TrialData) -> list[str]:
    """Condition columns of both sets, without bookkeeping columns (``n_trials``, ``min_trials``, ``trial``, ...)."""
    return [c for c in train.conditions.columns
            if c in test.conditions.columns and str(c) not in BOOKKEEPING_COLUMNS]


def _masked_mean(act: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over trials per bin ``(T, N)`` of valid bins and the valid count ``(T,)``."""
    return masked_time_mean(act, mask)  # a block of trials at a time


def compute_baselines(train: TrialData, test: TrialData, *, k: int, columns: Sequence[str] | None = None,
                      ceiling: NoiseCeiling | None = None, n_splits: int = 10, seed: int = 0,
                      no_ceiling: str | None = None) -> Baselines:
    """R^2 of the trivial baselines on ``test``, built from ``train`` (module docstring).

    Parameters
    ----------
    train, test
        Training and test data with the same neurons (masks respected).
    k
        Principal components of the PCA-k baseline: rank + number of inputs.
    columns
        Condition columns that define a condition (default :func:`default_condition_columns`).
    ceiling
        A precomputed ceiling (e.g. :func:`split_half_ceiling` of the single trials behind
        split halves).  Without one, it is computed from ``test`` when some test condition
        has two or more trials (``scored_on="single_trials"``), else skipped with a reason.
    n_splits, seed
        Splits of the ceiling computed here.
    no_ceiling : str, optional
        Compute no ceiling, for this reason (e.g. simulated trials whose variability comes
        from inputs the model receives, so a split-half reliability is no upper bound).

    Returns
    -------
    Baselines
    """
    if train.n_neurons != test.n_neurons or not np.array_equal(train.neuron_ids, test.neuron_ids):
        raise ValueError(f"train has {train.n_neurons} neurons and test {test.n_neurons} (or other neuron_ids); "
                         "baselines need the same neurons in both")
    skipped: dict[str, str] = {}
    ya, ma = test.activity, test.mask
    xa, xm = train.activity, train.mask  # reduced block by block in float64 (lrfit.fitting.reductions)
    mu = column_moments(xa, xm)[1]
    score = lambda pred: r2_score(ya, pred, ma)  # noqa: E731
    mean = score(np.broadcast_to(mu, ya.shape))

    same_time = train.n_time == test.n_time
    time_pred = cond_pred = None
    if same_time:
        tm, tn = _masked_mean(xa, xm)
        tm = np.where(tn[:, None] > 0, tm, mu)
        time_pred = np.broadcast_to(tm, ya.shape)
    else:
        skipped["time_mean"] = (f"train has {train.n_time} time bins and test {test.n_time}; time courses need "
                                "the same bins")
    cols = default_condition_columns(train, test) if columns is None else list(columns)
    if not same_time:
        skipped["condition_mean"] = skipped["time_mean"]
    elif not cols:
        skipped["condition_mean"] = "the data have no condition columns"
    else:
        lab_tr, lab_te = condition_labels(train.conditions, cols), condition_labels(test.conditions, cols)
        unseen = sorted(set(lab_te) - set(lab_tr))
        if unseen:
            skipped["condition_mean"] = (f"{len(unseen)} of {len(set(lab_te))} test conditions of {cols} do not "
                                         f"occur in training (e.g. {unseen[0]!r}: held-out conditions)")
        else:
            means = {}
            for lab in pd.unique(lab_te):
                sel = lab_tr == lab
                m, n = _masked_mean(xa[sel], xm[sel])
                means[lab] = np.where(n[:, None] > 0, m, tm)
            cond_pred = np.stack([means[lab] for lab in lab_te])

    k_eff = int(max(1, min(int(k), train.n_neurons)))
    v = principal_axes(xa, xm, k_eff, mu)
    project = lambda a: (a - mu) @ v @ v.T + mu  # noqa: E731
    guess = (
        cond_pred if cond_pred is not None else time_pred if time_pred is not None else np.broadcast_to(mu, ya.shape)
    )
    pca_k = score(project(guess))
    oracle = score(project(ya))

    if no_ceiling:
        ceiling = None
        skipped["ceiling"] = no_ceiling
    elif ceiling is None:
        labels = condition_labels(test.conditions, cols)
        repeats = pd.Series(labels).value_counts().max() if test.n_trials else 0
        if repeats >= 2:
            ceiling = split_half_ceiling(_padded_by_condition(test, labels), n_splits=n_splits, seed=seed,
                                         scored_on="single_trials")
        if ceiling is None:
            skipped["ceiling"] = ("no test condition has two trials (condition means); pass the ceiling of the "
                                  "single trials behind them (split_half_ceiling)")
    return Baselines(mean=mean, time_mean=None if time_pred is None else score(time_pred),
                     condition_mean=None if cond_pred is None else score(cond_pred), pca_k=pca_k,
                     pca_k_oracle=oracle, k=k_eff, ceiling=ceiling, skipped=skipped)


# ---------------------------------------------------------------------- spike counts
#: Gaussian widths (s) among which the smoothed PSTH baseline's kernel is chosen on the training trials.
PSTH_WIDTHS_S = (0.0, 0.01, 0.02, 0.04, 0.08, 0.16)
#: Expected counts of the count baselines are floored at this fraction of each neuron's mean.
COUNT_FLOOR_FRACTION = 1e-2


@dataclass(frozen=True)
class CountBaselines:
    """Bits per spike (and PSTH R^2) of trivial predictors of spike counts on the test data.

    Attributes
    ----------
    bits_per_spike
        Baseline name -> held-out bits per spike: ``mean`` (each neuron's training mean
        count) and ``psth`` (the smoothed training PSTH of the test trial's condition, or of
        all training trials where its condition was not trained).
    psth_r2
        R^2 of the smoothed PSTH's condition averages against the test condition averages
        (None where no test condition has two trials).
    r2
        Baseline name -> single-trial R^2 of the expected counts (as ``r2_test``).
    sd_s
        The Gaussian width (s) chosen on the training trials (two-fold, by Poisson likelihood).
    trained_fraction
        Fraction of the test trials whose condition was trained (predicted by their condition's
        PSTH; the others by the PSTH of all training trials).
    """

    bits_per_spike: dict[str, float]
    psth_r2: float | None
    r2: dict[str, float]
    sd_s: float
    trained_fraction: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict (for metrics.json)."""
        return {"bits_per_spike": dict(self.bits_per_spike), "psth_r2": self.psth_r2, "r2": dict(self.r2),
                "sd_s": float(self.sd_s), "trained_fraction": float(self.trained_fraction)}


_ALL_TRIALS = "__all_training_trials__"  # the key of the PSTH of all training trials


def _psth(counts: np.ndarray, mask: np.ndarray, labels: np.ndarray, sd_bins: float,
          floor: np.ndarray) -> dict[Any, np.ndarray]:
    """Smoothed mean counts per bin ``(T, N)`` of each label's trials and of all trials, floored at *floor*."""
    from .counts import smooth_counts

    out = {}
    for lab, sel in [(lab, labels == lab) for lab in pd.unique(labels)] + [(_ALL_TRIALS, slice(None))]:
        mean, n = _masked_mean(counts[sel], mask[sel])
        smooth = smooth_counts(mean[None], (n > 0)[None], sd_bins)[0]
        out[lab] = np.maximum(smooth, floor)
    return out


def _psth_predict(psth: dict[Any, np.ndarray], labels: np.ndarray) -> np.ndarray:
    """Each trial's condition PSTH, or the PSTH of all training trials for an untrained condition."""
    return np.stack([psth.get(lab, psth[_ALL_TRIALS]) for lab in labels])


def compute_count_baselines(train: TrialData, test: TrialData, *, columns: Sequence[str] | None = None,
                            widths_s: Sequence[float] = PSTH_WIDTHS_S, seed: int = 0) -> CountBaselines:
    """Held-out bits per spike of the smoothed training PSTH and of each neuron's training mean.

    The PSTH of a condition is the mean count per bin of its training trials, smoothed in
    time with a Gaussian whose width is chosen among *widths_s* by two-fold
    cross-validation on the training trials (each condition's trials split at random into
    halves; the width with the highest Poisson likelihood of one half under the other's
    PSTH, both ways).  A test trial is predicted by its condition's PSTH where that
    condition was trained, else by the PSTH of all training trials.  Expected counts are
    floored at :data:`COUNT_FLOOR_FRACTION` of each neuron's training mean.

    Parameters
    ----------
    train, test
        Spike counts per bin with the same neurons.
    columns
        Condition columns (default :func:`default_condition_columns`).
    widths_s
        Candidate standard deviations in seconds (0: no smoothing).
    seed
        Seed of the two-fold split.

    Returns
    -------
    CountBaselines
    """
    from .counts import bits_per_spike, poisson_log_likelihood
    from .metrics import psth_r2

    xa, xm = np.asarray(train.activity, dtype=np.float64), np.asarray(train.mask, dtype=bool)
    ya, ym = np.asarray(test.activity, dtype=np.float64), np.asarray(test.mask, dtype=bool)
    mean = xa[xm].mean(0)
    floor = COUNT_FLOOR_FRACTION * np.maximum(mean, 1e-12)
    cols = default_condition_columns(train, test) if columns is None else list(columns)
    lab_tr = condition_labels(train.conditions, cols)
    lab_te = condition_labels(test.conditions, cols)
    # the width: two-fold within each training condition
    rng = np.random.default_rng(seed)
    half = np.zeros(train.n_trials, dtype=bool)
    for lab in pd.unique(lab_tr):
        idx = np.flatnonzero(lab_tr == lab)
        half[rng.permutation(idx)[: len(idx) // 2]] = True
    best_sd, best_ll = 0.0, -np.inf
    if half.any() and (~half).any():
        for sd in widths_s:
            ll = 0.0
            for a, b in ((half, ~half), (~half, half)):
                ll += poisson_log_likelihood(xa[b], _psth_predict(_psth(xa[a], xm[a], lab_tr[a], sd / train.dt, floor),
                                                                  lab_tr[b]), xm[b])
            if ll > best_ll:
                best_sd, best_ll = float(sd), ll
    psth = _psth(xa, xm, lab_tr, best_sd / train.dt, floor)
    trained = np.isin(lab_te, list(psth)) if train.n_time == test.n_time else np.zeros(test.n_trials, dtype=bool)
    if train.n_time == test.n_time:
        pred = _psth_predict(psth, lab_te)
    else:  # other time axes: no time course to carry over
        pred = np.broadcast_to(mean, ya.shape)
    mean_pred = np.broadcast_to(mean, ya.shape)
    labels = condition_labels(test.conditions, cols) if cols else None
    return CountBaselines(
        bits_per_spike={"mean": bits_per_spike(ya, mean_pred, ym), "psth": bits_per_spike(ya, pred, ym)},
        psth_r2=psth_r2(ya, pred, labels, ym),
        r2={"mean": r2_score(ya, mean_pred, ym), "psth": r2_score(ya, pred, ym)},
        sd_s=best_sd, trained_fraction=float(trained.mean()) if trained.size else 0.0)
