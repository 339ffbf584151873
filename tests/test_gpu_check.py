"""benchmarks/gpu_check.py, the script a session with a GPU runs, works before it gets there: on CPU, tiny."""

import subprocess
import sys

import pytest

from tests.test_search_cli import ROOT


@pytest.mark.slow
def test_the_gpu_check_runs_every_section_on_cpu_tiny():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--tiny"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for section in ("1. one-shot search step", "2. full PC-DARTS CIFAR-10 search", "3. final training",
                    "4. DDP, one device", "5. empirical NTK"):
        assert section in out, out
    assert out.count("darts ") >= 2 and "pcdarts" in out and "lsnas / plain = " in out and " h projected" in out
    assert "compiled / eager = " in out  # train.py's compile setting ran through the training path
    assert "warnings\n  none\n" in out  # DDP raised no warning (bucket strides, unsynced logs)
    ntk = out.split("5. empirical NTK")[1].strip().splitlines()[2:]
    assert len(ntk) == 6 and all(float(row.split()[-1]) < 1e-5 for row in ntk), ntk  # every way equals the loop
