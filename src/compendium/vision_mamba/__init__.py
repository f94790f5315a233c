"""Vision Mamba (Vim, arXiv 2401.09417) and the two chapters built on it: DyVM (arXiv 2504.04787,
:mod:`~compendium.vision_mamba.dyvm`) and R-MeeTo (arXiv 2412.12496, :mod:`~compendium.vision_mamba.rmeeto`).

Shared core: ``selective_scan`` (reference, fast CPU scan, dispatcher), ``cpu_kernel`` (the compiled CPU
scan), ``vim`` (the model, official state-dict names), ``flops`` (analytic and hook-based FLOPs of Vim and
DyVM), ``bench`` (side-by-side throughput and its paired speed-up, scan timings), ``train`` (the dense tiny
Vim on CIFAR-10, the training loop and the weight cache), ``plateau`` (the dense tiny Vim trained to its
plateau), ``imagenet`` (ImageNet-1K validation for the ``gpu`` profiles), ``preconditions`` (the claims'
preconditions) and ``verdict_tables``. CIFAR-10 itself comes from :mod:`compendium.datasets.cifar`.

Paper packages, each with ``model``, ``train``, ``claims`` and ``chapter``: ``dyvm`` (token pruning and
block selection) and ``rmeeto`` (merged-token re-training). Neither imports the other.
"""
from . import selective_scan  # the module (its function of the same name: selective_scan.selective_scan)
from .selective_scan import (SelectiveScan, available_backends, selective_scan_chunked,
                             selective_scan_ref)
from .vim import (CHECKPOINTS, VIM_CONFIGS, Vim, VimConfig, count_parameters, load_checkpoint,
                  vim_base, vim_small, vim_tiny)
from .flops import count_flops, dyvm_flops, vim_flops

__all__ = [
    "selective_scan", "SelectiveScan", "available_backends", "selective_scan_chunked",
    "selective_scan_ref", "CHECKPOINTS", "VIM_CONFIGS", "Vim", "VimConfig", "count_parameters",
    "load_checkpoint", "vim_base", "vim_small", "vim_tiny", "count_flops", "dyvm_flops", "vim_flops",
]
