"""The reference epoch on a busy machine: quiet, beside one and beside two CPU-bound processes.

The reference problem is ``bench_fit_epoch.py``'s: a rank-1 student of a 512-unit rank-1
CDM teacher, 800 training trials (about 68 steps each) in batches of 32, validation on
200 trials.  Each measurement runs in a fresh process (so that ``OMP_WAIT_POLICY`` and the
thread counts apply from the start, as for a user) and reports the median seconds per
epoch of a few epochs.  The competitors are pure-Python busy loops started by this
script, one CPU each; each ends on its own after ``--competitor-seconds`` and is killed as
soon as its measurement is done.  Settings:

* ``default``: nothing set, lrfit's thread policy (``lrfit.threads``) decides;
* ``threads=N``: ``OMP_NUM_THREADS=N`` (the user's choice, passive waiting);
* ``threads=N,spin``: the same with torch imported before lrfit, so OpenMP keeps its
  default busy-waiting: what lrfit did before the policy with ``N`` = the CPU count.

Prints JSON: per setting the seconds per epoch quiet and with 1 and 2 competitors (median
and range over ``--repeats`` interleaved rounds), the slowdowns (ratio to quiet within the
same round), the threads each measurement used, its peak RSS, and the load averages.

    python benchmarks/bench_contention.py [--teacher DIR] [--settings default threads=1 threads=2,spin] [--repeats 3]

"Quiet" is the machine as it is, without the competitors: on a machine other jobs share,
run it at a raised priority (``nice -n -5 ...``; the competitors inherit it) or compare the
ratios only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bench_fit_epoch: the reference problem
from common import peak_rss_mb  # noqa: E402

BUSY = "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end:\n    pass\n"


def _worker(args: argparse.Namespace) -> None:
    """One measurement (run in a fresh process): median seconds per epoch of the reference fit."""
    if args.spin:
        import torch  # noqa: F401  (before lrfit: OpenMP keeps its default busy-waiting)
    import torch
    from bench_fit_epoch import read_recording

    import lrfit  # noqa: F401  (otherwise first: idle OpenMP threads wait passively)
    from lrfit import LowRankFit

    train, test = read_recording(args.data, "train"), read_recording(args.data, "test")
    fit = LowRankFit(rank=1, max_epochs=args.epochs, patience=0, tol=0.0, progress=False, random_state=0)
    threads = {}

    def record(epoch: int) -> None:  # the count in force during the fit (the policy restores it after)
        threads["torch"] = torch.get_num_threads()

    fit._on_epoch_end = record  # the estimator's seam, called after each epoch
    fit.fit(train, validation=test)
    rows = fit.history_
    seconds = [b["seconds"] - a["seconds"] for a, b in zip(rows[:-1], rows[1:])]  # the first epoch warms up
    print(json.dumps({"seconds_per_epoch": statistics.median(seconds), "threads": threads.get("torch"),
                      "peak_rss_mb": round(peak_rss_mb()),
                      "wait_policy": os.environ.get("OMP_WAIT_POLICY")}))


def _environment(setting: str) -> tuple[dict[str, str], bool]:
    """The worker's environment and whether it imports torch before lrfit, for *setting*."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                           "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY")}
    if setting == "default":
        return env, False
    threads, *flags = setting.removeprefix("threads=").split(",")
    env.update({"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads})
    return env, "spin" in flags


def _measure(setting: str, competitors: int, args: argparse.Namespace, data: Path) -> dict:
    env, spin = _environment(setting)
    busy = [subprocess.Popen([sys.executable, "-c", BUSY, str(args.competitor_seconds)]) for _ in range(competitors)]
    try:
        time.sleep(0.5 if competitors else 0.0)
        load = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--worker", "--data", str(data), "--epochs", str(args.epochs)]
        out = subprocess.run(cmd + (["--spin"] if spin else []), env=env, capture_output=True, text=True,
                             timeout=args.competitor_seconds)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    if out.returncode:
        raise RuntimeError(f"the measurement of {setting} failed:\n{out.stderr[-2000:]}")
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load_1min": round(load, 2)}


def _prepare(args: argparse.Namespace, workdir: Path) -> Path:
    """The reference data (train.npz, test.npz) in *workdir*, from the teacher (trained if absent)."""
    from bench_fit_epoch import ensure_teacher, write_recordings

    return write_recordings(ensure_teacher(args.teacher, workdir, 512), workdir, 800, 200)


def _summary(rounds: list[dict[int, dict]]) -> dict:
    out: dict = {}
    for k in sorted(rounds[0]):
        times = [r[k]["seconds_per_epoch"] for r in rounds]
        out[f"competitors_{k}"] = {"seconds_per_epoch": round(statistics.median(times), 4),
                                   "range": [round(min(times), 4), round(max(times), 4)],
                                   "threads": sorted({r[k]["threads"] for r in rounds}),
                                   "peak_rss_mb": max(r[k]["peak_rss_mb"] for r in rounds),
                                   "load_1min": [r[k]["load_1min"] for r in rounds]}
        if k:
            ratios = [r[k]["seconds_per_epoch"] / r[0]["seconds_per_epoch"] for r in rounds]
            out[f"slowdown_{k}"] = {"median": round(statistics.median(ratios), 2),
                                    "range": [round(min(ratios), 2), round(max(ratios), 2)]}
    return out


def compact_json(value: dict) -> str:
    """JSON with one entry per line and short lists on one line."""
    text = json.dumps(value, indent=1)
    return re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", help="directory of a rank-1 CDM teacher (trained here if absent)")
    parser.add_argument("--settings", nargs="+", default=["default", "threads=1", "threads=2", "threads=2,spin"])
    parser.add_argument("--competitors", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per measurement (the first is not timed)")
    parser.add_argument("--competitor-seconds", type=float, default=300.0,
                        help="a competitor ends on its own after this (and a measurement is abandoned)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--spin", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    started = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        data = _prepare(args, Path(tmp))
        rounds: dict[str, list[dict[int, dict]]] = {s: [] for s in args.settings}
        for _ in range(args.repeats):
            for setting in args.settings:
                rounds[setting].append({k: _measure(setting, k, args, data) for k in args.competitors})
    print(compact_json({
        "benchmark": "contention",
        "problem": "rank-1 student of a 512-unit rank-1 CDM teacher, 800 trials x 68 steps, batch 32, validation 200",
        "cpus": len(os.sched_getaffinity(0)),
        "machine": platform.processor() or platform.machine(),
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "nice": os.nice(0),
        "repeats": args.repeats,
        "seconds": round(time.perf_counter() - started, 1),
        "settings": {s: _summary(r) for s, r in rounds.items()},
    }))


if __name__ == "__main__":
    main()
