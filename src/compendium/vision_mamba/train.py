"""Training shared by the Vision Mamba chapters: the dense tiny Vim on CIFAR-10 (:func:`fit_vim`,
:func:`cifar_and_dense_vim`), the training loop, evaluation, throughput and the weight cache.

Trained weights are cached under ``<cache>/artifacts/vision_mamba/weights`` (cache =
``COMPENDIUM_CACHE`` or ``~/.cache/compendium``), keyed by a hash of everything that
determines them (model config, training config, data tag, teacher key; :func:`config_key`),
so a rerun with the same settings loads them instead of training again. DyVM's fine-tuning
(:mod:`compendium.vision_mamba.dyvm.train`) and R-MeeTo's re-training
(:mod:`compendium.vision_mamba.rmeeto.train`) cache their models beside the dense one, with
the same key function.

Recipe (scaled down from the papers; DeiT-style pipeline without mixup/cutmix): AdamW,
linear warm-up then cosine decay to ``min_lr``, label smoothing, random crop + flip, no
weight decay on 1-D parameters, ``A_log``/``D``, ``pos_embed`` and ``cls_token``.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import fetch, matches_recorded_checksum, record_checksum
from ..paths import artifacts_dir
from .bench import compare_throughput
from ..datasets.cifar import augment, load_cifar10, to_tensor
from .vim import Vim, VimConfig

__all__ = [
    "TrainConfig",
    "TrainResult",
    "seed_everything",
    "fit_vim",
    "evaluate",
    "throughput",
    "compare_throughput",
    "CIFAR_VIM",
    "weights_dir",
    "subset_indices",
    "config_key",
    "cifar_and_dense_vim",
]

CODE_VERSION = 1   # bump when a change to the code changes what training produces

#: The chapters' tiny Vim on CIFAR-10 (32 x 32 images, 8 x 8 patches of 4 px + the class
#: token = 65 tokens; d 64, depth 8, N 8): the architecture of Vim, scaled down. The DyVM
#: and R-MeeTo chapters train it with ``TrainConfig()`` and share the cached weights.
CIFAR_VIM = VimConfig(img_size=32, patch_size=4, stride=4, embed_dim=64, depth=8, d_state=8,
                      num_classes=10)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (defaults: the `paper` profile of the chapter's tiny Vim)."""

    epochs: float = 4.0            # passes over the training set (fractions allowed)
    batch_size: int = 128
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.05
    warmup_frac: float = 0.05      # fraction of the steps with a linear warm-up
    label_smoothing: float = 0.1
    augment: bool = True           # random crop (pad 4) + horizontal flip
    max_steps: Optional[int] = None  # stop early (the `ci` profile)
    train_subset: Optional[int] = None  # use only the first N training images (fixed order)
    seed: int = 0
    num_threads: int = 1           # torch CPU threads (not part of the cache key)


@dataclass
class TrainResult:
    model: nn.Module
    history: list
    key: str
    path: Path
    seconds: float        # training time when the weights were made (0 if none)
    cached: bool          # True when loaded from the cache


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def subset_indices(n: int, k: Optional[int], seed: int = 0) -> np.ndarray:
    """A fixed random subset (sorted) of ``range(n)``; the data files are ordered by class."""
    if k is None or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:k])


def weights_dir() -> Path:
    return artifacts_dir("vision_mamba", "weights")


def config_key(*parts) -> str:
    """Stable short hash of dataclasses / dicts / strings."""
    def norm(p):
        if hasattr(p, "__dataclass_fields__"):
            return asdict(p)
        return p
    blob = json.dumps([CODE_VERSION] + [norm(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _param_groups(model: nn.Module, weight_decay: float):
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name in skip or name.endswith(("A_log", "A_b_log"))
         else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    warm = max(1, int(cfg.warmup_frac * total))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    prog = (step - warm) / max(1, total - warm)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, prog)))


def _batches(n: int, batch_size: int, epochs: float, gen: torch.Generator):
    total = int(math.ceil(epochs * n / batch_size))
    perm, pos = torch.randperm(n, generator=gen), 0
    for _ in range(total):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        yield perm[pos:pos + batch_size]
        pos += batch_size


@torch.no_grad()
def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 500,
             **forward_kwargs) -> dict:
    """Top-1 accuracy (%) and, for DyVM, the measured block keep ratio (mean of the gates)."""
    model.eval()
    device = next(model.parameters()).device
    correct, gates = 0, []
    for i in range(0, len(images), batch_size):
        x = to_tensor(images[i:i + batch_size]).to(device)
        out = model(x, **forward_kwargs)
        logits = out.logits if hasattr(out, "logits") else out
        if hasattr(out, "gates"):
            gates.append(out.gates.float().mean(dim=(0, 2)))
        correct += int((logits.argmax(-1).cpu() == torch.from_numpy(labels[i:i + batch_size])).sum())
    res = {"acc": 100.0 * correct / len(images)}
    if gates:
        res["block_keep_ratio"] = float(torch.cat(gates).mean())
    return res


@torch.no_grad()
def throughput(model: nn.Module, images: torch.Tensor, warmup: int = 2, iters: int = 5,
               **forward_kwargs) -> float:
    """Images per second of ``model(images)`` in eval mode (best of ``iters`` timed runs)."""
    return compare_throughput({"m": model}, images, warmup, iters, 1, **forward_kwargs)["m"]["best_images_per_s"]


def load_weights(path: Path, build: Callable[[], nn.Module], device="cpu") -> tuple[nn.Module, dict] | None:
    """``(model, record)`` from weights that :func:`save_weights` wrote to ``path``, or None when there are none or
    their bytes no longer match the checksum recorded beside them (a cache is read only as it was saved).
    ``build`` makes the empty model; only tensors and plain values are unpickled."""
    if not matches_recorded_checksum(path):
        return None
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = build()
    model.load_state_dict(blob["state_dict"])
    return model.to(device).eval(), blob


def save_weights(path: Path, model: nn.Module, **record) -> None:
    """Save ``model``'s weights (on the CPU) with ``record`` (history, seconds, configs) and record their checksum."""
    torch.save({"state_dict": _cpu_state(model), **record}, path)
    record_checksum(path)


def _cpu_state(model: nn.Module) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _train_loop(model: nn.Module, data: dict, cfg: TrainConfig, step_fn, desc: str,
                progress: bool, eval_fn, device: torch.device = torch.device("cpu")) -> list:
    from tqdm import tqdm   # plain text bars: readable in stored notebook outputs

    x_all, y_all = data["x_train"], data["y_train"]
    if cfg.train_subset:
        keep = subset_indices(len(x_all), cfg.train_subset)
        x_all, y_all = x_all[keep], y_all[keep]
    n = len(x_all)
    gen = torch.Generator().manual_seed(cfg.seed)
    total = int(math.ceil(cfg.epochs * n / cfg.batch_size))
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    steps_per_epoch = max(1, n // cfg.batch_size)
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
    history, running, t0 = [], [], time.time()
    bar = tqdm(total=total, desc=desc, disable=not progress, mininterval=60)
    for step, idx in enumerate(_batches(n, cfg.batch_size, cfg.epochs, gen)):
        if step >= total:
            break
        lr = _lr_at(step, total, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        x = to_tensor(x_all[idx.numpy()])
        if cfg.augment:
            x = augment(x, gen)
        x, y = x.to(device), torch.from_numpy(y_all[idx.numpy()]).to(device)
        model.train()
        loss, parts = step_fn(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(running[-20:]):.3f}", lr=f"{lr:.1e}")
        end_epoch = (step + 1) % steps_per_epoch == 0 or step + 1 == total
        if end_epoch:
            rec = {"step": step + 1, "epoch": round((step + 1) / steps_per_epoch, 3), "lr": lr,
                   "loss": float(np.mean(running)), "time_s": round(time.time() - t0, 1), **parts}
            rec.update(eval_fn())
            history.append(rec)
            running = []
            if progress:
                bar.write(f"epoch {rec['epoch']:.2f}  lr {lr:.2e}  loss {rec['loss']:.4f}  "
                          f"test acc {rec.get('acc', float('nan')):.2f}  time {rec['time_s']:.0f}s")
    bar.close()
    return history


def fit_vim(model_cfg: VimConfig, cfg: TrainConfig, data: dict, data_tag: str,
            cache: bool = True, force: bool = False, progress: bool = True,
            eval_subset: Optional[int] = 2000, device: str = "cpu") -> TrainResult:
    """Train a Vim from scratch on ``data`` (dict with x_train, y_train, x_test, y_test).

    ``data_tag`` names the data (e.g. the zip's checksum) in the cache key.
    ``eval_subset``: test images (a fixed random subset) for the per-epoch accuracy.
    ``device`` is not part of the cache key (weights made on a GPU are reused on the CPU).
    """
    key = config_key("vim", model_cfg, replace(cfg, num_threads=1), data_tag)
    path = weights_dir() / f"vim-{key}.pt"
    if cache and not force and (saved := load_weights(path, lambda: Vim(model_cfg), device)):
        model, blob = saved
        return TrainResult(model, blob["history"], key, path, blob["seconds"], True)
    torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    model = Vim(model_cfg).to(device)
    sub = subset_indices(len(data["x_test"]), eval_subset)
    xe, ye = data["x_test"][sub], data["y_test"][sub]

    def step_fn(x, y):
        loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
        return loss, {}

    t0 = time.time()
    history = _train_loop(model, data, cfg, step_fn, "Vim", progress,
                          lambda: evaluate(model, xe, ye), torch.device(device))
    seconds = time.time() - t0
    model.eval()
    if cache:
        save_weights(path, model, history=history, seconds=seconds, device=str(device),
                     model_cfg=asdict(model_cfg), train_cfg=asdict(cfg))
    return TrainResult(model, history, key, path, seconds, False)


#: Test images of the dense model's per-epoch held-out accuracy (its convergence curve). Not part of the
#: cache key, so both chapters pass the same number and share one curve.
DENSE_EVAL_SUBSET = 2000


def cifar_and_dense_vim(cfg: TrainConfig, data_root: str = "", device: str = "cpu",
                        progress: bool = True) -> tuple[dict, TrainResult]:
    """CIFAR-10 (the shared JPEG copy, through :func:`compendium.data.fetch`; ``data_root``: a folder laid out
    like ``compendium data list``) and the chapters' dense tiny Vim (:data:`CIFAR_VIM`) trained on it with
    ``cfg``, cached and shared by the DyVM and R-MeeTo chapters.

    Returns ``(data, dense)``: ``data`` has x_train, y_train, x_test, y_test; ``dense`` is the
    :class:`TrainResult` (its history: the held-out accuracy on ``DENSE_EVAL_SUBSET`` test images per epoch).
    """
    key = "images/cifar10-jpg.zip"
    zip_path = fetch(key, path=Path(data_root) / key if data_root else None)
    x_train, y_train = load_cifar10(zip_path, "train")
    x_test, y_test = load_cifar10(zip_path, "test")
    data = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    dense = fit_vim(CIFAR_VIM, cfg, data, data_tag=f"cifar10-jpg-{zip_path.stat().st_size}",
                    eval_subset=DENSE_EVAL_SUBSET, progress=progress, device=device)
    return data, dense
