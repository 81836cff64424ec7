"""The ``lrfit`` command line.

Each subcommand lives in its own module under :mod:`lrfit.commands` and defines
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; they are
discovered here, so adding a command never edits this file.  Every subcommand gets
``--threads N`` here (unless it declares its own, as ``lrfit sweep`` does for its
points), and runs under the thread policy of :mod:`lrfit.threads`: ``N`` threads for
everything when given, else threads chosen per fit from its size and one thread for
the rest.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from . import commands
from .errors import LrfitError
from .threads import command_threads

log = logging.getLogger("lrfit")


def _user_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [LrfitError]
    try:
        from data_adapters.errors import DataError

        errors.append(DataError)
    except ImportError:  # pragma: no cover - data_adapters always ships with lrfit
        pass
    return tuple(errors)


def _thread_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads N``, unless the command declares its own."""
    if not any("--threads" in action.option_strings for action in parser._actions):
        parser.add_argument("--threads", type=_thread_count, default=None, metavar="N",
                            help="threads for torch, BLAS and OpenMP (default: chosen per fit from its size, one "
                                 "thread for everything else; OMP_NUM_THREADS is respected)")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand found in :mod:`lrfit.commands`."""
    parser = argparse.ArgumentParser(
        prog="lrfit",
        description="Fit low-rank RNNs to neural recordings, train teacher networks, and explain the fits.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    parser.add_argument("-q", "--quiet", action="store_true", help="only log warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        _add_threads_option(cmd)
        cmd.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lrfit`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        with command_threads(getattr(args, "threads", None)):
            return int(args.func(args) or 0)
    except _user_errors() as exc:
        print(f"lrfit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lrfit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
