"""Errors that lrfit reports to users as one clear sentence."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError


class LrfitError(ValueError):
    """A user-facing error: the message is one sentence naming the problem and the fix.

    The command line prints the message without a traceback.

    Examples
    --------
    >>> try:
    ...     raise LrfitError("'data.npz' has no 'activity' array; save one of shape (trials, time, neurons).")
    ... except ValueError as exc:
    ...     print(exc)
    'data.npz' has no 'activity' array; save one of shape (trials, time, neurons).
    """


class NotFittedError(LrfitError, _SklearnNotFittedError):
    """An estimator was used (``predict``, ``score``, ``save``, ...) before ``fit``.

    Both an :class:`LrfitError` (the command line prints it as one sentence) and a
    :class:`sklearn.exceptions.NotFittedError` (scikit-learn tools recognise it).

    Examples
    --------
    >>> from lrfit import LowRankFit, NotFittedError
    >>> try:
    ...     LowRankFit().score(None)
    ... except NotFittedError as err:
    ...     print(err)
    This LowRankFit is not fitted yet; call fit(train) first.
    """


#: Names users reach for that lrfit spells otherwise.
_SYNONYMS = {"learning_rate": "lr", "learningrate": "lr", "epochs": "max_epochs", "n_epochs": "max_epochs",
             "num_epochs": "max_epochs", "batchsize": "batch_size", "normalize": "normalise", "clip": "clip_grad",
             "random_state": "seed", "time_unit": "time_units", "n_folds": "folds", "kfold": "folds"}


def closest(name: str, choices: Iterable[str]) -> str:
    """Return a ``" (did you mean 'x'?)"`` hint for *name* among *choices*, or ``""``.

    Parameters
    ----------
    name : str
        The unknown name the user gave.
    choices : iterable of str
        The valid names.

    Returns
    -------
    str
        A short hint naming the closest valid choice, or an empty string.
    """
    choices = list(choices)
    synonym = _SYNONYMS.get(name.lower())
    if synonym in choices:
        return f" (did you mean '{synonym}'?)"
    # A transposition ("dsm" for "dms") is the likeliest typo; difflib ranks it poorly.
    match = [c for c in choices if sorted(c.lower()) == sorted(name.lower())]
    match = match or difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def check_choice(value: str, choices: Iterable[str], what: str) -> str:
    """Return *value* if it is one of *choices*, else raise :class:`LrfitError`.

    Parameters
    ----------
    value : str
        The value to check.
    choices : iterable of str
        Valid values.
    what : str
        What the value names, for the message (e.g. ``"task"``).

    Returns
    -------
    str
        *value*, unchanged.
    """
    choices = list(choices)
    if value not in choices:
        raise LrfitError(
            f"Unknown {what} '{value}'{closest(value, choices)}; choose one of: "
            + ", ".join(sorted(choices))
            + "."
        )
    return value
