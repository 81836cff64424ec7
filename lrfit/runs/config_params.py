"""The estimator's parameters in a fit config: which key sets which parameter, its default, its type.

The one definition of that mapping is :data:`CONFIG_KEYS`: a config's defaults are the defaults of
``LowRankFit.__init__`` (:func:`config_defaults`), :func:`params_from_config` reads the parameters
back (each cast to its default's type), and :func:`check_fit_config` runs the estimator's checks
and says which config key to fix.  Python errors speak in parameter names; these speak in keys.
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Any

from ..errors import LrfitError
from ..fitting.checks import ParameterError, check_fit
from ..fitting.estimator import LowRankFit
from ..fitting.observation import as_observation

if TYPE_CHECKING:
    from data_adapters import TrialData

#: Where a fit config sets each :class:`LowRankFit` parameter: ``"section.key"`` or a top-level ``"key"``.
#: Parameters not named here are set by code (progress, checkpoints).  ``observation`` is spelled
#: ``model.target`` (rates, currents, counts) plus :data:`COUNTS_FROM_KEY` for the signal of counts.
CONFIG_KEYS: dict[str, str] = {
    "rank": "model.rank",  # in a config: an integer, or a list of ranks for rank selection
    "observation": "model.target",
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
COUNTS_FROM_KEY = "model.counts_from"


def _lookup(config: dict[str, Any], key: str) -> Any:
    value = config
    for part in key.split("."):
        value = value[part]
    return value


def config_defaults() -> dict[str, Any]:
    """The config entries of :data:`CONFIG_KEYS`, nested by section, with ``LowRankFit``'s defaults.

    Returns
    -------
    dict
        ``{"model": {...}, "optim": {...}, "seed": ..., "device": ...}`` in the order of :data:`CONFIG_KEYS`.

    Examples
    --------
    >>> defaults = config_defaults()
    >>> defaults["model"]["rank"], defaults["model"]["target"], defaults["optim"]["lr"], defaults["seed"]
    (1, 'rates', 'auto', 0)
    """
    signature = inspect.signature(LowRankFit.__init__).parameters
    out: dict[str, Any] = {}
    for name, key in CONFIG_KEYS.items():
        *sections, leaf = key.split(".")
        node = out
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = signature[name].default
        if name == "observation":
            node[COUNTS_FROM_KEY.split(".")[-1]] = as_observation(signature[name].default).signal
    return out


def params_from_config(config: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """``LowRankFit`` keyword arguments that a resolved config sets (see :data:`CONFIG_KEYS`).

    Parameters
    ----------
    config : dict
        A resolved config (:func:`lrfit.runs.config.load_config`, or :data:`lrfit.runs.config.DEFAULTS`).
    **overrides
        Parameters set by the caller instead of the config (e.g. ``rank=2`` when the config
        lists several ranks).

    Returns
    -------
    dict
        Parameter name to value, each cast to the type of its default in ``__init__``.

    Raises
    ------
    LrfitError
        A config value cannot be read as its parameter's type (the sentence names the key).

    Examples
    --------
    >>> from lrfit.runs.config import DEFAULTS
    >>> LowRankFit(**params_from_config(DEFAULTS, rank=2)).get_params()["rank"]
    2
    """
    signature = inspect.signature(LowRankFit.__init__).parameters
    params: dict[str, Any] = {}
    for name, key in CONFIG_KEYS.items():
        if name in overrides:
            params[name] = overrides[name]
        elif name == "observation":
            target = _cast(_lookup(config, key), "", key)
            counts_from = _cast(_lookup(config, COUNTS_FROM_KEY), "", COUNTS_FROM_KEY)
            try:
                params[name] = as_observation(target, counts_from)
            except LrfitError as err:
                raise LrfitError(f"Config key '{key}' or '{COUNTS_FROM_KEY}': {err}") from None
        else:
            params[name] = _cast(_lookup(config, key), signature[name].default, key)
    return {**params, **{k: v for k, v in overrides.items() if k not in params}}


def check_fit_config(fit: LowRankFit, data: TrialData) -> None:
    """:func:`lrfit.fitting.checks.check_fit`, with a bad parameter named by its config key.

    Parameters
    ----------
    fit : LowRankFit
        An estimator made from a config (:func:`params_from_config`).
    data : TrialData
        The training trials of a fold.

    Raises
    ------
    LrfitError
    """
    try:
        check_fit(fit, data)
    except ParameterError as err:
        key = CONFIG_KEYS.get(err.parameter, err.parameter)
        if str(err) != f"{err.parameter} must be {err.requirement}, got {err.value!r}.":  # a sentence of its own
            raise LrfitError(f"{key}={err.value}: {err}") from None
        raise LrfitError(f"Config key '{key}' must be {err.requirement}, got {err.value!r}; fix it in the config "
                         "file or with --set.") from None


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
    if not isinstance(default, int | float | str) or isinstance(default, bool):
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
