"""Reusable pieces of gradient training: masked loss, Adam set-up, seeds, checkpoints.

Checkpoints are two files written atomically: ``checkpoint.pt`` (a dict of plain
tensors and nested dicts of tensors/numbers, read back with
``torch.load(..., weights_only=True)``) and ``checkpoint.json`` (progress and
history).  Nothing is pickled.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import LrfitError

log = logging.getLogger(__name__)

CHECKPOINT_WEIGHTS = "checkpoint.pt"
CHECKPOINT_META = "checkpoint.json"


def masked_mse(outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the masked steps.

    Parameters
    ----------
    outputs, targets : Tensor
        ``(trials, time, channels)``.
    mask : Tensor
        ``(trials, time)`` weights (1 where the error counts).

    Returns
    -------
    Tensor
        Scalar: ``sum(mask * (outputs - targets)**2) / (sum(mask) * channels)``.
    """
    err = (outputs - targets).pow(2).sum(-1) * mask
    return err.sum() / (mask.sum().clamp_min(1.0) * outputs.shape[-1])


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed derived from *seed* and integer *keys* (independent streams).

    Parameters
    ----------
    seed : int
        Base seed.
    *keys : int
        Stream identifiers (e.g. ``epoch, 0``).

    Returns
    -------
    int
    """
    state = np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on *device* seeded with *seed*."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def adam(
    groups: Iterable[tuple[Iterable[torch.nn.Parameter], float]], betas: tuple[float, float] = (0.9, 0.999)
) -> torch.optim.Adam:
    """Adam over parameter groups ``[(params, lr), ...]`` (frozen parameters are skipped)."""
    param_groups = []
    for params, lr in groups:
        trainable = [p for p in params if p.requires_grad]
        if trainable:
            param_groups.append({"params": trainable, "lr": float(lr)})
    if not param_groups:
        raise LrfitError("Nothing to train: every parameter is frozen.")
    return torch.optim.Adam(param_groups, betas=betas)


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(directory: str | Path, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write ``checkpoint.pt`` (tensors) and ``checkpoint.json`` (meta) atomically.

    Parameters
    ----------
    directory : str or Path
        Run directory (created if needed).
    tensors : dict
        Nested dicts / lists of tensors and numbers (model and optimizer state).
    meta : dict
        JSON-serialisable progress (epoch, history, settings).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_write(directory / CHECKPOINT_WEIGHTS, lambda p: torch.save(tensors, p))
    _atomic_write(directory / CHECKPOINT_META, lambda p: p.write_text(json.dumps(meta, indent=1)))


def load_checkpoint(directory: str | Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Read a checkpoint written by :func:`save_checkpoint`; ``None`` if there is none.

    Parameters
    ----------
    directory : str or Path
        Run directory.

    Returns
    -------
    tuple of dict or None
        ``(tensors, meta)``.
    """
    directory = Path(directory)
    weights, meta_path = directory / CHECKPOINT_WEIGHTS, directory / CHECKPOINT_META
    if not weights.is_file() or not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        tensors = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise LrfitError(
            f"The checkpoint in '{directory}' cannot be read ({type(exc).__name__}); delete "
            f"{CHECKPOINT_WEIGHTS} and {CHECKPOINT_META} to start over."
        ) from None
    return tensors, meta


def clone_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached CPU copy of a module's state dict."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
