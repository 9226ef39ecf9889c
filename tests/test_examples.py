"""Every example in examples/ runs end to end with its --smoke budget and prints its metric line,
so the examples cannot rot."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# example -> the pattern its last line must match
METRIC_LINES = {
    "mlp_digits.py": r"test accuracy: [01]\.\d{3}",
    "cnn_digits.py": r"test accuracy: [01]\.\d{3}",
    "matrix_factorization.py": r"test RMSE: \d+\.\d{3} \(baseline, predicting the mean: .*\)",
    "distillation.py": r"distilled student accuracy: [01]\.\d{3}",
    "finetune.py": r"accuracy on 5-9 after fine-tuning: [01]\.\d{3}",
    "lstm_charlm.py": r"loss: \d+\.\d{3} -> \d+\.\d{3} \(\d+% lower\) in .*",
    "transformer_classifier.py": r"test accuracy: [01]\.\d{3} \(.*\)",
}


def test_every_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(METRIC_LINES)


@pytest.mark.parametrize("name", sorted(METRIC_LINES))
def test_example_runs(name):
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--smoke"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert re.fullmatch(METRIC_LINES[name], last), out.stdout
