"""Are a student's dynamics the teacher's?  The Computation-through-Dynamics metrics for low-rank fits.

Reconstructing activity is not enough: a student can reproduce every recorded neuron and
still carry latent structure the teacher lacks, miss some it has, or reach the right
states through the wrong dynamics.  The Computation-through-Dynamics benchmark (CtD;
Versteeg et al.) scores a data-trained model against the network that made the data by

* **State R²**: an affine map from the teacher's state to the student's latent state,
  fitted on training trials and scored (variance-weighted R² over the student's
  dimensions) on held-out trials; low when the student *invents* features;
* **cycle consistency** as the issue names it (CtD's and ``ayna``'s "recovery"): the
  reverse map, student state -> teacher state; low when the student *misses* features
  (underfitting);
* **Rate R²**: the student's rates against the teacher's, no map fitted;
* **Input R²** where a model infers its inputs (lrfit students are driven by the task's
  inputs, so it does not apply to them);
* **fixed points**: counts by stability type and matched locations.

The state of a network.  Currents obey ``x[t+1] = (1 - a) x[t] + a (J phi(x[t]) + W_in u[t])``
(``a = dt / tau``), so they split exactly into ``x = x_rec + W_in v + (1 - a)^(t+1) x0``
with ``v[t+1] = (1 - a) v[t] + a u[t]`` the leaky-integrated inputs and ``x_rec`` the part
the recurrence built (:func:`network_state`).  For a low-rank network ``x_rec = M kappa``:
its recurrent state is ``kappa`` (:meth:`lrfit.LowRankFit.latents` without the decay of the
initial state).  A full-rank network has no ``M``; its recurrent state is the top
principal components of ``x_rec`` that explain 99% of its variance (fitted on the training
trials).  The **state** of either is ``[recurrent state, v]``, the coordinates of all
its currents; that is what the CtD metrics compare (:func:`compare_states`).  Because
teacher and student receive the same inputs, ``v`` is nearly the same in both and is
predicted almost for free; the stricter ``*_recurrent`` scores keep the other network's
whole state as the predictor but score only the recurrent coordinates.

Fixed points are compared in activity space (:func:`pair_fixed_points`): unit ``i`` of
the student stands for teacher unit ``ids[i]``, each network's fixed point ``kappa*`` is
the state ``x* = M kappa* + W_in u``, and points are paired one to one (Hungarian
assignment) among points of the same stability type; a pair counts as matched when the
root-mean-square distance per recorded unit is below ``tol`` (10%) of the root-mean-square
activity of the teacher's recorded units.

The failure modes (:func:`failure_modes`) use CtD's and ``ayna``'s default thresholds: a
Rate R² or cycle consistency below 0.9 is *underfitting*, a State R² below 0.9 *feature
invention*, an Input R² below 0.5 *dynamical misattribution*; with supplied inputs lrfit
reads misattribution from the landscape instead: states that agree (both R² >= 0.9) while
the stable fixed points do not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LrfitError
from ._common import as_input_vector, fields_json, lowrank_params, to_numpy
from .fixed_points import FixedPointResult, find_fixed_points
from .fixed_points import _flow as latent_flow_batch

__all__ = [
    "FixedPointAgreement",
    "NetworkState",
    "StateAgreement",
    "affine_r2",
    "pair_fixed_points",
    "compare_states",
    "failure_modes",
    "latent_step",
    "leaky_inputs",
    "network_state",
    "rms_activity",
]

#: CtD / ayna default thresholds (``ayna.scan.Thresholds``): below them a metric flags its failure mode.
STATE_THRESHOLD = 0.9
INPUT_THRESHOLD = 0.5
#: Share of the recurrent variance kept by the principal components of a full-rank network's state.
PCA_VARIANCE = 0.99
#: Trials processed at once (keeps float64 copies of large simulations small).
_BLOCK = 64


def _rows(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``(trials, time, D)`` -> ``(samples, D)`` over the valid bins."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        return values
    if mask is None:
        return values.reshape(-1, values.shape[-1])
    return values[np.asarray(mask, dtype=bool)]


def affine_r2(source_train: np.ndarray, target_train: np.ndarray, source_test: np.ndarray, target_test: np.ndarray,
              mask_train: np.ndarray | None = None, mask_test: np.ndarray | None = None) -> float:
    """Variance-weighted R² of an affine map ``source -> target`` fitted on training data, scored on test data.

    Ordinary least squares with an intercept (as scikit-learn's ``LinearRegression``), scored
    as ``1 - sum_d SSE_d / sum_d SST_d`` over the target dimensions ``d`` (scikit-learn's
    ``variance_weighted`` R², the CtD convention).

    Parameters
    ----------
    source_train, target_train, source_test, target_test : ndarray
        ``(trials, time, D)`` or ``(samples, D)``.
    mask_train, mask_test : ndarray of bool, optional
        ``(trials, time)`` valid bins of 3-D arrays.

    Returns
    -------
    float
        NaN when the test targets have no variance.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(200, 2))
    >>> b = a @ np.array([[1.0, 2.0], [0.5, -1.0]]) + 3.0
    >>> round(affine_r2(a[:150], b[:150], a[150:], b[150:]), 6)
    1.0
    """
    xs, ys = _rows(source_train, mask_train), _rows(target_train, mask_train)
    xt, yt = _rows(source_test, mask_test), _rows(target_test, mask_test)
    if xs.shape[0] != ys.shape[0] or xt.shape[0] != yt.shape[0]:
        raise LrfitError(f"affine_r2: source and target disagree in samples ({xs.shape[0]} vs {ys.shape[0]} training, "
                         f"{xt.shape[0]} vs {yt.shape[0]} test); give arrays of the same trials and bins.")
    if xs.shape[0] < 2 or xt.shape[0] < 1:
        raise LrfitError("affine_r2 needs at least 2 training samples and 1 test sample.")
    x_mean, y_mean = xs.mean(0), ys.mean(0)
    coef = np.linalg.lstsq(xs - x_mean, ys - y_mean, rcond=None)[0]
    pred = (xt - x_mean) @ coef + y_mean
    sst = float(np.sum((yt - yt.mean(0)) ** 2))
    return float(1.0 - np.sum((yt - pred) ** 2) / sst) if sst > 0 else float("nan")


def leaky_inputs(inputs: np.ndarray, alpha: float) -> np.ndarray:
    """The inputs integrated as the network integrates them: ``v[t+1] = (1 - alpha) v[t] + alpha u[t]``, ``v[0] = 0``.

    Parameters
    ----------
    inputs : ndarray
        ``(trials, time, C)``.
    alpha : float
        ``dt / tau``.

    Returns
    -------
    ndarray
        ``(trials, time, C)``: ``v[1..T]``, aligned with the currents ``x[1..T]`` of a simulation.

    Examples
    --------
    >>> leaky_inputs(np.ones((1, 3, 1)), 0.5)[0, :, 0].tolist()
    [0.5, 0.75, 0.875]
    """
    u = np.asarray(inputs, dtype=np.float64)
    out = np.empty_like(u)
    v = np.zeros(u.shape[::2])
    for t in range(u.shape[1]):
        v = (1.0 - alpha) * v + alpha * u[:, t]
        out[:, t] = v
    return out


@dataclass(frozen=True)
class NetworkState:
    """The state of a network on some trials: recurrent coordinates and leaky-integrated inputs.

    Attributes
    ----------
    recurrent : ndarray, (trials, time, Dr)
        ``kappa`` of a low-rank network; the top principal components of ``x_rec`` of a
        full-rank one.
    inputs : ndarray, (trials, time, C)
        ``v``, the inputs integrated with the network's ``alpha``.
    definition : str
        How ``recurrent`` was obtained, in words.
    variance_kept : float or None
        Full rank: share of the variance of ``x_rec`` the components keep.
    """

    recurrent: np.ndarray
    inputs: np.ndarray
    definition: str
    variance_kept: float | None = None

    @property
    def full(self) -> np.ndarray:
        """``[recurrent, inputs]``, ``(trials, time, Dr + C)``: the coordinates of all the currents."""
        return np.concatenate([self.recurrent, self.inputs], axis=-1)

    @property
    def dims(self) -> dict[str, int]:
        """Number of recurrent and input coordinates."""
        return {"recurrent": int(self.recurrent.shape[-1]), "inputs": int(self.inputs.shape[-1])}


def network_state(model: Any, currents: Any, inputs: Any, x0: Any = None, fit_trials: np.ndarray | None = None,
                  mask: np.ndarray | None = None, variance: float = PCA_VARIANCE) -> NetworkState:
    """Split a simulation's currents into recurrent state and leaky-integrated inputs (module docstring).

    Parameters
    ----------
    model : LowRankRNN or FullRankRNN
        The network simulated (its ``w_in``, ``alpha`` and, for low rank, ``m``).
    currents : array-like
        ``(trials, time, N)`` currents ``x[1..T]`` of every unit.
    inputs : array-like
        ``(trials, time, C)`` inputs of the simulation.
    x0 : array-like, optional
        Initial state ``(N,)`` or ``(trials, N)`` (default the model's ``x0``).
    fit_trials : ndarray, optional
        Full rank: trials (indices or a boolean mask) whose bins fit the principal
        components (default all).
    mask : ndarray of bool, optional
        ``(trials, time)`` valid bins (for the components).
    variance : float
        Full rank: share of the variance of ``x_rec`` to keep.

    Returns
    -------
    NetworkState
    """
    x = currents.detach().cpu().numpy() if hasattr(currents, "detach") else np.asarray(currents)
    u = to_numpy(inputs)
    w_in = to_numpy(model.w_in)
    if x.ndim != 3 or x.shape[-1] != w_in.shape[0]:
        raise LrfitError(
            f"network_state: currents of shape {x.shape} do not belong to a network of {w_in.shape[0]} units; "
            "pass the (trials, time, units) currents of that network."
        )
    if u.shape[:2] != x.shape[:2] or u.shape[-1] != w_in.shape[1]:
        raise LrfitError(f"network_state: inputs of shape {u.shape} do not match currents {x.shape} and "
                         f"{w_in.shape[1]} input channels.")
    alpha = float(model.alpha)
    v = leaky_inputs(u, alpha)
    start = np.broadcast_to(to_numpy(model.x0 if x0 is None else x0), (x.shape[0], x.shape[2]))
    decay = (1.0 - alpha) ** np.arange(1, x.shape[1] + 1)

    def recurrent_part(sl: slice) -> np.ndarray:  # x_rec of a block of trials, float64
        return x[sl].astype(np.float64) - v[sl] @ w_in.T - decay[None, :, None] * start[sl, None, :]

    blocks = [slice(i, i + _BLOCK) for i in range(0, x.shape[0], _BLOCK)]
    if hasattr(model, "m"):
        m = to_numpy(model.m)
        proj = np.linalg.pinv(m)  # (R, N): least-squares coordinates on the columns of M
        kappa = np.concatenate([recurrent_part(sl) @ proj.T for sl in blocks])
        return NetworkState(kappa, v, f"kappa: coordinates of the recurrent currents on the {m.shape[1]} columns of M")
    rows = np.ones(x.shape[0], bool) if fit_trials is None else _trial_mask(fit_trials, x.shape[0])
    valid = np.ones(x.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    n = x.shape[2]
    total, outer, count = np.zeros(n), np.zeros((n, n)), 0
    for sl in blocks:
        keep = valid[sl] & rows[sl][:, None]
        sample = recurrent_part(sl)[keep]
        total += sample.sum(0)
        outer += sample.T @ sample
        count += sample.shape[0]
    if count < 2:
        raise LrfitError(
            "network_state: the trials chosen to fit the principal components hold fewer than 2 valid bins."
        )
    mean = total / count
    cov = (outer - count * np.outer(mean, mean)) / (count - 1)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    evals, evecs = np.clip(evals[order], 0.0, None), evecs[:, order]
    share = np.cumsum(evals) / max(float(evals.sum()), 1e-300)
    k = int(min(np.searchsorted(share, variance - 1e-12) + 1, n))
    pcs = np.concatenate([(recurrent_part(sl) - mean) @ evecs[:, :k] for sl in blocks])
    return NetworkState(pcs, v, f"the top {k} principal components of the recurrent currents "
                                f"({100 * share[k - 1]:.1f}% of their variance)", float(share[k - 1]))


def latent_step(model: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """One Euler step of a low-rank network's state ``z = [kappa, v]`` (:func:`network_state`): ``f(z, u) -> z_next``.

    ``kappa <- (1 - a) kappa + a n^T phi(m kappa + W_in v) / N`` and ``v <- (1 - a) v + a u``
    (``a = dt / tau``), exact once the initial state has decayed; the form ayna takes as a
    bundle's ``dynamics`` (``ayna.load_bundle(path, dynamics=latent_step(fit.model_))``).

    Parameters
    ----------
    model : LowRankRNN
        The network.

    Returns
    -------
    callable
        ``f(z, u)`` with ``z`` of shape ``(M, R + C)`` and ``u`` of shape ``(M, C)``.

    Examples
    --------
    >>> from lrfit import LowRankRNN
    >>> step = latent_step(LowRankRNN(20, rank=1, n_inputs=2, seed=0))
    >>> step(np.zeros((3, 3)), np.ones((3, 2))).shape
    (3, 3)
    """
    p = lowrank_params(model)
    r, a = p.rank, p.alpha

    def step(z: np.ndarray, u: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(np.asarray(z, np.float64))
        u = np.atleast_2d(np.asarray(u, np.float64))
        kappa, v = z[:, :r], z[:, r:]
        flow = latent_flow_batch(p, kappa, v @ p.w_in.T)  # dkappa/dt of the fixed-point analysis, per row's drive
        return np.concatenate([kappa + a * flow, (1 - a) * v + a * u], axis=1)

    return step


def _trial_mask(trials: np.ndarray, n: int) -> np.ndarray:
    trials = np.asarray(trials)
    if trials.dtype == bool:
        return trials
    out = np.zeros(n, bool)
    out[trials.astype(int)] = True
    return out


@dataclass(frozen=True)
class StateAgreement:
    """How well two networks' states predict each other (module docstring).

    Attributes
    ----------
    state_r2 : float
        Teacher state -> student state (CtD's State R²; low: feature invention).
    cycle_consistency : float
        Student state -> teacher state (CtD's and ayna's "recovery"; low: underfitting).
    state_r2_recurrent, cycle_consistency_recurrent : float
        The same maps scored on the recurrent coordinates only.
    dims_teacher, dims_student : dict
        Recurrent and input coordinates of each state.
    n_train_trials, n_test_trials : int
        Trials that fit the maps and trials that score them.
    """

    state_r2: float
    cycle_consistency: float
    state_r2_recurrent: float
    cycle_consistency_recurrent: float
    dims_teacher: dict[str, int]
    dims_student: dict[str, int]
    n_train_trials: int
    n_test_trials: int

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary."""
        return fields_json(self)


def compare_states(teacher: NetworkState, student: NetworkState, train: np.ndarray,
                   mask: np.ndarray | None = None) -> StateAgreement:
    """State R² both ways between a teacher's and a student's states on the same trials.

    Parameters
    ----------
    teacher, student : NetworkState
        States on the same ``(trials, time)``.
    train : ndarray
        Trials (indices or boolean mask) that fit the affine maps; the others score them.
    mask : ndarray of bool, optional
        ``(trials, time)`` valid bins.

    Returns
    -------
    StateAgreement

    Examples
    --------
    A student whose latents are an invertible linear image of the teacher's agrees both ways:

    >>> rng = np.random.default_rng(0)
    >>> k = rng.normal(size=(10, 20, 2)); v = rng.normal(size=(10, 20, 1))
    >>> t = NetworkState(k, v, "teacher"); s = NetworkState(k @ np.array([[2.0, 1.0], [0.0, 1.0]]), v, "student")
    >>> a = compare_states(t, s, np.arange(8))
    >>> round(a.state_r2, 6), round(a.cycle_consistency, 6)
    (1.0, 1.0)
    """
    if teacher.recurrent.shape[:2] != student.recurrent.shape[:2]:
        raise LrfitError(f"compare_states: the teacher's state covers {teacher.recurrent.shape[:2]} (trials, time) and "
                         f"the student's {student.recurrent.shape[:2]}; simulate both on the same trials.")
    n = teacher.recurrent.shape[0]
    tr = _trial_mask(train, n)
    if not tr.any() or tr.all():
        raise LrfitError("compare_states needs some trials to fit the maps and others to score them; "
                         "give a train selection that is neither empty nor every trial.")
    valid = np.ones(teacher.recurrent.shape[:2], bool) if mask is None else np.asarray(mask, bool)

    def r2(src: np.ndarray, dst: np.ndarray) -> float:
        return affine_r2(src[tr], dst[tr], src[~tr], dst[~tr], valid[tr], valid[~tr])

    t_full, s_full = teacher.full, student.full
    return StateAgreement(
        state_r2=r2(t_full, s_full),
        cycle_consistency=r2(s_full, t_full),
        state_r2_recurrent=r2(t_full, student.recurrent),
        cycle_consistency_recurrent=r2(s_full, teacher.recurrent),
        dims_teacher=teacher.dims,
        dims_student=student.dims,
        n_train_trials=int(tr.sum()),
        n_test_trials=int((~tr).sum()),
    )


def rms_activity(activity: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root-mean-square of ``(trials, time, units)`` activity over units and valid bins."""
    rows = _rows(activity, mask)
    return float(np.sqrt(np.mean(rows**2))) if rows.size else float("nan")


@dataclass(frozen=True)
class FixedPointAgreement:
    """Fixed points of a teacher and a student under the same constant input, paired in activity space.

    Attributes
    ----------
    counts_teacher, counts_student : dict
        Fixed points per stability label.
    pairs : list of dict
        One per teacher point: ``teacher`` (index), ``stability``, ``student`` (index of
        the paired student point of the same label, or ``None``), ``distance`` (RMS per
        recorded unit, relative to ``scale``; ``None`` if unpaired), ``matched``.
    missing : dict
        Teacher points without a matched student point, per label.
    spurious : dict
        Student points without a matched teacher point, per label.
    scale : float
        RMS activity of the teacher's recorded units (the unit of ``distance``).
    tol : float
        Largest relative distance of a match.
    input : list of float
        The constant input.
    """

    counts_teacher: dict[str, int]
    counts_student: dict[str, int]
    pairs: list[dict[str, Any]]
    missing: dict[str, int]
    spurious: dict[str, int]
    scale: float
    tol: float
    input: list[float]

    @property
    def stable_matched(self) -> int:
        """Stable teacher points with a matched stable student point."""
        return sum(1 for p in self.pairs if p["matched"] and p["stability"] == "stable")

    @property
    def agrees(self) -> bool:
        """Same stable points: every stable teacher point matched and no spurious stable student point."""
        return (self.stable_matched == self.counts_teacher.get("stable", 0)
                and self.counts_student.get("stable", 0) == self.counts_teacher.get("stable", 0))

    def summary(self) -> str:
        """One line: stable points matched, the counts of each network, what is missing or spurious."""
        def counts(c: dict[str, int]) -> str:
            return ", ".join(f"{v} {k}" for k, v in c.items() if v) or "none"

        text = (f"{self.stable_matched} of {self.counts_teacher.get('stable', 0)} stable teacher points matched within "
                f"{100 * self.tol:.0f}% of the rms activity (teacher: {counts(self.counts_teacher)}; student: "
                f"{counts(self.counts_student)})")
        extra = [f"{v} {k} missing" for k, v in self.missing.items() if v] + [
            f"{v} spurious {k}" for k, v in self.spurious.items() if v]
        return text + ("; " + ", ".join(extra) if extra else "")

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary (with ``stable_matched``, ``agrees`` and ``summary``)."""
        return fields_json(self, stable_matched=self.stable_matched, agrees=self.agrees, summary=self.summary())


def _points_in_activity(model: Any, found: FixedPointResult, units: np.ndarray) -> np.ndarray:
    p = lowrank_params(model)
    u = as_input_vector(found.input, p.n_inputs)
    pts = found.kappas()
    x = pts @ p.m.T + p.w_in @ u if len(pts) else np.zeros((0, p.n_units))
    return x[:, units]


def pair_fixed_points(teacher: Any, student: Any, ids: Sequence[int], scale: float, u: Any = None,
                         u_student: Any = None, tol: float = 0.1, n_starts: int = 512, seed: int = 0,
                         teacher_points: FixedPointResult | None = None,
                         student_points: FixedPointResult | None = None,
                         observe_teacher: Callable[[np.ndarray], np.ndarray] | None = None,
                         observe_student: Callable[[np.ndarray], np.ndarray] | None = None) -> FixedPointAgreement:
    """Fixed points of a low-rank teacher and a low-rank student, paired one to one in activity space.

    By default the activity is the recorded units' currents at each point.  Where the
    student sees its units through another observation (a counts fit's Poisson readout),
    *observe_teacher* and *observe_student* map ``(points, units)`` currents to what is
    compared (e.g. expected counts), and *scale* is the teacher's RMS in that space.

    Parameters
    ----------
    teacher, student : LowRankRNN
        The student's first ``len(ids)`` units stand for the teacher's units *ids*.
    ids : sequence of int
        Teacher unit of each recorded neuron.
    scale : float
        RMS activity of the teacher's recorded units (see :func:`rms_activity`).
    u, u_student : array-like, optional
        Constant input of the teacher and of the student (default zeros; the student's
        defaults to the teacher's).
    tol : float
        A pair matches when its RMS distance per recorded unit is below ``tol * scale``.
    n_starts, seed : int
        Starts of :func:`find_fixed_points` (for both networks).
    teacher_points, student_points : FixedPointResult, optional
        Fixed points already found (else searched here).
    observe_teacher, observe_student : callable, optional
        Maps from the recorded units' currents ``(points, units)`` to the compared activity.

    Returns
    -------
    FixedPointAgreement
    """
    from scipy.optimize import linear_sum_assignment

    ids = np.asarray([int(i) for i in ids])
    pt, ps = lowrank_params(teacher), lowrank_params(student)
    if ids.size == 0 or ids.size > ps.n_units or ids.max() >= pt.n_units or ids.min() < 0:
        raise LrfitError("pair_fixed_points: the neuron ids do not map the student's units onto the teacher's; "
                         "pass the teacher unit of each fitted neuron.")
    if not scale > 0:
        raise LrfitError(f"pair_fixed_points: scale must be a positive RMS activity, got {scale}.")
    u_t = as_input_vector(u, pt.n_inputs)
    u_s = u_t if u_student is None else as_input_vector(u_student, ps.n_inputs)
    ft = find_fixed_points(teacher, u=u_t, n_starts=n_starts, seed=seed) if teacher_points is None else teacher_points
    fs = find_fixed_points(student, u=u_s, n_starts=n_starts, seed=seed) if student_points is None else student_points
    xt = _points_in_activity(teacher, ft, ids)
    xs = _points_in_activity(student, fs, np.arange(ids.size))
    if observe_teacher is not None:
        xt = np.asarray(observe_teacher(xt), dtype=np.float64).reshape(len(xt), ids.size)
    if observe_student is not None:
        xs = np.asarray(observe_student(xs), dtype=np.float64).reshape(len(xs), ids.size)
    lt = [fp.stability for fp in ft.fixed_points]
    ls = [fp.stability for fp in fs.fixed_points]
    pairs = [{"teacher": i, "stability": lab, "student": None, "distance": None, "matched": False}
             for i, lab in enumerate(lt)]
    used: set[int] = set()
    if len(xt) and len(xs):
        dist = np.linalg.norm(xt[:, None, :] - xs[None, :, :], axis=-1) / np.sqrt(ids.size) / scale
        cost = np.where(np.array(lt)[:, None] == np.array(ls)[None, :], dist, 1e6 + dist)
        for i, j in zip(*linear_sum_assignment(cost)):
            if lt[i] != ls[j]:
                continue
            d = float(dist[i, j])
            pairs[i].update(student=int(j), distance=d, matched=bool(d <= tol))
            if d <= tol:
                used.add(int(j))
    labels = ("stable", "saddle", "source", "marginal")
    missing = {lab: sum(1 for p in pairs if p["stability"] == lab and not p["matched"]) for lab in labels}
    spurious = {lab: sum(1 for j, l2 in enumerate(ls) if l2 == lab and j not in used) for lab in labels}
    return FixedPointAgreement(ft.counts(), fs.counts(), pairs, missing, spurious, float(scale), float(tol),
                               [float(v) for v in u_t])


def failure_modes(rate_r2: float | None, state: StateAgreement | None, fixed_points: FixedPointAgreement | None = None,
                  input_r2: float | None = None, threshold: float = STATE_THRESHOLD,
                  input_threshold: float = INPUT_THRESHOLD) -> tuple[list[str], str]:
    """Which of CtD's failure modes the numbers indicate, and one line saying so.

    Parameters
    ----------
    rate_r2 : float or None
        Rate R² of the student against the teacher.
    state : StateAgreement or None
        State R² and cycle consistency.
    fixed_points : FixedPointAgreement, optional
        The landscape comparison.
    input_r2 : float, optional
        Input R² (only for models that infer their inputs).
    threshold, input_threshold : float
        Flag levels (CtD's and ayna's defaults 0.9 and 0.5).

    Returns
    -------
    tuple
        ``(modes, line)``: the flagged modes among ``"underfitting"``,
        ``"feature invention"``, ``"dynamical misattribution"`` (empty when none), and a
        sentence naming them with the numbers behind them.

    Examples
    --------
    >>> failure_modes(0.99, None)[0]
    []
    >>> failure_modes(0.5, None)[1]
    'underfitting: Rate R² 0.500 < 0.9.'
    """
    modes: list[str] = []
    reasons: list[str] = []

    def low(value: float | None, limit: float) -> bool:
        return value is not None and bool(np.isfinite(value)) and value < limit

    under = []
    if low(rate_r2, threshold):
        under.append(f"Rate R² {rate_r2:.3f} < {threshold:g}")
    if state is not None and low(state.cycle_consistency, threshold):
        under.append(f"cycle consistency {state.cycle_consistency:.3f} < {threshold:g} (the student misses part of "
                     "the teacher's state)")
    if under:
        modes.append("underfitting")
        reasons.append("underfitting: " + "; ".join(under))
    if state is not None and low(state.state_r2, threshold):
        modes.append("feature invention")
        reasons.append(f"feature invention: State R² {state.state_r2:.3f} < {threshold:g} (the student has state the "
                       "teacher lacks)")
    misattributed = []
    if low(input_r2, input_threshold):
        misattributed.append(f"Input R² {input_r2:.3f} < {input_threshold:g}")
    states_agree = not modes and state is not None
    if fixed_points is not None and not fixed_points.agrees and states_agree:
        misattributed.append("the states agree but the stable fixed points do not: " + fixed_points.summary())
    if misattributed:
        modes.append("dynamical misattribution")
        reasons.append("dynamical misattribution: " + "; ".join(misattributed))
    if fixed_points is not None and not fixed_points.agrees and not states_agree:
        reasons.append("fixed points: " + fixed_points.summary())
    if not modes:
        checked = ["Rate R²" if rate_r2 is not None else None, "State R² and cycle consistency" if state else None,
                   "stable fixed points" if fixed_points is not None else None]
        line = "no failure mode: " + ", ".join(c for c in checked if c) + f" agree (thresholds {threshold:g})."
        return modes, line
    return modes, "; ".join(reasons) + "."
