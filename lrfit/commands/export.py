"""``lrfit export RUN --format ayna``: a fitted run's spikes, rates, latents and inputs for outside checkers.

Example::

    lrfit export runs/student --format ayna                 # -> runs/student/ayna_bundle.npz
    ayna scan runs/student/ayna_bundle.npz --out reports/student

For a student of a teacher the bundle holds fresh trials of the teacher's task with Poisson
spikes drawn as ``lrfit simulate --record spikes`` draws them, the student's rates in
expected counts per bin, its latents, the task inputs, and the teacher's true state and
rates; for a fit of spike counts, the fit's own trials.  Keys and definitions:
:mod:`lrfit.runs.export`.
"""

from __future__ import annotations

import argparse

from ._args import add_overwrite, add_run_arguments, open_run

NAME = "export"
HELP = "export a fitted run for outside checkers (--format ayna: spikes, rates, latents, inputs, the teacher's state)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``lrfit export``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    parser.add_argument("run_dir", help="run directory written by 'lrfit fit'")
    parser.add_argument("--format", default="ayna", choices=("ayna",), help="bundle format (default ayna)")
    parser.add_argument("--out", default=None, help="file to write (default RUN_DIR/ayna_bundle.npz)")
    add_run_arguments(parser, run_help=None, rank_help="rank of a rank list (default: the chosen rank)")
    parser.add_argument("--trials", type=int, default=500, help="students of a teacher: fresh trials (default 500)")
    parser.add_argument(
        "--seed", type=int, default=12345, help="seed of those trials (default 12345, as lrfit compare)"
    )
    parser.add_argument("--max-rate-hz", type=float, default=50.0,
                        help="firing rate (Hz) at tanh(x) = 1 for the spikes and rates (default 50, as lrfit simulate)")
    parser.add_argument("--spike-seed", type=int, default=0, help="seed of the Poisson spikes (default 0)")
    add_overwrite(parser, "replace an existing --out file")


def run(args: argparse.Namespace) -> int:
    """Write the bundle and print what it holds and lrfit's own metrics on it.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (see :func:`add_arguments`).

    Returns
    -------
    int
        Exit status 0.
    """
    from ..runs.export import export_run

    run = open_run(args)
    path, meta = export_run(run, args.format, out=args.out, overwrite=args.overwrite, n_trials=args.trials,
                            seed=args.seed, max_rate_hz=args.max_rate_hz, spike_seed=args.spike_seed)
    print(f"wrote {path} ({args.format} bundle: {meta['model']}; inputs {meta['inputs_kind']})")
    numbers = meta.get("lrfit") or {}
    if numbers:
        print("lrfit on this bundle: " + ", ".join(f"{k} {v:.4f}" for k, v in numbers.items()))
    print(f"check it with: ayna scan {path}")
    return 0
