"""Every benchmark script answers --help (they are run by hand and by the book, not timed in tests)."""
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


def test_there_are_benchmarks():
    assert {p.stem for p in SCRIPTS} >= {"selective_scan_speed", "vim_throughput", "graph_step_time"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_help_answers(script):
    res = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "usage:" in res.stdout and "--out" in res.stdout
