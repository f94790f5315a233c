"""The graph chapters' shared preconditions and paired interval on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compendium.graphs.gfs import claims as gfs_claims
from compendium.graphs import preconditions as gp


def runs_frame(converged: list[bool], dataset: str = "minesweeper") -> pd.DataFrame:
    return pd.DataFrame({"dataset": dataset, "model": "GCN", "variant": "GCN", "converged": converged,
                         "best_step": 10, "steps": 20, "max_steps": 100})


def test_paired_interval():
    mean, lo, hi = gp.paired_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and lo == pytest.approx(2 - 4.302653 / np.sqrt(3), abs=1e-5) and hi > 4
    assert np.isnan(gp.paired_interval([1.0])[1])


def test_precondition_converged():
    assert gp.precondition_converged(runs_frame([True] * 10)).met
    pre = gp.precondition_converged(runs_frame([False] + [True] * 9))  # 10 % is not < 10 %
    assert not pre.met and "1/10" in pre.measured and "minesweeper 1" in pre.measured
    assert not gp.precondition_converged(runs_frame([])).met


def test_precondition_splits():
    assert gp.precondition_splits({"a": 3, "b": 5}).met
    pre = gp.precondition_splits({"a": 3, "tolokers/GCN": 1})
    assert not pre.met and "tolokers/GCN (1)" in pre.measured
    assert not gp.precondition_splits({}).met


def test_gfs_claims_uses_the_shared_definitions():
    assert gfs_claims.precondition_converged is gp.precondition_converged and gfs_claims.CONFIDENCE == gp.CONFIDENCE
