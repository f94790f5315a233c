"""DyVM: the rearranged + masked training path equals the physically pruned inference path
(naive in-place masking does not), the pieces (predictor, Gumbel gates, rearrangement), the
parameter counts (7.37 / 26.59 / 100.63 M) and the loss."""
import math

import pytest
import torch

from compendium.vision_mamba.dyvm.model import (DynamicBiMamba, DyVM, DyVMConfig, dyvm_loss, gumbel_sigmoid,
                                          rearrange_kept_first, teacher_outputs)
from compendium.vision_mamba.vim import VIM_CONFIGS, Vim, VimConfig, count_parameters

VC = VimConfig(img_size=32, patch_size=4, stride=4, embed_dim=32, depth=6, num_classes=10)


def random_dyvm(seed=0, random_gates=True, **kw):
    torch.manual_seed(seed)
    m = DyVM(DyVMConfig(vim=VC, pruning_loc=(2, 3, 4), keep_ratio=0.7, **kw)).eval()
    with torch.no_grad():
        for p in m.score_predictors.parameters():       # spread the scores: no near-ties in top-k
            if p.ndim == 2:
                p.normal_(0, 1.0 / p.shape[1] ** 0.5 * 3)
        if random_gates:                                 # some scan directions off
            for mod in m.modules():
                if isinstance(mod, DynamicBiMamba):
                    mod.block_head.weight.normal_(0, 0.5)
                    mod.block_head.bias.zero_()
    return m


@pytest.mark.parametrize("name, expected", [("tiny", 7.37), ("small", 26.59), ("base", 100.63)])
def test_parameter_counts(name, expected):
    m = DyVM(DyVMConfig(vim=VIM_CONFIGS[name]), device="meta")
    assert round(count_parameters(m) / 1e6, 2) == expected
    keys = set(m.state_dict())
    assert {"score_predictors.2.out_conv.4.weight", "layers.23.mixer.block_head.bias"} <= keys


@pytest.mark.parametrize("seed", [0, 1])
def test_rearranged_masked_equals_pruned(seed):
    m = random_dyvm(seed)
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        pruned = m(x, mode="pruned")
        masked = m(x, mode="masked", stochastic=False)
        naive = m(x, mode="naive", stochastic=False)
    k = m.dcfg.keep_counts[-1]
    assert torch.equal(pruned.current_pos, masked.current_pos[:, :k])     # same kept tokens, in order
    assert torch.equal(pruned.gates, masked.gates) and 0.2 < pruned.block_keep_ratio < 0.9
    assert (pruned.logits - masked.logits).abs().max() < 1e-5
    assert (pruned.logits - naive.logits).abs().max() > 1e-2


def test_no_pruning_all_gates_on_equals_vim():
    torch.manual_seed(0)
    vim = Vim(VC).eval()
    dy = DyVM.from_vim(vim, DyVMConfig(vim=VC, pruning_loc=(2, 4), keep_ratio=1.0)).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        out = dy(x)
    assert out.block_keep_ratio == 1.0
    torch.testing.assert_close(out.logits, vim(x), rtol=1e-5, atol=1e-5)


def test_rearrange_keeps_original_order():
    keep = torch.tensor([[0, 1, 1, 0, 1], [1, 0, 0, 0, 1]], dtype=torch.float32)
    pos = torch.arange(5).expand(2, -1)
    k, (p,), n = rearrange_kept_first(keep, pos)
    assert p.tolist() == [[1, 2, 4, 0, 3], [0, 4, 1, 2, 3]] and n.tolist() == [3, 2]
    assert k.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]]


def test_gumbel_sigmoid():
    logits = torch.tensor([[5.0, -5.0], [0.3, -0.3]], requires_grad=True)
    hard = gumbel_sigmoid(logits, stochastic=False)
    assert hard.tolist() == [[1.0, 0.0], [1.0, 0.0]]
    torch.manual_seed(0)
    y = gumbel_sigmoid(logits.expand(2000, 2, 2), tau=2.0)
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    assert 0.4 < y[:, 1, 0].mean() < 0.7           # sigma(0.3) with Gumbel noise: stochastic
    y.sum().backward()                              # straight-through gradient
    assert logits.grad.abs().sum() > 0
    m = DynamicBiMamba(16, d_state=4)                # bias 5: both directions start on
    assert torch.sigmoid(m.block_head.bias).min() > 0.99


def test_training_forward_and_loss():
    m = random_dyvm(0, random_gates=False).train()
    teacher = Vim(VC).eval()
    x = torch.randn(8, 3, 32, 32)
    out = m(x)
    assert len(out.decisions) == 3 and out.tokens.shape == (8, 64, 32)
    for earlier, later in zip(out.decisions, out.decisions[1:]):     # monotone pruning
        assert (later.sum(1) <= earlier.sum(1)).all()
    n_keep = out.token_policy[..., 0].sum(1)
    assert torch.equal(n_keep, out.decisions[-1].sum(1))
    loss, parts = dyvm_loss(out, torch.randint(0, 10, (8,)), *teacher_outputs(teacher, x), keep_ratio=0.7)
    loss.backward()
    assert torch.isfinite(loss) and set(parts) == {"cls", "token_ratio", "block_ratio", "kl", "token_distill"}
    assert m.score_predictors[0].in_conv[1].weight.grad.abs().sum() > 0
    assert m.layers[0].mixer.block_head.weight.grad.abs().sum() > 0


def test_pruned_mode_rejects_stochastic():
    with pytest.raises(ValueError):
        random_dyvm(0)(torch.randn(1, 3, 32, 32), mode="pruned", stochastic=True)


def test_logits_recording_gates_measures_the_keep_ratio():
    from compendium.vision_mamba.dyvm.model import LogitsRecordingGates

    m = random_dyvm(0)
    wrapped = LogitsRecordingGates(m)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = wrapped(x)
        out = m(x)
    assert torch.equal(logits, out.logits)
    assert wrapped.block_keep_ratio == pytest.approx(out.block_keep_ratio, abs=1e-6)
    assert math.isnan(LogitsRecordingGates(m).block_keep_ratio)
