"""Fitter speed on the recovery problem: seconds per epoch and wall time to test R^2 0.99.

Problem (issue 4): activity of a 512-unit rank-1 teacher trained on context-dependent
decision making, 800 training trials (about 68 steps each) and 200 test trials; a
rank-1 student with batch size 32.  For each ``init`` the script reports the test R^2
of the closed-form start, the seconds per epoch, and the wall time (start included)
until the test R^2 first reaches 0.99.  Prints JSON.

    python benchmarks/bench_fit_epoch.py --threads 2 [--teacher DIR] [--inits regression random]

Without ``--teacher`` a teacher is trained first (about half a minute) in a
temporary folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lrfit import LowRankFit
from lrfit.teachers import simulate_teacher
from lrfit.teachers import train_teacher


def ensure_teacher(path: str | None, workdir: Path, units: int) -> Path:
    """The teacher directory given (trained there if it holds no model yet), or one in *workdir*."""
    out = Path(path) if path else workdir / "teacher"
    if (out / "model.json").is_file():
        return out
    train_teacher("cdm", n_units=units, rank=1, seed=0, out=out, max_epochs=60, progress=False)
    return out


def bench_init(init: str, train, test, args) -> dict:
    """Start quality, seconds per epoch and time to the target R^2 for one initialisation."""
    common = dict(rank=1, batch_size=args.batch_size, lr=args.lr, random_state=0, progress=False,
                  fullrank_epochs=args.fullrank_epochs, patience=0)
    t0 = time.perf_counter()
    start = LowRankFit(init=init, max_epochs=0, **common).fit(train)
    start_seconds = time.perf_counter() - t0
    start_r2 = start.score(test)
    fit = LowRankFit(init=init, max_epochs=args.epochs, **common).fit(train, validation=test)
    rows = fit.history_
    epoch_seconds = [b["seconds"] - a["seconds"] for a, b in zip([{"seconds": 0.0}] + rows[:-1], rows)]
    reached = None
    if start_r2 >= args.target:
        reached = start_seconds
    else:
        for row in rows:
            if row["val_r2"] >= args.target:
                reached = fit.init_seconds_ + row["seconds"]
                break
    return {
        "init": init,
        "start_r2_test": round(start_r2, 5),
        "start_seconds": round(start_seconds, 3),
        "seconds_per_epoch_median": round(statistics.median(epoch_seconds), 4) if rows else None,
        "epochs_run": len(rows),
        "final_r2_test": round(fit.score(test), 5),
        f"seconds_to_r2_{args.target}": None if reached is None else round(reached, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--teacher", help="directory of a rank-1 CDM teacher (trained here if absent)")
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--train-trials", type=int, default=800)
    parser.add_argument("--test-trials", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--epochs", type=int, default=30, help="epochs per init (cap)")
    parser.add_argument("--fullrank-epochs", type=int, default=10)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--inits", nargs="+", default=["regression", "random", "fullrank_svd"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        teacher = ensure_teacher(args.teacher, Path(tmp), args.units)
        train = simulate_teacher(teacher, args.train_trials, seed=1)
        test = simulate_teacher(teacher, args.test_trials, seed=2)
        results = [bench_init(init, train, test, args) for init in args.inits]
    print(json.dumps({
        "benchmark": "fit_epoch",
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "n_units": train.n_neurons,
        "train_trials": train.n_trials,
        "steps": train.n_time,
        "batch_size": args.batch_size,
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
