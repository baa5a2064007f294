"""`benchmarks/gpu_check.py` keeps working: its CPU smoke mode, on the fastest entry (all entries take
about 7 minutes here: `python benchmarks/gpu_check.py --tiny`)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_gpu_check_tiny_runs_every_mode_and_checks_replicas():
    done = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--entries", "vanilla", "--steps", "5"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for mode in ("float32 ", "float32 + XLA", "mixed_bfloat16", "mirrored x2"):
        assert f"vanilla    {mode}" in done.stdout
    assert "equal" in done.stdout and "All checks passed." in done.stdout


def test_gpu_check_without_a_gpu_points_to_the_tiny_mode():
    done = subprocess.run([sys.executable, str(SCRIPT), "--entries", "vanilla"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1"})
    assert done.returncode == 2 and "--tiny" in done.stderr
