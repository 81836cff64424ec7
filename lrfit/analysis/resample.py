"""Networks sampled from connectivity statistics, and their evaluation.

Resampling draws each neuron's loadings ``(m_i, n_i, w_in_i, w_out_i)``
independently from its population's Gaussian and copies nothing else from the
original network: if the resampled network still performs the task, the
populations' statistics carry the computation (Dubreuil, Valente et al. 2022).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import LrfitError
from ..fitting.losses import masked_mse
from ..models import LowRankRNN
from ._common import jsonable, to_numpy
from .populations import MixtureStats, PopulationResult

__all__ = [
    "TaskEvaluation",
    "choose_populations_by_task",
    "evaluate_on_task",
    "gaussian_lowrank_rnn",
    "r2_score_activity",
    "sample_loadings",
    "sample_network",
    "run_network",
    "set_loadings_",
    "subset_trials",
]

_TEMPLATE_KEYS = ("tau", "dt", "noise_std", "nonlinearity")

log = logging.getLogger(__name__)


def _population_counts(weights: np.ndarray, n_units: int, rng: np.random.Generator, exact: bool) -> np.ndarray:
    if not exact:
        return rng.multinomial(n_units, weights)
    raw = weights * n_units
    counts = np.floor(raw).astype(int)
    rest = n_units - counts.sum()
    counts[np.argsort(-(raw - counts), kind="stable")[:rest]] += 1
    return counts


def _gaussian_draw(rng: np.random.Generator, mean: np.ndarray, cov: np.ndarray, size: int) -> np.ndarray:
    cov = 0.5 * (cov + cov.T)
    vals, vecs = np.linalg.eigh(cov)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    return mean + rng.standard_normal((size, mean.size)) @ root.T


def sample_loadings(
    stats: MixtureStats | PopulationResult, n_units: int, seed: int = 0, exact_weights: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_units`` loading vectors from a Gaussian mixture.

    Neuron ``i`` gets population ``p_i`` (exact proportions ``round(alpha_p N)`` if
    ``exact_weights``, else multinomial) and loadings ``y_i ~ N(mu^{p_i}, Sigma^{p_i})``;
    for a ``symmetric`` (sign-folded) mixture each row is then multiplied by a random
    sign ``s_i = +-1`` (probability 1/2 each).

    Returns
    -------
    tuple of ndarray
        ``(loadings (N, D), labels (N,))``, neurons grouped by population.
    """
    stats = stats.mixture if isinstance(stats, PopulationResult) else stats
    if int(n_units) < 1:
        raise LrfitError(f"n_units must be a positive integer, got {n_units}.")
    rng = np.random.default_rng(seed)
    counts = _population_counts(stats.weights, int(n_units), rng, exact_weights)
    blocks, labels = [], []
    for p, cnt in enumerate(counts):
        if cnt:
            blocks.append(_gaussian_draw(rng, stats.means[p], stats.covariances[p], int(cnt)))
            labels.append(np.full(int(cnt), p))
    loadings = np.concatenate(blocks)
    if getattr(stats, "symmetric", False):
        loadings = loadings * rng.choice([-1.0, 1.0], size=loadings.shape[0])[:, None]
    return loadings, np.concatenate(labels)


@torch.no_grad()
def set_loadings_(model: LowRankRNN, loadings: np.ndarray) -> LowRankRNN:
    """Write loading vectors ``[m, n, w_in, w_out]`` (rows = neurons) into a network, in place."""
    r, c, o = model.rank, model.n_inputs, model.n_outputs
    y = torch.as_tensor(np.asarray(loadings), dtype=model.m.dtype, device=model.device)
    if y.shape != (model.n_units, 2 * r + c + o):
        raise LrfitError(
            f"loadings have shape {tuple(y.shape)}, expected ({model.n_units}, {2 * r + c + o}) = (units, 2R + C + O)."
        )
    model.m.copy_(y[:, :r])
    model.n.copy_(y[:, r : 2 * r])
    model.w_in.copy_(y[:, 2 * r : 2 * r + c])
    model.w_out.copy_(y[:, 2 * r + c :])
    model.x0.zero_()
    return model


def sample_network(
    stats: MixtureStats | PopulationResult,
    n_units: int,
    seed: int = 0,
    template: Any = None,
    populations: Any = None,
    single_gaussian: bool = False,
    exact_weights: bool = True,
    return_labels: bool = False,
    **model_kwargs: Any,
):
    """Sample a new :class:`~lrfit.models.LowRankRNN` of any size from mixture statistics.

    Each neuron's loadings ``(m_i, n_i, w_in_i, w_out_i) ~ N(mu^{p_i}, Sigma^{p_i})``
    (:func:`sample_loadings`); the network is ``x_dot = -x + m n^T phi(x) / N +
    W_in u``, ``z = W_out^T phi(x) / N``, so its mean-field limit is that of the
    mixture whatever ``N``.  Nothing else is copied; the initial state is ``x0 = 0``.

    Parameters
    ----------
    stats : MixtureStats or PopulationResult
        The mixture (a :class:`PopulationResult` contributes its ``mixture``).
    n_units : int
        Size of the new network.
    seed : int
        Seed of the draw.
    template : RNNBase, optional
        Network whose ``tau``, ``dt``, ``noise_std`` and ``nonlinearity`` are reused.
    populations : sequence of int, optional
        Keep only these populations (weights renormalised).
    single_gaussian : bool
        Replace the mixture by one moment-matched Gaussian (:meth:`MixtureStats.merged`),
        the control for "do the populations matter?".
    exact_weights : bool
        Population sizes ``round(alpha_p N)`` (else multinomial).
    return_labels : bool
        Also return the population label of each new neuron.
    **model_kwargs
        Overrides for :class:`LowRankRNN` (``tau``, ``dt``, ``noise_std``, ``nonlinearity``, ``device``).

    Returns
    -------
    LowRankRNN, or (LowRankRNN, ndarray) if ``return_labels``
    """
    stats = stats.mixture if isinstance(stats, PopulationResult) else stats
    if populations is not None:
        stats = stats.select(populations)
    if single_gaussian:
        stats = stats.merged()
    kwargs: dict[str, Any] = {}
    if template is not None:
        kwargs.update({k: getattr(template, k) for k in _TEMPLATE_KEYS if hasattr(template, k)})
    kwargs.update(model_kwargs)
    kwargs["seed"] = int(seed)
    loadings, labels = sample_loadings(stats, n_units, seed=seed, exact_weights=exact_weights)
    net = LowRankRNN(int(n_units), rank=stats.rank, n_inputs=stats.n_inputs, n_outputs=stats.n_outputs, **kwargs)
    set_loadings_(net, loadings)
    return (net, labels) if return_labels else net


def gaussian_lowrank_rnn(
    n_units: int,
    overlaps: Any,
    n_noise: float = 1.0,
    seed: int = 0,
    exact: bool = True,
    **model_kwargs: Any,
) -> LowRankRNN:
    """A rank-``R`` network with jointly Gaussian ``m, n`` and prescribed overlaps.

    ``m ~ N(0, I_R)`` per neuron and ``n_k = sum_l sigma_{kl} m_l + n_noise xi_k``,
    so that ``n_k . m_l / N -> sigma_{kl}`` (``overlaps``) and ``m_k . m_l / N -> delta_kl``.
    With ``exact``, ``m`` is orthogonalised to ``m^T m / N = I`` and ``xi`` projected
    orthogonally to ``m``, making ``n^T m / N = sigma`` exactly at finite ``N``.  The
    classic test networks of Mastrogiuseppe & Ostojic (2018).

    Parameters
    ----------
    n_units : int
        ``N``.
    overlaps : array-like, (R, R) or float
        ``sigma_{n_k m_l}``.
    n_noise : float
        Standard deviation of the part of ``n`` uncorrelated with ``m``.
    seed : int
        Seed.
    exact : bool
        Enforce the overlaps exactly (see above).
    **model_kwargs
        Passed to :class:`LowRankRNN` (``n_inputs``, ``n_outputs``, ``tau``, ``dt``, ...).

    Returns
    -------
    LowRankRNN
    """
    sig = np.atleast_2d(np.asarray(overlaps, float))
    r = sig.shape[0]
    if sig.shape != (r, r):
        raise LrfitError(f"overlaps must be a square (R, R) matrix, got shape {sig.shape}.")
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n_units, r))
    xi = rng.standard_normal((n_units, r))
    if exact:
        q, _ = np.linalg.qr(m)
        m = q * np.sqrt(n_units)
        xi = xi - q @ (q.T @ xi)
    n = m @ sig.T + n_noise * xi
    net = LowRankRNN(int(n_units), rank=r, seed=seed, **model_kwargs)
    with torch.no_grad():
        net.m.copy_(torch.as_tensor(m, dtype=net.m.dtype))
        net.n.copy_(torch.as_tensor(n, dtype=net.n.dtype))
    return net


@dataclass(frozen=True)
class TaskEvaluation:
    """Performance of a network on a task.

    Attributes
    ----------
    accuracy : float
        ``task.accuracy(outputs, trials)`` over all trials.
    accuracy_by : pandas.DataFrame or None
        Accuracy per value of ``by`` (column ``by`` and ``accuracy``, ``n_trials``).
    psychometric : pandas.DataFrame or None
        ``task.psychometric(outputs, trials)`` if the task provides it.
    outputs : ndarray, (K, T, O)
        The network's readout.
    loss : float
        Masked mean squared error of the readout against the task's targets (NaN for
        trials without targets).
    """

    accuracy: float
    accuracy_by: pd.DataFrame | None
    psychometric: pd.DataFrame | None
    outputs: np.ndarray
    loss: float = float("nan")

    def to_json_dict(self) -> dict[str, Any]:
        """Accuracy, per-condition accuracy and psychometric table (no outputs)."""
        return jsonable({"accuracy": self.accuracy, "accuracy_by": self.accuracy_by, "psychometric": self.psychometric})


def subset_trials(trials: Any, idx: np.ndarray) -> Any:
    """Trials ``idx`` of a trial container (``select`` method, a dataclass, or any object with array fields)."""
    import copy
    import dataclasses

    idx = np.asarray(idx)
    if hasattr(trials, "select") and callable(trials.select):
        try:
            return trials.select(idx)
        except Exception:  # noqa: BLE001 - fall back to field-wise slicing
            pass
    n = len(trials.conditions) if hasattr(trials, "conditions") else np.asarray(trials.inputs).shape[0]

    def cut(v: Any) -> Any:
        if isinstance(v, pd.DataFrame | pd.Series) and len(v) == n:
            return v.iloc[idx].reset_index(drop=True)
        if isinstance(v, np.ndarray | torch.Tensor) and v.ndim >= 1 and v.shape[0] == n:
            return v[torch.as_tensor(idx) if isinstance(v, torch.Tensor) else idx]
        return v

    if dataclasses.is_dataclass(trials):
        return dataclasses.replace(
            trials, **{f.name: cut(getattr(trials, f.name)) for f in dataclasses.fields(trials) if f.init}
        )
    new = copy.copy(trials)
    for k, v in vars(trials).items():
        setattr(new, k, cut(v))
    return new


def _noise_generator(model: Any, noise_std: float | None, seed: int) -> torch.Generator | None:
    """A generator seeded with *seed* when the simulation has private noise, else ``None``."""
    if noise_std is not None and noise_std <= 0:
        return None
    gen = torch.Generator(device=model.device)
    gen.manual_seed(int(seed))
    return gen


def run_network(model: Any, inputs: Any, noise_std: float | None = 0.0, seed: int = 0, x0: Any = None) -> Any:
    """Simulate ``model`` on ``inputs (K, T, C)`` without gradients; returns the :class:`Trajectory`."""
    with torch.no_grad():
        inp = torch.as_tensor(np.asarray(to_numpy(inputs), np.float32))
        gen = _noise_generator(model, noise_std, seed)
        x0t = None if x0 is None else torch.as_tensor(np.asarray(to_numpy(x0), np.float32))
        return model(inp, x0=x0t, noise_std=noise_std, generator=gen)


def evaluate_on_task(
    model: Any,
    task: Any,
    trials: Any = None,
    n_trials: int = 256,
    seed: int = 0,
    noise_std: float | None = 0.0,
    by: str | None = None,
    generator: torch.Generator | None = None,
    batch_size: int | None = None,
    psychometric: bool = True,
) -> TaskEvaluation:
    """Accuracy, readout loss (and psychometric curves) of a network on a task: the one task scorer.

    Computes ``z(t) = W_out^T phi(x(t)) / N`` on the task's trials and returns
    ``task.accuracy(z, trials)`` and the masked mean squared error of ``z`` against the
    trials' targets (the teacher's training loss); with ``by`` (a column of
    ``trials.conditions``, e.g. ``"context"``) also the accuracy of each group of trials,
    and ``task.psychometric(z, trials)`` when the task has it.

    Parameters
    ----------
    model : RNNBase
        Any lrfit network with a readout.
    task : object
        Has ``generate(n_trials, seed=...)`` returning trials with ``.inputs (K, T, C)``
        and ``.conditions``, ``accuracy(outputs, trials)`` and optionally
        ``psychometric(outputs, trials)``.
    trials : object, optional
        Pre-generated trials (else ``task.generate(n_trials, seed=seed)``).
    n_trials, seed : int
        Trials to generate; the seed also seeds the private noise (without *generator*).
    noise_std : float or None
        Private noise during evaluation (``0`` deterministic, ``None`` the network's own).
    by : str, optional
        Condition column for per-group accuracy.
    generator : torch.Generator, optional
        Generator of the private noise (default: seeded with *seed* when there is noise).
    batch_size : int, optional
        Trials simulated at once (all by default); the noise is drawn batch after batch.
    psychometric : bool
        Also compute the psychometric table.

    Returns
    -------
    TaskEvaluation
    """
    if getattr(model, "n_outputs", 0) == 0:
        raise LrfitError(
            "The network has no readout (n_outputs = 0), so it cannot be scored on a task; give it a readout."
        )
    if trials is None:
        trials = task.generate(n_trials, seed=seed)
    if generator is None:
        generator = _noise_generator(model, noise_std, seed)
    inputs = torch.as_tensor(np.asarray(to_numpy(trials.inputs), np.float32), device=model.device)
    scored = hasattr(trials, "targets") and hasattr(trials, "loss_mask")
    if scored:
        targets = torch.as_tensor(np.asarray(trials.targets), device=model.device)
        mask = torch.as_tensor(np.asarray(trials.loss_mask), device=model.device)
    size = int(batch_size) if batch_size else max(len(inputs), 1)
    outs, loss_sum, weight = [], 0.0, 0.0
    with torch.no_grad():
        for start in range(0, len(inputs), size):
            sl = slice(start, start + size)
            out = model(inputs[sl], noise_std=noise_std, generator=generator).outputs
            if scored:
                w = float(mask[sl].sum())
                loss_sum += float(masked_mse(out, targets[sl], mask[sl])) * w
                weight += w
            outs.append(out.cpu())
    out = torch.cat(outs).numpy()
    acc = float(task.accuracy(out, trials))
    acc_by = None
    if by is not None:
        cond = trials.conditions
        if by not in cond.columns:
            raise LrfitError(f"Unknown condition column '{by}'; the trials have columns {list(cond.columns)}.")
        rows = []
        for value, idx in cond.groupby(by, sort=True).indices.items():
            rows.append(
                {
                    by: value,
                    "accuracy": float(task.accuracy(out[idx], subset_trials(trials, idx))),
                    "n_trials": len(idx),
                }
            )
        acc_by = pd.DataFrame(rows)
    psy = task.psychometric(out, trials) if psychometric and hasattr(task, "psychometric") else None
    loss = loss_sum / max(weight, 1.0) if scored else float("nan")
    return TaskEvaluation(acc, acc_by, psy, out, loss)


def r2_score_activity(
    model: Any, inputs: Any, activity: Any, mask: Any = None, target: str = "rates", x0: Any = None
) -> np.ndarray:
    """Per-neuron coefficient of determination of a network's activity against data.

    ``R^2_i = 1 - sum_{k,t} (a_ikt - y_ikt)^2 / sum_{k,t} (a_ikt - mean_i a)^2`` over
    the valid bins, with ``y`` the network's rates (or currents) driven by ``inputs``.

    Parameters
    ----------
    model : RNNBase
        Network with one unit per recorded neuron (extra hidden units after them are ignored).
    inputs : array-like, (K, T, C)
        Inputs.
    activity : array-like, (K, T, N_rec)
        Recorded activity.
    mask : array-like of bool, (K, T), optional
        Valid bins.
    target : str
        ``"rates"`` or ``"currents"``.
    x0 : array-like, optional
        Initial state.

    Returns
    -------
    ndarray, (N_rec,)
    """
    a = to_numpy(activity)
    traj = run_network(model, inputs, noise_std=0.0, x0=x0)
    y = to_numpy(traj.rates if target == "rates" else traj.currents)[..., : a.shape[-1]]
    if y.shape != a.shape:
        raise LrfitError(
            f"activity has shape {a.shape} but the network produces {y.shape}; pass (trials, time, neurons) matching "
            "the inputs."
        )
    w = np.ones(a.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    a, y = a[w], y[w]
    ss_res = ((a - y) ** 2).sum(0)
    ss_tot = ((a - a.mean(0)) ** 2).sum(0)
    return 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, np.nan)


def choose_populations_by_task(
    populations: PopulationResult,
    model: Any,
    task: Any,
    accuracy_drop: float = 0.1,
    n_units: int = 1024,
    draws: int = 3,
    trials: Any = None,
    n_trials: int = 512,
    seed: int = 0,
) -> PopulationResult:
    """The fewest stable populations whose resampled networks perform the task.

    Implements the functional criterion of Dubreuil, Valente et al. (2022): with
    ``a(P)`` the mean accuracy of ``draws`` networks of ``n_units`` units sampled from
    the ``P``-population mixture (:func:`sample_network`) and ``a_net`` the accuracy of
    *model* itself, the number chosen is

        ``P* = min { P stable : a(P) >= a_net - accuracy_drop }``

    over the seed-stable numbers of *populations* (``ari >= ari_threshold``), tried in
    increasing order.  The statistical choice (lowest BIC) can split a population that
    does one job into sub-populations the network does not need; this criterion keeps
    the populations that carry the computation.  If no stable number qualifies, the
    statistical choice is kept (``rule`` stays ``"bic"``).

    Parameters
    ----------
    populations : PopulationResult
        From :func:`lrfit.analysis.fit_populations` on *model*.
    model : RNNBase
        The network the populations describe, with a readout; its ``tau``, ``dt`` and
        nonlinearity are copied to the resampled networks.
    task : Task
        Scores the networks (``task.accuracy``).
    accuracy_drop : float
        Largest accepted loss of accuracy of the resampled networks.
    n_units : int
        Size of each resampled network.
    draws : int
        Networks sampled per number of populations.
    trials : TaskTrials, optional
        Trials to score on (default ``task.generate(n_trials, seed=10_000 + seed)``).
    n_trials, seed : int
        Trials generated when *trials* is not given; draw ``d`` uses seed ``seed + d``.

    Returns
    -------
    PopulationResult
        *populations* with ``P*`` populations, ``rule="task"`` and the accuracies tried
        (``task_accuracy``).
    """
    if trials is None:
        trials = task.generate(int(n_trials), seed=10_000 + int(seed))
    reference = evaluate_on_task(model, task, trials=trials).accuracy
    tried: dict[int, float] = {}
    for count in map(int, populations.stable_counts):
        candidate = populations.with_count(count)
        accuracies = [
            evaluate_on_task(
                sample_network(candidate, n_units, seed=seed + d, template=model), task, trials=trials
            ).accuracy
            for d in range(draws)
        ]
        tried[count] = float(np.mean(accuracies))
        if tried[count] >= reference - accuracy_drop:
            log.info("populations by task: %d (resampled accuracy %.3f, network %.3f)", count, tried[count], reference)
            return replace(candidate, rule="task", task_accuracy=tried)
    log.warning("no stable number of populations gives resampled networks within %.2f of the network's accuracy %.3f "
                "(tried %s); keeping the BIC choice of %d", accuracy_drop, reference, tried, populations.n_populations)
    return replace(populations, task_accuracy=tried)
