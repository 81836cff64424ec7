"""Errors raised for bad input files and arguments.

Every problem with user data is reported as a :class:`DataError` whose message is
one sentence naming the file, the field and the fix.  The ``lrfit`` command line
catches it and prints the message without a traceback.
"""

from __future__ import annotations

from os import PathLike


class DataError(ValueError):
    """Bad input data: missing file, wrong shape, NaN, unknown column, corrupt file, ...

    Parameters
    ----------
    message
        One sentence naming the problem and the fix.
    path
        File the problem was found in, prefixed to the message when given.
    field
        Name of the offending field / key / column (kept as an attribute).
    """

    def __init__(self, message: str, *, path: str | PathLike | None = None, field: str | None = None):
        self.path = None if path is None else str(path)
        self.field = field
        text = message if self.path is None or self.path in message else f"{self.path}: {message}"
        super().__init__(text)


def where(path: str | PathLike | None) -> str:
    """Return ``" in 'PATH'"`` for messages, or an empty string when the source is unknown."""
    return "" if path is None else f" in '{path}'"
