"""The one checkpoint format of lrfit's trainings: plain tensors + JSON, written atomically.

``checkpoint.pt`` holds nested dicts/lists of tensors and numbers (parameters, optimiser,
best parameters, generator states), read back with ``torch.load(..., weights_only=True)``;
``checkpoint.json`` holds progress (epoch, seconds, stop-rule and schedule state, history,
the caller's settings).  Each file is written to a temporary name and renamed, so an
interrupted write leaves the previous checkpoint.  Nothing is pickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import LrfitError

CHECKPOINT_WEIGHTS = "checkpoint.pt"
CHECKPOINT_META = "checkpoint.json"


def _atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(directory: str | Path, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write ``checkpoint.pt`` (plain tensors) and ``checkpoint.json`` (progress) atomically.

    Parameters
    ----------
    directory : str or Path
        Where the two files go (created if needed).
    tensors : dict
        Nested dicts / lists of tensors and numbers.
    meta : dict
        JSON-serialisable progress.
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
        Where the two files are.

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
    if not isinstance(meta, dict) or "solver" not in meta or not isinstance(tensors, dict) or "params" not in tensors:
        raise LrfitError(f"The checkpoint in '{directory}' was written by an older lrfit; delete {CHECKPOINT_WEIGHTS} "
                         f"and {CHECKPOINT_META} (or pass --overwrite) to start over.")
    return tensors, meta
