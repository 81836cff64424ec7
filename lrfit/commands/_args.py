"""The arguments that name a run, added the same way by every command that opens one."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..runs.run import Run

RUN_HELP = "run directory written by 'lrfit fit' or 'lrfit teacher'"


def add_run_arguments(parser: argparse.ArgumentParser, run_help: str | None = RUN_HELP,
                      rank_help: str = "rank of a rank sweep (default: the chosen rank)") -> None:
    """Add ``run_dir`` (unless *run_help* is None), ``--teacher`` and ``--rank`` to *parser*.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A subcommand's parser.
    run_help : str or None
        Help of the positional run directory; None: the command adds its own.
    rank_help : str
        Help of ``--rank``.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_run_arguments(parser)
    >>> parser.parse_args(["out", "--rank", "2"])
    Namespace(run_dir='out', teacher=None, rank=2)
    """
    if run_help is not None:
        parser.add_argument("run_dir", help=run_help)
    parser.add_argument("--teacher", default=None, help="teacher run directory (default: the one the run records)")
    parser.add_argument("--rank", type=int, default=None, help=rank_help)


def add_overwrite(parser: argparse.ArgumentParser, help: str) -> None:
    """Add the ``--overwrite`` flag with *help* (what it replaces).

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_overwrite(parser, "replace an existing output file")
    >>> parser.parse_args(["--overwrite"]).overwrite
    True
    """
    parser.add_argument("--overwrite", action="store_true", help=help)


def open_run(args: argparse.Namespace) -> Run:
    """The run named by the arguments of :func:`add_run_arguments`, opened once.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options with ``run_dir``, ``teacher`` and ``rank``.

    Returns
    -------
    Run
        The opened run.
    """
    from ..runs.run import Run

    return Run.open(args.run_dir, teacher=args.teacher, rank=args.rank)
