"""``lrfit teacher``: train a teacher network on a cognitive task.

Example::

    lrfit teacher --task cdm --units 512 --rank 1 --seed 0 --out runs/cdm_rank1
    lrfit teacher --task cdm --units 512 --rank full --rho 0.1 --out runs/cdm_full
    lrfit teacher ... --resume          # continue an interrupted run

The command calls :func:`lrfit.teachers.train_teacher`; every check of the
arguments happens there, so Python users get the same messages.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import LrfitError
from ._args import add_overwrite

NAME = "teacher"
HELP = "train a full-rank or low-rank teacher RNN on a cognitive task (cdm, pdm, dms, romo, flipflop)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``lrfit teacher``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    parser.add_argument("--task", required=True, help="task name: cdm, pdm, dms, romo or flipflop")
    parser.add_argument("--units", type=int, default=512, help="number of units N (default 512)")
    parser.add_argument("--rank", default="full", help="'full' or an integer rank 1..N (default full)")
    parser.add_argument(
        "--rho", type=float, default=1.0, help="full rank: initial random connectivity std rho/sqrt(N) (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of parameters, trials and noise (default 0)")
    parser.add_argument("--out", required=True, help="run directory (model, settings.json, metrics.json, checkpoint)")
    parser.add_argument("--epochs", type=int, default=None, help="maximum number of epochs")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    parser.add_argument("--batch-size", type=int, default=None, help="trials per Adam step")
    parser.add_argument(
        "--target-accuracy", type=float, default=None, help="stop once the validation accuracy reaches it"
    )
    parser.add_argument("--noise", type=float, default=None, help="private noise std of the units")
    parser.add_argument(
        "--overlap-init", type=float, default=None,
        help="low rank: initial n = c m + noise, so the overlaps n.m/N start near c (default 1: slow "
        "dynamics that carry memory across delays; 0: independent m, n)",
    )
    parser.add_argument("--dt", type=float, default=None, help="Euler step in seconds (default: the task's, 0.02)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    add_overwrite(parser, "replace an existing run in --out")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--task-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="task parameter (repeatable), e.g. stimulus_ms=600 or coherences=[0.1,0.2]; values are JSON",
    )


def parse_task_params(items: list[str]) -> dict[str, Any]:
    """Turn ``["key=value", ...]`` into a dict; values are read as JSON, else kept as strings.

    Parameters
    ----------
    items : list of str
        ``KEY=VALUE`` strings.

    Returns
    -------
    dict

    Raises
    ------
    LrfitError
        An item without ``=`` or with an empty key.
    """
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise LrfitError(f"--task-param expects KEY=VALUE (e.g. stimulus_ms=600), got '{item}'.")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def run(args: argparse.Namespace) -> int:
    """Train the teacher described by *args* and print its metrics.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (see :func:`add_arguments`).

    Returns
    -------
    int
        Exit status 0.
    """
    from ..tasks import get_task
    from ..teachers import train_teacher

    task_kwargs = parse_task_params(args.task_param)
    if args.dt is not None:
        task_kwargs["dt"] = args.dt
    task = get_task(args.task, **task_kwargs)
    options: dict[str, Any] = {}
    for name, value in (
        ("max_epochs", args.epochs),
        ("lr", args.lr),
        ("batch_size", args.batch_size),
        ("target_accuracy", args.target_accuracy),
        ("noise_std", args.noise),
        ("overlap_init", args.overlap_init),
    ):
        if value is not None:
            options[name] = value
    result = train_teacher(
        task,
        n_units=args.units,
        rank=args.rank,
        rho=args.rho,
        seed=args.seed,
        out=args.out,
        device=args.device,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        **options,
    )
    m = result.metrics
    print(
        f"teacher {result.task.name} (N={result.settings['n_units']}, rank {result.settings['rank']}): "
        f"accuracy {m['accuracy']:.4f} on {m['n_test']} fresh trials, loss {m['loss']:.4g}, "
        f"{m['epochs']} epochs ({m['stopped']}), {m['seconds']:.1f} s -> {args.out}"
    )
    return 0
