"""R-MeeTo: merging on a handful of tokens a reader can check by hand, the merged Vim, FLOPs.

The six-token example (class token in the middle, at index 3 of 7):

    index:    0    1    2    3    4    5    6
    token:    p0   p1   p2  cls   p3   p4   p5

Set A (even positions once the class token is removed) = p0, p2, p4; set B = p1, p3, p5.
The metric vectors are unit vectors at the angles below, so every cosine is cos(angle gap):

    p0 0°, p1 10°, p2 90°, p3 250°, p4 190°, p5 120°

    best B for p0: p1 (gap 10°,  cos 0.985)
    best B for p2: p5 (gap 30°,  cos 0.866)
    best B for p4: p3 (gap 60°,  cos 0.500)

so r = 1 merges p0 into p1, r = 2 also p2 into p5, and p4 is never merged first.
"""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from compendium import published
from compendium.vision_mamba.flops import count_flops
from compendium.vision_mamba.rmeeto.model import (
    PAPER_MERGE, MergeConfig, RMeeToVim, apply_merge, bipartite_soft_matching, distill_loss,
    matching_flops, merge_points, merge_wavg, rmeeto_flops, token_schedule)
from compendium.vision_mamba.vim import VIM_CONFIGS, Vim, VimConfig

torch.set_num_threads(1)

ANGLES = {"p0": 0, "p1": 10, "p2": 90, "p3": 250, "p4": 190, "p5": 120}
ORDER = ["p0", "p1", "p2", "cls", "p3", "p4", "p5"]
CLS = 3


def _metric():
    rows = []
    for name in ORDER:
        if name == "cls":   # the class token's metric must not matter: make it equal to p0
            rows.append([1.0, 0.0])
        else:
            a = math.radians(ANGLES[name])
            rows.append([math.cos(a), math.sin(a)])
    return torch.tensor([rows])


def _values():
    # feature of p_k = 10 (k + 1), class token 99: easy to follow through a merge
    v = [99.0 if n == "cls" else 10.0 * (int(n[1]) + 1) for n in ORDER]
    return torch.tensor(v).view(1, 7, 1)


def _names(x):
    lookup = {float(v): n for v, n in zip(_values().flatten().tolist(), ORDER)}
    return [lookup.get(float(v), float(v)) for v in x.flatten().tolist()]


# ----------------------------------------------------------------------------------------
# Hand-checkable matching and merging
# ----------------------------------------------------------------------------------------
def test_matching_by_hand():
    plan = bipartite_soft_matching(_metric(), r=1, cls_pos=CLS)
    # A = (p0, p2, p4) -> indices 0, 1, 2; B = (p1, p3, p5) -> 0, 1, 2
    assert plan.src_idx.tolist() == [[0]]          # p0 goes ...
    assert plan.dst_idx.tolist() == [[0]]          # ... into p1
    assert plan.unm_idx.tolist() == [[1, 2]]       # p2 (0.866) then p4 (0.5): by score
    plan2 = bipartite_soft_matching(_metric(), r=2, cls_pos=CLS)
    assert plan2.src_idx.tolist() == [[0, 1]]      # p0, p2
    assert plan2.dst_idx.tolist() == [[0, 2]]      # into p1, p5
    assert plan2.unm_idx.tolist() == [[2]]         # p4 stays


def test_ordered_merge_r1_by_hand():
    plan = bipartite_soft_matching(_metric(), r=1, cls_pos=CLS)
    x, size, pos = merge_wavg(plan, _values())
    # survivors in original order: p1' p2 p3 p4 p5; class token at int(3 * 6 // 7) = 2
    assert pos == 2
    assert x.flatten().tolist() == [15.0, 30.0, 99.0, 40.0, 50.0, 60.0]   # p1' = (10 + 20) / 2
    assert size.flatten().tolist() == [2.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_ordered_merge_r2_by_hand():
    plan = bipartite_soft_matching(_metric(), r=2, cls_pos=CLS)
    x, size, pos = merge_wavg(plan, _values())
    # survivors p1' p3 p4 p5'; class token at int(3 * 5 // 7) = 2 (proportional, not "after p2")
    assert pos == 2
    assert x.flatten().tolist() == [15.0, 40.0, 99.0, 50.0, 45.0]  # p5' = (30 + 60) / 2
    assert size.flatten().tolist() == [2.0, 1.0, 1.0, 1.0, 2.0]


def test_size_weighted_average_by_hand():
    plan = bipartite_soft_matching(_metric(), r=1, cls_pos=CLS)
    size = torch.tensor([3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]).view(1, 7, 1)   # p0 stands for 3
    x, new_size, _ = merge_wavg(plan, _values(), size)
    assert x[0, 0, 0].item() == pytest.approx((3 * 10.0 + 1 * 20.0) / 4)       # 12.5, not 15
    assert new_size[0, 0, 0].item() == 4.0
    assert new_size.sum().item() == size.sum().item()                          # mass preserved


def test_unordered_merge_by_hand():
    plan = bipartite_soft_matching(_metric(), r=1, cls_pos=CLS)
    x, size, pos = merge_wavg(plan, _values(), ordered=False)
    # [unmerged A by score: p2, p4] with cls at int(3 * (3 - 1) // 3) = 2, then B: p1', p3, p5
    assert pos == 2
    assert x.flatten().tolist() == [30.0, 50.0, 99.0, 15.0, 40.0, 60.0]


def test_pruning_drops_instead_of_merging():
    plan = bipartite_soft_matching(_metric(), r=1, cls_pos=CLS)
    x, size, pos = merge_wavg(plan, _values(), prune=True)
    assert _names(x) == ["p1", "p2", "cls", "p3", "p4", "p5"]     # p1 keeps its own value
    assert size.flatten().tolist() == [1.0] * 6


def test_class_token_excluded_from_matching():
    # whatever the class token's metric, the plan is the same and the token survives as is
    reference = bipartite_soft_matching(_metric(), r=3, cls_pos=CLS)
    for cls_vector in ([0.0, 1.0], [1.0, 0.0], [-5.0, 2.0]):
        metric = _metric().clone()
        metric[0, CLS] = torch.tensor(cls_vector)
        plan = bipartite_soft_matching(metric, r=3, cls_pos=CLS)
        for name in ("src_idx", "dst_idx", "unm_idx"):
            assert torch.equal(getattr(plan, name), getattr(reference, name))
        x, _, pos = merge_wavg(plan, _values())
        assert x[0, pos, 0].item() == 99.0 and x.shape[1] == 4


def test_r_is_capped_and_zero_is_identity():
    assert bipartite_soft_matching(_metric(), r=0, cls_pos=CLS) is None
    plan = bipartite_soft_matching(_metric(), r=10, cls_pos=CLS)
    assert plan.r == 3                               # floor((7 - 1) / 2)
    x, size, pos = merge_wavg(None, _values())
    assert torch.equal(x, _values()) and pos is None


def test_residual_merged_with_same_plan_and_weights():
    plan = bipartite_soft_matching(_metric(), r=2, cls_pos=CLS)
    size = torch.tensor([3.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0]).view(1, 7, 1)
    residual = torch.arange(7, dtype=torch.float32).view(1, 7, 1) ** 2   # 0 1 4 9 16 25 36
    r_merged, _, _ = merge_wavg(plan, residual, size)
    # p0 (0, size 3) into p1 (1, size 1): 1/4; p2 (4, size 2) into p5 (36, size 1): 44/3
    assert r_merged.flatten().tolist() == pytest.approx([0.25, 16.0, 9.0, 25.0, 44.0 / 3])


def test_order_preserved_on_random_tokens():
    g = torch.Generator().manual_seed(0)
    for t, p, r in [(15, 7, 4), (16, 8, 5), (65, 32, 11), (197, 98, 5)]:
        metric = torch.randn(3, t, 8, generator=g)
        plan = bipartite_soft_matching(metric, r=r, cls_pos=p)
        ids = torch.arange(t).expand(3, t).unsqueeze(-1)
        kept, new_p = apply_merge(ids, plan, ordered=True, prune=True)
        kept = kept[..., 0]
        assert kept.shape[1] == t - r and (kept[:, new_p] == p).all()
        body = torch.cat([kept[:, :new_p], kept[:, new_p + 1:]], 1)
        assert (body.diff(dim=1) > 0).all()
        unordered, _ = apply_merge(ids, plan, ordered=False, prune=True)
        assert not (unordered[..., 0].diff(dim=1) > 0).all()


# ----------------------------------------------------------------------------------------
# Merged Vim
# ----------------------------------------------------------------------------------------
def _tiny_vim(depth=6, seed=0):
    torch.manual_seed(seed)
    cfg = VimConfig(img_size=32, patch_size=4, stride=4, embed_dim=16, depth=depth,
                    d_state=4, num_classes=10)
    return Vim(cfg).eval()


def test_no_merge_equals_dense_vim():
    vim = _tiny_vim()
    x = torch.randn(2, 3, 32, 32)
    merged = RMeeToVim.from_vim(vim, MergeConfig(num_prune=0)).eval()
    with torch.no_grad():
        assert torch.equal(merged(x), vim(x))
    assert set(merged.state_dict()) == set(vim.state_dict())


def test_merged_forward_merges_residual_too():
    # depth 3, one merge point (block 2): recompute by hand from the dense blocks
    vim = _tiny_vim(depth=3)
    merge = MergeConfig(num_prune=7)
    model = RMeeToVim.from_vim(vim, merge).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        h, res = vim.embed(x), None
        for layer in vim.layers[:2]:
            h, res = layer(h, res)
        plan = bipartite_soft_matching(h, 7, vim.cfg.cls_position)
        h2, size, pos = merge_wavg(plan, h)
        res2, _, _ = merge_wavg(plan, res)
        h2, res2 = vim.layers[2](h2, res2)
        expected = vim.head(vim.final_norm(h2, res2)[:, pos])
        # leaving the residual unmerged is a different function
        res_wrong = apply_merge(res, plan, prune=True)[0]
        h3, res3 = vim.layers[2](merge_wavg(plan, h)[0], res_wrong)
        wrong = vim.head(vim.final_norm(h3, res3)[:, pos])
        out, trace = model.forward_trace(x)
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.allclose(out, wrong, atol=1e-3)
    assert trace.tokens == [65, 65, 58] and trace.cls_positions == [32, 32, int(32 * 58 // 65)]


def test_trace_order_sizes_and_sources():
    vim = _tiny_vim(depth=8)
    x = torch.randn(2, 3, 32, 32)
    for ordered in (True, False):
        model = RMeeToVim.from_vim(vim, MergeConfig(num_prune=6, ordered=ordered)).eval()
        with torch.no_grad():
            _, tr = model.forward_trace(x, track_sources=True)
        assert tr.tokens == [r["tokens"] for r in token_schedule(vim.cfg, model.merge)]
        assert tr.tokens[-1] == 65 - 3 * 6
        assert (tr.sizes.sum(dim=(1, 2)) == 65).all()                 # every token counted once
        assert (tr.sources.sum(dim=1) == 1).all()                      # in exactly one group
        assert torch.equal(tr.sources.sum(dim=2, keepdim=True), tr.sizes)
        p = tr.cls_positions[-1]
        assert (tr.ids[:, p] == 32).all()
        body = torch.cat([tr.ids[:, :p], tr.ids[:, p + 1:]], 1)
        assert (body.diff(dim=1) > 0).all() == ordered


def test_merged_vim_trains():
    vim = _tiny_vim(depth=4)
    model = RMeeToVim.from_vim(vim, MergeConfig(num_prune=8)).train()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        t_logits = vim(x)
    loss, parts = distill_loss(model(x), t_logits, y)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert parts["kl"] >= 0


def test_distill_loss_matches_definition():
    s = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    t = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    y = torch.tensor([0, 1])
    loss, parts = distill_loss(s, t, y)
    ps, pt = s.softmax(-1), t.softmax(-1)
    kl = (pt * (pt.log() - ps.log())).sum(-1).mean()          # KL(teacher || student)
    ce = -(ps.log()[torch.arange(2), y]).mean()
    assert loss.item() == pytest.approx(ce.item() + 0.5 * kl.item(), rel=1e-6)
    assert distill_loss(t, t, y)[1]["kl"] == pytest.approx(0.0, abs=1e-7)


# ----------------------------------------------------------------------------------------
# Schedules and FLOPs
# ----------------------------------------------------------------------------------------
def test_merge_points_and_schedules():
    assert merge_points(24, 2) == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]
    assert merge_points(24, 2, merge_odd=True) == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23]
    small = [r["tokens"] for r in token_schedule(VIM_CONFIGS["small"], PAPER_MERGE["small"])]
    assert small[:5] == [197, 197, 186, 186, 175] and small[-2:] == [76, 76]
    tiny = token_schedule(VIM_CONFIGS["tiny"], PAPER_MERGE["tiny"])
    assert tiny[-1]["tokens"] == 142
    # the official code's ``compare=11``: the last merge point merges 147 -> 76 for Vim-Ti
    quirk = token_schedule(VIM_CONFIGS["tiny"], replace(PAPER_MERGE["tiny"], compare=11))
    assert (quirk[22]["tokens_in"], quirk[22]["r"], quirk[22]["tokens"]) == (147, 71, 76)
    assert token_schedule(VIM_CONFIGS["small"], replace(PAPER_MERGE["small"], compare=11)) == \
        token_schedule(VIM_CONFIGS["small"], PAPER_MERGE["small"])


def test_rmeeto_flops_exact():
    # calculate_flop_inference of NUS-HPC-AI-Lab/R-MeeTo, recomputed (research note §5)
    expected = {"tiny": 1_284_617_856, "small": 3_584_557_824, "base": 13_207_438_848}
    for name, value in expected.items():
        assert rmeeto_flops(VIM_CONFIGS[name], PAPER_MERGE[name]) == value
    # with r = 0 the same function still adds 11 matching costs: 1.49 / 5.16 / 19.04 G
    zero = [rmeeto_flops(VIM_CONFIGS[n], MergeConfig(num_prune=0)) / 1e9 for n in ("tiny", "small", "base")]
    assert [round(v, 2) for v in zero] == [1.49, 5.16, 19.04]
    # the Vim-Ti schedule the code executes with compare=11 (76 tokens in blocks 22-23)
    ti = replace(PAPER_MERGE["tiny"], compare=11)
    assert rmeeto_flops(VIM_CONFIGS["tiny"], ti, as_executed=True) == 1_244_992_512
    assert rmeeto_flops(VIM_CONFIGS["tiny"], ti, as_executed=False) == expected["tiny"]
    assert matching_flops(197, 192, 5) == 6 * 197 * 192 + 2 * 192 * 98.5 ** 2 + 5 * 192


def test_rmeeto_flops_match_published_table():
    table = published.load("rmeeto").table("table2").frame()
    for name, col in [("tiny", "Vim-Ti"), ("small", "Vim-S"), ("base", "Vim-B")]:
        cell = table[(table.row == "R-MeeTo") & (table.column == f"FLOPs {col.split('-')[1]} (G)")]
        assert len(cell) == 1
        ours = rmeeto_flops(VIM_CONFIGS[name], PAPER_MERGE[name]) / 1e9
        assert round(ours, 2) == cell.value.iloc[0]


def test_hook_count_agrees_with_analytic_schedule():
    # Vim-Ti geometry (224 px, 24 blocks, 197 tokens) with a narrow width to stay fast
    cfg = VimConfig(embed_dim=16, num_classes=10)
    torch.manual_seed(0)
    merge = replace(PAPER_MERGE["tiny"], compare=11)
    model = RMeeToVim(cfg, merge).eval()
    hooks = count_flops(model, torch.randn(1, 3, 224, 224), directions="forward")["total"]
    total, terms = rmeeto_flops(cfg, merge, as_executed=True, breakdown=True)
    # hooks see what runs: no matching cost, and a patch embedding on 196 (not 197) tokens
    assert hooks == total - terms["matching"] - cfg.embed_dim * 3 * 16 * 16


def test_throughput_side_by_side():
    from compendium.vision_mamba.rmeeto.model import throughput
    vim = _tiny_vim(depth=2)
    merged = RMeeToVim.from_vim(vim, MergeConfig(num_prune=30))
    res = throughput({"dense": vim, "merged": merged}, torch.randn(2, 3, 32, 32), warmup=1, iters=1, repeats=2)
    assert set(res) == {"dense", "merged"}
    assert all(len(r["rounds"]) == 2 and r["images_per_s"] > 0 for r in res.values())
