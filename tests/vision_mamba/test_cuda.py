"""The Vision Mamba code on CUDA: the chunked scan against the sequential reference (values
and gradients, per-dtype tolerances), the dispatcher's choice and fallback, and the models
(Vim, DyVM, R-MeeTo) giving on the GPU what they give on the CPU.

These run only where CUDA exists (``pytest -m gpu``; CI has no GPU and skips them). The
mamba-ssm kernel's own parity test is in ``test_selective_scan.py``.
"""
import warnings

import pytest
import torch

from compendium.vision_mamba import _optional
from compendium.vision_mamba import selective_scan as ss
from compendium.vision_mamba.bench import compare_throughput, scan_inputs
from compendium.vision_mamba.dyvm.model import DynamicBiMamba, DyVM, DyVMConfig, dyvm_loss, teacher_outputs
from compendium.vision_mamba.rmeeto.model import MergeConfig, RMeeToVim
from compendium.vision_mamba.selective_scan import selective_scan, selective_scan_chunked, selective_scan_ref
from compendium.vision_mamba.vim import Vim, VimConfig

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

VC = VimConfig(img_size=32, patch_size=4, stride=4, embed_dim=32, depth=6, num_classes=10)
# (rtol, atol) of a low-precision scan against the float32 reference on the same inputs
TOL = {torch.float32: (1e-4, 1e-4), torch.bfloat16: (3e-2, 5e-2), torch.float16: (1e-2, 1e-2)}


def cuda_inputs(dtype, grad=False, b=2, e=64, l=197, n=16):
    x = scan_inputs(b, e, l, n, device="cuda")
    for k in ("u", "delta", "B", "C", "z"):     # activations in dtype; A, D, bias stay fp32 as in Vim
        x[k] = x[k].to(dtype)
    if grad:
        for v in x.values():
            v.requires_grad_()
    return x


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_chunked_matches_reference_on_cuda(dtype):
    x = cuda_inputs(dtype)
    y_ref = selective_scan_ref(**{k: v.float() for k, v in x.items()}, delta_softplus=True)
    y = selective_scan_chunked(**x, delta_softplus=True)
    assert y.dtype == dtype and y.is_cuda
    rtol, atol = TOL[dtype]
    torch.testing.assert_close(y.float(), y_ref, rtol=rtol, atol=atol)


def test_chunked_gradients_on_cuda():
    x = cuda_inputs(torch.float32, grad=True, l=64)
    g = torch.randn(2, 64, 64, device="cuda")
    grads = []
    for fn in (selective_scan_ref, selective_scan_chunked):
        y = fn(**x, delta_softplus=True)
        grads.append(torch.autograd.grad(y, list(x.values()), g))
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_cuda_matches_cpu():
    x = scan_inputs(2, 32, 50, 8)
    y_cpu = selective_scan_chunked(**x, delta_softplus=True)
    y_gpu = selective_scan_chunked(**{k: v.cuda() for k, v in x.items()}, delta_softplus=True)
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-5, atol=1e-5)


def test_dispatcher_on_cuda(monkeypatch):
    monkeypatch.setattr(ss, "_warned", set())
    x = cuda_inputs(torch.float32, l=32)
    assert "cpu_kernel" not in ss.available_backends("cuda")
    if _optional.HAS_MAMBA_SSM:
        assert ss._resolve_backend("auto", x["u"]) == "mamba_ssm"
    else:
        with pytest.warns(RuntimeWarning, match="mamba-ssm"):
            y = selective_scan(**x, delta_softplus=True)
        torch.testing.assert_close(y, selective_scan_chunked(**x, delta_softplus=True), rtol=0, atol=0)
    with warnings.catch_warnings(record=True) as caught:   # cpu_kernel asked for on CUDA: falls back
        warnings.simplefilter("always")
        selective_scan(**x, delta_softplus=True, backend="cpu_kernel")
    assert any("not on the CPU" in str(w.message) for w in caught)


def test_vim_on_cuda_equals_cpu():
    torch.manual_seed(0)
    vim = Vim(VC).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        y_cpu = vim(x)
        y_gpu = vim.cuda()(x.cuda())
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-4, atol=1e-4)


def test_vim_trains_on_cuda():
    torch.manual_seed(0)
    vim = Vim(VC).cuda().train()
    opt = torch.optim.AdamW(vim.parameters(), lr=1e-3)
    x, y = torch.randn(16, 3, 32, 32, device="cuda"), torch.randint(0, 10, (16,), device="cuda")
    losses = []
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(vim(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_dyvm_rearranged_masked_equals_pruned_on_cuda():
    torch.manual_seed(0)
    m = DyVM(DyVMConfig(vim=VC, pruning_loc=(2, 3, 4), keep_ratio=0.7)).eval()
    with torch.no_grad():
        for p in m.score_predictors.parameters():
            if p.ndim == 2:
                p.normal_(0, 3 / p.shape[1] ** 0.5)
        for mod in m.modules():
            if isinstance(mod, DynamicBiMamba):
                mod.block_head.weight.normal_(0, 0.5)
                mod.block_head.bias.zero_()
    m = m.cuda()
    x = torch.randn(6, 3, 32, 32, device="cuda")
    with torch.no_grad():
        pruned = m(x, mode="pruned")
        masked = m(x, mode="masked", stochastic=False)
        naive = m(x, mode="naive", stochastic=False)
    k = m.dcfg.keep_counts[-1]
    assert torch.equal(pruned.current_pos, masked.current_pos[:, :k])
    assert (pruned.logits - masked.logits).abs().max() < 1e-5
    assert (pruned.logits - naive.logits).abs().max() > 1e-2


def test_dyvm_loss_backward_on_cuda():
    torch.manual_seed(0)
    m = DyVM(DyVMConfig(vim=VC, pruning_loc=(2, 3, 4), keep_ratio=0.7)).cuda().train()
    teacher = Vim(VC).cuda().eval()
    x = torch.randn(8, 3, 32, 32, device="cuda")
    out = m(x)
    loss, _ = dyvm_loss(out, torch.randint(0, 10, (8,), device="cuda"), *teacher_outputs(teacher, x),
                        keep_ratio=0.7)
    loss.backward()
    assert torch.isfinite(loss) and m.layers[0].mixer.block_head.weight.grad.abs().sum() > 0


def test_rmeeto_merge_on_cuda_equals_cpu():
    torch.manual_seed(0)
    vim = Vim(VC).eval()
    merged = RMeeToVim.from_vim(vim, MergeConfig(num_prune=8)).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        y_cpu = merged(x)
        y_gpu = merged.cuda()(x.cuda())
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-4, atol=1e-4)


def test_throughput_on_cuda_synchronises():
    torch.manual_seed(0)
    vim = Vim(VC).cuda()
    res = compare_throughput({"dense": vim}, torch.randn(8, 3, 32, 32, device="cuda"), warmup=1, iters=2,
                             rounds=2, autocast_dtype=torch.float16)
    assert len(res["dense"]["rounds"]) == 2 and res["dense"]["images_per_s"] > 0


@pytest.mark.skipif(not _optional.HAS_MAMBA_SSM, reason="needs the mamba-ssm extra")
def test_vim_with_kernel_under_autocast_matches_chunked():
    """Under fp16 autocast the Vim mixer hands the scan mixed dtypes (fp32 u, fp16 delta);
    the kernel needs one dtype, which the dispatcher gives it (the autocast dtype)."""
    from compendium.vision_mamba.selective_scan import scan_backend

    torch.manual_seed(0)
    vim = Vim(VC).cuda().eval()
    x = torch.randn(4, 3, 32, 32, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
        y_kernel = vim(x).float()
        with scan_backend(vim, "chunked"):
            y_chunked = vim(x).float()
    torch.testing.assert_close(y_kernel, y_chunked, rtol=2e-2, atol=2e-2)
