"""Every bad input of tests/bad_input_cases.py: exit code 2, one sentence naming the problem, nothing lost."""

from __future__ import annotations

import pytest
from bad_input_cases import CASES, make_recording, snapshot

from lrfit.cli import main


@pytest.mark.parametrize("name, prepare", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_sentence_and_loses_nothing(name, prepare, tmp_path, capsys):
    make_recording(tmp_path)
    argv, fragment = prepare(tmp_path)
    capsys.readouterr()
    before = snapshot(tmp_path)
    out_existed = (tmp_path / "run").exists()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, f"{name}: exit {code}, stderr {err!r}"
    lines = [line for line in err.splitlines() if not line.startswith(("INFO", "WARNING", "DEBUG"))]
    assert len(lines) == 1 and fragment in lines[0], f"{name}: {err!r}"
    after = snapshot(tmp_path)
    changed = [f for f, data in before.items() if after.get(f) != data]
    assert not changed, f"{name}: changed or deleted {changed}"
    if not out_existed:
        assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir()), f"{name}: left files in --out"
