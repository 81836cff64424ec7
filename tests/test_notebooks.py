"""Every notebook in notebooks/ runs top to bottom in quick mode (LRFIT_QUICK=1).

The code cells are executed in order in one namespace, as a kernel would, without
needing Jupyter; figures go to the Agg backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

#: Per notebook: what its quick run must still show (the science it is about).
CHECKS = {
    "01_validation": {
        "held-out activity reproduced": lambda ns: ns["comparison"]["r2_activity"] > 0.95,
        "column space of M recovered": lambda ns: min(ns["comparison"]["m_cosines"]) > 0.9,
    },
    "02_black_box": {
        "rank-1 student predicts held-out activity": lambda ns: ns["student_r2"] > 0.95,
        "fitted rank-1 beats the teacher's own rank-1 truncation": lambda ns: (
            ns["rank_curve"][1] > ns["svd_curve"][1] + 0.05
        ),
        "kappa follows the relevant coherence in each context": lambda ns: (
            ns["latent_coding"].loc["motion", "slope_motion"] > 2 * ns["latent_coding"].loc["motion", "slope_color"]
            and ns["latent_coding"].loc["color", "slope_color"] > 2 * ns["latent_coding"].loc["color", "slope_motion"]
        ),
        "populations serving each context": lambda ns: (
            ns["n_populations"] >= 2 and {"motion context", "color context"} <= set(ns["population_table"]["serves"])
        ),
        "mixture resamples perform the task, one Gaussian does not": lambda ns: (
            ns["resampled_accuracy"] > 0.85 and ns["resampled_accuracy"] > ns["single_gaussian_accuracy"] + 0.1
        ),
        "inactivation predictions match the teacher": lambda ns: (
            ns["inactivation_corr"] > 0.8
            and (ns["deficit_table"]["worst_group_student"] == ns["deficit_table"]["worst_group_teacher"]).all()
            and all(
                ns["deficit_table"].loc[c, "that_group_serves"] == f"{c} context" for c in ns["deficit_table"].index
            )
        ),
    },
    "03_subsampling": {
        "every grid point finished (2 rhos x 3 n x 2 subsets)": lambda ns: len(ns["results"]) == 12,
        "rho 0.1: held-out activity reproduced from every subset": lambda ns: (
            ns["results"].query("rho == 0.1")["r2_test"].min() > 0.9
        ),
        "rho 1 leaves more activity outside rank 1 than rho 0.1": lambda ns: (
            ns["results"].groupby("rho")["r2_test"].mean().diff().iloc[-1] < -0.02
        ),
        "all-neuron students perform the task": lambda ns: (
            ns["results"].query("neurons == 100")["accuracy_student"].mean() > 0.8
        ),
    },
    "04_m1_reaching": {
        "M1 recording loaded: 8 directions x 121 bins x 141 neurons, inputs cue_x, cue_y, go, go_x, go_y": lambda ns: (
            ns["data"].activity.shape == (8, 121, 141)
            and tuple(ns["data"].input_names) == ("cue_x", "cue_y", "go", "go_x", "go_y")
            and ns["data"].conditions["reach_angle_deg"].nunique() == 8
        ),
        "whole reach directions held out (6 train, 2 test)": lambda ns: (
            ns["train"].n_trials == 6
            and ns["test"].n_trials == 2
            and not set(ns["test"].conditions["reach_angle_deg"]) & set(ns["train"].conditions["reach_angle_deg"])
        ),
        "training directions fitted": lambda ns: min(ns["rank_train"].values()) > 0.3,
        "held-out directions predicted": lambda ns: max(ns["rank_curve"].values()) > 0.2,
        "held-out R2 below training R2 at every rank": lambda ns: all(
            ns["rank_curve"][r] < ns["rank_train"][r] for r in ns["rank_curve"]
        ),
        "rank chosen by the 0.01 tolerance rule": lambda ns: (
            ns["chosen_rank"]
            == min(r for r, v in ns["rank_curve"].items() if v >= max(ns["rank_curve"].values()) - 0.01)
        ),
        "a stable fixed point in the phase portraits": lambda ns: any(
            row["stable"] >= 1 for row in ns["fixed_summary"]
        ),
        "starts from the inputs: fitted directions already differ at -0.8 s as the recorded ones do": lambda ns: (
            ns["spread"]["fitted"][0] > 0.5 * ns["spread"]["recorded"][0]
        ),
        "per-fold held-out scores beside the baselines": lambda ns: (
            len(ns["metrics"]["r2_test_folds"]) == 4 and ns["metrics"]["r2_test"] > ns["metrics"]["best_baseline"]["r2"]
        ),
    },
    "06_pfc_condition_averages": {
        "neurons of separate sessions: unequal, NaN-padded trial counts": lambda ns: (
            min(ns["counts"]) < max(ns["counts"]) and np.isnan(ns["array"]).any()
        ),
        "split halves (2 folds) with a split-half noise ceiling": lambda ns: (
            ns["metrics"]["split"]["by"] == "halves"
            and ns["metrics"]["folds"] == 2
            and ns["metrics"]["noise_ceiling"] is not None
        ),
        "the fit beats the training half's condition means and stays below the ceiling": lambda ns: (
            ns["metrics"]["r2_test"] > ns["metrics"]["baselines_mean"]["condition_mean"] + 0.1
            and ns["metrics"]["r2_test"] < ns["metrics"]["noise_ceiling"] + 0.02
        ),
        "inactivation predicted without a task, with context decoding": lambda ns: (
            "decode_context" in ns["table"] and ns["table"]["activity_change"].iloc[1:].gt(0).all()
        ),
        "a report written": lambda ns: ns["report"].is_file(),
    },
    "07_partial_observation": {
        "every grid point finished": lambda ns: (
            len(ns["study"]) == len(ns["RANKS"]) * len(ns["FRACTIONS"]) * len(ns["SEEDS"])
        ),
        "rank-2 students of all the units recover the teacher's stable points": lambda ns: (
            ns["study"].query("rank == 2 and fraction == 1")["landscape_agrees"].all()
        ),
        "rank-1 students never have the teacher's landscape, and the metrics flag every one": lambda ns: (
            not ns["study"].query("rank == 1")["landscape_agrees"].any()
            and (ns["study"].query("rank == 1")["failure_modes"] != "none").all()
        ),
        "activity alone does not tell: a student with held-out R² > 0.95 has the wrong landscape": lambda ns: (
            not ns["study"].query("r2_test > 0.95")["landscape_agrees"].all()
        ),
        "a fraction from which the rank-2 landscape is trustworthy": lambda ns: ns["trust"][2] is not None,
    },
    "05_your_nwb": {
        "NWB round trip: good units only, trials x bins, inputs rebuilt exactly": lambda ns: (
            ns["data"].activity.shape == (ns["N_TRIALS"], 65, ns["UNITS"])
            and int(ns["data"].neuron_ids.max()) < 1000
            and list(ns["data"].input_names) == ["motion", "color", "ctx_motion", "ctx_color"]
            and ns["input_error"] < 1e-6
        ),
        "raw counts per bin, no smoothing": lambda ns: bool(
            np.all(ns["data"].activity == np.round(ns["data"].activity))
        ),
        "counts fit above the classic recipe and the smoothed PSTH, below the true rates": lambda ns: (
            ns["psth_bps"] < ns["counts_bps"] and ns["classic_bps"] < ns["counts_bps"] < ns["truth_bps"] + 0.01
        ),
        "expected rates close to the true rates": lambda ns: ns["truth_r2"] > 0.8,
        "co-smoothing predicts withheld neurons": lambda ns: ns["metrics"]["co_bps"] > 0,
        "report page with embedded figures": lambda ns: (
            ns["report_path"].is_file() and ns["report_path"].read_text().count("data:image/png;base64,") >= 4
        ),
    },
}

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

#: Notebooks quick enough for the default suite; the others train several networks even in
#: quick mode and run with ``-m slow`` (as ``.ci/run`` does).
FAST = {"01_validation"}


def notebook_params() -> list:
    return [pytest.param(p, id=p.stem, marks=() if p.stem in FAST else pytest.mark.slow) for p in NOTEBOOKS]


def code_cells(path: Path) -> list[str]:
    notebook = json.loads(path.read_text())
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


@pytest.mark.parametrize("path", notebook_params())
def test_notebook_runs_in_quick_mode(path, monkeypatch, tmp_path):
    matplotlib.use("Agg")
    monkeypatch.setenv("LRFIT_QUICK", "1")
    monkeypatch.chdir(tmp_path)
    notebook = json.loads(path.read_text())
    assert all(not cell.get("outputs") for cell in notebook["cells"] if cell["cell_type"] == "code"), \
        f"{path.name} is stored with outputs; clear them before committing"
    namespace: dict = {"__name__": "__main__"}
    for index, source in enumerate(code_cells(path)):
        try:
            exec(compile(source, f"{path.name}[cell {index}]", "exec"), namespace)
        except Exception as error:  # pragma: no cover - the message is the test's output
            raise AssertionError(f"{path.name}: code cell {index} failed: {error!r}") from error
    import matplotlib.pyplot as plt

    plt.close("all")
    for name, check in CHECKS.get(path.stem, {}).items():
        assert check(namespace), f"{path.name}: quick run fails the check '{name}'"
