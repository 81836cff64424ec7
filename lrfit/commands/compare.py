"""``lrfit compare STUDENT_DIR TEACHER_DIR``: teacher-student comparison as JSON."""

from __future__ import annotations

import argparse
import json

NAME = "compare"
HELP = ("compare a fitted student with the teacher network its data came from (activity, accuracy, connectivity, "
        "and whether its dynamics are the teacher's: State R² both ways, fixed points, the failure mode)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument("student", help="run directory of the student (lrfit fit)")
    parser.add_argument("teacher", help="run directory of the teacher (lrfit teacher)")
    parser.add_argument("--trials", type=int, default=500, help="fresh task trials to evaluate on (default 500)")
    parser.add_argument("--seed", type=int, default=12345, help="seed of those trials (default 12345)")
    parser.add_argument("--json", action="store_true", help="print the full JSON instead of a summary")


def run(args: argparse.Namespace) -> int:
    """Compare, write STUDENT_DIR/compare.json, print the result."""
    from ..runs.compare import COMPARE_FILE, compare_student_teacher, format_comparison

    result = compare_student_teacher(args.student, args.teacher, n_trials=args.trials, seed=args.seed)
    print(json.dumps(result, indent=1) if args.json else format_comparison(result))
    print(f"wrote {args.student}/{COMPARE_FILE}")
    return 0
