"""Fitter speed on the recovery problem: seconds per epoch, epochs run, time to test R^2 0.99, peak memory.

Problem (issue 4): activity of a 512-unit rank-1 teacher trained on context-dependent
decision making, 800 training trials (about 68 steps each) and 200 test trials; a
rank-1 student with batch size 32.  For each ``init`` the script reports the test R^2
of the closed-form start (and the seconds of a first fit with no epochs, cold, and of the
start inside the timed fit), the seconds per epoch, the epochs run and why the fit stopped
(the estimator's defaults: convergence tolerance, patience, at most ``--epochs``), the wall
time (start included) until the test R^2 first reaches 0.99, the final test R^2, and the
peak resident memory of the process that ran it (each init runs in its own process, which
loads the recordings from disk).  With ``--counts`` (the default) the same problem is also fitted
as spike counts (issue 19): Poisson spikes of the same trials (each unit's peak 20-50 Hz), a
counts fit from the regression start (``LowRankFit(observation="counts")``), its s/epoch beside the
rates fit's and the ratio.  Prints JSON.

    python benchmarks/bench_fit_epoch.py [--threads N] [--teacher DIR] [--inits regression random]

Without ``--threads`` lrfit's thread policy chooses (``lrfit.threads``).  Without
``--teacher`` a teacher is trained first (about half a minute) in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from common import in_fresh_process, peak_rss_mb


def ensure_teacher(path: str | None, workdir: Path, units: int) -> Path:
    """The teacher directory given (trained there if it holds no model yet), or one in *workdir*."""
    from lrfit.teachers import train_teacher

    out = Path(path) if path else workdir / "teacher"
    if (out / "model.json").is_file():
        return out
    train_teacher("cdm", n_units=units, rank=1, seed=0, out=out, max_epochs=60, progress=False)
    return out


def write_recordings(teacher: Path, workdir: Path, train_trials: int, test_trials: int,
                     noise_std: float | None = None) -> Path:
    """The teacher's train (seed 1) and test (seed 2) recordings as ``train.npz`` and ``test.npz`` in *workdir*."""
    import numpy as np

    from lrfit.teachers import simulate_teacher

    for name, trials, seed in (("train", train_trials, 1), ("test", test_trials, 2)):
        d = simulate_teacher(teacher, trials, seed=seed, noise_std=noise_std)
        np.savez(workdir / f"{name}.npz", activity=d.activity, inputs=d.inputs, mask=d.mask, dt=d.dt)
        spikes = simulate_teacher(teacher, trials, seed=seed, noise_std=noise_std, record="spikes",
                                  max_rate_hz=(20.0, 50.0))
        np.savez(workdir / f"{name}_spikes.npz", activity=spikes.activity, inputs=d.inputs, mask=d.mask, dt=d.dt)
    return workdir


def read_recording(workdir: Path, name: str):
    """A recording written by :func:`write_recordings`."""
    import numpy as np

    from lrfit import TrialData

    z = np.load(Path(workdir) / f"{name}.npz")
    return TrialData(activity=z["activity"], inputs=z["inputs"], mask=z["mask"], dt=float(z["dt"]))


def bench_init(init: str, args: dict, queue) -> None:
    """Start quality, seconds per epoch, epochs and time to the target R^2 for one initialisation (own process)."""
    import torch

    import lrfit  # noqa: F401  (before torch: the thread policy's passive waiting)
    from lrfit import LowRankFit
    from lrfit.threads import set_threads

    if args["threads"]:
        set_threads(args["threads"])
    train, test = read_recording(args["data"], "train"), read_recording(args["data"], "test")
    common = dict(rank=1, batch_size=args["batch_size"], lr=args["lr"], random_state=0, progress=False,
                  fullrank_epochs=args["fullrank_epochs"])
    t0 = time.perf_counter()
    start = LowRankFit(init=init, max_epochs=0, **common).fit(train)
    start_seconds = time.perf_counter() - t0
    start_r2 = start.score(test)
    used = {}
    fit = LowRankFit(init=init, max_epochs=args["epochs"], **common)
    fit._on_epoch_end = lambda epoch: used.setdefault("threads", torch.get_num_threads())  # the estimator's seam
    fit.fit(train, validation=test)
    rows = fit.history_
    epoch_seconds = [b["seconds"] - a["seconds"] for a, b in zip([{"seconds": 0.0}] + rows[:-1], rows)]
    target = args["target"]
    reached = None
    if start_r2 >= target:  # the closed-form start inside the fit (the separate start above ran cold)
        reached = fit.init_seconds_
    else:
        for row in rows:
            if row["val_r2"] >= target:
                reached = fit.init_seconds_ + row["seconds"]
                break
    queue.put({
        "init": init,
        "lr": fit.lr_,
        "threads": used.get("threads"),
        "start_r2_test": round(start_r2, 5),
        "start_seconds": round(start_seconds, 3),
        "init_seconds": round(fit.init_seconds_, 3),
        "seconds_per_epoch_median": round(statistics.median(epoch_seconds), 4) if rows else None,
        "epochs_run": len(rows),
        "stopped": fit.stopped_,
        "best_epoch": fit.best_epoch_,
        "fit_seconds": round(fit.fit_seconds_, 2),
        "final_r2_test": round(fit.score(test), 5),
        f"seconds_to_r2_{target}": None if reached is None else round(reached, 3),
        "peak_rss_mb": round(peak_rss_mb()),
    })


def bench_counts(args: dict, queue) -> None:
    """The same problem as spike counts: a counts fit's s/epoch, epochs and held-out bits per spike (own process)."""
    import lrfit  # noqa: F401  (before torch: the thread policy's passive waiting)
    from lrfit import LowRankFit
    from lrfit.threads import set_threads

    if args["threads"]:
        set_threads(args["threads"])
    train, test = read_recording(args["data"], "train_spikes"), read_recording(args["data"], "test_spikes")
    fit = LowRankFit(rank=1, observation="counts", batch_size=args["batch_size"], lr=args["lr"], random_state=0,
                     progress=False, max_epochs=args["epochs"]).fit(train, validation=test)
    rows = fit.history_
    epoch_seconds = [b["seconds"] - a["seconds"] for a, b in zip([{"seconds": 0.0}] + rows[:-1], rows)]
    queue.put({
        "target": "counts",
        "init": "regression",
        "init_seconds": round(fit.init_seconds_, 3),
        "seconds_per_epoch_median": round(statistics.median(epoch_seconds), 4) if rows else None,
        "epochs_run": len(rows),
        "stopped": fit.stopped_,
        "final_bits_per_spike_test": round(fit.score(test, metric="bits_per_spike"), 5),
        "peak_rss_mb": round(peak_rss_mb()),
    })


def learning_rate(text: str) -> float | str:
    """``--lr``: ``auto`` or a number."""
    return text if text == "auto" else float(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="fix the threads (default: lrfit's policy)")
    parser.add_argument("--teacher", help="directory of a rank-1 CDM teacher (trained here if absent)")
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--train-trials", type=int, default=800)
    parser.add_argument("--test-trials", type=int, default=200)
    parser.add_argument("--noise-std", type=float, default=None,
                        help="private noise of the recordings (default: the teacher's own; 0: noise-free)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=learning_rate, default="auto",
                        help="Adam's learning rate, or 'auto' (the estimator's default: by init)")
    parser.add_argument("--epochs", type=int, default=200, help="epochs per init (cap; the fit may stop earlier)")
    parser.add_argument("--fullrank-epochs", type=int, default=10)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--inits", nargs="+", default=["regression", "random", "fullrank_svd"])
    parser.add_argument("--no-counts", dest="counts", action="store_false",
                        help="skip the counts fit of the same trials' Poisson spikes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        teacher = ensure_teacher(args.teacher, Path(tmp), args.units)
        data = write_recordings(teacher, Path(tmp), args.train_trials, args.test_trials, args.noise_std)
        settings = {**vars(args), "data": str(data)}
        results = [in_fresh_process(bench_init, init, settings) for init in args.inits]  # own threads, own peak
        counts = in_fresh_process(bench_counts, settings) if args.counts else None
        import numpy as np

        shape = np.load(data / "train.npz")["activity"].shape
    import torch

    print(json.dumps({
        "benchmark": "fit_epoch",
        "threads": args.threads or "policy",
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "n_units": shape[2],
        "train_trials": shape[0],
        "steps": shape[1],
        "batch_size": args.batch_size,
        "noise_std": args.noise_std,
        "results": results,
        **({} if counts is None else {"counts": {
            **counts,
            "rates_seconds_per_epoch_median": next((r["seconds_per_epoch_median"] for r in results
                                                    if r["init"] == "regression"), None),
            "counts_over_rates": next((round(counts["seconds_per_epoch_median"] / r["seconds_per_epoch_median"], 2)
                                       for r in results if r["init"] == "regression"), None),
        }}),
    }, indent=2))


if __name__ == "__main__":
    main()
