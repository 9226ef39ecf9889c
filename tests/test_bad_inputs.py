"""The bad-input table (tests/bad_inputs/): every entry point's cases run in a subprocess of
their own, so a segfault or an abort is a failure naming the case (and the remaining cases
still run), not a lost test run. `python -m bad_inputs --count` (from tests/) prints how many
cases each entry point has."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bad_inputs import table

TESTS = Path(__file__).parent
TIMEOUT = 120  # seconds for one entry point's cases; the slowest takes about 2


def run_cases(entry: str):
    """{case index: (name, outcome, detail)} for every case of `entry`; a case during which the
    process died or hung is recorded as such and the rest run in a fresh process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    results, skip, total = {}, [], None
    while total is None or len(results) < total:
        command = [sys.executable, "-m", "bad_inputs", entry, "--skip", ",".join(map(str, skip))]
        try:
            proc = subprocess.run(
                command, capture_output=True, text=True, env=env, cwd=TESTS, timeout=TIMEOUT
            )
            stdout, stderr, died = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            stdout, stderr, died = _text(e.stdout), _text(e.stderr), "a timeout"
        running = None
        for line in stdout.splitlines():
            if not line.startswith("{"):
                continue  # not the runner's (a library printing to stdout)
            record = json.loads(line)
            if "cases" in record:
                total = record["cases"]
            elif "start" in record:
                running = (record["start"], record["name"])
            else:
                results[record["end"]] = (running[1], record["outcome"], record["detail"])
                running = None
        if running is None:
            if total is None or len(results) < total:
                pytest.fail(f"{entry}: the case runner failed (exit {died}):\n{stderr[-3000:]}")
            break
        index, name = running
        how = f"signal {-died}" if isinstance(died, int) and died < 0 else f"exit {died}"
        results[index] = (name, "crash", f"the process died ({how}):\n{stderr[-2000:]}")
        skip.append(index)
    return results


def _text(output) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


@pytest.mark.parametrize("entry", list(table()))
def test_bad_inputs(entry):
    results = run_cases(entry)
    failures = [
        f"[{i}] {name}: {outcome}: {detail}"
        for i, (name, outcome, detail) in sorted(results.items())
        if outcome in ("fail", "crash")
    ]
    assert not failures, f"{len(failures)} of {len(results)} cases failed:\n" + "\n".join(failures)
