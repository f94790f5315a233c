"""DyVM fine-tuning at small scale: the chapter's trained tiny Vim, pruned and fine-tuned with DyVM's loss.

Fine-tuning starts from the trained dense Vim (:func:`compendium.vision_mamba.train.fit_vim`), which also serves as
the frozen teacher, with DyVM's loss (lambda_tok = lambda_blk = 10, distillation weight 0.5, beta = 0.8; released
scripts of NUS-HPC-AI-Lab/DyVM @ 441121c2) and the shared training loop and recipe of
:mod:`compendium.vision_mamba.train`. The fine-tuned weights are cached beside the dense model's, keyed by
:func:`~compendium.vision_mamba.train.config_key` ("dyvm", the teacher's key, the DyVM, training and loss configs).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Optional

import torch

from ..train import (TrainConfig, TrainResult, _train_loop, config_key, evaluate, load_weights, save_weights,
                     seed_everything, subset_indices, weights_dir)
from .model import DyVM, DyVMConfig, dyvm_loss, teacher_outputs

__all__ = ["DyVMLossConfig", "fit_dyvm"]


@dataclass(frozen=True)
class DyVMLossConfig:
    """Weights of DyVM's loss, as in the released scripts."""

    token_weight: float = 10.0
    block_weight: float = 10.0
    distill_weight: float = 0.5
    block_keep_target: float = 0.8  # beta (0.8 for Vim-T/S, 0.7 for Vim-B)


def fit_dyvm(teacher: TrainResult, dyvm_cfg: DyVMConfig, cfg: TrainConfig, data: dict,
             loss_cfg: DyVMLossConfig = DyVMLossConfig(), cache: bool = True, force: bool = False,
             progress: bool = True, eval_subset: Optional[int] = 2000,
             device: str = "cpu") -> TrainResult:
    """DyVM fine-tuning from a trained Vim (also the frozen teacher), as in the DyVM scripts."""
    key = config_key("dyvm", teacher.key, dyvm_cfg, replace(cfg, num_threads=1), loss_cfg)
    path = weights_dir() / f"dyvm-{key}.pt"
    if cache and not force and (saved := load_weights(path, lambda: DyVM(dyvm_cfg), device)):
        model, blob = saved
        return TrainResult(model, blob["history"], key, path, blob["seconds"], True)
    torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    t_model = teacher.model.to(device).eval()
    for p in t_model.parameters():
        p.requires_grad_(False)
    student = DyVM.from_vim(t_model, dyvm_cfg)
    sub = subset_indices(len(data["x_test"]), eval_subset)
    xe, ye = data["x_test"][sub], data["y_test"][sub]

    def step_fn(x, y):
        out = student(x)                       # training mode: rearranged + masked, Gumbel
        t_logits, t_tokens = teacher_outputs(t_model, x)
        loss, parts = dyvm_loss(out, y, t_logits, t_tokens, dyvm_cfg.keep_ratio,
                                loss_cfg.block_keep_target, loss_cfg.token_weight,
                                loss_cfg.block_weight, loss_cfg.distill_weight,
                                label_smoothing=cfg.label_smoothing)
        parts["train_block_keep_ratio"] = out.block_keep_ratio
        return loss, parts

    t0 = time.time()
    history = _train_loop(student, data, cfg, step_fn, "DyVM", progress,
                          lambda: evaluate(student, xe, ye), torch.device(device))
    seconds = time.time() - t0
    student.eval()
    for p in t_model.parameters():
        p.requires_grad_(True)
    if cache:
        save_weights(path, student, history=history, seconds=seconds, device=str(device),
                     dyvm_cfg=asdict(dyvm_cfg), train_cfg=asdict(cfg))
    return TrainResult(student, history, key, path, seconds, False)
