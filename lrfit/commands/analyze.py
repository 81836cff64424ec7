"""``lrfit analyze RUN_DIR``: fixed points, populations, overlaps and latents into ``RUN_DIR/analysis/``.

Example::

    lrfit analyze runs/student                         # no input + each channel alone
    lrfit analyze runs/student --input none --input ctx_motion --input context=color
    lrfit analyze runs/student --input "mix=0,0,1,1"   # explicit vector, one value per channel

See :mod:`lrfit.runs.analyze` for the files and their keys.
"""

from __future__ import annotations

import argparse

from ._args import add_run_arguments, open_run

NAME = "analyze"
HELP = "analyse a low-rank run: fixed points, populations, overlaps, latent trajectories (writes RUN_DIR/analysis/)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``lrfit analyze``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    add_run_arguments(parser, rank_help="rank of a rank sweep to analyse (default: the chosen rank)")
    parser.add_argument(
        "--input", dest="inputs", action="append", default=None, metavar="SPEC",
        help="constant input for the fixed points (repeatable): none, CHANNEL, CHANNEL=v, NAME=v1,...,vC, or a "
        "condition COLUMN=VALUE; default: no input and each channel alone at 1.0",
    )
    parser.add_argument(
        "--split", default="all", help="fitted runs: latents on all, train or test trials (default all)"
    )
    parser.add_argument(
        "--trials", type=int, default=256, help="task-trained runs: task trials simulated (default 256)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of trials, starts and mixtures (default 0)")
    parser.add_argument(
        "--no-resample", action="store_true", help="skip scoring networks resampled from the populations"
    )
    parser.add_argument(
        "--population-rule", choices=("auto", "task", "bic"), default="auto",
        help="number of populations: the fewest seed-stable ones whose resampled networks perform the task (task), "
        "the lowest BIC among seed-stable ones (bic), or task when the run has a task and a readout (auto, default)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the analyses and print where the files went.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (see :func:`add_arguments`).

    Returns
    -------
    int
        Exit status 0.
    """
    from ..runs.analyze import analyze_run
    from ..runs.layout import FIXED_POINTS_FILE, POPULATIONS_FILE, RESAMPLE_FILE

    run = open_run(args)
    files = analyze_run(
        run, inputs=args.inputs, split=args.split, n_trials=args.trials, seed=args.seed,
        resample=not args.no_resample, population_rule=args.population_rule,
    )
    pops = run.read_analysis(POPULATIONS_FILE) or {}
    fps = run.read_analysis(FIXED_POINTS_FILE) or {}
    counts = "; ".join(f"{name}: {d['stability_counts']}" for name, d in fps.get("inputs", {}).items())
    print(
        f"populations: {pops.get('n_populations')} (rule {pops.get('rule')}; BIC alone: {pops.get('n_bic')}); fixed "
        f"points {counts}"
    )
    if "resample" in files:
        res = run.read_analysis(RESAMPLE_FILE) or {}
        print(
            f"task accuracy: network {res['network']['accuracy']:.3f}, resampled from populations "
            f"{res['mixture']['accuracy_mean']:.3f}, from one Gaussian {res['single_gaussian']['accuracy_mean']:.3f}"
        )
    print(f"wrote {files['fixed_points'].parent}")
    return 0
