"""Optional dependencies of the Vision Mamba code, detected once.

The CUDA kernels of the official code (``mamba-ssm`` and ``causal-conv1d``) are an
optional extra (``pip install compendium[gpu]``). On a CPU-only machine
``mamba-ssm`` 2.3.2.post1 cannot even be imported (it imports its CUDA extension
unconditionally), so every check here catches ``Exception``, not only
``ImportError``.
"""
from __future__ import annotations

import importlib.util

import torch

__all__ = ["HAS_CUDA", "HAS_MAMBA_SSM", "HAS_CAUSAL_CONV1D", "mamba_ssm_selective_scan_fn",
           "GPU_INSTALL_HINT"]

GPU_INSTALL_HINT = (
    "install the CUDA kernels on a machine with CUDA torch and nvcc: "
    "pip install --no-build-isolation mamba-ssm==2.3.2.post1 causal-conv1d==1.7.0"
)

HAS_CUDA: bool = torch.cuda.is_available()


def _try_import(module: str, name: str):
    if importlib.util.find_spec(module.split(".")[0]) is None:
        return None
    try:
        mod = importlib.import_module(module)
        return getattr(mod, name)
    except Exception:  # noqa: BLE001 - a broken CUDA build raises anything
        return None


_MAMBA_FN = _try_import("mamba_ssm.ops.selective_scan_interface", "selective_scan_fn")
HAS_MAMBA_SSM: bool = _MAMBA_FN is not None
HAS_CAUSAL_CONV1D: bool = _try_import("causal_conv1d", "causal_conv1d_fn") is not None


def mamba_ssm_selective_scan_fn():
    """The CUDA ``selective_scan_fn`` of mamba-ssm, or None when it is not importable."""
    return _MAMBA_FN
