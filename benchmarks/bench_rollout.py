"""Time one forward + backward pass of a low-rank RNN through time; print JSON.

The headline case is the issue's: a 512-unit rank-1 network, 800 trials x 68 steps,
on the CPU with the given number of threads.  ``--scaling`` adds N = 256..4096 at
rank 1 to show that time and memory of the low-rank step grow linearly in N.

    python benchmarks/bench_rollout.py --threads 2 [--scaling] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from common import peak_rss_mb

from lrfit import LowRankRNN


def time_pass(n_units: int, rank: int, trials: int, steps: int, repeats: int, device: str) -> dict:
    """Median seconds of forward (rates) + backward of the summed squared rates."""
    model = LowRankRNN(n_units, rank=rank, n_inputs=4, tau=0.1, dt=0.02, seed=0, device=device)
    inputs = torch.randn(trials, steps, 4, generator=torch.Generator().manual_seed(0)).to(device)
    target = torch.zeros(trials, steps, n_units, device=device)
    forward, backward = [], []
    for _ in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        rates = model(inputs).rates
        loss = ((rates - target) ** 2).mean()
        if device != "cpu":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        loss.backward()
        if device != "cpu":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        forward.append(t1 - t0)
        backward.append(t2 - t1)
    forward, backward = sorted(forward[1:]), sorted(backward[1:])  # first pass warms up
    mid = len(forward) // 2
    return {
        "n_units": n_units,
        "rank": rank,
        "trials": trials,
        "steps": steps,
        "forward_s": round(forward[mid], 4),
        "backward_s": round(backward[mid], 4),
        "forward_backward_s": round(forward[mid] + backward[mid], 4),
        "process_peak_rss_mb": round(peak_rss_mb(), 1),
        "activity_mb": round(trials * steps * n_units * 4 / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--rank", type=int, default=1)
    parser.add_argument("--trials", type=int, default=800)
    parser.add_argument("--steps", type=int, default=68)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scaling", action="store_true", help="also time N = 256..4096 (200 trials)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {
        "benchmark": "rollout_forward_backward",
        "threads": args.threads,
        "device": args.device,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "headline": time_pass(args.units, args.rank, args.trials, args.steps, args.repeats, args.device),
    }
    if args.scaling:
        result["scaling"] = [time_pass(n, 1, 200, args.steps, 3, args.device) for n in (256, 512, 1024, 2048, 4096)]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
