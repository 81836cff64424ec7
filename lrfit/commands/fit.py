"""``lrfit fit CONFIG --out DIR``: fit low-rank RNNs to the data a config names."""

from __future__ import annotations

import argparse
import json

from ._args import add_overwrite

NAME = "fit"
HELP = "fit a low-rank RNN (or a rank sweep) to recorded or simulated activity"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument("config", nargs="?", help="YAML fit config (see configs/; every key: --show-config)")
    parser.add_argument("--out", help="run directory to write")
    parser.add_argument("--show-config", action="store_true",
                        help="print every config key with its default, type and meaning, and exit")
    parser.add_argument("--check-inputs", metavar="PNG", default=None,
                        help="plot each input channel over the recorded population response (first PCs per "
                             "condition) into PNG and exit, to see a misplaced cue before a long fit")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set model.rank=2 --set optim.max_epochs=50 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    add_overwrite(parser, "replace a non-empty --out")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def summary_line(metrics: dict) -> str:
    """One line: the held-out score (R^2, or bits per spike for counts) beside the best baseline and the ceiling."""
    from ..runs.metrics import score_key, score_label

    key, label = score_key(metrics), score_label(metrics)
    spread = metrics.get(f"{key}_std", metrics.get("r2_test_std", float("nan")))
    folds = f" (mean of {metrics['folds']} folds, s.d. {spread:.3f})" if metrics.get("folds") else ""
    train = metrics[key.replace("_test", "_train")]
    text = f"held-out {label} {metrics[key]:.3f}{folds}, train {train:.3f}"
    if key != "r2_test":
        text += f" (held-out R^2 {metrics['r2_test']:.3f}"
        if metrics.get("psth_r2_test") is not None:
            text += f", PSTH R^2 {metrics['psth_r2_test']:.3f}"
        if metrics.get("co_bps") is not None:
            text += f", co-smoothing {metrics['co_bps']:.3f} bits/spike"
        text += ")"
    best = metrics.get("best_baseline")
    if best:
        text += f"; best trivial baseline {best['name']} {best['value']:.3f}"
    if metrics.get("noise_ceiling") is not None:
        text += f"; noise ceiling {metrics['noise_ceiling']:.3f}"
    if not metrics.get("beats_baselines", True):
        text += " -- WARNING: the fit does not beat the baseline"
    return text


def run(args: argparse.Namespace) -> int:
    """Run the fit and print the headline metrics."""
    from ..errors import LrfitError
    from ..runs.config import format_schema, load_config
    from ..runs.fit import run_fit

    if args.show_config:
        print(format_schema())
        return 0
    if args.check_inputs and args.config is not None:
        from ..fitting.metrics import condition_labels
        from ..plotting import plot_inputs_over_response, save_figure
        from ..runs.data import prepare_data

        train = prepare_data(load_config(args.config, args.overrides)).train
        fig = plot_inputs_over_response(train.time, train.inputs, train.activity, train.mask,
                                        condition_labels(train.conditions), train.input_names)
        print(f"wrote {save_figure(fig, args.check_inputs)}")
        return 0
    if args.config is None or args.out is None:
        raise LrfitError("lrfit fit needs a CONFIG file and --out DIR (e.g. lrfit fit configs/rank_sweep.yaml --out "
                         "runs/sweep); lrfit fit --show-config lists every config key.")
    config = load_config(args.config, args.overrides)
    try:
        metrics = run_fit(config, args.out, resume=args.resume, overwrite=args.overwrite,
                          progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"lrfit fit: interrupted; a checkpoint is in {args.out}. Continue with: "
              f"lrfit fit {args.config} --out {args.out} --resume")
        return 130
    keys = ("rank", "r2_train", "r2_test", "r2_test_folds", "r2_test_std", "r2_test_per_neuron_mean", "heldout_r2",
            "bits_per_spike_train", "bits_per_spike_test", "bits_per_spike_test_folds", "psth_r2_test", "co_bps",
            "co_bps_pca", "best_baseline", "noise_ceiling", "epochs", "stopped", "epochs_folds", "stopped_folds",
            "seconds")
    print(json.dumps({k: metrics[k] for k in keys if k in metrics}, indent=1))
    print(summary_line(metrics))
    if "rank_selection" in metrics:
        sel = metrics["rank_selection"]
        by = sel.get("chosen_by", "r2_test")
        curve = ", ".join(f"rank {r}: {s:.4f}" for r, s in zip(sel["ranks"], sel[by]))
        print(f"test {'R^2' if by == 'r2_test' else 'bits/spike'} by rank: {curve}; chosen rank {sel['chosen_rank']}")
    print(f"wrote {args.out}")
    return 0
