"""Checks of a fit's parameters and data: one sentence per problem, in the estimator's parameter names.

:func:`check_fit` is what :meth:`lrfit.LowRankFit.fit` runs first and what the run layer runs on
every fold before any fit starts; the config layer (:mod:`lrfit.runs.config_params`) re-raises a
:class:`ParameterError` under the config key that set the parameter.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from ..errors import LrfitError, NotFittedError, check_choice

if TYPE_CHECKING:
    from data_adapters import TrialData

INITS = ("regression", "fullrank_svd", "random")
X0_MODES = ("shared", "per_condition", "inputs")
#: (parameter, lower bound, strict) of the numeric parameters
_NUMBERS = (("tau", 0.0, True), ("batch_size", 1, False), ("max_epochs", 0, False), ("patience", 0, False),
            ("clip_grad", 0.0, False), ("weight_decay", 0.0, False), ("ridge", 0.0, False), ("tol", 0.0, False))


class ParameterError(LrfitError):
    """A parameter of the estimator has a value it cannot take.

    Attributes
    ----------
    parameter : str
        The parameter's name (the config layer names its config key instead).
    requirement : str
        What the value must be, e.g. ``"a number > 0.0 (or 'auto')"``.
    value : Any
        The value given.
    message : str, optional
        The sentence, where it says more than "must be ..." (it then stands after the config key).

    Examples
    --------
    >>> str(ParameterError("tau", "a number > 0.0", -1))
    'tau must be a number > 0.0, got -1.'
    """

    def __init__(self, parameter: str, requirement: str, value: Any, message: str | None = None) -> None:
        self.parameter, self.requirement, self.value = parameter, requirement, value
        super().__init__(message or f"{parameter} must be {requirement}, got {value!r}.")


def check_params(fit: Any) -> None:
    """Raise one sentence for a parameter of *fit* that it cannot take (before any data is read).

    Parameters
    ----------
    fit : LowRankFit
        The estimator.

    Raises
    ------
    ParameterError, LrfitError
    """
    from .observation import as_observation

    as_observation(fit.observation).check()
    check_choice(fit.init, INITS, "init")
    check_choice(fit.x0, X0_MODES, "x0 mode")
    if isinstance(fit.rank, bool) or not isinstance(fit.rank, int | float) or int(fit.rank) != fit.rank or fit.rank < 1:
        raise ParameterError("rank", "a positive integer", fit.rank)
    if not isinstance(fit.hidden_units, int) or fit.hidden_units < 0:
        raise ParameterError("hidden_units", "an integer >= 0", fit.hidden_units)
    for name, low, strict in _NUMBERS if fit.lr == "auto" else [("lr", 0.0, True), *_NUMBERS]:
        value = getattr(fit, name)
        if not (isinstance(value, int | float) and math.isfinite(value) and (value > low if strict else value >= low)):
            also = " (or 'auto')" if name == "lr" else ""
            raise ParameterError(name, f"a number {'>' if strict else '>='} {low}{also}", value)
    check_device(fit.device)


def check_fit(fit: Any, data: TrialData) -> None:
    """Raise one sentence if *fit* cannot be fitted to *data* (parameters, sizes, time step, observations).

    Parameters
    ----------
    fit : LowRankFit
        The estimator.
    data : TrialData
        The training trials.

    Raises
    ------
    ParameterError, LrfitError

    Examples
    --------
    >>> import numpy as np
    >>> from lrfit import LowRankFit, TrialData
    >>> data = TrialData(activity=np.zeros((2, 3, 4)), dt=0.02)
    >>> try:
    ...     check_fit(LowRankFit(rank=5), data)
    ... except LrfitError as err:
    ...     print(err)
    rank 5 is larger than the number of units (4 neurons + 0 hidden); choose rank <= 4.
    """
    from .observation import as_observation

    check_params(fit)
    units = data.n_neurons + fit.hidden_units
    if fit.rank > units:
        raise ParameterError("rank", f"at most {units}", fit.rank, f"rank {fit.rank} is larger than the number of "
                             f"units ({data.n_neurons} neurons + {fit.hidden_units} hidden); choose rank <= {units}.")
    if data.n_trials == 0:
        raise LrfitError("The training split is empty (0 trials); check the split settings or the data selection.")
    if data.dt > fit.tau:
        raise LrfitError(f"data.dt={data.dt} s is larger than tau={fit.tau} s; rebin the data or raise tau.")
    as_observation(fit.observation).check_data(data)


def check_device(device: Any) -> None:
    """One sentence for a device torch does not know or this machine does not have."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise LrfitError(f"device {device!r} is not a torch device; use 'cpu' or 'cuda'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LrfitError(f"device {device!r} is not available: this torch build or machine has no CUDA GPU; use "
                         "device 'cpu' (or install a CUDA build of torch).")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise LrfitError(f"device {device!r} is not supported; use 'cpu' or 'cuda'.")


def check_fitted(fit: Any) -> None:
    """Raise :class:`lrfit.NotFittedError` if *fit* has no fitted network."""
    if not hasattr(fit, "model_"):
        raise NotFittedError(f"This {type(fit).__name__} is not fitted yet; call fit(train) first.")


def check_compatible(fit: Any, data: TrialData) -> None:
    """Raise one sentence if *data* do not have the neurons, inputs and time step *fit* was fitted to."""
    check_fitted(fit)
    if data.n_neurons != len(fit.neuron_ids_):
        raise LrfitError(f"The data have {data.n_neurons} neurons but the model was fitted to {len(fit.neuron_ids_)}; "
                         "pass the same neurons (held-out neurons go through lrfit.fitting.heldout_neuron_r2).")
    if data.n_inputs != fit.model_.n_inputs:
        raise LrfitError(f"The data have {data.n_inputs} input channels {list(data.input_names or [])} but the model "
                         f"was fitted with {fit.model_.n_inputs} {list(fit.input_names_)}; build the same task inputs.")
    if abs(data.dt - fit.dt_) > 1e-9:
        raise LrfitError(f"The data have dt={data.dt} s but the model was fitted at dt={fit.dt_} s; rebin them.")
