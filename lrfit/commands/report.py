"""``lrfit report RUN_DIR [--out FILE.html]``: a self-contained HTML page explaining a run.

Missing analyses are computed first (``lrfit analyze``, ``lrfit inactivate --groups
populations``); see :mod:`lrfit.runs.report` for the sections.
"""

from __future__ import annotations

import argparse

from ._args import add_run_arguments, open_run

NAME = "report"
HELP = "write a self-contained HTML report of a run (fit quality, latents, populations, dynamics, inactivation)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``lrfit report``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    add_run_arguments(parser)
    parser.add_argument("--out", default=None, help="HTML file to write (default RUN_DIR/report.html)")


def run(args: argparse.Namespace) -> int:
    """Build the report and print its path.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (see :func:`add_arguments`).

    Returns
    -------
    int
        Exit status 0.
    """
    from ..runs.report import build_report

    path = build_report(open_run(args), out=args.out)
    print(f"wrote {path}")
    return 0
