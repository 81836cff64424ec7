"""``lrfit inactivate RUN_DIR --groups populations|FILE``: predict the effect of silencing groups of neurons.

Example::

    lrfit inactivate runs/student --groups populations
    lrfit inactivate runs/student --groups groups.json --fraction 0.5 --seed 1

FILE maps group names to neuron ids (JSON ``{"name": [ids]}`` or CSV with columns
``group,neuron``; see :mod:`lrfit.runs.groups`).  Writes ``inactivation.csv``,
``inactivation.json`` and ``inactivation.png`` into ``RUN_DIR/analysis/``.
"""

from __future__ import annotations

import argparse

from ._args import add_run_arguments, open_run

NAME = "inactivate"
HELP = ("silence groups of neurons (populations or a JSON/CSV file) and predict the change in accuracy per context "
        "(with a task) or in activity, latents and decodable condition variables (fits to recorded data)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``lrfit inactivate``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    add_run_arguments(parser)
    parser.add_argument(
        "--groups", required=True, help="'populations' or a JSON/CSV file mapping group names to neuron ids"
    )
    parser.add_argument(
        "--fraction", type=float, default=None, help="silence this random fraction of each group (default: all of it)"
    )
    parser.add_argument("--trials", type=int, default=512, help="task trials scored (default 512)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the trials and random fractions (default 0)")
    parser.add_argument("--decode", action="append", default=[], metavar="COLUMN",
                        help="fits to recorded data: a condition column whose decodability under silencing is "
                             "predicted (repeatable), e.g. --decode direction")


def run(args: argparse.Namespace) -> int:
    """Predict the inactivation effects and print the summary.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (see :func:`add_arguments`).

    Returns
    -------
    int
        Exit status 0.
    """
    from ..runs.inactivate import inactivate_run

    run = open_run(args)
    result = inactivate_run(run, groups=args.groups, fraction=args.fraction, seed=args.seed, n_trials=args.trials,
                            decode=args.decode)
    table = result["table"]
    used = result.get("rank") or {}
    if used.get("rank"):
        print(f"silencing the rank-{used['rank']} network: {used['how']}")
    cols = [c for c in ("group", "context", "n_silenced", "accuracy", "delta_accuracy", "p_value", "accuracy_teacher",
                        "delta_teacher", "p_value_teacher", "gap", "activity_change", "latent_change") if c in table]
    cols += [c for c in table if c.startswith("decode_") or c.startswith("delta_decode_")]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    agr = result["agreement"]
    if agr is not None:
        print(f"agreement with the teacher: sign {agr.sign_agreement:.2f} (a change counts when |delta| > {agr.tol:g} "
              f"and its paired test gives p < {agr.alpha:g}), mean |accuracy gap| {agr.mean_abs_gap:.3f}")
    check = result.get("rank_check")
    if check is not None:
        print(f"rank 1 against rank 2 on the same trials: same sign of change in {100 * check.sign_agreement:.0f}% of "
              "group x context cases")
        for _, row in check.table[~check.table["sign_agree"]].iterrows():
            print(f"  rank 1 disagrees in sign with rank 2 for {row['group']} ({row['context']}): delta "
                  f"{row['delta_pred']:+.3f} (p {row['p_pred']:.2g}) against {row['delta_true']:+.3f} "
                  f"(p {row['p_true']:.2g}) (the known rank-1 bias on sub-populations)")
    print(f"wrote {result['files']['csv'].parent}")
    return 0
