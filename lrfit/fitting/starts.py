"""Where a fit starts: a closed-form or random network, its initial-state table and its readout.

:func:`start_network` is the one start of :class:`lrfit.LowRankFit` and of every member of
:class:`lrfit.LowRankEnsembleFit`:

- ``"regression"``: teacher-forced reduced-rank regression of the observed units' currents
  (:func:`lrfit.fitting.regression_init.reduced_rank_regression`), close to exact on clean
  recordings of a low-rank network;
- ``"fullrank_svd"``: the truncated SVD of a full-rank fit (the original method's first stage);
- ``"random"``: ``M, N ~ N(0, 1)`` and ``W_in ~ N(0, 0.1^2)``, as plain backpropagation through
  time of the same network starts (a unit-variance ``W_in`` and a zero start generalised worse to
  held-out reach directions of the M1 recording).

Every start sets the initial-state table from the first bin of the (mapped) activity, and the
observation model's readout from its own closed-form start.  Hidden units keep small random weights.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..models import FullRankRNN, LowRankRNN
from .initial_states import condition_table, first_bin_states, start_index, table_rows
from .losses import CountReadout
from .objective import batch_loss, mean_loss
from .observation import as_observation
from .regression_init import reduced_rank_regression
from .solver import OptimiserSettings, optimise
from .staging import stage

if TYPE_CHECKING:
    from data_adapters import TrialData

log = logging.getLogger(__name__)

#: Scale of the random weights of hidden units next to a closed-form start.
HIDDEN_INIT_SCALE = 0.1
#: Adam's learning rate by start when ``lr="auto"``: a random start is far from the data and takes larger
#: steps, a closed-form start is only polished (README, "Benchmarks": the random start's time to R² 0.99).
AUTO_LR: dict[str, float] = {"regression": 5e-3, "fullrank_svd": 5e-3, "random": 2e-2}


@dataclass
class NetworkStart:
    """A fit's starting point (:func:`start_network`).

    Attributes
    ----------
    model : LowRankRNN
        The network, one unit per recorded neuron then the hidden units.
    x0_table : nn.Parameter
        The initial-state table (:mod:`lrfit.fitting.initial_states`).
    condition_table : list of str
        The conditions with a row of the table.
    readout : CountReadout or None
        The observation model's learnt readout.
    seconds : float
        Time spent computing the start.
    """

    model: LowRankRNN
    x0_table: nn.Parameter
    condition_table: list[str]
    readout: CountReadout | None
    seconds: float

    def parameters(self) -> dict[str, torch.Tensor]:
        """The trainable tensors, by name (the readout's learnt ones included)."""
        params = {"m": self.model.m, "n": self.model.n, "w_in": self.model.w_in, "x0_table": self.x0_table}
        if self.readout is not None:
            params.update({"gain": self.readout.gain, "bias": self.readout.bias})
        return params


def learning_rate(fit: Any) -> float:
    """Adam's learning rate of *fit*: its ``lr``, or for ``"auto"`` its start's (:data:`AUTO_LR`)."""
    return AUTO_LR[fit.init] if fit.lr == "auto" else float(fit.lr)


def optimiser_settings(fit: Any, epochs: int | None = None, scale: float = 1.0) -> OptimiserSettings:
    """The solver's settings from *fit*'s parameters; *scale* is the monitored score's unit (``tol``'s)."""
    return OptimiserSettings(max_epochs=int(fit.max_epochs if epochs is None else epochs), lr=learning_rate(fit),
                             batch_size=int(fit.batch_size), clip_grad=float(fit.clip_grad),
                             patience=int(fit.patience), weight_decay=float(fit.weight_decay), tol=float(fit.tol),
                             scale=float(scale))


def new_network(fit: Any, data: TrialData, kind: str = "lowrank") -> LowRankRNN | FullRankRNN:
    """An untrained network of *fit*'s size for *data* (seeded by ``random_state``)."""
    common = dict(n_inputs=data.n_inputs, n_outputs=0, tau=float(fit.tau), dt=float(data.dt), noise_std=0.0,
                  seed=int(fit.random_state), device=fit.device)
    units = data.n_neurons + fit.hidden_units
    if kind == "fullrank":
        return FullRankRNN(units, rho=1.0, **common)
    return LowRankRNN(units, rank=int(fit.rank), **common)


def start_network(fit: Any, train: TrialData, validation: TrialData | None = None,
                  same_start: NetworkStart | None = None) -> NetworkStart:
    """The start of *fit* (a :class:`lrfit.LowRankFit`'s parameters) on *train*.

    Parameters
    ----------
    fit : LowRankFit
        Whose parameters (``rank``, ``init``, ``x0``, ``observation``, ...) set the start.
    train : TrialData
        Training trials.
    validation : TrialData, optional
        Watched by the full-rank fit behind ``init="fullrank_svd"``.
    same_start : NetworkStart, optional
        A closed-form start of the same rank on the same data (it does not depend on the
        seed): its observed units' weights, table and readout are copied instead of
        recomputed; the hidden units keep their own seeded random weights.

    Returns
    -------
    NetworkStart
    """
    started = time.perf_counter()
    observation = as_observation(fit.observation)
    model = new_network(fit, train)
    table = condition_table(fit.x0, train, fit.condition_columns)
    rows = table_rows(fit.x0, train.n_inputs, table)
    x0_table = nn.Parameter(torch.zeros(rows, model.n_units, device=model.device))
    n_obs = train.n_neurons
    if same_start is not None and fit.init != "random":
        _set_observed(model, same_start.model.m[:n_obs], same_start.model.n[:n_obs], same_start.model.w_in[:n_obs])
        with torch.no_grad():
            x0_table[:, :n_obs] = same_start.x0_table[:, :n_obs]
        return NetworkStart(model, x0_table, table, same_start.readout, 0.0)
    activity, readout = observation.start(train, model.device)
    start = NetworkStart(model, x0_table, table, readout, 0.0)
    if fit.init == "random":
        with torch.no_grad():
            model.w_in.mul_(HIDDEN_INIT_SCALE)
    elif fit.init == "regression":
        rrr = reduced_rank_regression(activity, train.inputs, train.mask, model.alpha, int(fit.rank),
                                      observation.signal, float(fit.ridge))
        _set_observed(model, rrr.m, rrr.n, rrr.w_in)
    else:
        full = fit.fullrank_model or _fit_fullrank(fit, start, train, validation)
        low = full.truncated(int(fit.rank))
        _set_observed(model, low.m.detach()[:n_obs], low.n.detach()[:n_obs], full.w_in.detach()[:n_obs])
    states = first_bin_states(fit.x0, train, activity, observation.signal, table, fit.condition_columns)
    with torch.no_grad():
        x0_table[:, :n_obs] = torch.as_tensor(states, dtype=torch.float32)
    start.seconds = time.perf_counter() - started
    return start


def _set_observed(model: LowRankRNN, m: Any, n: Any, w_in: Any) -> None:
    """Put a closed-form start into the observed units; the hidden units' random weights shrink."""
    n_obs = len(m)
    with torch.no_grad():
        for param, value in ((model.m, m), (model.n, n), (model.w_in, w_in)):
            param.mul_(HIDDEN_INIT_SCALE)
            param[:n_obs] = torch.as_tensor(value, dtype=torch.float32, device=param.device)


def _fit_fullrank(fit: Any, start: NetworkStart, train: TrialData, validation: TrialData | None) -> FullRankRNN:
    """Full-rank fit from random connectivity (the original method's first stage); trains *start*'s table too."""
    observation = as_observation(fit.observation)

    def staged(data: TrialData) -> Any:
        return stage(data, start_index(fit.x0, data, start.condition_table, fit.condition_columns), observation,
                     fit.device)

    tensors = staged(train)
    monitored = staged(validation) if validation is not None else tensors
    log.info("init='fullrank_svd': fitting a full-rank network for %d epochs", fit.fullrank_epochs)
    full = new_network(fit, train, "fullrank")
    params = {k: v for k, v in full.named_parameters() if k in ("j", "w_in")}
    params["x0_table"] = start.x0_table
    if start.readout is not None:
        params.update({"gain": start.readout.gain, "bias": start.readout.bias})
    optimise(params, tensors.n_trials,
             lambda idx: batch_loss(full, tensors, idx, start.x0_table, observation, start.readout),
             lambda: {"monitor": mean_loss(full, monitored, start.x0_table, observation, start.readout)},
             optimiser_settings(fit, fit.fullrank_epochs, monitored.loss_unit), seed=int(fit.random_state),
             progress=fit.progress)
    return full
