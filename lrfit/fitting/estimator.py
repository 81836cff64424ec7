"""``LowRankFit``: a low-rank RNN trained neuron by neuron on recorded activity (LINT)."""

from __future__ import annotations

import inspect
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn

from ..errors import LrfitError, NotFittedError, check_choice
from ..models import FullRankRNN, LowRankRNN, load_model, read_model_meta, save_model
from ..threads import step_work, with_fit_threads
from .counts import COUNTS_FROM, CountStart, bits_per_spike, count_start
from .losses import CountReadout, TrialRows, lowrank_loss, masked_mse, poisson_nll
from .metrics import condition_labels, psth_r2, r2_per_condition, r2_per_neuron, r2_score
from .reductions import column_moments
from .solver import OptimiserSettings, optimise
from .regression_init import reduced_rank_regression, to_currents

log = logging.getLogger(__name__)

TARGETS = ("rates", "currents", "counts")
SCORES = ("r2", "bits_per_spike")
INITS = ("regression", "fullrank_svd", "random")
#: Adam's learning rate by start when ``lr="auto"``: a random start is far from the data and
#: takes larger steps; a closed-form start is polished with small ones.  On the recovery problem
#: (``benchmarks/bench_fit_epoch.py``) the random start reached test R^2 0.99 in 2.5 s at 0.02
#: (6.8 s at 0.005) and converged at 0.9966 (0.9961); on held-out M1 reach directions a random start
#: scored 0.608-0.612 at lr 0.01-0.04, while the regression start fell from 0.376 at 0.005 to 0.224
#: at 0.02.
AUTO_LR: dict[str, float] = {"regression": 5e-3, "fullrank_svd": 5e-3, "random": 2e-2}
X0_MODES = ("shared", "per_condition", "inputs")
FIT_STATE_FILE = "fit_state.pt"
#: scale of the random weights of hidden units next to a closed-form start
HIDDEN_INIT_SCALE = 0.1
#: Where a fit config (:mod:`lrfit.config`) sets each :class:`LowRankFit` parameter: ``"section.key"``
#: or a top-level ``"key"``.  The one definition of that mapping: the config's defaults are the
#: defaults of ``LowRankFit.__init__`` (:func:`config_defaults`), and :func:`params_from_config`
#: reads the parameters back.  Parameters not named here are set by code (progress, checkpoints).
CONFIG_KEYS: dict[str, str] = {
    "rank": "model.rank",  # in a config: an integer, or a list of ranks for rank selection
    "target": "model.target",
    "counts_from": "model.counts_from",
    "hidden_units": "model.hidden_units",
    "init": "model.init",
    "tau": "model.tau",
    "x0": "model.x0",
    "ridge": "model.ridge",
    "fullrank_epochs": "model.fullrank_epochs",
    "max_epochs": "optim.max_epochs",
    "lr": "optim.lr",
    "batch_size": "optim.batch_size",
    "clip_grad": "optim.clip_grad",
    "patience": "optim.patience",
    "tol": "optim.tol",
    "weight_decay": "optim.weight_decay",
    "random_state": "seed",
    "device": "device",
}


@dataclass
class _Tensors:
    """Data of one split on the device."""

    activity: torch.Tensor  # (K, T, n_obs), zero where masked
    inputs: torch.Tensor  # (K, T, C)
    weight: torch.Tensor | None  # (K, T): 1 where the bin counts; None when every bin counts
    condition_index: torch.Tensor  # (K,) long: row of the x0 table; or (K, S) float: coefficients of its rows
    variance: float  # mean squared deviation from each neuron's mean (R^2 denominator per entry)
    null_loss: float = 0.0  # counts: mean Poisson term of each neuron's mean count (the bits-per-spike null)
    spikes: float = 1.0  # counts: mean count per valid entry
    _buffers: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def n_trials(self) -> int:
        """Number of trials K."""
        return self.activity.shape[0]

    def score(self, loss: float, counts: bool) -> float:
        """The score of a mean loss on these data: R^2, or for counts bits per spike over the null."""
        if counts:
            return (self.null_loss - loss) / self.loss_unit(counts) if self.spikes > 0 else float("nan")
        return 1.0 - loss / self.loss_unit(counts)

    def loss_unit(self, counts: bool) -> float:
        """The change of the mean loss that moves :meth:`score` by one: the variance (R^2), or for
        counts the spikes per entry times ln 2 (bits per spike)."""
        return self.spikes * math.log(2.0) if counts else self.variance

    def take(self, idx: torch.Tensor, reuse: bool = False,
             activity: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Inputs, activity and mask weights of trials *idx* (contiguous copies).

        With ``reuse`` the copies are written into buffers kept for the next call with
        as many trials, and are only valid until then (a training step consumes them
        before the next mini-batch is taken): a fresh multi-megabyte tensor per batch
        costs more in page faults than the copy itself.  Without ``activity`` the
        activity is not copied (None): the latent loss reads it where it lies
        (:class:`lrfit.fitting.losses.TrialRows`).
        """
        sources = (self.inputs, self.activity if activity else None, self.weight)
        if not reuse:
            return tuple(None if src is None else src.index_select(0, idx) for src in sources)  # type: ignore[return-value]
        return tuple(None if src is None else torch.index_select(src, 0, idx, out=self._buffer((name, len(idx)), src, 0))
                     for name, src in zip(("inputs", "activity", "weight"), sources))  # type: ignore[return-value]

    def _buffer(self, key: tuple[str, int], like: torch.Tensor, dim: int) -> torch.Tensor:
        """The buffer kept under *key* = ``(name, size)``: shaped like *like* with *size* entries along *dim*."""
        if key not in self._buffers:
            shape = list(like.shape)
            shape[dim] = key[1]
            self._buffers[key] = like.new_empty(shape)
        return self._buffers[key]


class LowRankFit(BaseEstimator):
    """Fit a low-rank RNN to recorded activity, one unit per recorded neuron.

    The network ``x[t+1] = x + alpha (-x + M N^T phi(x) / N + W_in u[t]) `` with
    ``alpha = data.dt / tau`` is driven by each trial's inputs, and unit ``i``'s
    rate ``phi(x_i)`` (``target="rates"``) or current ``x_i`` (``"currents"``) is
    trained to match neuron ``i`` (identity readout; extra ``hidden_units`` are
    unconstrained).  ``M``, ``N``, ``W_in`` and the initial state are learnt by Adam
    on the masked mean squared error, after a closed-form start.  For spike counts
    (``"counts"``) unit ``i``'s expected count per bin is
    ``scale_i * softplus(a_i s_i + b_i)`` with ``s_i`` its rate or current
    (``counts_from``), a learnt gain ``a_i`` and offset ``b_i`` (attribute ``readout_``), and
    the loss is the Poisson negative log-likelihood (:mod:`lrfit.fitting.counts`).

    Parameters
    ----------
    rank : int
        Rank R of the connectivity.
    target : {"rates", "currents", "counts"}
        Fit ``tanh(x)`` to rates scaled into (-1, 1), ``x`` to centred data, or spike counts
        per bin (non-negative, integers or not) through a Poisson readout.
    counts_from : {"rates", "currents"}
        With ``target="counts"``: whether each unit's rate ``phi(x_i)`` or its current
        ``x_i`` drives its Poisson readout.
    hidden_units : int
        Units without a recorded counterpart.
    init : {"regression", "fullrank_svd", "random"}
        Start from teacher-forced reduced-rank regression (default), from the
        truncated SVD of a full-rank fit, or at random.
    tau : float
        Time constant in seconds.
    max_epochs : int
        Upper bound on passes over the training trials.
    lr : float or "auto"
        Adam learning rate, or ``"auto"``: 0.02 for ``init="random"``, 0.005 for the closed-form starts.
        The rates by start are :data:`AUTO_LR`; ``lr_`` holds the rate a fit used.
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
        Per-epoch training metrics (R^2, or bits per spike for counts).
    readout_ : CountReadout
        With ``target="counts"``: per-neuron gain, offset and unit of the Poisson readout.
    stopped_ : str
        Why the training stopped: ``"converged"`` (see ``tol``), ``"patience"`` or ``"max_epochs"``.
    lr_ : float
        The learning rate the fit started with (``lr``, or the start's for ``"auto"``).
    neuron_ids_, input_names_ : ndarray, tuple
        What the network was fitted to.

    Notes
    -----
    A scikit-learn estimator: parameters are stored unchanged by ``__init__`` and
    checked by :meth:`fit`; ``get_params``, ``set_params`` and
    ``sklearn.base.clone`` work; methods that need a fitted network raise
    :class:`lrfit.NotFittedError` before ``fit``.

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

    def __init__(
        self,
        rank: int = 1,
        target: str = "rates",
        counts_from: str = "rates",
        hidden_units: int = 0,
        init: str = "regression",
        tau: float = 0.1,
        max_epochs: int = 200,
        lr: float | str = "auto",
        batch_size: int = 32,
        clip_grad: float = 1.0,
        patience: int = 30,
        tol: float = 1e-4,
        weight_decay: float = 0.0,
        x0: str = "shared",
        condition_columns: list[str] | None = None,
        ridge: float = 1e-3,
        fullrank_model: FullRankRNN | None = None,
        fullrank_epochs: int = 100,
        random_state: int = 0,
        device: str = "cpu",
        progress: bool = True,
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        self.rank = rank
        self.target = target
        self.counts_from = counts_from
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

    # -- validation -------------------------------------------------------------------
    def _check_settings(self, data: Any) -> None:
        check_choice(self.target, TARGETS, "target")
        check_choice(self.counts_from, COUNTS_FROM, "counts_from")
        check_choice(self.init, INITS, "init")
        check_choice(self.x0, X0_MODES, "x0 mode")
        if isinstance(self.rank, bool) or int(self.rank) != self.rank or self.rank < 1:
            raise LrfitError(f"rank must be a positive integer, got {self.rank}.")
        if self.hidden_units < 0:
            raise LrfitError(f"hidden_units must be >= 0, got {self.hidden_units}.")
        numbers = [("tau", 0.0, True), ("batch_size", 1, False), ("max_epochs", 0, False), ("patience", 0, False),
                   ("clip_grad", 0.0, False), ("weight_decay", 0.0, False), ("ridge", 0.0, False), ("tol", 0.0, False)]
        for name, low, strict in numbers if self.lr == "auto" else [("lr", 0.0, True), *numbers]:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and (value > low if strict else value >= low)):
                also = " (or 'auto')" if name == "lr" else ""
                raise LrfitError(f"{name} (config key '{CONFIG_KEYS.get(name, name)}') must be a number "
                                 f"{'>' if strict else '>='} {low}{also}, got {value!r}.")
        _check_device(self.device)
        units = data.n_neurons + self.hidden_units
        if self.rank > units:
            raise LrfitError(
                f"rank {self.rank} is larger than the number of units ({data.n_neurons} neurons + "
                f"{self.hidden_units} hidden); choose rank <= {units}."
            )
        if data.n_trials == 0:
            raise LrfitError("The training split is empty (0 trials); check the split settings or the data selection.")
        if data.dt > self.tau:
            raise LrfitError(f"data.dt={data.dt} s is larger than tau={self.tau} s; rebin the data or raise tau.")
        if self.target == "counts":
            _check_counts(data)
        if self.target == "rates":
            valid = np.asarray(data.mask, dtype=bool)
            activity = np.asarray(data.activity)
            # max |a| per bin without copying the activity (this runs on every fit)
            per_bin = np.maximum(activity.max(-1), -activity.min(-1))
            peak = float(per_bin[valid].max()) if valid.any() else 0.0
            if peak >= 1.0:
                source = data.meta.get("source", "the data") if isinstance(data.meta, dict) else "the data"
                raise LrfitError(
                    f"Activity of {source} reaches |{peak:.3g}|, outside tanh's range (-1, 1) for target='rates'; "
                    "normalise it (config key preprocess.normalise, e.g. centre_global or soft; in Python "
                    "data.normalise(...)) and/or lower the config key preprocess.scale, or fit model.target: currents."
                )

    def _check_compatible(self, data: Any) -> None:
        self._check_fitted()
        if data.n_neurons != len(self.neuron_ids_):
            raise LrfitError(
                f"The data have {data.n_neurons} neurons but the model was fitted to {len(self.neuron_ids_)}; "
                "pass the same neurons (held-out neurons go through lrfit.fitting.heldout_neuron_r2)."
            )
        if data.n_inputs != self.model_.n_inputs:
            raise LrfitError(
                f"The data have {data.n_inputs} input channels {list(data.input_names or [])} but the model was "
                f"fitted with {self.model_.n_inputs} {list(self.input_names_)}; build the same task inputs."
            )
        if abs(data.dt - self.dt_) > 1e-9:
            raise LrfitError(f"The data have dt={data.dt} s but the model was fitted at dt={self.dt_} s; rebin them.")

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit(train) first.")

    # -- data -------------------------------------------------------------------------
    def _labels(self, data: Any) -> np.ndarray:
        if data.conditions is None or data.conditions.shape[1] == 0:
            return np.array(["all"] * data.n_trials, dtype=object)
        return condition_labels(data.conditions, self.condition_columns)

    def _tensors(self, data: Any, targets: bool = True) -> _Tensors:
        """The split on the device; without *targets* (predictions) the activity is a stand-in of its shape."""
        dev = torch.device(self.device)
        activity = (np.asarray(data.activity, dtype=np.float32) if targets
                    else np.zeros((0, 0, data.n_neurons), dtype=np.float32))
        mask = np.asarray(data.mask, dtype=bool)
        if self.x0 == "per_condition" and hasattr(self, "condition_table_"):
            lookup = {c: i for i, c in enumerate(self.condition_table_)}
            index = np.array([lookup.get(c, -1) for c in self._labels(data)], dtype=np.int64)
        elif self.x0 == "inputs":  # coefficients of the rows [x0, B]: x[0] = x0 + B u[first bin]
            first = np.asarray(data.inputs, dtype=np.float32)[:, 0]
            index = np.concatenate([np.ones((data.n_trials, 1), dtype=np.float32), first], 1)
        else:
            index = np.zeros(data.n_trials, dtype=np.int64)
        count, mean, ss = column_moments(activity, mask)  # block by block: no copy of the data
        variance = float(ss.sum() / (count * ss.size)) if count and ss.size else 1.0
        counts = {}
        if self.target == "counts" and count:  # the per-neuron mean-count null of bits per spike
            from scipy.special import xlogy

            # mean over entries of mean_n - y log(mean_n): per neuron mean_n - mean_n log(mean_n)
            counts = {"null_loss": float((mean - xlogy(mean, mean)).mean()), "spikes": float(mean.mean())}
        return _Tensors(
            activity=torch.as_tensor(np.where(mask[..., None], activity, 0.0), device=dev) if targets
            else torch.zeros((), device=dev).expand(data.n_trials, data.n_time, data.n_neurons),
            inputs=torch.tensor(np.asarray(data.inputs, dtype=np.float32), device=dev),
            weight=None if mask.all() else torch.as_tensor(mask.astype(np.float32), device=dev),
            condition_index=torch.as_tensor(index, device=dev),
            variance=variance if variance > 0 else 1.0,
            **counts,
        )

    # -- network pieces ----------------------------------------------------------------
    def _start_rows(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial-state table and each trial's row in it, for x0-table indices *index* (-1: unseen condition).

        Trials of conditions not seen in training start from the mean of the table,
        appended as its last row when needed.
        """
        table = self.x0_table_
        if index.is_floating_point():  # x0="inputs": coefficients of the rows
            return table, index
        if table.shape[0] == 1:
            return table, torch.zeros_like(index)
        if bool((index < 0).any()):
            table = torch.cat([table, table.mean(0, keepdim=True)], 0)
            index = torch.where(index < 0, table.shape[0] - 1, index)
        return table, index

    def _start_state(self, index: torch.Tensor) -> torch.Tensor:
        """Initial states ``(B, N)`` for trials with x0-table indices *index* (-1: unseen condition)
        or, for ``x0="inputs"``, coefficients of the table's rows."""
        table, rows = self._start_rows(index)
        return rows @ table if rows.is_floating_point() else table[rows]

    @property
    def _compared(self) -> str:
        """What each observed unit contributes: ``"rates"`` (``phi(x)``) or ``"currents"`` (``x``)."""
        return self.counts_from if self.target == "counts" else self.target

    def _simulate(self, model: nn.Module, tensors: _Tensors, idx: torch.Tensor) -> torch.Tensor:
        """Batch-first ``(B, T, n_obs)`` activity of the observed units for trials *idx* (expected counts for counts)."""
        x0 = self._start_state(tensors.condition_index[idx])
        return self.observe(model(tensors.inputs.index_select(0, idx), x0=x0, noise_std=0.0))

    def observe(self, trajectory: Any) -> torch.Tensor:
        """What the fit compares with the recording, from a simulation of its network.

        Parameters
        ----------
        trajectory : lrfit.models.Trajectory
            A simulation of the fitted network (e.g. :meth:`simulate`).

        Returns
        -------
        Tensor
            ``(trials, time, n_observed)``: the observed units' rates or currents, or for a
            counts fit their expected counts per bin.
        """
        n_obs = len(self.neuron_ids_)
        out = trajectory.rates if self._compared == "rates" else trajectory.currents
        out = out[..., :n_obs]
        return out if self.target != "counts" else self._read_out(out)

    def observe_currents(self, currents: Any) -> torch.Tensor:
        """:meth:`observe` of the observed units' currents ``(..., n_observed)`` alone (e.g. at fixed points)."""
        x = torch.as_tensor(currents, dtype=torch.float32, device=self.model_.device)
        out = self.model_.phi(x) if self._compared == "rates" else x
        return out if self.target != "counts" else self._read_out(out)

    def _read_out(self, s: torch.Tensor) -> torch.Tensor:
        """Expected counts per bin of a counts fit's compared quantity *s* (rates or currents)."""
        gain, bias, scale = self.readout_
        return torch.nn.functional.softplus(torch.addcmul(bias, s, gain)) * scale

    def _loss(self, model: nn.Module, tensors: _Tensors, idx: torch.Tensor) -> torch.Tensor:
        """Masked loss of trials *idx*: squared error, or Poisson for counts (latent coordinates when low-rank)."""
        latent = isinstance(model, LowRankRNN)
        # consumed by this step's forward/backward; on a CPU the latent loss reads the trials where they lie
        in_place = latent and model.device.type == "cpu"
        inputs, target, weight = tensors.take(idx, reuse=True, activity=not in_place)
        if in_place:
            target = TrialRows(tensors.activity, idx)
        table, rows = self._start_rows(tensors.condition_index[idx])
        readout = self.readout_ if self.target == "counts" else None
        if latent:
            return lowrank_loss(model.m, model.n, model.w_in, table, rows, inputs, target, weight, model.alpha,
                                model.nonlinearity, self._compared, readout)
        traj = model(inputs, x0=rows @ table if rows.is_floating_point() else table[rows], noise_std=0.0)
        out = (traj.rates if self._compared == "rates" else traj.currents)[..., : target.shape[-1]]
        return masked_mse(out, target, weight) if readout is None else poisson_nll(out, target, weight, readout)

    @torch.no_grad()
    def _eval_loss(self, model: nn.Module, tensors: _Tensors, chunk: int = 256) -> float:
        total, count = 0.0, 0
        k = tensors.n_trials
        for start in range(0, k, chunk):
            idx = torch.arange(start, min(start + chunk, k), device=tensors.activity.device)
            total += float(self._loss(model, tensors, idx)) * len(idx)
            count += len(idx)
        return total / max(count, 1)

    def _settings(self, epochs: int | None = None, scale: float = 1.0) -> OptimiserSettings:
        return OptimiserSettings(
            max_epochs=int(self.max_epochs if epochs is None else epochs),
            lr=self._learning_rate(),
            batch_size=int(self.batch_size),
            clip_grad=float(self.clip_grad),
            patience=int(self.patience),
            weight_decay=float(self.weight_decay),
            tol=float(self.tol),
            scale=float(scale),  # the monitored score's unit: tol is a gain of R^2 (bits per spike for counts)
        )

    def _learning_rate(self) -> float:
        """Adam's learning rate: ``lr``, or for ``"auto"`` the start's (:data:`AUTO_LR`)."""
        return AUTO_LR[self.init] if self.lr == "auto" else float(self.lr)

    def _new_network(self, data: Any, kind: str = "lowrank") -> nn.Module:
        common = dict(
            n_inputs=data.n_inputs,
            n_outputs=0,
            tau=float(self.tau),
            dt=float(data.dt),
            noise_std=0.0,
            seed=int(self.random_state),
            device=self.device,
        )
        units = data.n_neurons + self.hidden_units
        if kind == "fullrank":
            return FullRankRNN(units, rho=1.0, **common)
        return LowRankRNN(units, rank=int(self.rank), **common)

    def _initialise(self, model: LowRankRNN, train: Any, validation: Any | None) -> None:
        """Closed-form start for the observed units; hidden units keep small random weights.

        The random start keeps ``M, N ~ N(0, 1)``, draws ``W_in ~ N(0, 0.1^2)`` and starts
        the initial state at the first bin's currents, as plain backpropagation through
        time of the same network does (a unit-variance ``W_in`` and a zero start
        generalised worse to held-out reach directions of the M1 recording).
        """
        n_obs = train.n_neurons
        start = time.perf_counter()
        activity = self._start_activity(train)
        if self.init == "random":
            with torch.no_grad():
                model.w_in.mul_(HIDDEN_INIT_SCALE)
                self.x0_table_[:, :n_obs] = torch.as_tensor(self._x0_start(train, activity), dtype=torch.float32)
            self.init_seconds_ = time.perf_counter() - start
            return
        if self.init == "regression":
            fit = reduced_rank_regression(
                activity, train.inputs, train.mask, model.alpha, int(self.rank), self._compared, float(self.ridge)
            )
            m, n, w_in = fit.m, fit.n, fit.w_in
        else:
            full = self.fullrank_model or self._fit_fullrank(train, validation)
            low = full.truncated(int(self.rank))
            m, n = low.m.detach().cpu().numpy()[:n_obs], low.n.detach().cpu().numpy()[:n_obs]
            w_in = full.w_in.detach().cpu().numpy()[:n_obs]
        with torch.no_grad():
            for param in (model.m, model.n, model.w_in):
                param.mul_(HIDDEN_INIT_SCALE)
            model.m[:n_obs] = torch.as_tensor(m, dtype=torch.float32)
            model.n[:n_obs] = torch.as_tensor(n, dtype=torch.float32)
            model.w_in[:n_obs] = torch.as_tensor(w_in, dtype=torch.float32)
            self.x0_table_[:, :n_obs] = torch.as_tensor(self._x0_start(train, activity), dtype=torch.float32)
        self.init_seconds_ = time.perf_counter() - start

    def _start_activity(self, train: Any) -> np.ndarray:
        """The activity the closed-form starts fit: the data, or for counts the start of the readout.

        For counts the readout (``readout_``) is set here from :func:`lrfit.fitting.counts.count_start`,
        whose mapped log-rates (rates or currents, see ``counts_from``) are returned.
        """
        if self.target != "counts":
            return np.asarray(train.activity)
        start: CountStart = count_start(np.asarray(train.activity), np.asarray(train.mask), float(train.dt),
                                        self.counts_from)
        dev = self.x0_table_.device
        self.readout_ = CountReadout(nn.Parameter(torch.as_tensor(start.gain, device=dev)),
                                     nn.Parameter(torch.as_tensor(start.bias, device=dev)),
                                     torch.as_tensor(start.scale, device=dev))
        return start.activity

    def _x0_start(self, train: Any, activity: np.ndarray) -> np.ndarray:
        """Initial currents from the first bin of *activity*: mean per x0-table entry ``(entries, n_obs)``.

        Trials whose first bin is not valid (e.g. the first bin of a lead-in) start from rest (0).
        """
        first = to_currents(np.asarray(activity)[:, 0], self._compared)
        first = np.where(np.asarray(train.mask)[:, :1], first, 0.0)
        labels = self._labels(train)
        if self.x0 == "shared":
            return first.mean(0, keepdims=True)
        if self.x0 == "inputs":  # least squares of the first bin's currents on [1, u[first bin]]
            design = np.concatenate([np.ones((train.n_trials, 1)), np.asarray(train.inputs)[:, 0]], 1)
            return np.linalg.lstsq(design, first, rcond=None)[0]
        return np.stack([first[labels == c].mean(0) for c in self.condition_table_])

    def _fit_fullrank(self, train: Any, validation: Any | None) -> FullRankRNN:
        """Full-rank fit from random connectivity (the original method's first stage)."""
        tensors, validation = self._tensors(train), self._tensors(validation) if validation is not None else None
        log.info("init='fullrank_svd': fitting a full-rank network for %d epochs", self.fullrank_epochs)
        full = self._new_network(train, "fullrank")
        params = dict(full.named_parameters())
        params = {k: v for k, v in params.items() if k in ("j", "w_in")}
        params["x0_table"] = self.x0_table_
        params.update(self._readout_params())
        monitor_data = validation or tensors
        optimise(
            params,
            tensors.n_trials,
            lambda idx: self._loss(full, tensors, idx),
            lambda: {"monitor": self._eval_loss(full, monitor_data)},
            self._settings(self.fullrank_epochs, monitor_data.loss_unit(self.target == "counts")),
            seed=int(self.random_state),
            progress=self.progress,
        )
        return full

    def _readout_params(self) -> dict[str, torch.Tensor]:
        """The learnt readout parameters (counts: gain and bias), by name."""
        if self.target != "counts":
            return {}
        return {"gain": self.readout_.gain, "bias": self.readout_.bias}

    def _step_work(self, train: Any, *args: Any, **kwargs: Any) -> int:
        """Multiply-adds of one training step (the thread policy of :mod:`lrfit.threads`)."""
        units = train.n_neurons + self.hidden_units
        width = units if self.init == "fullrank_svd" else 2 * int(self.rank) + train.n_inputs + 1
        return step_work(self.batch_size, units, width)

    # -- public API -------------------------------------------------------------------
    @with_fit_threads(_step_work)
    def fit(self, train: Any, validation: Any | None = None, resume: bool = False) -> "LowRankFit":
        """Fit the network to *train*; early stopping watches *validation* when given.

        Parameters
        ----------
        train : TrialData
            Training trials.
        validation : TrialData, optional
            Held-out trials for early stopping and for the progress bar's R^2.
        resume : bool
            Continue from the checkpoint in ``checkpoint_dir``.

        Returns
        -------
        LowRankFit
            ``self``, fitted.
        """
        self._check_settings(train)
        if validation is not None:
            if validation.n_trials == 0:
                validation = None
            elif validation.n_neurons != train.n_neurons or validation.n_inputs != train.n_inputs:
                raise LrfitError(
                    "The validation data must have the same neurons and input channels as the training data "
                    f"({validation.n_neurons} vs {train.n_neurons} neurons, {validation.n_inputs} vs {train.n_inputs} inputs)."
                )
        started = time.perf_counter()
        self.lr_ = self._learning_rate()
        self.dt_ = float(train.dt)
        self.neuron_ids_ = np.asarray(train.neuron_ids)
        self.input_names_ = tuple(train.input_names or ())
        self.condition_table_ = list(dict.fromkeys(self._labels(train))) if self.x0 == "per_condition" else ["all"]
        model = self._new_network(train)
        rows = 1 + train.n_inputs if self.x0 == "inputs" else len(self.condition_table_)
        self.x0_table_ = nn.Parameter(torch.zeros(rows, model.n_units, device=model.device))
        self._initialise(model, train, validation)  # first: the closed-form start's arrays are the largest
        tensors = self._tensors(train)
        val_tensors = self._tensors(validation) if validation is not None else None
        self.model_ = model
        params = {"m": model.m, "n": model.n, "w_in": model.w_in, "x0_table": self.x0_table_,
                  **self._readout_params()}
        counts = self.target == "counts"
        score_name = "bits_per_spike" if counts else "r2"

        def monitor() -> dict[str, float]:
            if val_tensors is None:
                return {}
            loss = self._eval_loss(model, val_tensors)
            return {"monitor": loss, "val_loss": loss, f"val_{score_name}": val_tensors.score(loss, counts)}

        # The start is a candidate for the returned network: a fit that ends worse than it says so.
        watched = val_tensors if val_tensors is not None else tensors
        start_loss = self._eval_loss(model, watched)
        start_params = {k: p.detach().clone() for k, p in params.items()}

        label = "bits/spike" if counts else "R2"

        def describe(metrics: dict[str, float]) -> str:
            text = f"train {label} {tensors.score(metrics['train_loss'], counts):.4f}"
            if f"val_{score_name}" in metrics:
                text += f", val {label} {metrics[f'val_{score_name}']:.4f}"
            return text

        state = optimise(
            params,
            train.n_trials,
            lambda idx: self._batch_loss(model, tensors, idx),
            monitor,
            self._settings(scale=watched.loss_unit(counts)),
            seed=int(self.random_state),
            checkpoint_dir=self.checkpoint_dir,
            resume=resume,
            progress=self.progress,
            describe=describe,
            on_epoch_end=self._on_epoch_end,
        )
        for row in state.history:
            row[f"train_{score_name}"] = tensors.score(row["train_loss"], counts)
            row.pop("monitor", None)
        self.history_ = state.history
        self.best_epoch_ = state.best_epoch
        self.epochs_ = state.epoch
        self.stopped_ = state.stopped
        self.rollbacks_ = state.rollbacks
        self.start_loss_ = float(start_loss)
        final_loss = self._eval_loss(model, watched)
        self.ended_worse_than_start_ = bool(not np.isfinite(final_loss) or final_loss > start_loss)
        if self.ended_worse_than_start_:
            with torch.no_grad():
                for k, p in params.items():
                    p.copy_(start_params[k])
            log.warning(
                "The fit ended worse than its %s start (%s loss %.4g -> %.4g%s); the start is returned. The learning "
                "rate (optim.lr = %g) is likely too high for these data: lower it.", self.init,
                "validation" if val_tensors is not None else "training", start_loss, final_loss,
                f", {state.rollbacks} rollbacks after non-finite losses" if state.rollbacks else "", self.lr_)
        elif state.rollbacks:
            log.warning("The fit diverged %d time(s) (non-finite loss) and was rolled back with a lower learning "
                        "rate each time; consider a lower optim.lr.", state.rollbacks)
        model.svd_normalize_()
        with torch.no_grad():
            model.x0.copy_(self._start_state(tensors.condition_index).mean(0) if self.x0 == "inputs"
                           else self.x0_table_.mean(0))
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _batch_loss(self, model: nn.Module, tensors: _Tensors, idx: torch.Tensor) -> torch.Tensor:
        """Training loss of one mini-batch (a seam for tests that inject failures)."""
        return self._loss(model, tensors, idx)

    def _on_epoch_end(self, epoch: int) -> None:
        """Called after each epoch's checkpoint (a seam for tests that interrupt a fit)."""

    @torch.no_grad()
    def _predict_array(self, data: Any, chunk: int = 256) -> np.ndarray:
        self._check_compatible(data)
        tensors = self._tensors(data, targets=False)
        out = np.zeros((data.n_trials, data.n_time, data.n_neurons), dtype=np.float32)  # filled chunk by chunk
        for start in range(0, data.n_trials, chunk):
            idx = torch.arange(start, min(start + chunk, data.n_trials), device=tensors.inputs.device)
            out[start : start + len(idx)] = self._simulate(self.model_, tensors, idx).cpu().numpy()
        return out

    def predict(self, data: Any) -> Any:
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
        meta["prediction"] = {"model": "LowRankFit", "rank": int(self.rank), "target": self.target}
        return type(data)(
            activity=pred,
            inputs=data.inputs,
            input_names=data.input_names,
            mask=data.mask,
            conditions=data.conditions,
            dt=data.dt,
            time=data.time,
            neuron_ids=data.neuron_ids,
            meta=meta,
        )

    def score(self, data: Any, metric: str = "r2") -> float:
        """Score the network's activity (expected counts for a counts fit) against *data*.

        Parameters
        ----------
        data : TrialData
            Trials to score.
        metric : {"r2", "bits_per_spike"}
            Pooled R^2 (:func:`r2_score`), or for a counts fit the Poisson log-likelihood
            gain over each neuron's mean count on *data*, in bits per spike
            (:func:`lrfit.fitting.counts.bits_per_spike`, the Neural Latents Benchmark's).

        Returns
        -------
        float
        """
        check_choice(metric, SCORES, "metric")
        if metric == "bits_per_spike" and self.target != "counts":
            raise LrfitError(f"metric='bits_per_spike' scores spike counts; this fit's target is '{self.target}' "
                             "(fit target='counts' to score bits per spike).")
        pred = self._predict_array(data)  # checks that the estimator is fitted
        if metric == "bits_per_spike":
            return bits_per_spike(np.asarray(data.activity), pred, np.asarray(data.mask))
        return r2_score(np.asarray(data.activity), pred, np.asarray(data.mask))

    def evaluate(self, data: Any, prefix: str = "") -> dict[str, Any]:
        """R^2 over all entries, mean per-neuron R^2, and R^2 per condition (and bits per spike for counts).

        Parameters
        ----------
        data : TrialData
            Trials to score.
        prefix : str
            Prepended to each key (e.g. ``"test_"``).

        Returns
        -------
        dict
            ``r2``, ``r2_per_neuron_mean``, ``r2_per_neuron`` (list), ``r2_per_condition`` (dict);
            for a counts fit also ``bits_per_spike``, ``bits_per_spike_per_neuron`` (list) and
            ``psth_r2`` (condition-averaged predicted vs recorded rates; None where no
            condition has two trials).
        """
        pred = self._predict_array(data)
        truth, mask = np.asarray(data.activity), np.asarray(data.mask)
        per_neuron = r2_per_neuron(truth, pred, mask)
        labels = condition_labels(data.conditions) if data.conditions is not None and data.conditions.shape[1] else None
        out = {
            f"{prefix}r2": r2_score(truth, pred, mask),
            f"{prefix}r2_per_neuron_mean": float(np.nanmean(per_neuron)) if per_neuron.size else float("nan"),
            f"{prefix}r2_per_neuron": [float(v) for v in per_neuron],
            f"{prefix}r2_per_condition": {} if labels is None else r2_per_condition(truth, pred, labels, mask),
        }
        if self.target == "counts":
            out[f"{prefix}bits_per_spike"] = bits_per_spike(truth, pred, mask)
            out[f"{prefix}bits_per_spike_per_neuron"] = [float(v) for v in bits_per_spike(truth, pred, mask, True)]
            out[f"{prefix}psth_r2"] = psth_r2(truth, pred, labels, mask)
        return out

    @torch.no_grad()
    def simulate(self, data: Any) -> Any:
        """Run the fitted network, noise-free, on the inputs of *data* from the fitted initial states.

        Parameters
        ----------
        data : TrialData
            Trials with the fitted input channels (their conditions pick the
            initial states when ``x0="per_condition"``).

        Returns
        -------
        lrfit.models.Trajectory
            Batch-first currents and rates ``(trials, time, N)`` of every unit
            (hidden units last).
        """
        self._check_compatible(data)
        tensors = self._tensors(data)
        return self.model_(tensors.inputs, x0=self._start_state(tensors.condition_index), noise_std=0.0)

    @torch.no_grad()
    def initial_states(self, data: Any) -> np.ndarray:
        """The fitted initial state of each trial of *data*, ``(trials, N)`` (see the ``x0`` parameter)."""
        self._check_compatible(data)
        return self._start_state(self._tensors(data).condition_index).cpu().numpy()

    @torch.no_grad()
    def latents(self, data: Any, include_inputs: bool = False) -> np.ndarray:
        """Latent coordinates of the network's currents.

        The currents of a low-rank network live in ``span(M, W_in)`` (plus the decay
        of the initial state): ``x(t) = M kappa(t) + W_in v(t)``.  The coordinates
        are the least-squares solution of that equation at every bin.

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

    # -- persistence ------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Save the fitted network and the fit's state into *directory* (tensors + JSON)."""
        self._check_fitted()
        params = {k: v for k, v in self.get_params().items() if k != "fullrank_model"}
        params["checkpoint_dir"] = str(params["checkpoint_dir"]) if params["checkpoint_dir"] else None
        extra = {
            "role": "student",
            "fit_params": params,
            "neuron_ids": [str(v) for v in self.neuron_ids_],
            "input_names": list(self.input_names_),
            "condition_table": list(map(str, self.condition_table_)),
            "dt": self.dt_,
            "n_observed": int(len(self.neuron_ids_)),
        }
        directory = save_model(self.model_, directory, extra=extra)
        state = {"x0_table": self.x0_table_.detach().cpu()}
        if self.target == "counts":
            state.update({f"readout_{k}": v.detach().cpu() for k, v in self.readout_._asdict().items()})
        torch.save(state, Path(directory) / FIT_STATE_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> "LowRankFit":
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
        meta = read_model_meta(directory)
        extra = meta.get("extra", {})
        if extra.get("role") != "student" or "fit_params" not in extra:
            raise LrfitError(f"'{directory}' holds a network but not a LowRankFit; load it with lrfit.load_model.")
        params = dict(extra["fit_params"])
        params["device"] = device
        fit = cls(**params)
        fit.model_ = load_model(directory, device=device)
        path = Path(directory) / FIT_STATE_FILE
        try:
            state = torch.load(path, map_location=device, weights_only=True)
            table = state["x0_table"]
        except FileNotFoundError:
            raise LrfitError(f"'{path}' is missing: the fit's initial states are lost; copy it back or refit.") from None
        except Exception as exc:  # corrupt or foreign file
            raise LrfitError(f"'{path}' cannot be read ({type(exc).__name__}): the file is corrupt or not lrfit's; "
                             "refit, or copy a good fit_state.pt back.") from None
        if not torch.is_tensor(table) or table.shape[-1] != fit.model_.n_units or not bool(torch.isfinite(table).all()):
            raise LrfitError(f"'{path}' holds no finite x0 table for {fit.model_.n_units} units; refit the model.")
        fit.x0_table_ = nn.Parameter(table, requires_grad=False)
        if fit.target == "counts":
            n_obs = len(extra["neuron_ids"])
            parts = [state.get(f"readout_{k}") for k in CountReadout._fields]
            if not all(torch.is_tensor(p) and p.shape == (n_obs,) and bool(torch.isfinite(p).all()) for p in parts):
                raise LrfitError(f"'{path}' holds no finite Poisson readout (gain, bias, scale) for {n_obs} neurons; "
                                 "refit the model, or copy a good fit_state.pt back.")
            fit.readout_ = CountReadout(*(nn.Parameter(p, requires_grad=False) for p in parts))
        fit.neuron_ids_ = np.asarray(extra["neuron_ids"])
        fit.input_names_ = tuple(extra["input_names"])
        fit.condition_table_ = list(extra["condition_table"])
        fit.dt_ = float(extra["dt"])
        return fit


def config_defaults() -> dict[str, Any]:
    """The config entries of :data:`CONFIG_KEYS`, nested by section, with ``LowRankFit``'s defaults.

    Returns
    -------
    dict
        ``{"model": {...}, "optim": {...}, "seed": ..., "device": ...}`` in the order of
        :data:`CONFIG_KEYS`.

    Examples
    --------
    >>> defaults = config_defaults()
    >>> defaults["model"]["rank"], defaults["optim"]["lr"], defaults["seed"]
    (1, 'auto', 0)
    """
    signature = inspect.signature(LowRankFit.__init__).parameters
    out: dict[str, Any] = {}
    for name, key in CONFIG_KEYS.items():
        *sections, leaf = key.split(".")
        node = out
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = signature[name].default
    return out


def params_from_config(config: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """``LowRankFit`` keyword arguments that a resolved config sets (see :data:`CONFIG_KEYS`).

    Parameters
    ----------
    config : dict
        Output of :func:`lrfit.config.load_config` (or :data:`lrfit.config.DEFAULTS`).
    **overrides
        Parameters set by the caller instead of the config (e.g. ``rank=2`` when the
        config lists several ranks).

    Returns
    -------
    dict
        Parameter name to value, each cast to the type of its default in ``__init__``.

    Raises
    ------
    LrfitError
        A config value cannot be read as its parameter's type.

    Examples
    --------
    >>> from lrfit.config import DEFAULTS
    >>> LowRankFit(**params_from_config(DEFAULTS, rank=2)).get_params()["rank"]
    2
    """
    signature = inspect.signature(LowRankFit.__init__).parameters
    params: dict[str, Any] = {}
    for name, key in CONFIG_KEYS.items():
        if name in overrides:
            value = overrides[name]
        else:
            value = config
            for part in key.split("."):
                value = value[part]
        params[name] = _cast(value, signature[name].default, key)
    return {**params, **{k: v for k, v in overrides.items() if k not in params}}


def _cast(value: Any, default: Any, key: str) -> Any:
    """*value* as the type of *default* (an int must be integral, a float finite), or one sentence naming *key*.

    A parameter whose default is ``"auto"`` (``lr``) takes ``"auto"`` or a finite number.
    """
    auto = default == "auto"
    if auto:
        if value == "auto":
            return value
        default = 0.0  # otherwise a number
    kind = type(default)
    if not isinstance(default, (int, float, str)) or isinstance(default, bool):
        return value
    try:
        if isinstance(value, bool) and kind is not str:
            raise ValueError
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if kind is float:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        what = {int: "an integer", float: "a finite number", str: "a string"}[kind] + (" or 'auto'" if auto else "")
        like = "'auto' or 0.01" if auto else repr(default)
        raise LrfitError(
            f"Config key '{key}' must be {what} (like {like}), got {value!r}; fix it in the config file or with --set."
        ) from None


def _check_device(device: Any) -> None:
    """One sentence for a device torch does not know or this machine does not have."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise LrfitError(f"device {device!r} (config key 'device') is not a torch device; use 'cpu' or 'cuda'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LrfitError(f"device {device!r} (config key 'device') is not available: this torch build or machine has "
                         "no CUDA GPU; use device: cpu (or install a CUDA build of torch).")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise LrfitError(f"device {device!r} (config key 'device') is not supported; use 'cpu' or 'cuda'.")


def fit_summary(fit: LowRankFit) -> dict[str, Any]:
    """JSON-friendly summary of a fitted estimator's training."""
    return {
        "rank": int(fit.rank),
        "epochs": int(getattr(fit, "epochs_", 0)),
        "best_epoch": int(getattr(fit, "best_epoch_", 0)),
        "stopped": getattr(fit, "stopped_", None),
        "rollbacks": int(getattr(fit, "rollbacks_", 0)),
        "ended_worse_than_start": bool(getattr(fit, "ended_worse_than_start_", False)),
        "start_loss": getattr(fit, "start_loss_", None),
        "seconds": float(getattr(fit, "fit_seconds_", 0.0)),
        "init_seconds": float(getattr(fit, "init_seconds_", 0.0)),
        "lr": getattr(fit, "lr_", None),
    }


#: Expected spike rates above this (Hz) mean the activity holds rates, not counts per bin.
MAX_PLAUSIBLE_RATE_HZ = 1000.0


def _check_counts(data: Any) -> None:
    """Counts must be finite and non-negative in valid bins, and look like counts per bin (one sentence each)."""
    source = data.meta.get("source", "the data") if isinstance(data.meta, dict) else "the data"
    valid = np.asarray(data.activity)[np.asarray(data.mask, dtype=bool)]
    if valid.size == 0:
        raise LrfitError(f"The activity of {source} has no valid bin to fit; check the mask and the time window.")
    if isinstance(data.meta, dict) and str(data.meta.get("units", "")).lower() in ("hz", "spikes/s", "1/s"):
        raise LrfitError(
            f"The activity of {source} is in {data.meta['units']} (rates), but target='counts' (config key "
            "model.target) fits spike counts per bin; load the counts (e.g. rate: false in the data: section of an NWB "
            "file), or fit target rates/currents.")
    low = float(valid.min())
    if low < 0:
        k, t, i = np.argwhere((np.asarray(data.activity) < 0) & np.asarray(data.mask, dtype=bool)[..., None])[0]
        raise LrfitError(
            f"The activity of {source} holds negative values (first {low:.3g} at trial {k}, bin {t}, neuron "
            f"{data.neuron_ids[i]}), but target='counts' (config key model.target) fits spike counts per bin; pass "
            "the raw counts (no centring or normalisation: preprocess.normalise: null), or fit target rates/currents.")
    mean_hz = valid.mean(0) / float(data.dt)
    if float(mean_hz.max()) > MAX_PLAUSIBLE_RATE_HZ:
        i = int(mean_hz.argmax())
        raise LrfitError(
            f"Neuron {data.neuron_ids[i]} of {source} has a mean of {valid[:, i].mean():.3g} counts per {data.dt:g} s "
            f"bin ({mean_hz[i]:.0f} Hz): the activity looks like rates, not counts per bin; multiply rates in Hz by "
            "dt (or bin the spikes), or fit target rates/currents.")
    silent = np.flatnonzero(valid.sum(0) == 0)
    if silent.size:
        log.warning("%d neuron(s) of %s have no spike in the fitted trials (e.g. %s); their readout only learns "
                    "that they are silent.", silent.size, source, data.neuron_ids[silent[0]])
