"""FLOPs: the papers' analytic counts exactly, and a hook-based count that agrees with them.

Published Vim FLOPs 1.45 / 5.08 / 18.87 G (R-MeeTo Tab. 2 and DyVM, via
../shared/research/vision_mamba.md section 5); DyVM's -35.2 % on Vim-S (abstract)."""
import pytest
import torch

from compendium.vision_mamba.dyvm.model import DyVM, DyVMConfig
from compendium.vision_mamba.flops import (block_flops, count_flops, dyvm_flops, dyvm_token_schedule,
                                           predictor_flops, vim_flops)
from compendium.vision_mamba.vim import VIM_CONFIGS, Vim, VimConfig

EXACT = {"tiny": (1_448_965_632, 1_823_079_936, 1.45),
         "small": (5_076_593_664, 5_911_968_768, 5.08),
         "base": (18_867_836_928, 20_887_173_120, 18.87)}


@pytest.mark.parametrize("name", ["tiny", "small", "base"])
def test_vim_flops_exact(name):
    one, both, published = EXACT[name]
    cfg = VIM_CONFIGS[name]
    assert vim_flops(cfg) == one and round(one / 1e9, 2) == published
    assert vim_flops(cfg, both_directions=True) == both


@pytest.mark.parametrize("name", ["tiny", "small", "base"])
def test_hook_count_agrees_with_formula(name):
    cfg = VIM_CONFIGS[name]
    model, x = Vim(cfg, device="meta"), torch.empty(1, 3, 224, 224, device="meta")
    assert count_flops(model, x, directions="forward")["total"] == vim_flops(cfg)
    assert count_flops(model, x)["total"] == vim_flops(cfg, both_directions=True)


def test_block_terms_vim_s():
    t = block_flops(197, 384)     # research note 2.6: in_proj 116.2 M, out_proj 58.1 M, scan 22.09 M
    assert round(t["in_proj"] / 1e6, 1) == 116.2 and round(t["out_proj"] / 1e6, 1) == 58.1
    assert round(t["scan"] / 1e6, 2) == 22.09 and round(t["x_proj"] / 1e6, 2) == 8.47
    assert round(t["dt_proj"] / 1e6, 2) == 3.63 and round(t["conv1d"] / 1e6, 2) == 0.61


def test_dyvm_schedules_and_flops():
    assert dyvm_token_schedule(196, 0.7) == [137, 96, 67]
    assert dyvm_token_schedule(196, 0.9) == [176, 158, 142]
    s = VIM_CONFIGS["small"]
    vim_s = vim_flops(s)
    assert round(dyvm_flops(s, 0.7, 1.0) / 1e9, 3) == 3.345
    assert round(dyvm_flops(s, 0.7, 0.9) / 1e9, 3) == 3.292
    assert round(dyvm_flops(s, 0.7, 0.8) / 1e9, 3) == 3.239
    # the published -35.2 % for Vim-S needs a measured block ratio in (0.890, 0.8996], not beta = 0.8
    red = lambda b: round(100 * (1 - dyvm_flops(s, 0.7, b) / vim_s), 1)
    assert [red(b) for b in (0.8905, 0.895, 0.8995)] == [35.2] * 3
    assert (red(0.889), red(0.9), red(0.8)) == (35.3, 35.1, 36.2)
    assert [round(dyvm_flops(VIM_CONFIGS["base"], 0.7, b) / 1e9, 2) for b in (1.0, 0.8)] == [12.43, 12.17]
    assert [round(dyvm_flops(VIM_CONFIGS["tiny"], 0.9, b) / 1e9, 3) for b in (1.0, 0.8)] == [1.279, 1.215]


def test_dyvm_hook_count_agrees_with_formula():
    torch.manual_seed(0)
    vc = VimConfig(img_size=32, patch_size=4, stride=4, embed_dim=32, depth=6, num_classes=10)
    cfg = DyVMConfig(vim=vc, pruning_loc=(2, 3, 4), keep_ratio=0.7)   # block heads start "on"
    model = DyVM(cfg).eval()
    counted = count_flops(model, torch.randn(2, 3, 32, 32), directions="forward", exclude=["block_head"])
    assert counted["total"] == dyvm_flops(vc, 0.7, 1.0, (2, 3, 4))
    assert counted["score_predictors.1.in_conv.1"] == 44 * 32 * 32     # 44 tokens enter stage 2
    assert predictor_flops(44, 32) == sum(v for k, v in counted.items() if k.startswith("score_predictors.1"))
