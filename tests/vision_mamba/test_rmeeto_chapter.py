"""The R-MeeTo chapter's tables, figures, readings and verdict assembly (vision_mamba.rmeeto.chapter), on small
hand-made inputs and random tiny models."""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from compendium import published, verdicts
from compendium.vision_mamba.rmeeto import chapter as ch
from compendium.vision_mamba.rmeeto.model import MergeConfig
from compendium.vision_mamba.train import CIFAR_VIM
from compendium.vision_mamba.vim import Vim, VimConfig

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def paper():
    return published.load("rmeeto")


def _run(accs, minutes=1.5, cached=False):
    return SimpleNamespace(history=[{"epoch": e, "lr": 1e-4, "loss": 1.0, "ce": 0.8, "kl": 0.2, "acc": a, "time_s": 1.0}
                                    for e, a in enumerate(accs)],
                           minutes=minutes, seconds=60 * minutes, cached=cached, device="cpu")


def test_hand_merge_and_check():
    metric, values, table = ch.hand_merge()
    assert list(table.index) == ["before", "merge r=1 (ordered)", "merge r=2 (ordered)", "merge r=1 (unordered)",
                                 "prune r=1"]
    assert table.loc["merge r=1 (ordered)", 0] == "15 x2"
    assert ch.hand_merge_check(metric, values) == ("r=2 ordered: [15.0, 40.0, 99.0, 50.0, 45.0] sizes "
                                                   "[2.0, 1.0, 1.0, 1.0, 2.0] cls at 2")


def test_flops_table_lines_reading_and_hooks(paper, capsys):
    assert ch.schedule_figure() is not None
    table = ch.flops_table()
    assert list(table.index) == ["Vim-Ti", "Vim-S", "Vim-B"] and list(table["r"]) == [5, 11, 11]
    assert ch.flops_lines(table).splitlines()[0].startswith("Vim-Ti: dense ")
    text = ch.flops_reading(table, paper)
    assert text.count("\n- ") == 3 and "**The Vim-Ti quirk.**" in text
    hooks, analytic = ch.hooks_check(embed_dim=8)
    assert hooks < analytic and "matching" in capsys.readouterr().out


def test_dense_lines_and_training_free_sweep(capsys):
    torch.manual_seed(0)
    dense = SimpleNamespace(model=Vim(CIFAR_VIM), cached=True, seconds=90.0)
    text = ch.dense_lines(dense, 0.0, MergeConfig(num_prune=8))
    assert text.startswith("dense tiny Vim: loaded from the cache (training took 1.5 min")
    assert "tokens per block with r = 8 : [65, 65, 57," in text
    dense.cached = False
    assert "trained in 0.0 min" in ch.dense_lines(dense, time.time(), MergeConfig(num_prune=8))
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, size=6)
    sweep = ch.training_free_sweep(dense.model, x, y, [4], 4)   # a Vim or a TrainResult
    assert list(sweep.index) == [0, 4] and sweep.attrs["n"] == 4
    assert sweep.loc[0, "merge"] == sweep.loc[0, "prune"] and sweep.loc[4, "tokens at the end"] == 53
    assert ch.sweep_figure(sweep) is not None
    assert "4 settings on 4 test images" in capsys.readouterr().out


def test_retrain_variants_history_and_figure(monkeypatch, capsys):
    calls = []

    def fake_retrain(teacher, merge, cfg, data, eval_subset, progress, device):
        calls.append(merge)
        return _run([20.0, 30.0], cached=merge is None)

    monkeypatch.setattr(ch, "retrain", fake_retrain)
    merge = MergeConfig(num_prune=8)
    runs, control = ch.retrain_variants(None, merge, "merge, unordered,", None, {}, eval_subset=10, device="cpu")
    assert list(runs) == ["merge", "unordered"] and calls == [merge, MergeConfig(num_prune=8, ordered=False), None]
    out = capsys.readouterr().out
    assert "merge     epoch 0 20.00 -> epoch 1 30.00  (1.5 min of re-training on cpu)" in out
    assert "control   epoch 0 20.00 -> epoch 1 30.00  (1.5 min of re-training on cpu, from the cache)" in out
    history = ch.history_table(runs, control)
    assert list(history.variant.unique()) == ["merge", "unordered", "dense control"] and len(history) == 6
    assert ch.history_figure(history, 35.0, epochs=1, num_prune=8, eval_subset=10) is not None
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    acc, n = ch.dense_accuracy(SimpleNamespace(model=model), np.zeros((5, 32, 32, 3), np.uint8), np.zeros(5, int), 3)
    assert n == 3 and 0 <= acc <= 100


def test_claims_minutes_and_verdicts(paper):
    scale = ch.scale_text(vim_epochs=4.0, num_prune=8, retrain_epochs=1, train_subset=128)
    assert scale.startswith("tiny Vim (65 tokens, d 64, depth 8) on CIFAR-10 JPEGs, dense 4 epochs, r = 8")
    runs = {"merge": _run([40.0, 55.0]), "prune": _run([30.0, 45.0]), "unordered": _run([35.0, 50.0])}
    control = _run([60.0, 61.0])
    dense_hist = [{"epoch": e, "acc": a} for e, a in ((1, 40.0), (2, 60.0), (3, 60.0), (4, 59.0))]
    table = ch.claims(runs, control, dense_hist, 60.0, 300, retrain_epochs=1, num_prune=8, small_scale=scale)
    assert len(table) == 5 and (table.kind == "claim").all()
    empty = ch.claims({}, control, dense_hist, 60.0, 300, retrain_epochs=1, num_prune=8, small_scale=scale)
    assert empty.empty and list(empty.columns) == verdicts.RESULT_COLUMNS
    pub, ours = ch.minutes_tables(paper, runs, control, retrain_epochs=1, train_subset=128)
    assert all(c.endswith(" (min)") for c in pub.columns) and list(ours.columns)[-1] == "dense control"
    minutes = ch.minutes_verdicts(paper, runs, retrain_epochs=1, train_subset=128)
    assert (minutes.verdict == "not run here").all() and "merge 1.5 min" in minutes.reason.iloc[0]


def test_throughput_table_and_speed_cell(tmp_path, capsys):
    torch.manual_seed(0)
    geometry = VimConfig(img_size=32, patch_size=4, stride=4, embed_dim=16, depth=24, num_classes=10)
    tp = ch.throughput_table(Vim(CIFAR_VIM), MergeConfig(num_prune=8), num_prune=8, tp_batch=2, tp_iters=1,
                             tp_repeats=1, vim_s=True, vim_s_batch=1, device="cpu", cfg_s=geometry)
    assert list(tp.index) == ["tiny Vim (65 tokens), r = 8", ch.VIM_S_ROW] and (tp["speed-up"] > 0).all()
    assert "device: cpu" in capsys.readouterr().out
    rep, reason = ch.speed_cell(tp, vim_s=True, vim_s_batch=1, device="cpu", gpu_file=tmp_path / "none.json")
    assert isinstance(rep[ch.SPEED_CELL], verdicts.NotRun) and reason == ""
    g = {"speedup": 1.3, "device_name": "GPU X", "time": "2026-11-30T10:00", "merge": {"num_prune": 11}, "batch": 128,
         "repeats": 5, "flops_ratio": 2.4, "torch": "2.5",
         "results": {"dense": {"images_per_s": 100.0, "ms_per_batch": 10.0},
                     "merged": {"images_per_s": 130.0, "ms_per_batch": 7.7}}}
    gpu_file = tmp_path / "gpu.json"
    gpu_file.write_text(json.dumps(g))
    rep, reason = ch.speed_cell(tp, vim_s=False, vim_s_batch=1, device="cpu", gpu_file=gpu_file)
    assert rep[ch.SPEED_CELL] == 1.3 and reason.startswith("measured on an GPU X (2026-11-30")
    assert "GPU speed-up 1.30x" in capsys.readouterr().out
    assert ch.gpu_throughput_file().name == "rmeeto_throughput_vim_s_cuda_h200.json"


def test_speed_cell_on_a_gpu_and_without_the_repository(monkeypatch):
    tp = pd.DataFrame({"speed-up": [0.9, 1.4]}, index=["tiny Vim (65 tokens), r = 8", ch.VIM_S_ROW])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "GPU Y")
    rep, reason = ch.speed_cell(tp, vim_s=True, vim_s_batch=128, device="cuda")
    assert rep[ch.SPEED_CELL] == 1.4 and reason.startswith("measured here on an GPU Y (Vim-S geometry, r = 11, batch 128)")

    def no_repo():
        raise FileNotFoundError("installed without the repository")

    monkeypatch.setattr(ch, "repo_root", no_repo)
    assert not ch.gpu_throughput_file().exists()


def test_imagenet_cells(monkeypatch, capsys):
    acc, rows = ch.imagenet_cells("", {})
    assert len(acc) == 6 and rows.empty and all(isinstance(v, verdicts.NotRun) for v in acc.values())
    assert "not run here" in capsys.readouterr().out
    from compendium.vision_mamba import imagenet
    from compendium.vision_mamba.vim import CheckpointNotFoundError

    def load(model, path, prefer_ema=False):
        if path == "missing.pth":
            raise CheckpointNotFoundError("no such file\nmore")
        return "ema" if prefer_ema else "model"

    monkeypatch.setattr(imagenet, "check_imagenet_val", lambda root: ["n01"])
    monkeypatch.setattr(imagenet, "load_weights", load)
    monkeypatch.setattr(imagenet, "evaluate_imagenet",
                        lambda m, root, limit=None, device="cpu": {"acc1": 76.0, "acc5": 93.0, "n": limit or 50000})
    acc, rows = ch.imagenet_cells("/val", {"tiny": ("vim_t.pth", "rm_t.pth"), "small": ("missing.pth", "")})
    assert acc[("Vim", "Top-1 Ti (%)")] == 76.0 and acc[("R-MeeTo", "Top-1 Ti (%)")] == 76.0
    assert list(rows.row) == ["Vim", "R-MeeTo", "R-MeeTo (142 tokens)"]
    assert acc[("Vim", "Top-1 S (%)")].reason == "no such file"
    assert "rmeeto_s_checkpoint" in acc[("R-MeeTo", "Top-1 S (%)")].reason
    acc, _ = ch.imagenet_cells("/val", {"tiny": ("vim_t.pth", "")}, limit=100)
    assert "100-image subset" in acc[("Vim", "Top-1 Ti (%)")].reason


def test_table2_other_verdicts_and_summary(paper):
    table = ch.flops_table()
    cmp2 = ch.table2_verdicts(paper, table, {})
    assert ch.table2_counts(cmp2).startswith("verdict")
    not_run = {ch.SPEED_CELL: verdicts.not_run("a GPU claim", kind="compute")}
    out = ch.other_verdicts(paper, not_run, "")
    assert len(out) == 5 and out[0].scale.iloc[0] == "paper"
    measured = ch.other_verdicts(paper, {ch.SPEED_CELL: 1.3}, "another GPU")
    assert measured[0].scale.iloc[0] == "substitute" and measured[0].scale_reason.iloc[0] == "another GPU"
    texts = ch.summary_texts("a tiny scale")
    assert set(texts) == {"paper_claim", "ran_here", "not_reproduced"} and "a tiny scale" in texts["ran_here"]
