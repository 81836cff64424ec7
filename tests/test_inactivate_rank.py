"""``lrfit inactivate`` on a rank list: the chosen rank unless told otherwise, and rank 1 checked against rank 2."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from lrfit.analysis import compare_inactivation
from lrfit.analysis.network_inactivation import InactivationResult
from lrfit.cli import main
from lrfit.runs.inactivate import rank_check_json


def _result(rows):
    table = pd.DataFrame(rows, columns=["group", "context", "accuracy", "delta_accuracy", "p_value"])
    return InactivationResult(table=table, psychometric=None, groups={}, by="context", outputs={}, latents={})


def test_rank_check_lists_the_groups_whose_sign_differs():
    rank1 = _result([("pop0", "motion", 0.60, -0.38, 1e-12), ("pop0", "color", 0.97, -0.01, 0.5),
                     ("pop1", "motion", 0.80, -0.18, 1e-6)])
    rank2 = _result([("pop0", "motion", 0.62, -0.36, 1e-12), ("pop0", "color", 0.98, 0.00, 1.0),
                     ("pop1", "motion", 0.98, 0.00, 1.0)])
    d = rank_check_json(compare_inactivation(rank1, rank2))
    assert d["sign_agreement"] == 2 / 3
    assert d["disagreements"] == [{"group": "pop1", "context": "motion", "delta_rank1": -0.18, "p_rank1": 1e-6,
                                   "delta_rank2": 0.0, "p_rank2": 1.0}]
    json.dumps(d)


def test_inactivate_uses_the_chosen_rank_and_compares_rank1_with_rank2(tmp_path, capsys):
    teacher = tmp_path / "teacher"
    assert main(["teacher", "--task", "cdm", "--units", "24", "--rank", "full", "--rho", "0.1", "--epochs", "2",
                 "--out", str(teacher), "--no-progress"]) == 0
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({"data": {"teacher": str(teacher), "trials": 48, "test_trials": 24},
                                      "model": {"rank": [1, 2]}, "optim": {"max_epochs": 2, "batch_size": 16}}))
    run = tmp_path / "run"
    assert main(["fit", str(config), "--out", str(run), "--no-progress"]) == 0
    chosen = json.loads((run / "rank_selection.json").read_text())["chosen_rank"]
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"first": ["0", "1", "2", "3", "4", "5"], "second": ["10", "11", "12"]}))
    capsys.readouterr()
    assert main(["inactivate", str(run), "--groups", str(groups), "--trials", "64"]) == 0
    out = capsys.readouterr().out
    assert f"silencing the rank-{chosen} network: chosen on held-out data" in out
    assert "rank 1 against rank 2 on the same trials" in out
    record = json.loads((run / "analysis" / "inactivation.json").read_text())
    assert record["rank"]["rank"] == chosen and "rank_selection.json" in record["rank"]["how"]
    check = record["rank_check"]
    assert {"sign_agreement", "table", "disagreements"} <= set(check)
    assert {row["group"] for row in check["table"]} == {"first", "second"}
    # --rank names another rank; the check still runs on ranks 1 and 2
    other = 3 - chosen
    assert main(["inactivate", str(run), "--groups", str(groups), "--trials", "64", "--rank", str(other)]) == 0
    assert f"silencing the rank-{other} network: asked for with --rank" in capsys.readouterr().out
    record = json.loads((run / "analysis" / "inactivation.json").read_text())
    assert record["rank"]["rank"] == other and record["rank_check"] is not None
