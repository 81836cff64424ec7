"""``lrfit report RUN_DIR [--out FILE.html]``: a self-contained HTML page explaining a run.

Missing analyses are computed first (``lrfit analyze``, ``lrfit inactivate --groups
populations``); see :mod:`lrfit.report` for the sections.
"""

from __future__ import annotations

import argparse

NAME = "report"
HELP = "write a self-contained HTML report of a run (fit quality, latents, populations, dynamics, inactivation)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``lrfit report``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    parser.add_argument("run_dir", help="run directory written by 'lrfit fit' or 'lrfit teacher'")
    parser.add_argument("--out", default=None, help="HTML file to write (default RUN_DIR/report.html)")
    parser.add_argument("--teacher", default=None, help="teacher run directory (default: the one the run records)")
    parser.add_argument("--rank", type=int, default=None, help="rank of a rank sweep (default: the chosen rank)")


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
    from ..report import build_report
    from ..rundir import RunDir

    path = build_report(RunDir.open(args.run_dir, teacher=args.teacher, rank=args.rank), out=args.out)
    print(f"wrote {path}")
    return 0
