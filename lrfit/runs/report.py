"""``lrfit report``: one self-contained HTML page explaining a run.

Sections (those that do not apply to a run are left out):

1. Summary — the network, its origin and headline metrics.
2. Fit quality — rank curve (``rank_selection.json``), training history, per-neuron
   held-out R^2, example neurons recorded vs fitted (runs of ``lrfit fit``).
   Against the teacher — with ``compare.json`` (``lrfit compare``): activity, Rate and
   State R² both ways, fixed points paired with the teacher's, and the failure mode.
3. Latent trajectories — ``kappa_r(t)`` averaged per condition, variance explained by
   the recurrent and input subspaces (``analysis/latents.npz``).
4. Connectivity and populations — loadings coloured by population, BIC/ARI curve,
   overlaps, accuracy of resampled networks.
5. Dynamics — phase portraits under each constant input of ``fixed_points.json``.
6. Inactivation — predicted (and teacher) accuracy after silencing each population.

Analyses missing from ``RUN/analysis/`` (layout in :mod:`lrfit.runs.layout`) are computed first
(:func:`lrfit.runs.analyze_run`, :func:`lrfit.runs.inactivate_run`) on the same
:class:`~lrfit.runs.run.Run`, so the config, network, data and analysis files are loaded
once; existing files are reused.  Figures are embedded as
base64 PNG (:func:`lrfit.plotting.figure_base64`), so the page needs no other file.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LrfitError
from ..fitting.observation import recorded_observation
from .analyze import analysis_files, analyze_run, latent_conditions
from .inactivate import TEACHER_COLUMNS, inactivate_run, merged_table
from .layout import (
    COMPARE_FILE,
    FIXED_POINTS_FILE,
    INACTIVATION_JSON,
    INACTIVATION_PNG,
    LATENTS_FILE,
    LOADINGS_FILE,
    OVERLAPS_FILE,
    POPULATIONS_FILE,
    REPORT_FILE,
    RESAMPLE_FILE,
    SPLIT_FILE,
    RunDir,
)
from .run import Run, load_context

log = logging.getLogger(__name__)

__all__ = ["REPORT_FILE", "build_report", "ensure_analyses"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1150px;margin:2em auto;
padding:0 1em;color:#222;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.muted{color:#666;font-size:.9em} .figs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0;max-width:calc(50% - 7px)} figure.wide{max-width:100%} figure img{max-width:100%;height:auto;
border:1px solid #eee}
figcaption{font-size:.85em;color:#444;max-width:560px;margin-top:.3em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0} th,td{border:1px solid #ddd;padding:3px 8px;
text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left} .note{background:#fff8e1;
border-left:4px solid #f0b400;padding:.4em .8em}
.banner{background:#fdecea;border:2px solid #c62828;color:#7f1d1d;padding:.7em 1em;font-weight:600;margin:1em 0}
"""


class _Page:
    """Accumulates HTML sections."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def h2(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def p(self, text: str, cls: str = "") -> None:
        attr = f' class="{cls}"' if cls else ""
        self.parts.append(f"<p{attr}>{html.escape(text)}</p>")

    def table(self, df: pd.DataFrame, digits: int = 3) -> None:
        self.parts.append(df.to_html(index=False, border=0, float_format=lambda v: f"{v:.{digits}f}", na_rep="–"))

    def figures(self, items: list[tuple[str, str]], wide: bool = False) -> None:
        """``items``: (data URI, caption); two per row unless ``wide``."""
        if not items:
            return
        cls = ' class="wide"' if wide else ""
        figs = "".join(
            f'<figure{cls}><img src="{uri}" '
            f'alt="{html.escape(cap)}"><figcaption>{html.escape(cap)}</figcaption></figure>'
            for uri, cap in items
        )
        self.parts.append(f'<div class="figs">{figs}</div>')

    def html(self, title: str) -> str:
        body = "\n".join(self.parts)
        head = f'<meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style>'
        return f'<!DOCTYPE html>\n<html lang="en"><head>{head}</head><body>\n{body}\n</body></html>\n'


def _figure(make: Callable[[], Any], caption: str) -> list[tuple[str, str]]:
    """Render one figure to a data URI; a failing figure is logged and skipped, never fatal."""
    from ..plotting import figure_base64

    try:
        fig = make()
    except Exception as exc:  # noqa: BLE001 - a broken figure must not lose the rest of the page
        log.warning("figure '%s' skipped: %s", caption, exc)
        return []
    return [(figure_base64(fig), caption)]


def _png_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def ensure_analyses(run: Run) -> list[str]:
    """Compute the analyses missing from ``RUN/analysis/`` (on the context's run); returns notes for the page."""
    notes: list[str] = []
    if not run.has_analysis(*analysis_files(run)):
        log.info("computing the missing analyses of %s", run.path)
        analyze_run(run)
    recorded = run.task is None and run.fit is not None and run.config is not None
    if not run.has_analysis(INACTIVATION_JSON) and ((run.task is not None and int(run.model.n_outputs)) or recorded):
        try:
            inactivate_run(run, groups="populations")
        except LrfitError as exc:
            notes.append(f"Inactivation not computed: {exc}")
    return notes


def below_baseline_text(metrics: dict[str, Any]) -> str | None:
    """The warning of a fit whose held-out score does not beat a trivial baseline (None when it does)."""
    if metrics.get("beats_baselines", True):
        return None
    best = metrics.get("best_baseline") or {}
    observation = recorded_observation(metrics)
    label = observation.score_label
    score = metrics.get(f"{observation.score_name}_test")
    value = best.get("value", best.get("r2", float("nan")))
    return (f"Warning: the fit's held-out {label} ({score:.3f}) does not beat the trivial baseline "
            f"'{best.get('name')}' ({label} {value:.3f}) on the same test data. The network has "
            "learnt nothing that baseline does not already predict: the latents, populations, fixed points and "
            "inactivation predictions below describe a model that does not explain the recording.")


def _held_out(page: _Page, run: Run) -> None:
    """What was held out, and the held-out score beside the baselines and the noise ceiling."""
    m = run.metrics or {}
    if "r2_test" not in m or "baselines" not in m:
        return
    page.h2("Held-out score beside baselines")
    split = m.get("split") or {}
    held = split.get("by", "trials")
    n_conditions = len(m.get("test_conditions") or [])
    if held == "halves":
        text = ("Held out by split halves: each neuron's trials of each condition were split at random into two "
                f"halves, each averaged; the fit saw one half's condition means and is scored on the other half's, "
                f"over the same {n_conditions} conditions")
        if m.get("folds"):
            text += f" ({m['folds']} repeated random half splits, scores averaged)"
    elif held == "simulation":
        text = "Held out: fresh trials simulated from the teacher"
    else:
        text = f"Held out by {held}"
        if m.get("folds"):
            text += f", {m['folds']} folds (every {'condition' if held == 'conditions' else 'trial'} held out once)"
            conds = m.get("test_conditions_folds") or []
            if held == "conditions" and any(conds):
                text += "; held-out conditions per fold: " + "; ".join(
                    f"fold {k}: {', '.join(map(str, c or []))}" for k, c in enumerate(conds))
        elif held == "conditions" and m.get("test_conditions"):
            text += f"; test conditions: {', '.join(map(str, m['test_conditions']))}"
    config = run.config or {}
    pre = config.get("preprocess", {})
    source = (config.get("data") or {}).get("path") or (config.get("data") or {}).get("teacher")
    if source:
        text += f". Data: {source}"
    if pre:
        text += f"; normalisation {pre.get('normalise') or 'none'}, scale {pre.get('scale', 1.0):g}"
        if pre.get("lead_in"):
            text += f"; lead-in {pre['lead_in']:g} s (not scored)"
    if m.get("heldout_prediction"):
        text += (f". {len((run.read(SPLIT_FILE) or {}).get('heldout_neuron_ids', []))} recorded neurons were "
                 f"withheld from the fit (R² {m.get('heldout_r2', float('nan')):.3f}): {m['heldout_prediction']}")
    page.p(text + ".")
    counts = recorded_observation(m).counts
    if counts:
        _count_scores(page, m)
    scores = m.get("baselines_mean") or (m.get("baselines") or {}).get("scores", {})
    rows = [("this fit (held-out)", m["r2_test"]), ("this fit (training)", m.get("r2_train"))]
    rows += [(f"baseline: {name}", value) for name, value in scores.items()]
    refs = (m.get("baselines") or {}).get("references", {})
    rows += [(f"reference (uses the test data): {name}", value) for name, value in refs.items()]
    if m.get("noise_ceiling") is not None:
        rows.append(("noise ceiling (split halves, Spearman-Brown)", m["noise_ceiling"]))
    table = pd.DataFrame([(a, "—" if b is None else f"{b:.3f}") for a, b in rows], columns=["pooled R²", "value"])
    if counts:
        page.p("R² of the expected counts against the single-trial counts (Poisson noise keeps it low; the bits per "
               "spike above are the fit's score):", "muted")
    page.table(table)
    if m.get("folds"):
        page.p("R² per fold: " + ", ".join(f"{v:.3f}" for v in m.get("r2_test_folds", [])) +
               f" (mean {m['r2_test']:.3f}, s.d. {m.get('r2_test_std', float('nan')):.3f}); baselines are fold means.",
               "muted")
    data = run.data
    if data is not None:
        from ..fitting.metrics import condition_labels
        from ..plotting import plot_inputs_over_response

        train = data.train
        page.figures(_figure(lambda: plot_inputs_over_response(
            train.time, train.inputs, train.activity, train.mask, condition_labels(train.conditions),
            train.input_names), "Each input channel (bottom rows) over the first principal components of the "
            "training activity's condition means (top rows): a cue at the wrong time shows as a step that does not "
            "line up with the response it drives."))


def _count_scores(page: _Page, m: dict[str, Any]) -> None:
    """The held-out bits per spike of a counts fit beside the count baselines (and co-smoothing)."""
    base = m.get("count_baselines") or {}
    means = m.get("count_baselines_mean") or base.get("bits_per_spike", {})
    rows = [("this fit (held-out)", m.get("bits_per_spike_test"), m.get("psth_r2_test")),
            ("this fit (training)", m.get("bits_per_spike_train"), m.get("psth_r2_train"))]
    names = {"mean": "baseline: each neuron's training mean rate",
             "psth": f"baseline: smoothed training PSTH (Gaussian sd {1000 * base.get('sd_s', 0.0):.0f} ms, chosen on "
                     "the training trials)"}
    rows += [
        (names.get(n, f"baseline: {n}"), v, base.get("psth_r2") if n == "psth" else None) for n, v in means.items()
    ]
    if m.get("co_bps") is not None:
        rows += [("co-smoothing: held-out neurons from the latents (Poisson GLM)", m["co_bps"], None),
                 ("co-smoothing reference: GLM on the held-in neurons' top PCs", m.get("co_bps_pca"), None)]
    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    page.p("Spike counts are scored by the Poisson log-likelihood of the held-out counts, in bits per spike over each "
           "neuron's mean rate on the scored trials (the Neural Latents Benchmark's measure; 0 = no better than the "
           "mean rate), and by the R² of condition-averaged expected rates against the recorded PSTHs:")
    page.table(pd.DataFrame([(a, fmt(b), fmt(c)) for a, b, c in rows],
                            columns=["spike counts", "bits per spike", "PSTH R²"]))
    if m.get("folds"):
        page.p("Bits per spike per fold: " + ", ".join(f"{v:.3f}" for v in m.get("bits_per_spike_test_folds", [])),
               "muted")


def _summary(page: _Page, run: Run) -> None:
    run, model = run, run.model
    rows = [
        ("run directory", str(run.path)),
        ("network", f"{run.kind} RNN, N = {model.n_units} units" + (f", rank {model.rank}" if run.is_lowrank else "")),
        ("role", run.role),
        ("task", getattr(run.task, "name", "none (recorded data)") if run.task is not None else "none (recorded data)"),
        ("teacher", str(run.teacher_dir) if run.teacher_dir else "—"),
        (
            "readout",
            {"own": "its own", "teacher": "the teacher's (attached to the fitted units)", "none": "none"}[run.readout],
        ),
        ("inputs", ", ".join(run.input_names) or "none"),
    ]
    m = run.metrics or {}
    for key, label in (
        ("bits_per_spike_test", "bits per spike on held-out trials"),
        ("psth_r2_test", "PSTH R² on held-out trials"),
        ("co_bps", "co-smoothing bits per spike"),
        ("r2_test", "R² on held-out trials (pooled)"),
        ("r2_test_per_neuron_mean", "mean per-neuron held-out R²"),
        ("heldout_r2", "R² of held-out neurons"),
        ("accuracy", "task accuracy"),
        ("epochs", "epochs"),
    ):
        if isinstance(m.get(key), (int, float)):
            rows.append((label, f"{m[key]:g}" if key == "epochs" else f"{m[key]:.3f}"))
    page.table(pd.DataFrame(rows, columns=["", "value"]))


def _fit_quality(page: _Page, run: Run) -> None:
    from ..plotting import plot_example_neurons, plot_history, plot_r2_histogram, plot_rank_curve

    figs: list[tuple[str, str]] = []
    sel = run.rank_selection
    counts = recorded_observation(run.metrics or {}).counts
    if sel and sel.get("ranks"):
        by = sel.get("chosen_by", "r2_test")
        what = "Held-out bits per spike" if by != "r2_test" else "Pooled R² of the activity"
        figs += _figure(
            lambda: plot_rank_curve(
                sel["ranks"],
                sel[by],
                sel.get(by.replace("_test", "_train")),
                sel.get("chosen_rank"),
                ylabel="bits per spike" if by != "r2_test" else "$R^2$ of the activity (pooled)",
            ),
            f"{what} against the rank of the fitted network; the dotted line marks the rank chosen.",
        )
    if run.history is not None and len(run.history):
        figs += _figure(lambda: plot_history(run.history), "Training curves per epoch.")
    examples: list[tuple[str, str]] = []
    r2 = (run.metrics or {}).get("bits_per_spike_test_per_neuron" if counts else "r2_test_per_neuron")
    if r2:
        what = "bits per spike" if counts else "R²"
        figs += _figure(
            lambda: plot_r2_histogram(
                r2, title=f"Held-out {what} per neuron ({len(r2)} neurons)", metric="bits_per_spike" if counts else "r2"
            ),
            f"How well each neuron's activity on held-out trials is reproduced by the fitted network ({what}).",
        )
    if run.fit is not None and counts:
        examples = _psth_examples(page, run, r2)
    elif run.fit is not None:
        try:
            act = run.activity(split="test")
        except LrfitError as exc:
            page.p(f"Example neurons not shown: {exc}", "note")
        else:
            vals = np.asarray(r2, float) if r2 and len(r2) == act.recorded.shape[-1] else None
            pick = _example_order(r2, act.recorded.shape[-1])
            unit = "rate, a.u." if act.unit == "rates" else "current, a.u."
            examples = _figure(
                lambda: plot_example_neurons(
                    act.time,
                    act.recorded[..., pick],
                    act.fitted[..., pick],
                    [run.neuron_ids[i] for i in pick],
                    None if vals is None else vals[pick],
                    conditions=act.conditions.drop(columns=["split"], errors="ignore"),
                    unit=unit,
                ),
                "Example neurons from the best to the worst fitted (by held-out R²): recorded (solid) and fitted "
                "(dashed) "
                "activity on the first four held-out trials.",
            )
    if figs or examples:
        page.h2("Fit quality")
        page.figures(figs)
        page.figures(examples, wide=True)


def _example_order(scores: Any, n: int) -> np.ndarray:
    """Up to six neurons from the best to the worst by *scores* (evenly spaced ranks), or the first ones."""
    vals = np.asarray(scores, float) if scores and len(scores) == n else None
    order = np.argsort(vals) if vals is not None else np.arange(n)
    return np.asarray(
        list(dict.fromkeys(order[np.linspace(0, len(order) - 1, min(6, len(order))).astype(int)][::-1].tolist()))
    )


def _psth_examples(page: _Page, run: Run, scores: Any) -> list[tuple[str, str]]:
    """Example neurons of a counts fit: condition-averaged expected rates (Hz) against the recorded PSTHs."""
    from ..fitting.counts import smooth_counts
    from ..fitting.metrics import condition_labels
    from ..plotting import plot_example_neurons

    try:
        act = run.activity(split="test")
    except LrfitError as exc:
        page.p(f"Example neurons not shown: {exc}", "note")
        return []
    cond = act.conditions.drop(columns=["split"], errors="ignore")
    labels = condition_labels(cond)
    groups = [np.flatnonzero(labels == lab) for lab in pd.unique(labels)][:4]
    sd_s = float(((run.metrics or {}).get("count_baselines") or {}).get("sd_s", 0.0))
    dt = float(np.median(np.diff(act.time))) if act.time.size > 1 else 1.0

    def average(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        w = act.mask[g][..., None].astype(float)
        return (x[g] * w).sum(0) / np.maximum(w.sum(0), 1.0)

    recorded = np.stack([average(act.recorded, g) for g in groups])
    recorded = smooth_counts(recorded, np.ones(recorded.shape[:2], bool), sd_s / dt)
    fitted = np.stack([average(act.fitted, g) for g in groups])
    pick = _example_order(scores, recorded.shape[-1])
    n_trials = ", ".join(str(len(g)) for g in groups)
    return _figure(
        lambda: plot_example_neurons(act.time, recorded[..., pick], fitted[..., pick],
                                     [run.neuron_ids[i] for i in pick],
                                     None, conditions=cond.iloc[[g[0] for g in groups]].reset_index(drop=True),
                                     unit="Hz"),
        f"Example neurons from the best to the worst fitted (by held-out bits per spike): the recorded PSTH (solid; "
        f"spike counts per second averaged over the held-out trials of each condition ({n_trials} trials), smoothed "
        f"with the PSTH baseline's {1000 * sd_s:.0f} ms Gaussian) and the fitted expected rate (dashed, Hz), for the "
        "first four conditions.")


def _against_teacher(page: _Page, run: Run) -> None:
    """``compare.json``: are the student's dynamics the teacher's? (:mod:`lrfit.analysis.teacher_dynamics`)."""
    res = run.read(COMPARE_FILE)
    if not res or "state_r2" not in res:
        return
    page.h2("Against the teacher: are the dynamics real?")
    modes = res.get("failure_modes") or []
    page.p(("Failure mode: " if modes else "") + str(res.get("dynamics_verdict", "")), "banner" if modes else "note")
    rows = [
        ("activity R² (fitted neurons, fresh trials)", res.get("r2_activity")),
        (f"Rate R² (student vs teacher {res.get('rate_r2_of', 'rates')}, no map)", res.get("rate_r2")),
        ("State R² (teacher state -> student state)", res.get("state_r2")),
        ("cycle consistency (student state -> teacher state)", res.get("cycle_consistency")),
        ("State R², recurrent coordinates only", res.get("state_r2_recurrent")),
        ("cycle consistency, recurrent coordinates only", res.get("cycle_consistency_recurrent")),
        ("task accuracy through the teacher's readout: student", res.get("accuracy_student")),
        ("task accuracy: teacher", res.get("accuracy_teacher")),
    ]
    page.table(pd.DataFrame([(k, v) for k, v in rows if isinstance(v, (int, float))], columns=["", "value"]), digits=4)
    state = res.get("state") or {}
    page.p(f"On {res.get('n_trials')} fresh trials; {state.get('fit_trials', '')}. A network's state is its recurrent "
           f"coordinates plus the leaky-integrated inputs (teacher: {state.get('teacher', '?')}; student: "
           f"{state.get('student', '?')}); affine maps, variance-weighted R² (the Computation-through-Dynamics "
           "definitions; low State R² = feature invention, low cycle consistency = underfitting, flagged below 0.9). "
           f"Input R²: {res.get('input_r2_note', 'not computed')}.", "muted")
    fp = res.get("fixed_points") or {}
    if "counts_teacher" in fp:
        labels = [k for k in ("stable", "saddle", "source", "marginal")
                  if fp["counts_teacher"].get(k) or fp["counts_student"].get(k)]
        matched = {k: sum(1 for p in fp["pairs"] if p["matched"] and p["stability"] == k) for k in labels}
        page.p(f"Fixed points without input of both networks, paired one to one in the activity of the recorded units "
               f"(a pair matches when it lies within {100 * fp['tol']:.0f}% of the teacher's rms activity, "
               f"{fp['scale']:.3g}, of each other):")
        page.table(pd.DataFrame([(k, fp["counts_teacher"].get(k, 0), fp["counts_student"].get(k, 0), matched[k],
                                  fp["missing"].get(k, 0), fp["spurious"].get(k, 0)) for k in labels],
                                columns=["type", "teacher", "student", "matched", "missing", "spurious"]))
    elif fp.get("summary"):
        page.p(f"Fixed points: {fp['summary']}.", "muted")


def _latents(page: _Page, run: Run) -> None:
    from ..plotting import plot_latent_trajectories

    d = run.read_analysis(LATENTS_FILE)
    if d is None:
        return
    kappa, time = d["kappa"], d["time"]
    cond = latent_conditions(d)
    r = kappa.shape[-1]
    page.h2("Latent trajectories")
    page.p(
        "Activity x(t) projected on the recurrent subspace span(m) (kappa, orthonormalised axes) and the input "
        "subspace: "
        f"{100 * float(d['var_recurrent']):.1f}% of the activity variance lies in span(m), "
        f"{100 * float(d['var_input']):.1f}% "
        f"along the input directions, {100 * float(d['var_total_explained']):.1f}% in both together ({kappa.shape[0]} "
        "trials)."
    )
    from ..plotting import group_labels

    split = np.asarray(d["cond_split"]).astype(str) if "cond_split" in d else None

    def held_out(columns: list[str] | None) -> set[str]:
        """Conditions (as grouped by *columns*) whose trials are all held-out trials."""
        if split is None:
            return set()
        labels, _ = group_labels(cond, columns)
        return {lab for lab in set(labels) if np.all(split[labels == lab] == "test") and np.any(split == "train")}

    default = held_out(None)
    marked = " Dashed lines: conditions held out from the fit." if default else ""
    figs: list[tuple[str, str]] = []
    for k in range(min(r, 3)):
        figs += _figure(
            lambda k=k: plot_latent_trajectories(
                kappa, time, cond, dims=k, heldout=default, title=f"Latent $\\kappa_{{{k + 1}}}$ by condition"
            ),
            f"kappa_{k + 1}(t), the activity along the {k + 1}. recurrent axis, averaged over the trials of each "
            f"condition.{marked}",
        )
    if r >= 2:
        figs += _figure(
            lambda: plot_latent_trajectories(
                kappa, time, cond, dims=(0, 1), heldout=default, title="Latent state space"
            ),
            "Trajectories in the (kappa_1, kappa_2) plane, one line per condition (circle: start, square: "
            f"end).{marked}",
        )
    _, used = group_labels(cond, None)
    from ..fitting.baselines import BOOKKEEPING_COLUMNS

    extra_columns = [c for c in cond.columns if c not in used and str(c) not in BOOKKEEPING_COLUMNS
                     and cond[c].nunique() <= 12]
    for column in extra_columns[:4]:
        extra = held_out([column])
        figs += _figure(lambda column=column, extra=extra: plot_latent_trajectories(
            kappa, time, cond, columns=[column], dims=0, heldout=extra, title=f"Latent $\\kappa_1$ by {column}"),
            f"kappa_1(t) averaged over the trials of each value of {column}.")
    page.figures(figs)


def _accuracy_text(accuracy: dict[str, float]) -> str:
    return ", ".join(f"{k}: {v:.3f}" for k, v in sorted(accuracy.items(), key=lambda kv: int(kv[0])))


def _connectivity(page: _Page, run: Run) -> None:
    from ..plotting import plot_connectivity_scatter, plot_population_selection

    pops = run.read_analysis(POPULATIONS_FILE)
    loadings = run.read_analysis(LOADINGS_FILE, index_col=0)
    if loadings is None or pops is None:
        return
    table = loadings.copy()
    labels = table["population"].to_numpy() if "population" in table else None
    folded = pops.get("signs") is not None and len(pops["signs"]) == len(table)
    if folded:  # the mixture saw sign-folded loadings: unfolded, each population would also show its mirror image
        numeric = table.columns.drop(["population", "readout_gain", "readout_offset"], errors="ignore")
        table[numeric] = table[numeric].mul(np.asarray(pops["signs"], float), axis=0)
    r = int(run.model.rank)
    pairs = [(f"m_{k + 1}", f"n_{k + 1}") for k in range(min(r, 2))]
    pairs += [(f"w_in_{c}", "n_1") for c in run.input_names[:4]]
    pairs += [("m_1", f"w_out_{o}") for o in run.output_names[:1] if run.readout != "none"]
    page.h2("Connectivity and populations")
    stable = f"stable across seeds (ARI >= {pops.get('ari_threshold', 0.9)})"
    if pops.get("rule") == "task":
        how = (f"the fewest {stable} whose resampled networks still perform the task "
               f"(mean accuracy by number tried: {_accuracy_text(pops.get('task_accuracy') or {})})")
    else:
        how = f"the lowest-BIC number among those {stable}"
    page.p(
        "Each neuron is a point in connectivity space (its entries of m, n, the input weights w_in and the readout "
        "w_out). "
        f"A Gaussian mixture there finds {pops['n_populations']} population(s): {how}; BIC alone prefers "
        f"{pops['n_bic']}."
    )
    figs = _figure(
        lambda: plot_population_selection(
            pops["candidates"], pops["bic"], pops["ari"], pops["n_populations"], task_accuracy=pops.get("task_accuracy")
        ),
        "Choosing the number of populations: BIC (lower is better), agreement of the labels across seeds (ARI) "
        "and, where a task is known, the accuracy of networks resampled with that many populations.",
    )
    for x, y in pairs:
        if x in table and y in table:
            figs += _figure(
                lambda x=x, y=y: plot_connectivity_scatter(
                    table, x, y, labels, title=f"{y} against {x}, by population"
                ),
                f"Loadings {y} against {x}, one dot per neuron, coloured by population (legend: number of neurons)"
                + (
                    "; sign-folded as the mixture saw them (each neuron's loadings times the sign of its m_1, "
                    "which leaves a tanh network unchanged)."
                    if folded
                    else "."
                ),
            )
    page.figures(figs)
    if pops.get("readout_by_population"):
        page.p(
            "The Poisson readout of each population's recorded neurons, expected count scale_i softplus(a_i s_i + b_i) "
            "(mean ± s.d. over the population; the sign of a gain is a convention, its size is shown). The readout "
            "sets how a unit's activity maps to spikes, not the dynamics, so the mixture is fitted on the "
            "connectivity alone:"
        )
        page.table(pd.DataFrame([(pop, d["n_recorded"], f"{d['abs_gain_mean']:.2f} ± {d['abs_gain_std']:.2f}",
                                  f"{d['offset_mean']:.2f} ± {d['offset_std']:.2f}")
                                 for pop, d in pops["readout_by_population"].items()],
                                columns=["population", "recorded neurons", "gain |a|", "offset b"]))
    ov = run.read_analysis(OVERLAPS_FILE)
    if ov:
        rows = [
            [f"n_{k + 1}"] + list(np.asarray(ov["overlaps"])[k]) + list(np.asarray(ov["input_overlaps"])[k])
            for k in range(r)
        ]
        page.p(
            "Overlaps sigma_ab = sum_i a_i b_i / N of the left vectors n_k with the right vectors m_l and the input "
            "weights:"
        )
        page.table(
            pd.DataFrame(rows, columns=[""] + [f"m_{k + 1}" for k in range(r)] + [f"w_in_{c}" for c in run.input_names])
        )
    res = run.read_analysis(RESAMPLE_FILE)
    if res:
        page.p(f"Task accuracy of networks of {res['n_units']} units resampled from the connectivity statistics "
               f"({len(res['mixture']['accuracy'])} draws each, {res['n_trials']} trials):")
        page.table(
            pd.DataFrame(
                [
                    ("this network", res["network"]["accuracy"], "—"),
                    (
                        f"resampled from the {res['n_populations']}-population mixture",
                        res["mixture"]["accuracy_mean"],
                        ", ".join(f"{a:.3f}" for a in res["mixture"]["accuracy"]),
                    ),
                    (
                        "resampled from a single Gaussian",
                        res["single_gaussian"]["accuracy_mean"],
                        ", ".join(f"{a:.3f}" for a in res["single_gaussian"]["accuracy"]),
                    ),
                ],
                columns=["network", "mean accuracy", "per draw"],
            )
        )


def _fixed_points_from_json(entry: dict[str, Any]) -> Any:
    from ..analysis.fixed_points import FixedPoint, FixedPointResult

    def pts(items: list[dict[str, Any]]) -> tuple[Any, ...]:
        return tuple(
            FixedPoint(
                np.asarray(p["kappa"], float),
                np.asarray(p["eigenvalues_real"]) + 1j * np.asarray(p["eigenvalues_imag"]),
                p["stability"],
                float(p["speed"]),
                p.get("kind", "fixed"),
            )
            for p in items
        )

    u = np.asarray(list(entry["input"].values()), float)
    return FixedPointResult(
        pts(entry["fixed_points"]), pts(entry.get("slow_points", [])), u, int(entry.get("n_starts", 0))
    )


def _input_text(u: dict[str, float]) -> str:
    on = {k: v for k, v in u.items() if v}
    return "no input" if not on else ", ".join(f"{k} = {v:.3g}" for k, v in on.items())


def _dynamics(page: _Page, run: Run) -> None:
    from ..analysis import flow_field
    from ..plotting import plot_phase_portrait

    fps = run.read_analysis(FIXED_POINTS_FILE)
    if not fps or not fps.get("inputs"):
        return
    page.h2("Dynamics: fixed points and phase portraits")
    page.p(
        "Under a constant input u the activity relaxes onto x = m kappa + W_in u, where dkappa/dt = -kappa + n^T "
        "phi(m kappa + W_in u) / N "
        "(time in units of the membrane time constant tau). Filled circles: stable fixed points; open circles: "
        "unstable (sources); "
        "crosses: saddles; diamonds: slow points."
    )
    figs: list[tuple[str, str]] = []
    rows = []
    for name, entry in fps["inputs"].items():
        fp = _fixed_points_from_json(entry)
        c = entry["stability_counts"]
        rows.append(
            (
                name,
                _input_text(entry["input"]),
                c["stable"],
                c["saddle"],
                c["source"],
                len(entry.get("slow_points", [])),
            )
        )
        what = _input_text(entry["input"])
        figs += _figure(
            lambda fp=fp, what=what: plot_phase_portrait(
                flow_field(run.model, fp.input, n_grid=81 if run.model.rank == 1 else 31),
                fp,
                title=f"Phase portrait, {what}",
            ),
            f"Latent flow under {what}: {c['stable']} stable, {c['saddle']} saddle, {c['source']} unstable fixed "
            "point(s).",
        )
    page.table(pd.DataFrame(rows, columns=["input", "value", "stable", "saddles", "sources", "slow points"]))
    page.figures(figs)


def _inactivation(page: _Page, run: Run) -> None:
    rec = run.read_analysis(INACTIVATION_JSON)
    if not rec:
        return
    page.h2("Inactivation")
    if rec.get("kind") == "activity":
        _activity_inactivation(page, run, rec)
        return
    _whole_network_note(page, run, rec)
    _rank_note(page, rec)
    agr = rec.get("agreement")
    table = merged_table(pd.DataFrame(rec["predicted"]["table"]), pd.DataFrame(agr["table"]) if agr else None)
    cols = ["group", "context", "n_silenced", "accuracy", "delta_accuracy", "p_value", "output_change"]
    cols += list(TEACHER_COLUMNS.values()) if agr else []
    table = table[[c for c in cols if c in table]]
    if agr:
        rule = (f"a change counts when it exceeds {agr.get('tol', 0.01):g} and the exact paired test on the same "
                f"trials gives p < {agr.get('alpha', 0.05):g}")
        page.p(
            "Silencing each group in the fitted network (prediction) and in the teacher (actual): same sign of the "
            "accuracy change in "
            f"{100 * agr['sign_agreement']:.0f}% of group × context cases ({rule}), mean absolute accuracy gap "
            f"{agr['mean_abs_gap']:.3f} "
            f"({agr['mean_abs_delta_gap']:.3f} on the changes)."
        )
    else:
        page.p("Predicted accuracy when each group's rates are clamped to zero.")
    page.table(table.rename(columns={"n_silenced": "silenced units", "delta_accuracy": "delta", "p_value": "p",
                                     "output_change": "RMS output change", "accuracy_teacher": "teacher accuracy",
                                     "delta_teacher": "teacher delta", "p_value_teacher": "teacher p"}))
    png = run.analysis_dir / INACTIVATION_PNG
    if png.is_file():
        page.figures(
            [
                (
                    _png_uri(png),
                    "Accuracy per context with each group silenced (bars: prediction; diamonds: teacher; dashed: "
                    "intact network; dotted: chance).",
                )
            ]
        )


def _rank_note(page: _Page, rec: dict[str, Any]) -> None:
    """Which rank was silenced, and where the rank-1 prediction disagrees in sign with the rank-2 one."""
    used = rec.get("rank") or {}
    if used.get("rank"):
        page.p(f"Silenced: the rank-{used['rank']} network ({used.get('how', '')}).", "muted")
    check = rec.get("rank_check")
    if not check:
        return
    rows = check.get("disagreements") or []
    text = (f"Rank 1 against rank 2, same groups and trials: the same sign of accuracy change in "
            f"{100 * check['sign_agreement']:.0f}% of group × context cases.")
    if rows:
        text += " Rank 1 disagrees in sign for " + "; ".join(
            f"{r['group']} ({r['context']}: {r['delta_rank1']:+.3f} against {r['delta_rank2']:+.3f})" for r in rows) + (
            ": a rank-1 network funnels a sub-population's lost drive through its one latent direction, so read "
            "these rows from the rank-2 network.")
    page.p(text, "note" if rows else "muted")


def _whole_network_note(page: _Page, run: Run, rec: dict[str, Any]) -> None:
    """Say so when the only group silenced is the whole network (one population)."""
    groups = rec.get("groups") or {}
    if len(groups) == 1 and len(next(iter(groups.values()))) >= len(run.observed_ids):
        page.p("There is one population, the whole network: silencing it silences every unit, which predicts nothing "
               "about a sub-population. The table is shown for completeness.", "note")


def _activity_inactivation(page: _Page, run: Run, rec: dict[str, Any]) -> None:
    """Inactivation of a fit to recorded data: activity, latents and decoding under silencing."""
    _whole_network_note(page, run, rec)
    decoded = rec.get("decode") or []
    text = ("Predicted change when each group's rates are clamped to zero, on the fit's training trials: RMS change "
            f"of the observed units' activity ({rec.get('activity_unit', 'network rate phi(x)')}) and of the latents")
    if decoded:
        text += (f", and the score of a linear decoder of {', '.join(decoded)} fitted on the intact network's "
                 "activity (accuracy for categories, R² for numbers) applied to the silenced network's")
    page.p(text + ".")
    page.table(pd.DataFrame(rec["predicted"]["table"]))
    pops = rec.get("population_change")
    if pops:
        page.p(
            "Mean RMS activity change of each population's units (columns) when each group (rows) is silenced:", "muted"
        )
        page.table(pd.DataFrame(pops).T.reset_index().rename(columns={"index": "silenced group"}))
    png = run.analysis_dir / INACTIVATION_PNG
    if png.is_file():
        page.figures([(_png_uri(png), "Activity change (left) and decoder scores (right, dashed: intact) with each "
                                      "group silenced.")])


def build_report(
    run: RunDir | str | Path, out: str | Path | None = None, teacher: str | Path | None = None, rank: int | None = None
) -> Path:
    """Write the HTML report of a run (see the module docstring).

    Parameters
    ----------
    run : RunDir, str or Path
        An open run or a run directory.
    out : str or Path, optional
        HTML file (default ``RUN/report.html``).
    teacher : str or Path, optional
        Teacher directory (overrides the one the run records); only with a path.
    rank : int, optional
        Rank of a rank list (default the chosen one); only with a path.

    Returns
    -------
    Path
        The HTML file.
    """
    run = load_context(run, teacher=teacher, rank=rank, require_lowrank=False, command="report")
    page = _Page()
    title = f"lrfit report: {run.path.name}"
    page.parts.append(f"<h1>{html.escape(title)}</h1>")
    page.p(f"Generated {_dt.datetime.now().isoformat(timespec='seconds')} by lrfit report.", "muted")
    notes = (
        ensure_analyses(run)
        if run.is_lowrank
        else [
            "The analyses (latents, populations, fixed points) need a low-rank network; fit a low-rank student to "
            "this network."
        ]
    )
    warning = below_baseline_text(run.metrics or {})
    if warning:
        page.p(warning, "banner")
    for note in notes:
        page.p(note, "note")
    _summary(page, run)
    _held_out(page, run)
    _fit_quality(page, run)
    _against_teacher(page, run)
    if run.is_lowrank:
        _latents(page, run)
        _connectivity(page, run)
        _dynamics(page, run)
    _inactivation(page, run)
    target = Path(out) if out is not None else run.target(REPORT_FILE)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page.html(title), encoding="utf-8")
    return target
