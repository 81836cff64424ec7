"""Run every bad-input case of the test suite (tests/bad_input_cases.py) through the ``lrfit`` command line.

Each case runs as its own ``python -m lrfit`` process in a fresh folder; prints JSON: the number of
cases, how many exited with code 2 and one line on stderr naming the problem, how many printed a
traceback (goal: 0), and whether any file that was there before changed or vanished.

    python benchmarks/bad_inputs.py
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bad_input_cases import CASES, make_recording, snapshot  # noqa: E402


def main() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    rows = []
    for name, prepare in CASES:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            make_recording(tmp)
            with contextlib.redirect_stdout(io.StringIO()):  # a case may first make a run to break
                argv, fragment = prepare(tmp)
            before = snapshot(tmp)
            proc = subprocess.run([sys.executable, "-m", "lrfit", "-q", *argv], capture_output=True, text=True,
                                  env=env, cwd=tmp, timeout=300)
            lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith(("INFO", "WARNING"))]
            after = snapshot(tmp)
            rows.append({
                "case": name,
                "exit_code": proc.returncode,
                "one_line": len(lines) == 1,
                "names_the_problem": bool(lines) and fragment in lines[-1],
                "traceback": "Traceback (most recent call last)" in proc.stderr,
                "files_changed": [f for f, data in before.items() if after.get(f) != data],
                "message": lines[-1] if lines else "",
            })
    good = [r for r in rows if r["exit_code"] == 2 and r["one_line"] and r["names_the_problem"]]
    print(json.dumps({
        "cases": len(rows),
        "exit_2_with_one_line": len(good),
        "tracebacks": sum(r["traceback"] for r in rows),
        "cases_that_changed_files": sum(bool(r["files_changed"]) for r in rows),
        "failures": [r for r in rows if r not in good or r["traceback"] or r["files_changed"]],
        "results": rows,
    }, indent=1))


if __name__ == "__main__":
    main()
