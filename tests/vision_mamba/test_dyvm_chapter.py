"""The DyVM chapter's tables, figures, readings and verdict assembly (vision_mamba.dyvm.chapter), on small
hand-made inputs and random tiny models."""
from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from compendium import published
from compendium.vision_mamba.dyvm import chapter as ch
from compendium.vision_mamba.dyvm.claims import flops_reduction_range
from compendium.vision_mamba.dyvm.model import DyVM, DyVMConfig
from compendium.vision_mamba.train import CIFAR_VIM
from compendium.vision_mamba.vim import VIM_CONFIGS, Vim, VimConfig

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def papers():
    return published.load("vim"), published.load("dyvm")


def _headline(dyvm_paper):
    return dyvm_paper.table("headline").frame().set_index("column")["value"]


def test_toy_scan_prints_every_implementation(capsys):
    toy = ch.toy_scan()
    assert {"reference", "chunked"} <= set(toy)
    assert "[1.0, 0.5, 0.25, 4.125]" in capsys.readouterr().out


def test_scan_speed_table_figure_and_reading(tmp_path):
    speed, here = ch.scan_speed([6], 1, batch=1, d_inner=4, d_state=2)
    assert "reference" in here.columns and "chunked speed-up" in here.columns
    missing = tmp_path / "none.csv"
    assert ch.scan_speed_figure(speed, missing) is not None
    assert ch.scan_speed_reading(speed, missing).startswith("In this run, the speed-up")
    # a recorded sweep with L = 197: the reading comes from it, and says whether the 10x target is met
    rows = [{"impl": i, "length": L, "best_ms": 1.0, "speedup_vs_reference": s}
            for L in (64, 197) for i, s in (("reference", 1.0), ("chunked", 2.0), ("cpu_kernel", 12.0))]
    csv = tmp_path / "sweep.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    text = ch.scan_speed_reading(speed, csv)
    assert text.startswith("In the recorded sweep") and "chunked 2.0–2.0×" in text
    assert "12.0×, so the 10× target is met; the chunked scan 2.0×." in text
    assert ch.scan_speed_figure(speed, csv) is not None
    slow = pd.DataFrame([r for r in rows if r["impl"] != "chunked"]).assign(
        speedup_vs_reference=lambda f: f.speedup_vs_reference.where(f.impl == "reference", 3.0))
    slow.to_csv(csv, index=False)
    assert ch.scan_speed_reading(speed, csv).endswith("3.0×, so the 10× target is not met.")
    assert ch.scan_speed_figure(slow, missing) is not None   # an implementation absent from the run is skipped


def test_vim_table_verdicts_and_reading(papers, capsys):
    table = ch.vim_table()
    assert list(table.index) == ["Vim-Ti", "Vim-S", "Vim-B"]
    view = ch.vim_table_view(table)
    assert list(view.columns) == ["params (M)", "FLOPs (G), published convention", "FLOPs (G), both scans counted"]
    assert ch.vim_table_lines(table).splitlines()[0].startswith("Vim-Ti  params ")
    repro, measured = ch.vim_verdicts(papers[0], table)
    assert repro[("Vim-S", "FLOPs (G)")] == pytest.approx(table.loc["Vim-S", "FLOPs (formula)"] / 1e9)
    assert (measured.verdict == "exact").all()
    text = ch.vim_reading(table, measured)
    assert text.startswith("**Verdict.** Parameters (") and "for Vim-Ti)" in text


def test_mechanism_check(capsys):
    torch.manual_seed(0)   # the random model and gates come from the global RNG
    out = ch.mechanism_check()
    assert out["same_tokens"] and out["diff_masked"] < 1e-5 < 1e-2 < out["diff_naive"]
    assert "tokens per stage" in capsys.readouterr().out


def test_beta_reading_and_flops_lines(papers):
    cfg_s = VIM_CONFIGS["small"]
    table, text = ch.beta_reading(papers[1], cfg_s, flops_reduction_range(cfg_s, 0.7))
    assert table.beta.is_monotonic_decreasing and table.beta.iloc[0] == 1.0
    assert "lies inside that range" in text and "comes from the tokens" in text
    lines = ch.dyvm_flops_lines().splitlines()
    assert len(lines) == 3 and lines[1].startswith("DyVM-small rho 0.7:")


def test_run_lines():
    run = SimpleNamespace(cached=True, seconds=120.0, model=torch.nn.Linear(2, 3))
    assert ch.dense_line(run, 0.0).startswith("dense tiny Vim: loaded from the cache (training took 2.0 min")
    assert "9 parameters, 65 tokens" in ch.dense_line(run, 0.0)
    run.cached = False
    import time
    assert "trained in 0.0 min" in ch.dense_line(run, time.time())
    cfg = DyVMConfig(vim=CIFAR_VIM, pruning_loc=(2, 4, 6), keep_ratio=0.7)
    assert ch.dyvm_line(run, time.time(), cfg).startswith("DyVM: fine-tuned in 0.0 min; tokens per stage [65, ")


def test_small_scale_figure_reading_and_throughput(papers, capsys):
    torch.manual_seed(0)
    dense_model = Vim(CIFAR_VIM)
    dyvm_cfg = DyVMConfig(vim=CIFAR_VIM, pruning_loc=(2, 4, 6), keep_ratio=0.7)
    dy_model = DyVM.from_vim(dense_model, dyvm_cfg)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=6)
    dense = SimpleNamespace(model=dense_model, history=[{"epoch": 1, "acc": 20.0}, {"epoch": 2, "acc": 30.0}])
    dy = SimpleNamespace(model=dy_model, history=[{"epoch": 0.5, "acc": 25.0, "train_block_keep_ratio": 0.8}])
    s = ch.small_scale(dense, dy, x, y, eval_subset=4, keep_ratio=0.7, tp_batch=2, tp_iters=1, device="cpu")
    assert s["n"] == 4 and s["acc_masked"] == s["acc_dyvm"] and 0 < s["fl_red"] < 100
    assert list(s["table"].columns) == ["top-1 (%)", "GFLOPs", "images/s (CPU)"]
    assert "4 test images; accuracy drop" in capsys.readouterr().out
    headline = _headline(papers[1])
    assert ch.small_scale_figure(dense.history, dy.history, s, headline) is not None
    text = ch.small_scale_reading(s, dy.history, dyvm_cfg, headline, dyvm_epochs=0.5, dyvm_lr=2e-4,
                                  block_keep_target=0.8)
    assert text.startswith("**Accuracy.**") and "**Speed.**" in text
    assert ch.train_beta(dy.history) == 0.8 and math.isnan(ch.train_beta([{"acc": 1.0}]))
    geometry = VimConfig(img_size=32, patch_size=4, stride=4, embed_dim=16, depth=24, num_classes=10)
    tp = ch.throughput_table(s, keep_ratio=0.7, tp_batch=2, tp_iters=1, vim_s=True, vim_s_batch=1, device="cpu",
                             cfg_s=geometry)
    assert len(tp) == 2 and (tp["speed-up"] > 0).all()
    assert tp.index[1].startswith("Vim-S geometry (65 tokens), rho 0.7, beta 0.89")
    assert "device: cpu" in capsys.readouterr().out


def test_imagenet_checkpoints(monkeypatch, capsys):
    assert ch.imagenet_checkpoints("", {}) == {}
    assert "ImageNet-1K not given" in capsys.readouterr().out
    from compendium.vision_mamba import imagenet

    monkeypatch.setattr(imagenet, "check_imagenet_val", lambda root: ["n01"])
    monkeypatch.setattr(imagenet, "load_weights", lambda m, path, prefer_ema=False: "model")
    monkeypatch.setattr(imagenet, "evaluate_imagenet",
                        lambda m, root, limit=None, device="cpu": {"acc1": 80.0, "acc5": 95.0, "n": limit or 50000})
    small = {"small": ("vim_s.pth", "dyvm_s.pth")}
    out = ch.imagenet_checkpoints("/val", small, limit=10)
    assert out["Vim-S"] == {"acc1": 80.0, "acc5": 95.0, "n": 10, "weights": "model"}
    assert out["DyVM-Vim-S"]["acc1"] == 80.0 and math.isnan(out["DyVM-Vim-S"]["block_keep_ratio"])


def _tiny_result(**kw):
    s = {"n": 300, "acc_dense": 60.0, "acc_dyvm": 55.0, "beta": 0.95, "fl_dense": 2.0e6, "fl_dyvm": 1.2e6,
         "fl_red": 40.0, "tp": {"dense": {"rounds": [100.0, 101.0, 99.0]}, "DyVM": {"rounds": [120.0, 119.0, 121.0]}}}
    return {**s, **kw}


@pytest.mark.parametrize("imagenet_limit", [0, 1000])
def test_all_verdicts_and_summary(papers, imagenet_limit):
    vim_paper, dyvm_paper = papers
    hist = [{"epoch": e, "acc": a} for e, a in ((1, 40.0), (2, 50.0), (3, 50.0), (4, 49.0))]
    scale = ch.scale_text(vim_epochs=4.0, dyvm_epochs=0.5, device="cpu")
    assert scale.startswith("tiny Vim (65 tokens, d 64, depth 8) on CIFAR-10 JPEGs: dense 4 epochs, DyVM 0.5")
    kw = dict(imagenet_limit=imagenet_limit, block_keep_target=0.8, tp_batch=32, device="cpu", small_scale=scale)
    none = ch.all_verdicts(vim_paper, dyvm_paper, {}, {}, _tiny_result(), hist, hist, **kw)
    assert (none.kind == "claim").sum() == 3
    cell = none[(none.row == "DyVM-Vim-S") & (none.column == "FLOPs reduction (%)")].iloc[0]
    imagenet = {"Vim-S": {"acc1": 80.5, "acc5": 95.2, "n": 50000},
                "DyVM-Vim-S": {"acc1": 79.5, "acc5": 94.0, "n": 50000, "FLOPs (G)": 3.3, "block_keep_ratio": 0.88}}
    got = ch.all_verdicts(vim_paper, dyvm_paper, {}, imagenet, _tiny_result(), hist, hist, **kw)
    assert len(got) == len(none)
    top1 = got[(got.row == "Vim-S") & (got.column == "Top-1 (%)")]
    assert (top1.verdict != "not run here").all() if not imagenet_limit else (top1.verdict == "not run here").all()
    flops_cell = got[(got.row == "DyVM-Vim-S") & (got.column == "FLOPs reduction (%)")].iloc[0]
    if imagenet_limit:
        assert flops_cell.reproduced == cell.reproduced
    else:
        assert flops_cell.reproduced != cell.reproduced
    texts = ch.summary_texts(_headline(dyvm_paper), scale)
    assert set(texts) == {"paper_claim", "ran_here", "not_reproduced"} and scale in texts["ran_here"]
