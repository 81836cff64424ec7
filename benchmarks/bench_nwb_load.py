"""Benchmark: bin the spikes of a 200-unit, 500-trial NWB file with ``load_nwb``; print JSON.

The file (Poisson spikes at ``--rate-hz`` in the Units table, trials of ``--trial-s``
seconds laid end to end) is written with :func:`data_adapters.nwb_write.write_nwb` to a temporary folder
and deleted afterwards.  Reported: write time, load time (binning at ``--dt``),
peak traced Python/numpy memory during the load (``tracemalloc``) and the growth of
the maximum RSS of the (fresh) process that loads, each also as a multiple of the output tensor's size.

Run::

    python benchmarks/bench_nwb_load.py [--units 200] [--trials 500] [--dt 0.01]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
from common import peak_rss


def measure_load(path: str, dt: float) -> dict:
    """Time ``load_nwb(path, dt=dt)`` and measure its memory (call in a fresh process)."""
    import pynwb  # noqa: F401  - import cost is not load cost

    from data_adapters.nwb import load_nwb

    rss0 = peak_rss()
    tracemalloc.start()
    t = time.perf_counter()
    data = load_nwb(path, dt=dt, align_to="align_time")
    load_s = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = peak_rss()
    out = data.activity.nbytes
    return {"output_shape": list(data.activity.shape), "output_mb": round(out / 2**20, 1),
            "binned_spikes": int(data.activity.sum(dtype=np.float64)), "load_s": round(load_s, 2),
            "peak_traced_mb": round(peak / 2**20, 1), "peak_traced_x_output": round(peak / out, 2),
            "maxrss_growth_mb": round((rss1 - rss0) / 2**20, 1),
            "maxrss_growth_x_output": round((rss1 - rss0) / out, 2)}


def main() -> None:
    """Write the file, time the load, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--trial-s", type=float, default=2.0)
    parser.add_argument("--rate-hz", type=float, default=20.0)
    parser.add_argument("--dt", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--load-only", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_only:
        print(json.dumps(measure_load(args.load_only, args.dt)))
        return

    from data_adapters import TrialData
    from data_adapters.nwb_write import write_nwb

    # a homogeneous Poisson process: Poisson counts per dt bin, each spike uniform inside its bin
    n_bins = int(round(args.trial_s / args.dt))
    rates = np.full((args.trials, n_bins, args.units), args.rate_hz, dtype=np.float32)
    sim = TrialData(activity=rates, dt=args.dt, conditions={"condition": np.arange(args.trials) % 8},
                    meta={"units": "Hz"})
    del rates
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.nwb"
        t = time.perf_counter()
        write_nwb(sim, path, rates=False, spikes=True, seed=args.seed)
        write_s = time.perf_counter() - t
        del sim
        with h5py.File(path, "r") as f:
            n_spikes = int(f["units/spike_times"].shape[0])

        # measure the load in a fresh process, so the writer's memory does not hide the reader's
        proc = subprocess.run([sys.executable, __file__, "--load-only", str(path), "--dt", str(args.dt)],
                              capture_output=True, text=True, check=True)
        load = json.loads(proc.stdout)
        assert load["binned_spikes"] == n_spikes, "binning lost spikes"
        result = {
            "benchmark": "nwb_load_spikes",
            "units": args.units, "trials": args.trials, "trial_s": args.trial_s, "rate_hz": args.rate_hz,
            "dt": args.dt, "spikes": n_spikes, "file_mb": round(path.stat().st_size / 2**20, 1),
            "write_s": round(write_s, 2), **load,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
