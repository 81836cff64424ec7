"""Batched ensemble vs sequential fits: K seeds of a 512-unit rank-1 fit, same epochs.

The data are the rates of a random 512-unit rank-1 network driven by the inputs of
the context-dependent decision-making task (about 68 steps per trial).  One run
fits the K seeds as one :class:`LowRankEnsembleFit`, the other fits them one after
another with :class:`LowRankFit`; each runs in its own process so that the peak
resident memory (``VmHWM``) is that mode's alone.  Prints JSON with the wall
times, their ratio, the peak memory, and the largest difference between the
ensemble members' and the single fits' final training losses.

    python benchmarks/bench_ensemble.py [--threads N] [--k 8] [--epochs 5] [--trials 200] [--batched auto|yes|no]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

from common import in_fresh_process, peak_rss_mb


def _data(units: int, trials: int) -> Any:
    from lrfit import LowRankRNN
    from lrfit.tasks import get_task
    from lrfit.teachers import record_activity

    task = get_task("cdm")
    batch = task.generate(trials, seed=0)
    net = LowRankRNN(units, rank=1, n_inputs=len(batch.input_names), tau=0.1, dt=task.dt, seed=3)
    return record_activity(net, batch.inputs, batch.conditions, batch.input_names, noise_std=0.0)


def _worker(mode: str, args: dict[str, Any], queue: Any) -> None:
    from lrfit import LowRankFit
    from lrfit.fitting.ensemble import LowRankEnsembleFit
    from lrfit.threads import set_threads

    if args["threads"]:
        set_threads(args["threads"])

    train = _data(args["units"], args["trials"])
    common = dict(max_epochs=args["epochs"], batch_size=32, patience=0, tol=0.0, progress=False)
    seeds = list(range(args["k"]))
    start = time.perf_counter()
    if mode == "ensemble":
        batched = {"auto": None, "yes": True, "no": False}[args["batched"]]
        fits = LowRankEnsembleFit(LowRankFit(**common), seeds=seeds, ranks=1, batched=batched).fit(train).fits_
    else:
        fits = [LowRankFit(rank=1, random_state=s, **common).fit(train) for s in seeds]
    seconds = time.perf_counter() - start
    queue.put({"seconds": seconds, "peak_rss_mb": peak_rss_mb(),
               "final_train_loss": [f.history_[-1]["train_loss"] for f in fits]})


def main() -> None:
    """Run both modes and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=8, help="members (seeds)")
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--trials", type=int, default=200, help="training trials")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of every fit (no early stopping)")
    parser.add_argument("--threads", type=int, default=None, help="fix the threads (default: lrfit's thread policy)")
    parser.add_argument("--batched", choices=("auto", "yes", "no"), default="auto",
                        help="one batched rollout for all members (yes), member by member (no), or by device (auto)")
    args = vars(parser.parse_args())
    ensemble = in_fresh_process(_worker, "ensemble", args)
    sequential = in_fresh_process(_worker, "sequential", args)
    diff = max(abs(a - b) for a, b in zip(ensemble["final_train_loss"], sequential["final_train_loss"]))
    print(json.dumps({
        "benchmark": "bench_ensemble",
        "settings": args,
        "machine": platform.processor() or platform.machine(),
        "ensemble_seconds": round(ensemble["seconds"], 3),
        "sequential_seconds": round(sequential["seconds"], 3),
        "speedup": round(sequential["seconds"] / ensemble["seconds"], 2),
        "ensemble_peak_rss_mb": round(ensemble["peak_rss_mb"], 1),
        "sequential_peak_rss_mb": round(sequential["peak_rss_mb"], 1),
        "max_final_loss_difference": diff,
    }, indent=1))


if __name__ == "__main__":
    main()
