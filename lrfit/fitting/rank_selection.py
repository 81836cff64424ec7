"""Choose the rank on held-out data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import LrfitError
from .estimator import LowRankFit


@dataclass(frozen=True)
class RankSelection:
    """Test R^2 against rank and the rank chosen.

    Attributes
    ----------
    ranks : list of int
        Ranks fitted, increasing.
    r2_train, r2_test : list of float
        Pooled R^2 of each rank.
    chosen_rank : int
        Smallest rank whose test R^2 is within ``tolerance`` of the best.
    tolerance : float
        Allowed shortfall from the best test R^2.
    """

    ranks: list[int]
    r2_train: list[float]
    r2_test: list[float]
    chosen_rank: int
    tolerance: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy."""
        return asdict(self)


def choose_rank(ranks: Sequence[int], r2_test: Sequence[float], tolerance: float,
                baseline: float | Sequence[float] | None = None) -> int:
    """Smallest rank with ``r2_test >= max(r2_test) - tolerance``, among the ranks that beat *baseline*.

    Parameters
    ----------
    ranks, r2_test : sequence
        Ranks and their held-out R^2.
    tolerance : float
        Allowed shortfall from the best test R^2.
    baseline : float or sequence of float, optional
        The best trivial baseline's R^2 (one value, or one per rank): a rank must score
        strictly above it to be chosen.  When no rank does, the choice falls back to all
        ranks (the caller reports that none beats the baselines).

    Returns
    -------
    int

    Examples
    --------
    >>> choose_rank([1, 2, 3], [0.80, 0.895, 0.90], 0.01)
    2
    >>> choose_rank([1, 2, 3], [0.30, 0.45, 0.46], 0.01, baseline=0.455)
    3
    """
    floors = [None] * len(ranks) if baseline is None else (
        [baseline] * len(ranks) if isinstance(baseline, (int, float)) else list(baseline))
    beating = [(r, s) for r, s, f in zip(ranks, r2_test, floors) if f is None or s > f]
    pool = beating or list(zip(ranks, r2_test))
    best = max(s for _, s in pool)
    return min(r for r, s in pool if s >= best - tolerance)


def select_rank(
    train: Any,
    test: Any,
    ranks: Sequence[int],
    make_fit: Callable[[int], LowRankFit],
    tolerance: float = 0.01,
    validation: Any | None = None,
    on_fit: Callable[[int, LowRankFit], None] | None = None,
) -> tuple[RankSelection, dict[int, LowRankFit]]:
    """Fit each rank and choose the smallest one close enough to the best on *test*.

    Parameters
    ----------
    train, test : TrialData
        Training and held-out trials.
    ranks : sequence of int
        Ranks to try.
    make_fit : callable
        Returns an unfitted :class:`LowRankFit` for a rank.
    tolerance : float
        A rank is good enough when its test R^2 is at least the best minus this.
    validation : TrialData, optional
        Early-stopping data (defaults to none: the training loss is watched).
    on_fit : callable, optional
        Called with ``(rank, fit)`` after each fit (e.g. to save it).

    Returns
    -------
    tuple
        The :class:`RankSelection` and the fits by rank.
    """
    ranks = sorted({int(r) for r in ranks})
    if not ranks:
        raise LrfitError("The list of ranks is empty; give at least one rank.")
    fits: dict[int, LowRankFit] = {}
    r2_train, r2_test = [], []
    for rank in ranks:
        fit = make_fit(rank).fit(train, validation)
        fits[rank] = fit
        r2_train.append(fit.score(train))
        r2_test.append(fit.score(test))
        if on_fit is not None:
            on_fit(rank, fit)
    chosen = choose_rank(ranks, r2_test, tolerance)
    return RankSelection(ranks, r2_train, r2_test, chosen, float(tolerance)), fits
