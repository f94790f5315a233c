"""Vision Mamba (Vim, arXiv 2401.09417) and Dynamic Vision Mamba (DyVM, arXiv 2504.04787).

Modules: ``selective_scan`` (reference, fast CPU scan, dispatcher), ``vim`` (the model,
official state-dict names), ``flops`` (analytic and hook-based FLOPs), ``dyvm`` (token
pruning and block selection), ``cifar`` (CIFAR-10 from the JPEG zip), ``train`` (small
training loops with a checkpoint cache). Used by the DyVM chapter of the book.
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
