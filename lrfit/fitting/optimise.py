"""Gradient-descent loop shared by fits: Adam, clipping, plateau schedule,
early stopping, NaN rollback, and checkpoints that resume to the same result."""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class OptimiserSettings:
    """Settings of :func:`optimise`.

    Attributes
    ----------
    max_epochs : int
        Upper bound on passes over the training trials.
    lr : float
        Adam learning rate.
    batch_size : int
        Trials per gradient step.
    clip_grad : float
        Maximal gradient norm (0 disables clipping).
    patience : int
        Epochs without improvement of the monitored loss before stopping (0: never stop early).
    lr_factor : float
        Factor applied to the learning rate when the monitored loss plateaus for
        ``max(1, patience // 3)`` epochs.
    min_lr : float
        Floor of the learning rate.
    weight_decay : float
        L2 penalty (Adam's ``weight_decay``).
    tol : float
        Relative improvement that counts as progress.
    """

    max_epochs: int = 200
    lr: float = 5e-3
    batch_size: int = 32
    clip_grad: float = 1.0
    patience: int = 30
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    weight_decay: float = 0.0
    tol: float = 1e-4


@dataclass
class OptimiseState:
    """Everything needed to resume: weights, optimiser, schedule, history, RNG."""

    epoch: int = 0
    best_loss: float = math.inf
    best_epoch: int = 0
    best_params: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False
    rollbacks: int = 0


def _param_state(params: dict[str, torch.nn.Parameter]) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in params.items()}


def save_checkpoint(
    path: Path,
    params: dict[str, torch.nn.Parameter],
    optimiser: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator,
    state: OptimiseState,
) -> None:
    """Write a checkpoint of plain tensors and JSON-able values (read with ``weights_only=True``)."""
    payload = {
        "params": _param_state(params),
        "optimiser": optimiser.state_dict(),
        "scheduler": scheduler.state_dict(),
        "generator": generator.get_state(),
        "state_json": json.dumps({k: v for k, v in asdict(state).items() if k != "best_params"}),
        "best_params": state.best_params or {},
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    return torch.load(path, map_location="cpu", weights_only=True)


def optimise(
    params: dict[str, torch.nn.Parameter],
    n_trials: int,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    monitor: Callable[[], dict[str, float]],
    settings: OptimiserSettings,
    seed: int = 0,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    describe: Callable[[dict[str, float]], str] | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
) -> OptimiseState:
    """Minimise ``batch_loss`` over shuffled mini-batches of trial indices.

    Each epoch visits every training trial once in a seeded random order; after
    each epoch ``monitor()`` returns metrics whose ``"monitor"`` entry (the
    validation loss; the epoch's training loss without one) drives the
    plateau schedule, early stopping and the choice of the best parameters, which
    are restored at the end.  A non-finite loss or gradient rolls the parameters
    and the optimiser back to the last good epoch, halves the learning rate and
    logs a warning.  With *checkpoint_dir*, a checkpoint is written after every
    epoch and on Ctrl-C; ``resume=True`` continues from it and reaches the same
    parameters as an uninterrupted run.

    Parameters
    ----------
    params : dict of str to Parameter
        Trainable tensors, by name.
    n_trials : int
        Number of training trials.
    batch_loss : callable
        Maps a 1-D tensor of trial indices to a scalar loss.
    monitor : callable
        Returns a dict of metrics after each epoch; its ``"monitor"`` entry (the
        validation loss) is watched, or the epoch's training loss when absent.
    settings : OptimiserSettings
        Optimiser settings.
    seed : int
        Seed of the batch order.
    checkpoint_dir : str or Path, optional
        Where ``checkpoint.pt`` is written.
    resume : bool
        Continue from the checkpoint in *checkpoint_dir* if there is one.
    progress : bool
        Show a tqdm progress bar.
    describe : callable, optional
        Turns the metrics into the progress bar's postfix.
    on_epoch_end : callable, optional
        Called with the epoch number after the checkpoint of that epoch is written.

    Returns
    -------
    OptimiseState
        History and best epoch; *params* hold the best parameters.
    """
    trainable = [p for p in params.values() if p.requires_grad]
    # The fused kernel updates all tensors in one call (a third of the per-step cost on a CPU).
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in trainable)
    optimiser = torch.optim.Adam(trainable, lr=settings.lr, weight_decay=settings.weight_decay, fused=fused or None)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser,
        factor=settings.lr_factor,
        patience=max(1, settings.patience // 3) if settings.patience else 10,
        min_lr=settings.min_lr,
        threshold=settings.tol,
    )
    generator = torch.Generator().manual_seed(int(seed))
    state = OptimiseState()
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir else None
    if resume and ckpt_path is not None and ckpt_path.is_file():
        payload = load_checkpoint(ckpt_path)
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(payload["params"][k])
        optimiser.load_state_dict(payload["optimiser"])
        scheduler.load_state_dict(payload["scheduler"])
        generator.set_state(payload["generator"])
        fields = json.loads(payload["state_json"])
        state = OptimiseState(**fields, best_params=payload["best_params"] or None)
        log.info("resumed from %s at epoch %d", ckpt_path, state.epoch)
    if ckpt_path is not None:
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)

    good_params = _param_state(params)
    good_optim = copy.deepcopy(optimiser.state_dict())
    bar = tqdm(total=settings.max_epochs, initial=state.epoch, disable=not progress, desc="fit", leave=False)
    start_time = time.perf_counter()
    try:
        while state.epoch < settings.max_epochs and not state.stopped_early:
            order = torch.randperm(n_trials, generator=generator)
            epoch_loss, seen, bad = 0.0, 0, False
            for start in range(0, n_trials, settings.batch_size):
                idx = order[start : start + settings.batch_size]
                optimiser.zero_grad(set_to_none=True)
                loss = batch_loss(idx)
                if not torch.isfinite(loss):
                    bad = True
                    break
                loss.backward()
                norm = (
                    torch.nn.utils.clip_grad_norm_(trainable, settings.clip_grad)
                    if settings.clip_grad
                    else torch.zeros(())
                )
                if not torch.isfinite(norm):
                    bad = True
                    break
                optimiser.step()
                epoch_loss += float(loss.detach()) * len(idx)
                seen += len(idx)
            if bad:
                with torch.no_grad():
                    for k, p in params.items():
                        p.copy_(good_params[k])
                optimiser.load_state_dict(good_optim)
                for group in optimiser.param_groups:
                    group["lr"] = max(group["lr"] * 0.5, settings.min_lr)
                state.rollbacks += 1
                log.warning(
                    "non-finite loss or gradient in epoch %d: rolled back to the parameters after epoch %d "
                    "and halved the learning rate to %.3g",
                    state.epoch + 1,
                    state.epoch,
                    optimiser.param_groups[0]["lr"],
                )
                if state.rollbacks > 20:
                    raise FloatingPointError("the loss stayed non-finite after 20 rollbacks; check the data scaling")
                continue
            state.epoch += 1
            metrics = {"epoch": state.epoch, "train_loss": epoch_loss / max(seen, 1)}
            metrics.update(monitor())
            metrics["lr"] = optimiser.param_groups[0]["lr"]
            metrics["seconds"] = time.perf_counter() - start_time
            state.history.append(metrics)
            current = metrics.get("monitor", metrics["train_loss"])
            scheduler.step(current)
            if current < state.best_loss * (1 - settings.tol) or state.best_params is None:
                state.best_loss, state.best_epoch = current, state.epoch
                state.best_params = _param_state(params)
            elif settings.patience and state.epoch - state.best_epoch >= settings.patience:
                state.stopped_early = True
                log.info("early stop at epoch %d (best epoch %d)", state.epoch, state.best_epoch)
            good_params = _param_state(params)
            good_optim = copy.deepcopy(optimiser.state_dict())
            if ckpt_path is not None:
                save_checkpoint(ckpt_path, params, optimiser, scheduler, generator, state)
            bar.update(1)
            if describe is not None:
                bar.set_postfix_str(describe(metrics))
            if on_epoch_end is not None:
                on_epoch_end(state.epoch)
    except KeyboardInterrupt:
        if ckpt_path is not None:
            log.warning("interrupted: checkpoint of epoch %d is in %s; resume to continue", state.epoch, ckpt_path)
        raise
    finally:
        bar.close()
    if state.best_params is not None:
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(state.best_params[k])
    return state
