"""The ``lrfit`` command line.

Each subcommand lives in its own module under :mod:`lrfit.commands` and defines
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; they are
discovered here, so adding a command never edits this file.
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

log = logging.getLogger("lrfit")


def _user_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [LrfitError]
    try:
        from data_adapters.errors import DataError

        errors.append(DataError)
    except ImportError:  # pragma: no cover - data_adapters always ships with lrfit
        pass
    return tuple(errors)


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
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        print(f"lrfit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lrfit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
