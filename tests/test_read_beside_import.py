"""Reading the training table while scikit-learn is imported beside it: the interpreter's switch interval is
lowered for the read only, and restored, also when the read fails."""

from __future__ import annotations

import subprocess
import sys

from tables import write_table

SCRIPT = """
import sys
from mlpcli import pipeline
from mlpcli.config import TrainOptions
sys.setswitchinterval(0.004)
seen = []
real = pipeline.data.load_dataset
def spy(*args, **kwargs):
    seen.append(sys.getswitchinterval())
    return real(*args, **kwargs)
pipeline.data.load_dataset = spy
try:
    pipeline.load_dataset(sys.argv[1], TrainOptions(no_group=True))  # (splits by scikit-learn: imported beside)
except Exception as exc:
    print(type(exc).__name__)
print(seen[0], sys.getswitchinterval(), "sklearn" in sys.modules)
"""


def _run(path: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, path], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_the_switch_interval_is_lowered_for_the_read_and_restored(tmp_path):
    during, after, imported = _run(write_table(tmp_path))
    assert abs(float(during) - 0.0002) < 1e-9 and abs(float(after) - 0.004) < 1e-9 and imported == "True"


def test_the_switch_interval_is_restored_when_the_read_fails(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("")
    words = _run(str(bad))
    assert words[0] == "DataError" and abs(float(words[2]) - 0.004) < 1e-9
