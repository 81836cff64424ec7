"""Teacher networks: train a full-rank or low-rank RNN on a task.

A teacher is trained with Adam on the masked mean squared error between its
readout and the task target (decision epoch only), on fresh trials at every epoch,
with gradient clipping, and stops early once its accuracy on a fixed set of
validation trials (never trained on) reaches ``target_accuracy``.  The reported
``accuracy`` is measured afterwards on another set of fresh test trials.

The loop is :class:`lrfit.fitting.solver.Solver`'s (its checkpoint format, stop rule
with ``target_accuracy``, rollback of non-finite losses); this module plugs in the batch
source (fresh trials every epoch) and the loss (masked MSE of the readout).

Run directory written by :func:`train_teacher`::

    DIR/model.pt, DIR/model.json   the network (lrfit.models.save_model; the JSON
                                   "extra" holds the task, role "teacher", metrics)
    DIR/settings.json              resolved settings (everything needed to rerun)
    DIR/metrics.json               accuracy, loss, epochs, seconds, history, ...
    DIR/checkpoint.pt/.json        last finished epoch (the solver's checkpoint:
                                   parameters, Adam state, best parameters,
                                   progress); used by ``resume=True``

Training is deterministic given the settings: trials and noise of epoch ``e`` are
drawn from seeds derived from ``(seed, e)``, so an interrupted run resumed from its
checkpoint ends with the same network as an uninterrupted one (same machine, same
number of threads).

Initialisation (documented choices)
-----------------------------------
* Full rank: ``J ~ N(0, rho^2 / N)`` (``FullRankRNN(rho=...)``); rho = 0.1 leaves
  the learnt structure dominant, rho = 1 keeps a strong random part.
* Rank R: ``m ~ N(0, 1)`` and ``n = overlap_init * m + z`` with ``z ~ N(0, 1)``
  entries, so that the overlaps ``n_k . m_l / N`` start near ``overlap_init``
  times the identity (``+ O(1 / sqrt(N))``).  The default ``overlap_init = 1``
  makes each connectivity direction self-sustaining at init: with ``tanh`` the
  latent variables then decay slowly instead of with ``tau``, so information
  from early inputs still reaches the decision epoch and the loss has a gradient
  through the recurrence.  With ``overlap_init = 0`` (independent ``m, n``,
  overlaps ``O(1 / sqrt(N))``) the network has no memory beyond ``tau`` and a
  rank-2 teacher on ``dms`` (sample, then a 0.5-1 s delay) stays at chance (loss
  1, output ~0) for hundreds of epochs; with ``overlap_init = 1`` it reaches 100%
  in about 50 epochs at N = 512.  cdm, pdm and romo low-rank teachers train as
  well or faster with it.
* ``w_in ~ N(0, 1)``; ``w_out ~ N(0, w_out_std^2)`` with the library's ``1 / N``
  readout (``w_out_std`` default 4, as in Dubreuil, Valente et al. 2022); ``x0 = 0``.
* The recurrent weights of a full-rank network learn with ``lr * lr_recurrent``
  where ``lr_recurrent`` defaults to ``1 / sqrt(N)``: an Adam step moves every
  entry of J by about the step size, and ``N^2`` coherent entries would otherwise
  change J far faster than the ``O(N)`` low-rank factors change ``m n^T / N``.
"""

from __future__ import annotations

import json
import logging
import math
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..analysis.resample import evaluate_on_task
from ..errors import LrfitError
from ..fitting.checkpoint import CHECKPOINT_META, CHECKPOINT_WEIGHTS
from ..fitting.losses import masked_mse
from ..fitting.policies import RollbackPolicy, StopRule
from ..fitting.solver import Solver, SolverResult, adam
from ..models import FullRankRNN, LowRankRNN, RNNBase, load_model, read_model_meta, save_model
from ..runs.layout import METRICS_FILE, SETTINGS_FILE, RunDir
from ..seeding import derive_seed, torch_generator
from ..tasks import Task, get_task
from ..threads import fit_threads, step_work

log = logging.getLogger(__name__)

#: settings that may change when a run is resumed
RESUMABLE_CHANGES = ("max_epochs", "target_accuracy", "progress")

#: seed streams (first key of :func:`derive_seed`)
_TRAIN, _VAL, _TEST = 1, 2, 3


@dataclass
class TeacherResult:
    """Outcome of :func:`train_teacher`.

    Attributes
    ----------
    model : RNNBase
        The trained network (in eval mode, on the training device).
    task : Task
        The task it was trained on.
    metrics : dict
        Contents of ``metrics.json`` (``accuracy``, ``loss``, ``epochs``, ``seconds``, ...).
    settings : dict
        Contents of ``settings.json``.
    out : Path or None
        Run directory.
    """

    model: RNNBase
    task: Task
    metrics: dict[str, Any]
    settings: dict[str, Any]
    out: Path | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Accuracy on fresh test trials."""
        return float(self.metrics["accuracy"])


def parse_rank(rank: int | str, n_units: int) -> int | None:
    """``"full"`` -> ``None``; an integer (or its string) in ``1..n_units`` -> that int.

    Raises
    ------
    LrfitError
        For anything else, in one sentence.
    """
    if isinstance(rank, str):
        text = rank.strip().lower()
        if text in ("full", "fullrank", "full-rank"):
            return None
        try:
            rank = int(text)
        except ValueError:
            raise LrfitError(f"rank must be 'full' or a positive integer, got '{rank}'.") from None
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)):
        raise LrfitError(f"rank must be 'full' or a positive integer, got {rank!r}.")
    rank = int(rank)
    if rank < 1:
        raise LrfitError(f"rank must be a positive integer (or 'full'), got {rank}.")
    if rank > n_units:
        raise LrfitError(
            f"rank {rank} is larger than the number of units {n_units}; use a rank <= {n_units} or 'full'."
        )
    return rank


def build_network(
    task: Task,
    n_units: int,
    rank: int | None,
    rho: float = 1.0,
    seed: int = 0,
    noise_std: float = 0.05,
    tau: float = 0.1,
    w_out_std: float = 4.0,
    device: str | torch.device = "cpu",
    overlap_init: float = 1.0,
) -> RNNBase:
    """The untrained teacher network for *task* (see the module notes on initialisation).

    Parameters
    ----------
    task : Task
        Sets ``n_inputs``, ``n_outputs`` and ``dt``.
    n_units : int
        Number of units.
    rank : int or None
        ``None`` for full rank.
    rho : float
        Full rank only: initial ``J`` has standard deviation ``rho / sqrt(N)``.
    seed : int
        Parameter seed.
    noise_std : float
        Private noise of the units.
    tau : float
        Time constant (s).
    w_out_std : float
        Standard deviation of the initial readout weights.
    device : str or torch.device
        Where to put the parameters.
    overlap_init : float
        Low rank only: ``n`` starts as ``overlap_init * m`` plus independent
        ``N(0, 1)`` entries (initial overlaps ``~ overlap_init * I``).

    Returns
    -------
    RNNBase
    """
    common = dict(
        n_inputs=task.n_inputs,
        n_outputs=task.n_outputs,
        tau=tau,
        dt=task.dt,
        noise_std=noise_std,
        seed=seed,
        device=device,
    )
    if int(n_units) != n_units or n_units < 1:
        raise LrfitError(f"n_units must be a positive integer, got {n_units}.")
    if rank is None:
        if rho < 0:
            raise LrfitError(f"rho must be >= 0, got {rho}.")
        model: RNNBase = FullRankRNN(int(n_units), rho=rho, **common)
    else:
        if not math.isfinite(overlap_init):
            raise LrfitError(f"overlap_init must be a finite number, got {overlap_init}.")
        model = LowRankRNN(int(n_units), rank=rank, **common)
        if overlap_init:
            with torch.no_grad():
                model.n.add_(model.m, alpha=float(overlap_init))
    if w_out_std < 0:
        raise LrfitError(f"w_out_std must be >= 0, got {w_out_std}.")
    with torch.no_grad():
        model.w_out.mul_(w_out_std)
    return model


@torch.no_grad()
def evaluate(
    model: RNNBase,
    task: Task,
    n_trials: int = 1024,
    seed: int = 0,
    noise_std: float | None = None,
    batch_size: int = 512,
) -> dict[str, float]:
    """Accuracy and loss of a network on fresh trials of *task*.

    Parameters
    ----------
    model : RNNBase
        Network with a readout.
    task : Task
        Task (its ``dt`` must equal the network's).
    n_trials : int
        Number of trials.
    seed : int
        Seed of the trials and of the network noise.
    noise_std : float, optional
        Network noise; defaults to the network's own.
    batch_size : int
        Trials simulated at once.

    Returns
    -------
    dict
        ``{"accuracy": ..., "loss": ...}``.
    """
    trials = task.generate(n_trials, seed=seed)
    return _evaluate_trials(model, task, trials, torch_generator(derive_seed(seed, 1)), noise_std, batch_size)


def _evaluate_trials(model: RNNBase, task: Task, trials: Any, generator: torch.Generator,
                     noise_std: float | None = None, batch_size: int = 512) -> dict[str, float]:
    score = evaluate_on_task(model, task, trials, noise_std=noise_std, generator=generator, batch_size=batch_size,
                             psychometric=False)
    return {"accuracy": score.accuracy, "loss": score.loss}


def _resolve_task(task: Task | str | dict[str, Any], dt: float | None) -> Task:
    if isinstance(task, Task):
        return task if dt is None or dt == task.dt else task.with_dt(dt)
    if isinstance(task, dict):
        d = dict(task)
        if dt is not None:
            d["dt"] = dt
        return get_task(**d)
    return get_task(task) if dt is None else get_task(task, dt=dt)


def train_teacher(
    task: Task | str | dict[str, Any],
    n_units: int = 512,
    rank: int | str = "full",
    rho: float = 1.0,
    seed: int = 0,
    out: str | Path | None = None,
    max_epochs: int = 300,
    lr: float = 5e-3,
    lr_recurrent: float | None = None,
    batch_size: int = 64,
    batches_per_epoch: int = 8,
    target_accuracy: float = 0.98,
    noise_std: float = 0.05,
    tau: float = 0.1,
    clip: float = 1.0,
    w_out_std: float = 4.0,
    overlap_init: float = 1.0,
    n_val: int = 512,
    n_test: int = 1024,
    dt: float | None = None,
    device: str | torch.device = "cpu",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> TeacherResult:
    """Train a teacher network on a task.

    Parameters
    ----------
    task : Task, str or dict
        A task object, a task name (default parameters) or ``Task.to_dict()`` output.
    n_units : int
        Number of units ``N``.
    rank : "full" or int
        ``"full"`` for a :class:`FullRankRNN`, else the rank of a :class:`LowRankRNN`.
    rho : float
        Full rank: initial random connectivity of standard deviation ``rho / sqrt(N)``.
    seed : int
        Seeds the parameters, the trials and the noise: same seed, same network.
    out : str or Path, optional
        Run directory (model, settings, metrics, checkpoint).  Without it nothing
        is written and the run cannot be resumed.
    max_epochs : int
        Upper bound on epochs (an epoch is ``batches_per_epoch`` Adam steps on
        fresh trials, followed by validation).
    lr : float
        Adam learning rate of inputs, readout and low-rank factors.
    lr_recurrent : float, optional
        Multiplier of ``lr`` for a full-rank ``J`` (default ``1 / sqrt(N)``).
    batch_size, batches_per_epoch : int
        Trials per Adam step and steps per epoch.
    target_accuracy : float
        Stop once the validation accuracy reaches it (``> 1`` never stops early).
    noise_std : float
        Private noise of the units during training and evaluation.
    tau : float
        Time constant in seconds.
    clip : float
        Maximal gradient norm (``0`` disables clipping).
    w_out_std : float
        Standard deviation of the initial readout weights.
    overlap_init : float
        Low rank only: initial overlaps ``n_k . m_l / N ~ overlap_init * I`` (see
        the module notes; ``0`` gives independent ``m`` and ``n``).
    n_val, n_test : int
        Validation trials (early stopping, fixed) and test trials (final accuracy).
    dt : float, optional
        Overrides the task's ``dt``.
    device : str or torch.device
        ``"cpu"`` or ``"cuda"``.
    resume : bool
        Continue from the checkpoint in *out* (settings must match, except
        ``max_epochs`` and ``target_accuracy``); starts afresh if there is none.
    overwrite : bool
        Replace a finished or interrupted run in *out* instead of refusing.
    progress : bool
        Show a tqdm progress bar.
    callback : callable, optional
        Called after every epoch (and its checkpoint) with the epoch's record.

    Returns
    -------
    TeacherResult
        Model, task, metrics and settings.

    Raises
    ------
    LrfitError
        Invalid settings, in one sentence.
    KeyboardInterrupt
        Re-raised after Ctrl-C; the checkpoint of the last finished epoch is on
        disk and ``resume=True`` continues from it.

    Examples
    --------
    A 16-unit rank-1 teacher of context-dependent decision making, one epoch:

    >>> import tempfile
    >>> result = train_teacher("cdm", n_units=16, rank=1, max_epochs=1, n_val=32, n_test=32,
    ...                        out=tempfile.mkdtemp(), progress=False)
    >>> result.metrics["epochs"], 0.0 <= result.metrics["accuracy"] <= 1.0
    (1, True)
    """
    task = _resolve_task(task, dt)
    if isinstance(n_units, bool) or int(n_units) != n_units or n_units < 1:
        raise LrfitError(f"n_units must be a positive integer, got {n_units}.")
    n_units = int(n_units)
    rank_value = parse_rank(rank, n_units)
    for name, value in (
        ("max_epochs", max_epochs),
        ("batch_size", batch_size),
        ("batches_per_epoch", batches_per_epoch),
        ("n_val", n_val),
        ("n_test", n_test),
    ):
        if int(value) != value or value < 1:
            raise LrfitError(f"{name} must be a positive integer, got {value}.")
    if not lr > 0:
        raise LrfitError(f"lr must be positive, got {lr}.")
    if int(seed) != seed or seed < 0:
        raise LrfitError(f"seed must be a non-negative integer, got {seed}.")
    if clip < 0:
        raise LrfitError(f"clip must be >= 0, got {clip}.")
    if lr_recurrent is None:
        lr_recurrent = 1.0 / math.sqrt(n_units) if rank_value is None else 1.0
    try:
        overlap_init = float(overlap_init)
    except (TypeError, ValueError):
        raise LrfitError(f"overlap_init must be a finite number, got {overlap_init!r}.") from None
    if not math.isfinite(overlap_init):
        raise LrfitError(f"overlap_init must be a finite number, got {overlap_init}.")
    settings: dict[str, Any] = {
        "task": task.to_dict(),
        "n_units": int(n_units),
        "rank": "full" if rank_value is None else rank_value,
        "rho": float(rho) if rank_value is None else None,
        "seed": int(seed),
        "max_epochs": int(max_epochs),
        "lr": float(lr),
        "lr_recurrent": float(lr_recurrent),
        "batch_size": int(batch_size),
        "batches_per_epoch": int(batches_per_epoch),
        "target_accuracy": float(target_accuracy),
        "noise_std": float(noise_std),
        "tau": float(tau),
        "clip": float(clip),
        "w_out_std": float(w_out_std),
        "overlap_init": float(overlap_init) if rank_value is not None else None,
        "n_val": int(n_val),
        "n_test": int(n_test),
        "loss": "masked_mse",
        "optimizer": "adam",
    }
    model = build_network(task, n_units, rank_value, rho, seed, noise_std, tau, w_out_std, device, overlap_init)
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        RunDir.create(
            out_dir,
            resume,
            overwrite,
            owned=[CHECKPOINT_WEIGHTS, CHECKPOINT_META, SETTINGS_FILE, METRICS_FILE, "model.pt", "model.json"],
        )
    width = n_units if rank_value is None else 2 * rank_value + model.n_inputs + model.n_outputs + 1
    with fit_threads(step_work(batch_size, n_units, width)):  # the thread policy of lrfit.threads
        result = _train(model, task, settings, out_dir, resume, progress, callback)
        if result.stopped == "max_epochs" and result.best_epoch and result.best_epoch != result.epoch:
            log.info("Target accuracy not reached; keeping the best validation epoch %d.", result.best_epoch)
        metrics = _final_metrics(model, task, settings, result)
    if out_dir is not None:
        extra = {
            "task": task.to_dict(),
            "role": "teacher",
            "seed": int(seed),
            "rank": settings["rank"],
            "rho": settings["rho"],
            "accuracy": metrics["accuracy"],
        }
        save_model(model, out_dir, extra=extra)
        (out_dir / SETTINGS_FILE).write_text(json.dumps(settings, indent=2))
        (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    return TeacherResult(
        model=model, task=task, metrics=metrics, settings=settings, out=out_dir, history=result.history
    )


def _train(model: RNNBase, task: Task, settings: dict[str, Any], out_dir: Path | None, resume: bool, progress: bool,
           callback: Callable[[dict[str, Any]], None] | None) -> SolverResult:
    """The solver with the teacher's batch source (fresh trials), loss (readout MSE) and stop rule (target accuracy)."""
    full = settings["rank"] == "full"
    recurrent = [model.j] if full else [model.m, model.n]
    others = [p for name, p in model.named_parameters() if name not in ("j", "m", "n")]
    lr = settings["lr"]
    optimizer = adam([(recurrent, lr * (settings["lr_recurrent"] if full else 1.0)), (others, lr)])

    def check_settings(saved: dict[str, Any]) -> None:
        if saved and "overlap_init" not in saved:
            # written before overlap_init existed (independent m, n); the
            # initialisation no longer matters once the checkpoint is loaded
            settings["overlap_init"] = None if full else 0.0
            saved = {**saved, "overlap_init": settings["overlap_init"]}
        _check_resume(saved, settings, out_dir)

    seed = settings["seed"]
    val_trials = task.generate(settings["n_val"], seed=derive_seed(seed, _VAL))
    val_seed = derive_seed(seed, _VAL, 1)

    def validate() -> dict[str, float]:
        model.eval()
        val = _evaluate_trials(model, task, val_trials, torch_generator(val_seed, model.device))
        return {"monitor": val["loss"], "accuracy": val["accuracy"]}

    solver = Solver(
        dict(model.named_parameters()),
        optimizer,
        StopRule(settings["max_epochs"], target_accuracy=settings["target_accuracy"]),
        rollback=RollbackPolicy(lr_key="'lr' (lrfit teacher --lr)"),
        clip=settings["clip"],
        clip_params=list(model.parameters()),
        checkpoint_dir=out_dir,
        progress=progress,
        desc=f"teacher {task.name}",
    )
    return solver.run(
        _FreshTrials(task, model, seed, settings["batch_size"], settings["batches_per_epoch"]),
        lambda batch: masked_mse(model(batch[0], generator=batch[3]).outputs, batch[1], batch[2]),
        validate, resume=resume, settings=settings, check_settings=check_settings, average="batches",
        row=lambda r: {"epoch": r["epoch"], "loss": r["train_loss"], "val_loss": r["monitor"],
                       "val_accuracy": r["accuracy"], "seconds": r["seconds"]},
        describe=lambda r: f"loss={r['loss']:.4f}, val_acc={r['val_accuracy']:.3f}", on_epoch_end=callback,
    )


def _final_metrics(model: RNNBase, task: Task, settings: dict[str, Any], result: SolverResult) -> dict[str, Any]:
    """``metrics.json``: accuracy and loss on fresh test trials, progress, and the machine."""
    model.eval()
    n_test = settings["n_test"]
    test = evaluate(model, task, n_trials=n_test, seed=derive_seed(settings["seed"], _TEST))
    state, history, stopped = result.states[0], result.history, result.stopped
    final_val = history[-1] if history else {}
    log.info(
        "Teacher %s (%s, N=%d): accuracy %.3f on %d fresh trials after %d epochs, %.1f s.",
        task.name, settings["rank"], settings["n_units"], test["accuracy"], n_test, state.epoch, result.seconds,
    )
    return {
        "accuracy": test["accuracy"],
        "loss": test["loss"],
        "epochs": state.epoch,
        "seconds": result.seconds,
        "stopped": stopped,
        "best_epoch": state.best_epoch,
        "val_accuracy": state.best_accuracy if stopped == "max_epochs" else final_val.get("val_accuracy"),
        "n_test": int(n_test),
        "threads": torch.get_num_threads(),
        "device": str(model.device),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "history": history,
    }


class _FreshTrials:
    """The teacher's batch source: every epoch draws fresh trials and noise from seeds derived from ``(seed, epoch)``.

    Nothing else is random, so the source has no state to checkpoint: a resumed (or
    rolled-back) epoch draws the same trials and noise again.
    """

    def __init__(self, task: Task, model: RNNBase, seed: int, batch_size: int, batches_per_epoch: int) -> None:
        self.task, self.model, self.seed = task, model, int(seed)
        self.batch_size, self.batches_per_epoch = batch_size, batches_per_epoch

    def epoch(self, epoch: int) -> Iterator[tuple[tuple[torch.Tensor, ...], int]]:
        """``((inputs, targets, mask, noise generator), batch_size)`` for each step of epoch *epoch*."""
        self.model.train()
        trials = self.task.generate(
            self.batch_size * self.batches_per_epoch, seed=derive_seed(self.seed, _TRAIN, epoch, 0)
        )
        x, y, m = trials.to_torch(self.model.device)
        gen = torch_generator(derive_seed(self.seed, _TRAIN, epoch, 1), self.model.device)
        for b in range(self.batches_per_epoch):
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield (x[sl], y[sl], m[sl], gen), self.batch_size

    def state_dict(self) -> dict[str, Any]:
        """Empty: every stream is derived from the seed and the epoch."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


def _check_resume(saved: dict[str, Any], current: dict[str, Any], out_dir: Path) -> None:
    keys = sorted((set(saved) | set(current)) - set(RESUMABLE_CHANGES))
    changed = [
        k for k in keys if json.dumps(saved.get(k), sort_keys=True) != json.dumps(current.get(k), sort_keys=True)
    ]
    if changed:
        k = changed[0]
        raise LrfitError(
            f"Cannot resume '{out_dir}': setting '{k}' was {saved.get(k)!r} and is now {current.get(k)!r}; "
            "use the original settings (only max_epochs and target_accuracy may change) or pass overwrite."
        )


def load_teacher(directory: str | Path, device: str | torch.device = "cpu") -> tuple[RNNBase, Task]:
    """Load a teacher written by :func:`train_teacher`.

    Parameters
    ----------
    directory : str or Path
        Run directory.
    device : str or torch.device
        Where to put the parameters.

    Returns
    -------
    tuple
        ``(model, task)``; the task is rebuilt from the saved parameters.
    """
    meta = read_model_meta(directory)
    task_dict = (meta.get("extra") or {}).get("task")
    if not isinstance(task_dict, dict):
        raise LrfitError(
            f"'{Path(directory) / 'model.json'}' names no task; it is not a teacher written by 'lrfit teacher'."
        )
    task = get_task(**task_dict)
    model = load_model(directory, device=device)
    model.eval()
    return model, task
