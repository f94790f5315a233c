"""Training the dense tiny Vim to its plateau: the early-stopping rule on hand-made curves, the held-out
split, resuming a killed run (same weights as an unbroken one), and the trained-artifact registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from compendium import trained
from compendium.cli import main
from compendium.data import DataNotFoundError
from compendium.vision_mamba import plateau as pl
from compendium.vision_mamba.vim import VimConfig

START = {"best": float("-inf"), "bad": 0, "reductions": 0, "lr_scale": 1.0}
RULE = pl.PlateauConfig(patience=2, min_delta=0.5, lr_factor=0.5, max_reductions=1)


def curve(accs, cfg=RULE):
    state, states = dict(START), []
    for a in accs:
        state = pl.next_state(state, a, cfg)
        states.append(state)
        if state["stop"]:
            break
    return states


def test_first_evaluation_is_the_best_so_far():
    s = pl.next_state(START, 10.0, RULE)
    assert s["improved"] and s["best"] == 10.0 and s["stop"] is None


def test_a_gain_below_min_delta_is_not_an_improvement():
    s = curve([50.0, 50.4])[-1]
    assert not s["improved"] and s["bad"] == 1 and s["best"] == 50.0


def test_patience_lowers_the_learning_rate_then_a_second_plateau_stops():
    states = curve([50.0, 50.1, 50.2, 50.3, 50.4, 60.0])
    assert states[2]["reductions"] == 1 and states[2]["lr_scale"] == 0.5 and states[2]["bad"] == 0
    assert states[4]["stop"] == "plateau" and len(states) == 5  # the run stops before the 60.0
    # an improvement after the reduction resets the count
    states = curve([50.0, 50.1, 50.2, 51.0, 51.1, 51.2])
    assert states[3]["improved"] and states[3]["bad"] == 0 and states[-1]["stop"] == "plateau"


def test_holdout_split_is_fixed_disjoint_and_checked():
    tr, ho = pl.holdout_split(100, 10, seed=0)
    assert len(tr) == 90 and len(ho) == 10 and not set(tr) & set(ho) and sorted([*tr, *ho]) == list(range(100))
    assert np.array_equal(pl.holdout_split(100, 10, seed=0)[1], ho)
    with pytest.raises(ValueError, match="holdout"):
        pl.holdout_split(100, 100)


TINY = VimConfig(img_size=32, patch_size=8, stride=8, embed_dim=16, depth=2, d_state=4, num_classes=10)
FAST = pl.PlateauConfig(batch_size=32, holdout=64, warmup_epochs=0.5, patience=1, min_delta=0.0,
                        max_reductions=0, max_epochs=3)


class Killed(Exception):
    pass


def test_a_killed_run_resumes_to_the_same_weights(cifar_test_split, tmp_path):
    _, (x, y) = cifar_test_split
    x, y = x[:320], y[:320]  # real CIFAR-10 images: 256 trained on, 64 held out
    whole = pl.train_to_plateau(TINY, FAST, x, y, tmp_path / "a.ckpt", data_tag="t", num_threads=1)
    assert whole.stop_reason in ("plateau", "max_epochs") and whole.resumed == 0
    assert [r["epoch"] for r in whole.history] == list(range(1, len(whole.history) + 1))
    assert whole.best_holdout_acc == max(r["holdout_acc"] for r in whole.history)
    assert whole.converged == (whole.stop_reason == "plateau")

    def die_after_first(line):
        if line.startswith("epoch 1 "):
            raise Killed  # stopped after the epoch, before its checkpoint: epoch 1 is redone
    ckpt = tmp_path / "b.ckpt"
    with pytest.raises(Killed):
        pl.train_to_plateau(TINY, FAST, x, y, ckpt, data_tag="t", num_threads=1, log=die_after_first)
    assert not ckpt.exists()

    def die_in_second(line):
        if line.startswith("epoch 2 "):
            raise Killed
    with pytest.raises(Killed):
        pl.train_to_plateau(TINY, FAST, x, y, ckpt, data_tag="t", num_threads=1, log=die_in_second)
    lines = []
    resumed = pl.train_to_plateau(TINY, FAST, x, y, ckpt, data_tag="t", num_threads=1, log=lines.append)
    assert lines[0].startswith("resumed at epoch 1") and resumed.resumed == 1
    assert [r["holdout_acc"] for r in resumed.history] == [r["holdout_acc"] for r in whole.history]
    for a, b in zip(resumed.model.state_dict().values(), whole.model.state_dict().values()):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="another configuration"):
        pl.train_to_plateau(TINY, FAST, x, y, ckpt, data_tag="other data", num_threads=1)

    prov = pl.provenance(whole, TINY, FAST, data_key="k", test_acc=12.345, device="cpu", num_threads=1,
                         commit="abc")
    assert prov["epochs_run"] == len(whole.history) and prov["test_acc"] == 12.35 and prov["recipe"]["holdout"] == 64
    assert "cpu, 1 threads" in prov["machine"] and math.isfinite(prov["training_minutes"])


def test_trained_registry_verifies_its_files(tmp_path):
    reg = tmp_path / "registry.yaml"
    with pytest.raises(trained.ArtifactError, match="no trained artifact named 'w'"):
        trained.path("w", reg)
    f = tmp_path / "w.pt"
    f.write_bytes(b"weights")
    entry = trained.register("w", f, {"epochs_run": 3}, registry=reg)
    assert entry["size"] == 7 and trained.path("w", reg) == f
    assert trained.entries(reg)["w"]["provenance"] == {"epochs_run": 3}
    f.write_bytes(b"changed")
    with pytest.raises(trained.ArtifactError, match="registry records"):
        trained.path("w", reg)
    f.unlink()
    with pytest.raises(DataNotFoundError, match="missing"):
        trained.path("w", reg)
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    with pytest.raises(trained.ArtifactError, match="beside"):
        trained.register("x", elsewhere / "x.pt", {}, registry=reg)


def test_load_artifact_round_trip(tmp_path):
    from compendium.vision_mamba.vim import Vim

    model = Vim(TINY)
    f = tmp_path / pl.ARTIFACT_FILE
    from dataclasses import asdict
    torch.save({"state_dict": model.state_dict(), "model_cfg": asdict(TINY)}, f)
    trained.register(pl.ARTIFACT, f, {"stop_reason": "plateau"}, registry=tmp_path / "registry.yaml")
    loaded, prov = pl.load_artifact(registry=tmp_path / "registry.yaml")
    assert prov == {"stop_reason": "plateau"}
    torch.testing.assert_close(loaded.head.weight, model.head.weight)


@pytest.mark.parametrize("argv, message", [(["--threads", "0"], "--threads must be at least 1"),
                                           (["--max-epochs", "0"], "--max-epochs must be at least 1")])
def test_train_command_refuses_bad_parameters_in_one_line(argv, message, capsys):
    assert main(["train", "tiny-vim", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {message}, got 0"]


def test_make_artifact_trains_saves_and_registers(cifar_test_split, tmp_path, monkeypatch):
    import compendium.datasets.cifar as cifar

    _, (x, y) = cifar_test_split
    monkeypatch.setattr(cifar, "load_cifar10", lambda path, split: (x[:320], y[:320]) if split == "train"
                        else (x[320:420], y[320:420]))
    lines = []
    entry = pl.make_artifact(FAST, num_threads=1, checkpoint=tmp_path / "c.ckpt", registry=tmp_path / "registry.yaml",
                             model_cfg=TINY, log=lines.append)
    prov = entry["provenance"]
    assert entry["file"] == pl.ARTIFACT_FILE and prov["data"] == pl.DATA_KEY and prov["commit"]
    assert prov["epochs_run"] == len(prov["holdout_curve"]) and 0 <= prov["test_acc"] <= 100
    assert lines[-1].startswith(f"{pl.ARTIFACT}: ") and "registered as" in lines[-1]
    model, got = pl.load_artifact(registry=tmp_path / "registry.yaml")
    assert got == prov and not model.training


def test_a_plateau_stop_waits_for_the_contracts_convergence_rule():
    rec = lambda accs: [{"epoch": i + 1, "holdout_acc": a} for i, a in enumerate(accs)]  # noqa: E731
    assert pl._best_is_early(rec([50.0, 52.0, 51.0]))
    # a gain below min_delta at the last epoch is still the maximum: the contract would say "not converged"
    assert not pl._best_is_early(rec([50.0, 52.0, 52.1]))
    assert not pl._best_is_early(rec([50.0]))
