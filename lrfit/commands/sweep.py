"""``lrfit sweep SWEEP.yaml --out DIR``: run a grid of fits on a local process pool or a Ray cluster."""

from __future__ import annotations

import argparse

NAME = "sweep"
HELP = "run a grid of fits (ranks x seeds x neurons x ...) locally or on Ray; results.csv + summary figure"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument("sweep", help="YAML sweep file: base (a fit config) and grid (config key -> values)")
    parser.add_argument("--out", required=True, help="sweep directory (re-run the same command to resume)")
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="local: a process pool on this machine (default); ray: Ray tasks")
    parser.add_argument("--address", default=None,
                        help="Ray cluster address (e.g. ray://head:10001 or auto); a local Ray starts without it")
    parser.add_argument("--workers", type=int, default=None,
                        help="points run at once (default: the CPU count); each may use cpu_count // workers threads")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per point for torch, BLAS and OpenMP (default: chosen per fit from its size, "
                             "at most cpu_count // workers)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the sweep and print where the results are."""
    from ..runs.layout import RESULTS_FILE, SUMMARY_FILE
    from ..runs.sweep import load_sweep, run_sweep

    sweep = load_sweep(args.sweep)
    try:
        frame = run_sweep(sweep, args.out, backend=args.backend, address=args.address, workers=args.workers,
                          threads=args.threads, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"lrfit sweep: interrupted; finished points are kept in {args.out}. Finish the rest with: "
              f"lrfit sweep {args.sweep} --out {args.out}")
        return 130
    print(f"{len(frame)} of {len(sweep.points)} points finished; wrote {args.out}/{RESULTS_FILE} and "
          f"{args.out}/{SUMMARY_FILE}")
    return 0
