"""``LowRankFit``: a low-rank RNN trained neuron by neuron on recorded activity (LINT)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from torch import nn

from ..errors import LrfitError, check_choice
from ..models import FullRankRNN, Trajectory
from ..threads import step_work, with_fit_threads
from .checks import check_compatible, check_fit, check_fitted
from .fit_files import load_fit, save_fit
from .initial_states import start_index, start_states
from .metrics import fit_scores, r2_score
from .objective import batch_loss, mean_loss
from .observation import Observation, as_observation
from .solver import optimise
from .staging import StagedTrials, stage
from .starts import learning_rate, optimiser_settings, start_network

if TYPE_CHECKING:
    from data_adapters import TrialData

log = logging.getLogger(__name__)

SCORES = ("r2", "bits_per_spike")


class LowRankFit(TransformerMixin, BaseEstimator):
    """Fit a low-rank RNN to recorded activity, one unit per recorded neuron.

    The network ``x[t+1] = x + alpha (-x + M N^T phi(x) / N + W_in u[t]) `` with
    ``alpha = data.dt / tau`` is driven by each trial's inputs, and unit ``i``'s
    rate ``phi(x_i)`` (``observation="rates"``) or current ``x_i`` (``"currents"``) is
    trained to match neuron ``i`` (identity readout; extra ``hidden_units`` are
    unconstrained).  ``M``, ``N``, ``W_in`` and the initial state are learnt by Adam
    after a start (:func:`lrfit.fitting.starts.start_network`).  What a unit is compared
    with, and how, is the ``observation`` model (:mod:`lrfit.fitting.observation`): its rate or
    current by mean squared error, or spike counts through a Poisson readout
    ``scale_i * softplus(a_i s_i + b_i)`` of its rate or current ``s_i`` (attribute ``readout_``).

    Parameters
    ----------
    rank : int
        Rank R of the connectivity.
    observation : {'rates', 'currents', 'counts'} or Observation
        What each observed unit is compared with: rates (``tanh(x)`` against rates scaled into
        (-1, 1)), currents (``x`` against centred data), counts (spike counts per bin through a
        Poisson readout of the rates), or an observation model such as ``Poisson("currents")``.
    hidden_units : int
        Units without a recorded counterpart.
    init : {"regression", "fullrank_svd", "random"}
        Start from teacher-forced reduced-rank regression (default), from the
        truncated SVD of a full-rank fit, or at random (:mod:`lrfit.fitting.starts`).
    tau : float
        Time constant in seconds.
    max_epochs : int
        Upper bound on passes over the training trials.
    lr : float or "auto"
        Adam learning rate, or ``"auto"``: the start's (:data:`lrfit.fitting.starts.AUTO_LR`); ``lr_`` holds it.
    batch_size : int
        Trials per gradient step.
    clip_grad : float
        Maximal gradient norm (0 disables clipping).
    patience : int
        Epochs without improvement of the monitored loss (validation, else training) before stopping (0: never).
    tol : float
        Stop at convergence, once the monitored R^2 (validation, else training; bits per spike for counts) gained
        less than this over the last 10 epochs and at least 250 gradient steps (0: never).  The window is
        :func:`lrfit.fitting.policies.convergence_window`; ``stopped_`` says why a fit stopped.
    weight_decay : float
        L2 penalty (Adam's ``weight_decay``).
    x0 : {"shared", "per_condition", "inputs"}
        One learnt initial state for all trials; one per condition (trials with a
        condition not seen in training start from the mean); or a learnt linear
        function of the trial's first-bin inputs, ``x0 + B u[0]``, so that a held-out
        condition starts from a state of its own (e.g. a reach direction's
        preparatory state from its target cue).  With a lead-in
        (:meth:`data_adapters.TrialData.with_lead_in`) the start is that of the lead-in.
    condition_columns : list of str, optional
        Columns of ``data.conditions`` that define a condition (all by default).
    ridge : float
        Relative ridge penalty of the regression start.
    fullrank_model : FullRankRNN, optional
        With ``init="fullrank_svd"``, take this network instead of fitting one.
    fullrank_epochs : int
        Epochs of the full-rank fit behind ``init="fullrank_svd"``.
    random_state : int
        Seed of the initialisation and of the batch order (each through its own
        ``torch.Generator``: a fit leaves the global torch random state alone).
    device : str
        ``"cpu"`` or a GPU such as ``"cuda"``.
    progress : bool
        Show a progress bar.
    checkpoint_dir : str or Path, optional
        Where to write checkpoints (every epoch, and on Ctrl-C).

    Attributes
    ----------
    model_ : LowRankRNN
        The fitted network (SVD-normalised).
    history_ : list of dict
        Per-epoch training metrics (the observation model's score: R^2, or bits per spike).
    observation_ : Observation
        The observation model (``observation`` read as an object).
    readout_ : CountReadout or None
        The observation model's learnt readout (counts: per-neuron gain, offset and unit).
    stopped_ : str
        Why the training stopped: ``"converged"`` (see ``tol``), ``"patience"`` or ``"max_epochs"``.
    lr_ : float
        The learning rate the fit started with (``lr``, or the start's for ``"auto"``).
    neuron_ids_, input_names_ : ndarray, tuple
        What the network was fitted to.

    Notes
    -----
    A scikit-learn estimator (parameters stored unchanged, checked by :meth:`fit`; ``clone`` works); methods
    that need a fitted network raise :class:`lrfit.NotFittedError` before ``fit``.

    Examples
    --------
    Recover a planted rank-1 network from its own noise-free rates:

    >>> import numpy as np, torch
    >>> from lrfit import LowRankFit, LowRankRNN, TrialData
    >>> teacher = LowRankRNN(30, rank=1, n_inputs=1, tau=0.1, dt=0.02, seed=0)
    >>> inputs = np.random.default_rng(0).normal(size=(24, 15, 1)).astype(np.float32)
    >>> with torch.no_grad():
    ...     rates = teacher(torch.from_numpy(inputs), noise_std=0.0).rates.numpy()
    >>> data = TrialData(activity=rates, inputs=inputs, dt=0.02)
    >>> fit = LowRankFit(rank=1, max_epochs=5, progress=False).fit(data)
    >>> fit.model_.rank, fit.score(data) > 0.99
    (1, True)
    >>> fit.latents(data).shape  # (trials, time, rank)
    (24, 15, 1)
    """

    def __init__(self, rank: int = 1, observation: str | Observation = "rates", hidden_units: int = 0,
                 init: str = "regression", tau: float = 0.1, max_epochs: int = 200, lr: float | str = "auto",
                 batch_size: int = 32, clip_grad: float = 1.0, patience: int = 30, tol: float = 1e-4,
                 weight_decay: float = 0.0, x0: str = "shared", condition_columns: list[str] | None = None,
                 ridge: float = 1e-3, fullrank_model: FullRankRNN | None = None, fullrank_epochs: int = 100,
                 random_state: int = 0, device: str = "cpu", progress: bool = True,
                 checkpoint_dir: str | Path | None = None) -> None:
        self.rank = rank
        self.observation = observation
        self.hidden_units = hidden_units
        self.init = init
        self.tau = tau
        self.max_epochs = max_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.clip_grad = clip_grad
        self.patience = patience
        self.tol = tol
        self.weight_decay = weight_decay
        self.x0 = x0
        self.condition_columns = condition_columns
        self.ridge = ridge
        self.fullrank_model = fullrank_model
        self.fullrank_epochs = fullrank_epochs
        self.random_state = random_state
        self.device = device
        self.progress = progress
        self.checkpoint_dir = checkpoint_dir

    def _stage(self, data: TrialData, targets: bool = True) -> StagedTrials:
        index = start_index(self.x0, data, self.condition_table_, self.condition_columns)
        return stage(data, index, self.observation_, self.device, targets)

    def _batch_loss(self, model: nn.Module, tensors: StagedTrials, idx: torch.Tensor) -> torch.Tensor:
        """Training loss of one mini-batch (a seam for tests that inject failures)."""
        return batch_loss(model, tensors, idx, self.x0_table_, self.observation_, self.readout_)

    def _mean_loss(self, data: StagedTrials) -> float:
        return mean_loss(self.model_, data, self.x0_table_, self.observation_, self.readout_)

    def _on_epoch_end(self, epoch: int) -> None:
        """Called after each epoch's checkpoint (a seam for tests that interrupt a fit)."""

    def _step_work(self, train: TrialData, *args: Any, **kwargs: Any) -> int:
        """Multiply-adds of one training step (the thread policy of :mod:`lrfit.threads`)."""
        units = train.n_neurons + self.hidden_units
        width = units if self.init == "fullrank_svd" else 2 * int(self.rank) + train.n_inputs + 1
        return step_work(self.batch_size, units, width)

    @with_fit_threads(_step_work)
    def fit(self, train: TrialData, validation: TrialData | None = None, resume: bool = False) -> LowRankFit:
        """Fit the network to *train*; early stopping watches *validation* when given.

        Parameters
        ----------
        train : TrialData
            Training trials.
        validation : TrialData, optional
            Held-out trials for early stopping and for the progress bar's score.
        resume : bool
            Continue from the checkpoint in ``checkpoint_dir``.

        Returns
        -------
        LowRankFit
            ``self``, fitted.
        """
        check_fit(self, train)
        if validation is not None and validation.n_trials == 0:
            validation = None
        if validation is not None and (validation.n_neurons, validation.n_inputs) != (train.n_neurons, train.n_inputs):
            raise LrfitError(
                "The validation data must have the same neurons and input channels as the training data "
                f"({validation.n_neurons} vs {train.n_neurons} neurons, {validation.n_inputs} vs {train.n_inputs} "
                "inputs).")
        started = time.perf_counter()
        self.observation_ = obs = as_observation(self.observation)
        self.lr_, self.dt_ = learning_rate(self), float(train.dt)
        self.neuron_ids_, self.input_names_ = np.asarray(train.neuron_ids), tuple(train.input_names or ())
        start = start_network(self, train, validation)  # first: the closed-form start's arrays are the largest
        self.model_, self.x0_table_, self.readout_ = model, _, _ = start.model, start.x0_table, start.readout
        self.condition_table_, self.init_seconds_ = start.condition_table, start.seconds
        tensors = self._stage(train)
        val_tensors = self._stage(validation) if validation is not None else None
        params = start.parameters()
        score, label = f"{obs.score_name}", obs.score_label

        def monitor() -> dict[str, float]:
            if val_tensors is None:
                return {}
            loss = self._mean_loss(val_tensors)
            return {"monitor": loss, "val_loss": loss, f"val_{score}": val_tensors.score(loss)}

        def describe(metrics: dict[str, float]) -> str:
            text = f"train {label} {tensors.score(metrics['train_loss']):.4f}"
            return text + (f", val {label} {metrics[f'val_{score}']:.4f}" if f"val_{score}" in metrics else "")

        # The start is a candidate for the returned network: a fit that ends worse than it says so.
        watched = val_tensors if val_tensors is not None else tensors
        start_loss = self._mean_loss(watched)
        start_params = {k: p.detach().clone() for k, p in params.items()}
        state = optimise(params, train.n_trials, lambda idx: self._batch_loss(model, tensors, idx), monitor,
                         optimiser_settings(self, scale=watched.loss_unit), seed=int(self.random_state),
                         checkpoint_dir=self.checkpoint_dir, resume=resume, progress=self.progress, describe=describe,
                         on_epoch_end=self._on_epoch_end)
        for row in state.history:
            row[f"train_{score}"] = tensors.score(row["train_loss"])
            row.pop("monitor", None)
        self.history_, self.best_epoch_, self.epochs_ = state.history, state.best_epoch, state.epoch
        self.stopped_, self.rollbacks_, self.start_loss_ = state.stopped, state.rollbacks, float(start_loss)
        final_loss = self._mean_loss(watched)
        self.ended_worse_than_start_ = bool(not np.isfinite(final_loss) or final_loss > start_loss)
        if self.ended_worse_than_start_:
            with torch.no_grad():
                for k, p in params.items():
                    p.copy_(start_params[k])
            log.warning(
                "The fit ended worse than its %s start (%s loss %.4g -> %.4g%s); the start is returned. The learning "
                "rate (lr = %g, config key optim.lr) is likely too high for these data: lower it.", self.init,
                "validation" if val_tensors is not None else "training", start_loss, final_loss,
                f", {state.rollbacks} rollbacks after non-finite losses" if state.rollbacks else "", self.lr_)
        elif state.rollbacks:
            log.warning("The fit diverged %d time(s) (non-finite loss) and was rolled back with a lower learning "
                        "rate each time; consider a lower lr (config key optim.lr).", state.rollbacks)
        model.svd_normalize_()
        with torch.no_grad():
            model.x0.copy_(start_states(self.x0_table_, tensors.start_index).mean(0) if self.x0 == "inputs"
                           else self.x0_table_.mean(0))
        self.fit_seconds_ = time.perf_counter() - started
        return self

    @torch.no_grad()
    def _predict_array(self, data: TrialData, chunk: int = 256) -> np.ndarray:
        check_compatible(self, data)
        tensors = self._stage(data, targets=False)
        out = np.zeros((data.n_trials, data.n_time, data.n_neurons), dtype=np.float32)  # filled chunk by chunk
        for start in range(0, data.n_trials, chunk):
            idx = torch.arange(start, min(start + chunk, data.n_trials), device=tensors.inputs.device)
            x0 = start_states(self.x0_table_, tensors.start_index[idx])
            traj = self.model_(tensors.inputs.index_select(0, idx), x0=x0, noise_std=0.0)
            out[start : start + len(idx)] = self.observe(traj).cpu().numpy()
        return out

    def predict(self, data: TrialData) -> TrialData:
        """The network's activity for the trials of *data*, as a new ``TrialData``.

        Parameters
        ----------
        data : TrialData
            Trials with the fitted neurons and input channels.

        Returns
        -------
        TrialData
            Same trials, inputs, mask and conditions; activity from the network (for a
            counts fit the expected count per bin, in the units of the recorded counts).
        """
        pred = self._predict_array(data)
        mask = np.asarray(data.mask, dtype=bool)
        pred = np.where(mask[..., None], pred, np.asarray(data.activity)).astype(np.float32)
        meta = dict(data.meta) if isinstance(data.meta, dict) else {}
        meta["prediction"] = {"model": "LowRankFit", "rank": int(self.rank), "target": self.observation_.name}
        return data.replace(activity=pred, meta=meta)

    def score(self, data: TrialData, metric: str = "r2") -> float:
        """Score the network's activity (expected counts for a counts fit) against *data*.

        Parameters
        ----------
        data : TrialData
            Trials to score.
        metric : {"r2", "bits_per_spike"}
            Pooled R^2 (:func:`r2_score`), or the observation model's natural score where it has
            one: for counts the Poisson log-likelihood gain over each neuron's mean count on
            *data*, in bits per spike (:func:`lrfit.fitting.counts.bits_per_spike`).

        Returns
        -------
        float
        """
        check_choice(metric, SCORES, "metric")
        check_fitted(self)
        if metric != "r2" and metric != self.observation_.score_name:
            raise LrfitError(f"metric={metric!r} scores spike counts; this fit's observation is "
                             f"{self.observation_.name!r} (fit observation='counts' to score bits per spike).")
        pred = self._predict_array(data)
        truth, mask = np.asarray(data.activity), np.asarray(data.mask)
        return r2_score(truth, pred, mask) if metric == "r2" else self.observation_.natural_score(truth, pred, mask)

    def evaluate(self, data: TrialData, split: str = "") -> dict[str, Any]:
        """Every score of the fit on *data*, named as in ``metrics.json`` (:func:`lrfit.fitting.metrics.fit_scores`).

        Parameters
        ----------
        data : TrialData
            Trials to score.
        split : str
            Appended to each name (``split="test"``: ``r2_test``, ``r2_test_per_neuron``, ...).

        Returns
        -------
        dict
        """
        pred = self._predict_array(data)  # checks that the estimator is fitted
        return fit_scores(self.observation_, data, pred, split)

    def observe(self, trajectory: Trajectory) -> torch.Tensor:
        """What the fit compares with the recording, ``(trials, time, n_observed)``, from a simulation of its network.

        Parameters
        ----------
        trajectory : lrfit.models.Trajectory
            A simulation of the fitted network (e.g. :meth:`simulate`).

        Returns
        -------
        Tensor
            The observed units' rates or currents, or for a counts fit their expected counts per bin.
        """
        out = trajectory.rates if self.observation_.signal == "rates" else trajectory.currents
        return self.observation_.observe(out[..., : len(self.neuron_ids_)], self.readout_)

    def observe_currents(self, currents: Any) -> torch.Tensor:
        """:meth:`observe` of the observed units' currents ``(..., n_observed)`` alone (e.g. at fixed points)."""
        x = torch.as_tensor(currents, dtype=torch.float32, device=self.model_.device)
        out = self.model_.phi(x) if self.observation_.signal == "rates" else x
        return self.observation_.observe(out, self.readout_)

    @torch.no_grad()
    def simulate(self, data: TrialData) -> Trajectory:
        """Run the fitted network, noise-free, on the inputs of *data* from the fitted initial states.

        Parameters
        ----------
        data : TrialData
            Trials with the fitted input channels (their conditions pick the
            initial states when ``x0="per_condition"``).

        Returns
        -------
        lrfit.models.Trajectory
            Batch-first currents and rates ``(trials, time, N)`` of every unit (hidden units last).
        """
        check_compatible(self, data)
        tensors = self._stage(data, targets=False)
        return self.model_(tensors.inputs, x0=start_states(self.x0_table_, tensors.start_index), noise_std=0.0)

    @torch.no_grad()
    def initial_states(self, data: TrialData) -> np.ndarray:
        """The fitted initial state of each trial of *data*, ``(trials, N)`` (see the ``x0`` parameter)."""
        check_compatible(self, data)
        return start_states(self.x0_table_, self._stage(data, targets=False).start_index).cpu().numpy()

    @torch.no_grad()
    def latents(self, data: TrialData, include_inputs: bool = False) -> np.ndarray:
        """Latent coordinates of the network's currents.

        The currents of a low-rank network live in ``span(M, W_in)`` (plus the decay of the
        initial state): ``x(t) = M kappa(t) + W_in v(t)``.  The coordinates are the
        least-squares solution of that equation at every bin.

        Parameters
        ----------
        data : TrialData
            Trials to simulate.
        include_inputs : bool
            Also return the input coordinates ``v`` after ``kappa``.

        Returns
        -------
        ndarray
            ``(trials, time, R)`` kappa, or ``(trials, time, R + C)`` with inputs.
        """
        currents = self.simulate(data).currents  # checks that the estimator is fitted
        model = self.model_
        basis = model.m if not include_inputs else torch.cat([model.m, model.w_in], 1)
        coords = torch.linalg.lstsq(basis.double(), currents.reshape(-1, model.n_units).T.double()).solution
        return coords.T.reshape(data.n_trials, data.n_time, -1).float().cpu().numpy()

    def transform(self, data: TrialData) -> np.ndarray:
        """The latent trajectories of *data*'s trials, ``(trials, time, rank)`` (scikit-learn's transformer API)."""
        return self.latents(data)

    def save(self, directory: str | Path) -> Path:
        """Save the fitted network and the fit's state into *directory* (tensors + JSON)."""
        check_fitted(self)
        return save_fit(self, directory)

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> LowRankFit:
        """Rebuild a fit saved by :meth:`save`.

        Parameters
        ----------
        directory : str or Path
            Directory written by :meth:`save`.
        device : str
            Where to place the network.

        Returns
        -------
        LowRankFit
            Ready for ``predict``, ``score`` and ``latents``.
        """
        return load_fit(cls, directory, device)

