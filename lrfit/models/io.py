"""Save and load networks as tensors plus JSON metadata (never pickled objects)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import torch

from ..errors import LrfitError
from .rnn import FullRankRNN, LowRankRNN, RNNBase

MODEL_CLASSES: dict[str, type[RNNBase]] = {cls.kind: cls for cls in (LowRankRNN, FullRankRNN)}
WEIGHTS_FILE = "model.pt"
META_FILE = "model.json"


def save_model(model: RNNBase, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model.pt`` (a plain state dict of tensors) and ``model.json`` into *directory*.

    Parameters
    ----------
    model : RNNBase
        The network.
    directory : str or Path
        Created if needed.
    extra : dict, optional
        JSON-serialisable metadata stored beside the configuration (e.g. neuron ids).

    Returns
    -------
    Path
        The directory.

    Examples
    --------
    >>> import tempfile
    >>> from lrfit.models import LowRankRNN
    >>> with tempfile.TemporaryDirectory() as d:
    ...     sorted(p.name for p in save_model(LowRankRNN(10, rank=1), d).iterdir())
    ['model.json', 'model.pt']
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, directory / WEIGHTS_FILE)
    meta = {"kind": model.kind, "config": model.config(), "extra": extra or {}}
    (directory / META_FILE).write_text(json.dumps(meta, indent=2))
    return directory


def read_model_meta(directory: str | Path) -> dict[str, Any]:
    """Return the JSON metadata saved with a model (``kind``, ``config``, ``extra``)."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise LrfitError(
            f"No saved model in '{directory}': '{META_FILE}' is missing; point to a run directory written by lrfit."
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LrfitError(f"'{path}' is not valid JSON ({exc.msg}); re-save the model.") from None


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> RNNBase:
    """Rebuild a network saved by :func:`save_model`, bit-identical to the original.

    Parameters
    ----------
    directory : str or Path
        Directory holding ``model.pt`` and ``model.json``.
    device : str or torch.device
        Where to place the parameters.

    Returns
    -------
    RNNBase
        A :class:`LowRankRNN` or :class:`FullRankRNN`.

    Examples
    --------
    >>> import tempfile, torch
    >>> from lrfit.models import LowRankRNN, save_model
    >>> model = LowRankRNN(20, rank=2)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = save_model(model, d)
    ...     back = load_model(d)
    >>> torch.equal(back.m, model.m)
    True
    """
    meta = read_model_meta(directory)
    kind = meta.get("kind")
    if kind not in MODEL_CLASSES:
        raise LrfitError(
            f"'{Path(directory) / META_FILE}' names an unknown model kind '{kind}'; expected one of "
            f"{sorted(MODEL_CLASSES)}."
        )
    cls = MODEL_CLASSES[kind]
    allowed = {name for klass in cls.__mro__ if issubclass(klass, RNNBase)
               for name, p in inspect.signature(klass.__init__).parameters.items()
               if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    config = meta.get("config")
    if not isinstance(config, dict):
        raise LrfitError(f"'{Path(directory) / META_FILE}' has no 'config' mapping; re-save the model.")
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise LrfitError(f"'{Path(directory) / META_FILE}' has an unknown config key '{unknown[0]}' for a {kind} "
                         f"network; remove it (valid keys: {', '.join(sorted(allowed - {'device'}))}).")
    try:
        model = cls(**config, device=device)
    except (TypeError, ValueError) as exc:
        raise LrfitError(f"'{Path(directory) / META_FILE}' holds a config that builds no network ({exc}); re-save "
                         "the model.") from None
    weights = Path(directory) / WEIGHTS_FILE
    try:
        state = torch.load(weights, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise LrfitError(f"'{weights}' is missing; the model directory is incomplete.") from None
    except Exception as exc:  # corrupt or foreign file
        raise LrfitError(
            f"Could not read weights from '{weights}' ({type(exc).__name__}); the file is corrupt or not an lrfit "
            "model."
        ) from None
    if not isinstance(state, dict):
        raise LrfitError(f"'{weights}' does not hold a state dict of tensors; the file is not an lrfit model.")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise LrfitError(f"'{weights}' lacks the tensor '{missing[0]}'; the file is incomplete: re-save the model.")
    for name, tensor in state.items():
        if name in expected and tuple(tensor.shape) != tuple(expected[name].shape):
            raise LrfitError(f"'{weights}' holds '{name}' of shape {tuple(tensor.shape)} but {META_FILE} describes "
                             f"{tuple(expected[name].shape)}; the two files do not belong together: re-save the model.")
        if torch.is_tensor(tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise LrfitError(f"'{weights}' holds non-finite values (NaN or inf) in '{name}'; the network is broken: "
                             "refit it.")
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise LrfitError(
            f"'{weights}' holds an unknown tensor '{unexpected[0]}'; the file is not this model's: re-save it."
        )
    model.load_state_dict(state)
    return model
