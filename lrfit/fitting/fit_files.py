"""A fitted :class:`lrfit.LowRankFit` on disk: the network (tensors + JSON) and ``fit_state.pt``.

``fit_state.pt`` holds the initial-state table and the observation model's learnt readout, as a
plain dict of tensors read back with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import LrfitError
from ..models import load_model, read_model_meta, save_model
from .losses import CountReadout
from .observation import as_observation

FIT_STATE_FILE = "fit_state.pt"


def save_fit(fit: Any, directory: str | Path) -> Path:
    """Write a fitted estimator into *directory* (see :meth:`lrfit.LowRankFit.save`)."""
    params = {k: v for k, v in fit.get_params().items() if k != "fullrank_model"}
    params["checkpoint_dir"] = str(params["checkpoint_dir"]) if params["checkpoint_dir"] else None
    params["observation"] = as_observation(params["observation"]).to_dict()
    extra = {
        "role": "student",
        "fit_params": params,
        "neuron_ids": [str(v) for v in fit.neuron_ids_],
        "input_names": list(fit.input_names_),
        "condition_table": list(map(str, fit.condition_table_)),
        "dt": fit.dt_,
        "n_observed": int(len(fit.neuron_ids_)),
    }
    directory = save_model(fit.model_, directory, extra=extra)
    state = {"x0_table": fit.x0_table_.detach().cpu()}
    if fit.readout_ is not None:
        state.update({f"readout_{k}": v.detach().cpu() for k, v in fit.readout_._asdict().items()})
    torch.save(state, Path(directory) / FIT_STATE_FILE)
    return directory


def fit_params(extra: dict[str, Any]) -> dict[str, Any]:
    """The estimator parameters saved in a model's metadata (fits saved before ``observation``: their target)."""
    params = dict(extra["fit_params"])
    if "target" in params:
        params["observation"] = as_observation(params.pop("target"), params.pop("counts_from", "rates")).to_dict()
    params["observation"] = as_observation(params["observation"])
    return params


def load_fit(cls: type, directory: str | Path, device: str = "cpu") -> Any:
    """Rebuild an estimator of class *cls* from *directory* (see :meth:`lrfit.LowRankFit.load`)."""
    meta = read_model_meta(directory)
    extra = meta.get("extra", {})
    if extra.get("role") != "student" or "fit_params" not in extra:
        raise LrfitError(f"'{directory}' holds a network but not a LowRankFit; load it with lrfit.load_model.")
    fit = cls(**{**fit_params(extra), "device": device})
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
    fit.observation_ = as_observation(fit.observation)
    fit.readout_ = None
    if fit.observation_.readout_names:
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
