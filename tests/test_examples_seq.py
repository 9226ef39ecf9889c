"""The sequence-model examples run end to end with a tiny budget (--smoke), so they cannot
rot."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    "script, final",
    [("lstm_charlm.py", "loss: "), ("transformer_classifier.py", "test accuracy: ")],
)
def test_example_smoke_run(script, final):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert final in done.stdout, done.stdout
