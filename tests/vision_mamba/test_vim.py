"""Vim: official parameter counts and state-dict names, the bimamba-v2 mixer, Add->Norm->Mixer
with the fp32 residual, the middle class token, initialisation, checkpoint loading."""
import math

import pytest
import torch
import torch.nn.functional as F

from compendium.vision_mamba.selective_scan import scan_backend, selective_scan_ref
from compendium.vision_mamba.vim import (CHECKPOINTS, BiMambaV2, CausalConv1d, CheckpointNotFoundError,
                                         Vim, VimConfig, count_parameters, load_checkpoint, vim_base,
                                         vim_small, vim_tiny)

TINY = VimConfig(img_size=32, patch_size=8, stride=8, embed_dim=32, depth=3, num_classes=10)


@pytest.mark.parametrize("factory, expected, millions", [
    (vim_tiny, 7_148_008, 7.15), (vim_small, 25_796_584, 25.80), (vim_base, 97_598_440, 97.60)])
def test_parameter_counts(factory, expected, millions):
    n = count_parameters(factory(device="meta"))
    assert n == expected and round(n / 1e6, 2) == millions


def test_official_state_dict_names():
    keys = set(vim_tiny(device="meta").state_dict())
    top = {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
           "head.weight", "head.bias", "norm_f.weight"}
    block = {"norm.weight", "mixer.in_proj.weight", "mixer.out_proj.weight", "mixer.A_log", "mixer.D",
             "mixer.A_b_log", "mixer.D_b"}
    for sfx in ("", "_b"):
        block |= {f"mixer.conv1d{sfx}.weight", f"mixer.conv1d{sfx}.bias", f"mixer.x_proj{sfx}.weight",
                  f"mixer.dt_proj{sfx}.weight", f"mixer.dt_proj{sfx}.bias"}
    expected = top | {f"layers.{i}.{k}" for i in range(24) for k in block}
    assert keys == expected and len(keys) == 415
    sd = vim_small(device="meta").state_dict()
    assert sd["pos_embed"].shape == (1, 197, 384)
    assert sd["layers.0.mixer.x_proj.weight"].shape == (24 + 32, 768)
    assert sd["layers.0.mixer.conv1d_b.weight"].shape == (768, 1, 4)


def test_causal_conv_equals_padded_conv1d():
    conv = CausalConv1d(6, 4)
    x = torch.randn(2, 9, 6)
    ref = F.conv1d(x.mT, conv.weight, conv.bias, padding=3, groups=6)[..., :9].mT
    torch.testing.assert_close(conv(x), ref)
    # causal: output t does not depend on inputs after t
    x2 = x.clone()
    x2[:, 5:] += 1.0
    torch.testing.assert_close(conv(x2)[:, :5], conv(x)[:, :5])


def test_bimamba_v2_is_mean_of_forward_and_flipped_backward_scan():
    torch.manual_seed(0)
    mix = BiMambaV2(16, d_state=4).double()
    h = torch.randn(2, 7, 16, dtype=torch.float64)

    def one_dir(x, z, sfx, A_log, D):
        conv = getattr(mix, "conv1d" + sfx)
        u = F.silu(F.conv1d(x.mT, conv.weight, conv.bias, padding=3, groups=32)[..., :7])
        dt, B, C = torch.split(getattr(mix, "x_proj" + sfx)(u.mT), [1, 4, 4], dim=-1)
        delta = getattr(mix, "dt_proj" + sfx).weight @ dt.mT
        return selective_scan_ref(u, delta, -torch.exp(A_log), B.mT, C.mT, D, z.mT,
                                  getattr(mix, "dt_proj" + sfx).bias, delta_softplus=True)

    x, z = mix.in_proj(h).chunk(2, dim=-1)
    y_f = one_dir(x, z, "", mix.A_log, mix.D)
    y_b = one_dir(x.flip(1), z.flip(1), "_b", mix.A_b_log, mix.D_b)
    expected = mix.out_proj(((y_f + y_b.flip(-1)) / 2).mT)
    torch.testing.assert_close(mix(h), expected, rtol=1e-10, atol=1e-10)
    # both directions matter (the official slow path silently drops the backward one)
    with torch.no_grad():
        mix.D_b.add_(1.0)
    assert not torch.allclose(mix(h), expected)


def test_forward_shapes_middle_cls_token_and_backends_agree():
    torch.manual_seed(0)
    m = Vim(TINY).eval()
    x = torch.randn(3, 3, 32, 32)
    emb = m.embed(x)
    assert emb.shape == (3, 17, 32) and TINY.cls_position == 8
    torch.testing.assert_close(emb[:, 8], (m.cls_token[0, 0] + m.pos_embed[0, 8]).expand(3, -1))
    y = m(x)
    assert y.shape == (3, 10)
    with scan_backend(m, "ref"):
        torch.testing.assert_close(m(x), y, rtol=1e-5, atol=1e-5)


def test_residual_stream_stays_fp32_in_bf16_model():
    torch.manual_seed(0)
    m = Vim(TINY).to(torch.bfloat16).eval()
    seen = []
    m.layers[1].register_forward_hook(lambda mod, inp, out: seen.append((out[0].dtype, out[1].dtype)))
    logits = m(torch.randn(2, 3, 32, 32, dtype=torch.bfloat16))
    assert seen == [(torch.bfloat16, torch.float32)] and torch.isfinite(logits.float()).all()


def test_initialisation_follows_official_code():
    torch.manual_seed(0)
    m = Vim(VimConfig(img_size=32, patch_size=8, stride=8, embed_dim=64, depth=4, num_classes=10))
    mix = m.layers[0].mixer
    torch.testing.assert_close(mix.A_log, torch.log(torch.arange(1, 17.0)).repeat(128, 1))
    assert torch.equal(mix.D, torch.ones(128)) and torch.equal(mix.D_b, torch.ones(128))
    dt = F.softplus(mix.dt_proj.bias)
    assert dt.min() >= 1e-4 * 0.999 and dt.max() <= 0.1 * 1.001 and dt.max() > 0.02
    assert mix.dt_proj.weight.abs().max() <= 4 ** -0.5
    # out_proj: kaiming-uniform bound 1/sqrt(fan_in), divided by sqrt(depth)
    assert mix.out_proj.weight.abs().max() <= 1 / math.sqrt(128) / math.sqrt(4) + 1e-7
    assert m.head.bias.abs().sum() == 0 and m.patch_embed.proj.bias.abs().sum() == 0
    assert 0.01 < m.pos_embed.std() < 0.03


def test_training_step_runs():
    torch.manual_seed(0)
    m = Vim(TINY)
    loss = F.cross_entropy(m(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert torch.isfinite(loss) and m.layers[0].mixer.A_b_log.grad.abs().sum() > 0


def test_load_checkpoint_missing_file_names_the_download(tmp_path):
    with pytest.raises(CheckpointNotFoundError) as e:
        load_checkpoint(tmp_path / "nope.pth", variant="small")
    msg = str(e.value)
    assert "hustvl/Vim-small-midclstok" in msg and CHECKPOINTS["small"]["file"] in msg


def test_load_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    m = Vim(TINY).eval()
    torch.save({"model": m.state_dict(), "epoch": 3}, tmp_path / "ck.pth")
    m2 = load_checkpoint(tmp_path / "ck.pth", model=Vim(TINY)).eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(m2(x), m(x), rtol=0, atol=0)
