"""R-MeeTo re-training at small scale: a merged tiny Vim re-trained with KL to the dense model.

The recipe follows the R-MeeTo code (NUS-HPC-AI-Lab/R-MeeTo @ 535a826c, ``image_task/main.py``,
``utils/losses.py``, ``R_MeeTo/RMeeTo_vim.py``):

* the student is the merged copy of the trained dense model, the teacher the dense model
  itself, frozen;
* loss = CE + 0.5 KL(p_teacher || p_student) on the class logits (no token distillation);
* AdamW on *all* parameters with weight decay 0.05 (hard-coded in ``main.py``; the
  ``--weight-decay`` flag is ignored), no warm-up, fp32;
* cosine schedule per epoch to ``min_lr`` = 1e-6 (timm ``CosineLRScheduler(t_initial=epochs)``,
  stepped with ``step(epoch)`` *after* each epoch, so epochs 0 and 1 both run at the base lr and
  epoch e >= 1 at cos(e - 1));
* stochastic depth 0.1 in the student: ``RMeeTo_Mamba``'s default ``drop_path_rate``, which
  ``main.py`` never overrides;
* the teacher too runs with stochastic depth 0.1: ``VisionMambaTeacher``'s default, and
  ``main.py`` never puts it in evaluation mode (``teacher_drop_path``; 0 gives a deterministic
  teacher);
* two micro-batches per update, as ``engine.train_one_epoch_cls`` runs them
  (``accumulation_steps = 256 // 128``): the loss is halved, ``loss_scaler`` (a GradScaler)
  steps the optimizer after *every* micro-batch, and every second micro-batch the code calls
  ``optimizer.step()`` once more before zeroing the gradients. So each pair of micro-batches
  makes three AdamW updates, with gradients g1/2, (g1+g2)/2 and (g1+g2)/2
  (``optimizer_steps="code"``; ``"plain"``: one update per batch).

Scaled down: CIFAR-10 JPEGs instead of ImageNet, a re-training subset (the paper's Tab. 8 also
re-trains on 1-10 % subsets), random crop + flip and label smoothing instead of DeiT's
RandAugment / mixup / cutmix, and a base lr chosen for the small batch (the paper's
2e-5 x batch x GPUs / 512 gives 2e-5 on 4 GPUs and 1.6e-4 on 32). Trained students are cached
beside the dense model (see :mod:`compendium.vision_mamba.train`), with the wall-clock seconds
measured when they were made.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Optional

import numpy as np
import torch

from ...datasets.cifar import augment, to_tensor
from ..train import (TrainResult, config_key, evaluate, load_weights, save_weights, seed_everything, subset_indices,
                     weights_dir)
from ..vim import Vim
from .model import MergeConfig, RMeeToVim, distill_loss

__all__ = ["RetrainConfig", "RetrainResult", "epoch_lr", "retrain", "training_free"]


@dataclass(frozen=True)
class RetrainConfig:
    """R-MeeTo re-training settings (defaults: the chapter's ``paper`` profile)."""

    epochs: int = 3                 # the paper's "minutes" claim is for 3 epochs
    batch_size: int = 64
    lr: float = 2e-4                # base lr (see the module docstring)
    min_lr: float = 1e-6
    weight_decay: float = 0.05      # on all parameters, as main.py
    distill_weight: float = 0.5
    clf_weight: float = 1.0
    label_smoothing: float = 0.1
    drop_path_rate: float = 0.1     # RMeeTo_Mamba's default
    teacher_drop_path: float = 0.1  # the teacher runs in training mode with VisionMambaTeacher's default
    optimizer_steps: str = "code"   # "code": the code's 2-micro-batch accumulation with its extra steps; "plain"
    augment: bool = True            # random crop (pad 4) + horizontal flip
    train_subset: Optional[int] = 2500  # re-training images (fixed random subset), None = all
    max_steps: Optional[int] = None  # stop early (smoke tests)
    seed: int = 0
    num_threads: int = 1


@dataclass
class RetrainResult:
    model: RMeeToVim
    history: list            # epoch 0 = training-free, then one record per epoch
    key: str
    seconds: float           # wall-clock of the training steps (evaluation excluded)
    cached: bool
    device: str = "cpu"      # where the training ran

    @property
    def minutes(self) -> float:
        return self.seconds / 60


def epoch_lr(epoch: int, cfg: RetrainConfig) -> float:
    """The lr of epoch ``epoch`` (0-based) under the code's per-epoch cosine schedule."""
    t = max(0, epoch - 1)   # scheduler.step(epoch) runs after the epoch
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t / cfg.epochs))


def _dense(teacher) -> Vim:
    return teacher.model if isinstance(teacher, TrainResult) else teacher


def _teacher_key(teacher) -> str:
    if isinstance(teacher, TrainResult):
        return teacher.key
    return "state-" + config_key({k: float(v.float().sum()) for k, v in teacher.state_dict().items()})


def training_free(teacher, merges: dict[str, Optional[MergeConfig]], x_test: np.ndarray,
                  y_test: np.ndarray, batch_size: int = 500) -> dict[str, float]:
    """Top-1 (%) of the dense model merged (or pruned) without any re-training, per setting."""
    dense = _dense(teacher)
    model = RMeeToVim.from_vim(dense, None).eval()
    out = {}
    for name, merge in merges.items():
        model.set_merge(merge)
        out[name] = evaluate(model, x_test, y_test, batch_size)["acc"]
    return out


def retrain(teacher, merge: Optional[MergeConfig], cfg: RetrainConfig, data: dict,
            eval_subset: Optional[int] = 2000, cache: bool = True, force: bool = False,
            progress: bool = True, device: str = "cpu") -> RetrainResult:
    """Re-train the merged copy of ``teacher`` (a ``TrainResult`` of ``fit_vim`` or a Vim).

    ``merge=None`` re-trains the *dense* copy with the same recipe, epochs and images: the control that
    tells what the extra training alone gives (cached under its own key, ``rmeeto-control-*``).

    ``data``: dict with x_train, y_train, x_test, y_test (uint8 images, int labels).
    History: epoch 0 is the merged model before re-training; each later record has the
    epoch's lr, mean loss / CE / KL, the test accuracy on ``eval_subset`` images and the
    cumulative training seconds. ``device`` and ``num_threads`` are not part of the cache key
    (students re-trained on a GPU are reused on the CPU; their seconds say where they were made
    only through the ``device`` stored beside them).
    """
    from tqdm.auto import tqdm

    if merge is None:   # the dense control: its own key, so the merged variants' keys stay as they were
        key = config_key("rmeeto-control", _teacher_key(teacher), replace(cfg, num_threads=1), eval_subset)
        path = weights_dir() / f"rmeeto-control-{key}.pt"
    else:
        key = config_key("rmeeto", _teacher_key(teacher), merge, replace(cfg, num_threads=1), eval_subset)
        path = weights_dir() / f"rmeeto-{key}.pt"
    dense = _dense(teacher).to(device).eval()
    saved = load_weights(path, lambda: RMeeToVim.from_vim(dense, merge, drop_path_rate=cfg.drop_path_rate), device) \
        if cache and not force else None
    if saved:
        model, blob = saved
        return RetrainResult(model, blob["history"], key, blob["seconds"], True, blob.get("device", "cpu"))

    torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    if cfg.optimizer_steps not in ("code", "plain"):
        raise ValueError("optimizer_steps must be 'code' or 'plain'")
    for p in dense.parameters():
        p.requires_grad_(False)
    if cfg.teacher_drop_path > 0:
        teacher_m = RMeeToVim.from_vim(dense, None, drop_path_rate=cfg.teacher_drop_path).train()
        for p in teacher_m.parameters():
            p.requires_grad_(False)
    else:
        teacher_m = dense.eval()
    student = RMeeToVim.from_vim(dense, merge, drop_path_rate=cfg.drop_path_rate)
    for p in student.parameters():
        p.requires_grad_(True)
    sub = subset_indices(len(data["x_test"]), eval_subset)
    xe, ye = data["x_test"][sub], data["y_test"][sub]
    keep = subset_indices(len(data["x_train"]), cfg.train_subset, seed=cfg.seed + 1)
    x_all, y_all = data["x_train"][keep], data["y_train"][keep]
    n = len(x_all)
    steps_per_epoch = n // cfg.batch_size      # drop_last=True, as the code's loader
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    history = [{"epoch": 0, "lr": None, "loss": None, "ce": None, "kl": None, "time_s": 0.0,
                **evaluate(student, xe, ye)}]
    train_seconds, step, updates = 0.0, 0, 0
    opt.zero_grad(set_to_none=True)
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    bar = tqdm(total=total, desc="R-MeeTo re-training", disable=not progress, mininterval=5)
    for epoch in range(cfg.epochs):
        if step >= total:
            break
        lr = epoch_lr(epoch, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        perm = torch.randperm(n, generator=gen)
        losses, ces, kls = [], [], []
        student.train()
        t0 = time.perf_counter()
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size].numpy()
            x = to_tensor(x_all[idx])
            if cfg.augment:
                x = augment(x, gen)
            x, y = x.to(device), torch.from_numpy(y_all[idx]).to(device)
            with torch.no_grad():
                t_logits = teacher_m(x)
            loss, parts = distill_loss(student(x), t_logits, y, cfg.distill_weight,
                                       cfg.clf_weight, cfg.label_smoothing)
            if cfg.optimizer_steps == "plain":
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                updates += 1
            else:
                (loss / 2).backward()           # accumulation_steps = 2
                opt.step()                      # loss_scaler(...) steps after every micro-batch
                updates += 1
                if (b + 1) % 2 == 0:
                    opt.step()                  # ... and the code steps once more
                    opt.zero_grad(set_to_none=True)
                    updates += 1
            losses.append(loss.item())
            ces.append(parts["ce"])
            kls.append(parts["kl"])
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", lr=f"{lr:.1e}")
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()
        train_seconds += time.perf_counter() - t0
        rec = {"epoch": epoch + 1, "lr": lr, "loss": float(np.mean(losses)), "ce": float(np.mean(ces)),
               "kl": float(np.mean(kls)), "updates": updates, "time_s": round(train_seconds, 1),
               **evaluate(student, xe, ye)}
        history.append(rec)
        if progress:
            bar.write(f"epoch {rec['epoch']}  lr {lr:.2e}  loss {rec['loss']:.4f}  "
                      f"test acc {rec['acc']:.2f}  time {train_seconds:.0f}s")
    bar.close()
    student.eval()
    if cache:
        save_weights(path, student, history=history, seconds=train_seconds, device=str(device),
                     merge=merge.to_dict() if merge is not None else None, retrain_cfg=asdict(cfg))
    return RetrainResult(student, history, key, train_seconds, False, str(device))
