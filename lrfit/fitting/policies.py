"""When a training stops, which epoch it keeps, how its learning rate drops, what a non-finite loss does.

The policies of :class:`lrfit.fitting.solver.Solver`, one of each for every training in lrfit:
:class:`StopRule` (epochs, patience, convergence tolerance, target accuracy),
:class:`Plateau` (the learning-rate schedule) and :class:`RollbackPolicy`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import LrfitError

_PLATEAU_EPS = 1e-8
#: Why a training stopped (:attr:`StopState.stopped`; ``None`` while it runs, ``"max_epochs"`` when it ran out).
STOP_REASONS = ("converged", "patience", "max_epochs", "target")
#: The convergence window spans at least this many epochs ...
CONVERGENCE_EPOCHS = 10
#: ... and at least this many gradient steps (one full-batch step per epoch: 250 epochs).
CONVERGENCE_STEPS = 250


def convergence_window(batches_per_epoch: int) -> int:
    """Epochs over which :class:`StopRule` measures progress: >= 10 epochs and >= 250 gradient steps.

    Examples
    --------
    >>> convergence_window(25), convergence_window(1)  # 800 trials in batches of 32; full batch
    (10, 250)
    """
    return max(CONVERGENCE_EPOCHS, math.ceil(CONVERGENCE_STEPS / max(1, int(batches_per_epoch))))


@dataclass
class StopState:
    """Progress of one member under a :class:`StopRule` (JSON-serialisable)."""

    epoch: int = 0
    best_epoch: int = 0
    best_loss: float = math.inf
    best_accuracy: float = -1.0
    stopped: str | None = None
    #: best monitored loss after each of the last ``window + 1`` epochs (the convergence test)
    recent: list[float] = field(default_factory=list)


@dataclass
class StopRule:
    """When training stops and which epoch is kept.

    Attributes
    ----------
    max_epochs : int
        Upper bound on epochs.
    patience : int
        Stop after this many epochs without progress of the monitored loss (0: never).
    threshold : float
        Relative improvement of the monitored loss that counts as progress for
        *patience* (``loss < best * (1 - threshold)``).
    target_accuracy : float, optional
        Task training: stop once the monitored accuracy reaches it (the final network
        is kept); epochs are then ranked by accuracy first, loss second.
    tol : float
        Convergence: stop once the best monitored loss has improved by less than
        ``tol * scale`` over the last *window* epochs (0: never).  With *scale* the loss
        of a trivial model (the variance of the monitored data, as lrfit's fits pass),
        ``tol`` is a gain of R^2.
    window : int
        Epochs of that comparison (see :func:`convergence_window`).
    scale : float
        The loss scale of *tol*.

    Examples
    --------
    >>> rule, state = StopRule(max_epochs=10, patience=2), StopState()
    >>> [rule.update(state, e, loss) for e, loss in enumerate([1.0, 0.5, 0.6, 0.7], 1)]
    [True, True, False, False]
    >>> state.stopped, state.best_epoch
    ('patience', 2)

    A fit whose loss stopped improving by more than ``tol`` of its scale over 2 epochs:

    >>> rule, state = StopRule(max_epochs=100, tol=1e-3, window=2, scale=1.0), StopState()
    >>> [rule.update(state, e, loss) for e, loss in enumerate([0.5, 0.1, 0.0995, 0.0994], 1)]
    [True, True, True, True]
    >>> state.stopped, state.epoch
    ('converged', 4)
    """

    max_epochs: int
    patience: int = 0
    threshold: float = 0.0
    target_accuracy: float | None = None
    tol: float = 0.0
    window: int = CONVERGENCE_EPOCHS
    scale: float = 1.0

    def update(self, state: StopState, epoch: int, loss: float, accuracy: float | None = None) -> bool:
        """Record epoch *epoch*'s monitored loss (and accuracy); ``True`` when it is the new best."""
        state.epoch = epoch
        if self.target_accuracy is not None:
            acc = -math.inf if accuracy is None else accuracy
            better = acc > state.best_accuracy or (acc == state.best_accuracy
                                                   and loss < state.best_loss * (1 - self.threshold))
        else:
            acc = state.best_accuracy
            better = loss < state.best_loss * (1 - self.threshold) or state.best_epoch == 0
        if better:
            state.best_loss, state.best_accuracy, state.best_epoch = loss, acc, epoch
        elif self.patience and epoch - state.best_epoch >= self.patience:
            state.stopped = "patience"
        if self.tol > 0 and self._converged(state, loss):
            state.stopped = state.stopped or "converged"
        if self.target_accuracy is not None and accuracy is not None and accuracy >= self.target_accuracy:
            state.stopped = "target"
        return better

    def _converged(self, state: StopState, loss: float) -> bool:
        """Record the best loss so far; whether it gained less than ``tol * scale`` over the last *window* epochs."""
        running = state.recent[-1] if state.recent else math.inf
        state.recent.append(min(running, loss) if math.isfinite(loss) else running)
        del state.recent[: max(0, len(state.recent) - self.window - 1)]
        if len(state.recent) <= self.window or not math.isfinite(state.recent[0]):
            return False
        return state.recent[0] - state.recent[-1] < self.tol * self.scale

    def reopen(self, state: StopState) -> None:
        """On resume: a run stopped at a target that is now higher (or gone) continues."""
        if state.stopped == "target" and (self.target_accuracy is None or state.best_accuracy < self.target_accuracy):
            state.stopped = None

    def finished(self, state: StopState) -> bool:
        """Whether the member trains no further."""
        return state.stopped is not None or state.epoch >= self.max_epochs


@dataclass
class Plateau:
    """Multiply the learning rate by *factor* after *patience* epochs without relative progress *threshold*.

    The same rule as ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (mode ``min``,
    relative threshold, no cool-down), applied to the ``lr`` of the groups it is given.
    """

    factor: float
    patience: int
    min_lr: float
    threshold: float
    best: float = math.inf
    bad: int = 0

    @classmethod
    def for_patience(cls, patience: int, factor: float, min_lr: float, threshold: float) -> Plateau:
        """The fits' schedule: plateau patience ``max(1, patience // 3)`` (10 without early stopping)."""
        return cls(factor, max(1, patience // 3) if patience else 10, min_lr, threshold)

    def step(self, current: float, groups: Iterable[dict[str, Any]]) -> None:
        """Record the monitored loss *current*; lower the ``lr`` of *groups* after a plateau."""
        if current < self.best * (1.0 - self.threshold):
            self.best, self.bad = current, 0
        else:
            self.bad += 1
        if self.bad > self.patience:
            for group in groups:
                old = float(group["lr"])
                new = max(old * self.factor, self.min_lr)
                if old - new > _PLATEAU_EPS:
                    group["lr"] = new
            self.bad = 0


@dataclass
class RollbackPolicy:
    """What a non-finite loss or gradient does.

    The parameters and the optimiser go back to the end of the last finished epoch, the
    learning rate is multiplied by *factor* (the halvings compound: after ``k`` rollbacks
    it is ``lr0 * factor**k``, floored at *min_lr*) and the epoch is run again.  After
    *max_rollbacks* rollbacks the next non-finite value ends the run with an
    :class:`~lrfit.errors.LrfitError` naming *lr_key*, the setting to change.

    Attributes
    ----------
    max_rollbacks : int
        Bound on rollbacks (0: the first non-finite value is an error).
    factor : float
        Learning-rate factor of each rollback.
    min_lr : float
        Floor of the learning rate.
    lr_key : str
        The config key or argument that sets the learning rate, as the error message names it.
    """

    max_rollbacks: int = 20
    factor: float = 0.5
    min_lr: float = 0.0
    lr_key: str = "'lr'"

    def error(self, rollbacks: int, lr0: float, lr: float) -> LrfitError:
        """The one-sentence error that ends a run after *rollbacks* rollbacks."""
        done = (
            f"stayed non-finite after {rollbacks} rollbacks that lowered the learning rate from {lr0:.3g} to {lr:.3g}"
            if rollbacks
            else "became non-finite"
        )
        return LrfitError(f"The training loss or its gradient {done}; the data scaling or the learning rate is the "
                          f"likely cause: lower {self.lr_key} or rescale the data.")
