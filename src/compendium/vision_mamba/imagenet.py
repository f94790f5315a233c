"""ImageNet-1K validation for the ``gpu`` profiles of the R-MeeTo and DyVM chapters (user-given data and weights).

Nothing here downloads anything: the user points at an ImageNet validation folder in the
``ImageFolder`` layout the R-MeeTo and Vim code read (``val/<wnid>/<image>.JPEG``, 1,000 class
folders, 50,000 images; classes indexed in sorted folder order) and at checkpoint files.

Evaluation transform, as DeiT's ``build_transform(is_train=False)`` used by both codes
(NUS-HPC-AI-Lab/R-MeeTo @ 535a826c ``image_task/utils/datasets.py``): resize the shorter side to
int(256 / 224 * 224) = 256 with bicubic interpolation, centre crop 224, scale to [0, 1], normalise
with the ImageNet mean / std.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageNetNotFoundError", "ImageFolderVal",
           "check_imagenet_val", "eval_transform", "evaluate_imagenet", "load_weights"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)   # timm IMAGENET_DEFAULT_MEAN
IMAGENET_STD = (0.229, 0.224, 0.225)    # timm IMAGENET_DEFAULT_STD
_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class ImageNetNotFoundError(FileNotFoundError):
    """The ImageNet validation folder is missing or not in the expected layout."""


def check_imagenet_val(root: str | Path) -> list[str]:
    """The sorted class folders of ``root``, or an error that says how to lay the data out."""
    empty = not str(root).strip()
    root = Path(root).expanduser()
    how = ("Give the ImageNet-1K validation set in the ImageFolder layout used by the Vim and "
           "R-MeeTo code: <root>/<wnid>/*.JPEG, 1000 class folders (n01440764 ...), 50,000 "
           "images. A flat ILSVRC2012_val_*.JPEG folder must first be sorted into class folders "
           "(e.g. with the widely used valprep.sh).")
    if empty or not root.is_dir():
        raise ImageNetNotFoundError(f"ImageNet validation folder not found: {'' if empty else str(root)!r}\n{how}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if len(classes) != 1000:
        raise ImageNetNotFoundError(f"{root} has {len(classes)} class folders, expected 1000.\n{how}")
    return classes


def eval_transform(img, size: int = 224) -> torch.Tensor:
    """PIL image -> normalised (3, size, size) tensor (resize 256 bicubic, centre crop 224)."""
    from PIL import Image

    img = img.convert("RGB")
    short = int((256 / 224) * size)
    w, h = img.size
    if w <= h:
        nw, nh = short, int(short * h / w)
    else:
        nw, nh = int(short * w / h), short
    img = img.resize((nw, nh), Image.BICUBIC)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


class ImageFolderVal(torch.utils.data.Dataset):
    """``root/<class>/<image>`` samples, classes in sorted order; ``limit`` keeps every k-th image."""

    def __init__(self, root: str | Path, limit: Optional[int] = None, size: int = 224):
        root = Path(root).expanduser()
        self.classes = check_imagenet_val(root)
        samples = []
        for i, c in enumerate(self.classes):
            for f in sorted((root / c).iterdir()):
                if f.suffix.lower() in _EXTENSIONS:
                    samples.append((f, i))
        if limit and limit < len(samples):
            step = len(samples) / limit
            samples = [samples[int(k * step)] for k in range(limit)]
        self.samples, self.size = samples, size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        from PIL import Image

        path, label = self.samples[i]
        with Image.open(path) as im:
            return eval_transform(im, self.size), label


@torch.no_grad()
def evaluate_imagenet(model: nn.Module, root: str | Path, batch_size: int = 128, limit: Optional[int] = None,
                      device: str = "cpu", num_workers: int = 4, autocast: bool = False,
                      progress: bool = True) -> dict:
    """Top-1 / top-5 (%) of ``model`` on the validation folder (``limit``: a spread-out subset)."""
    from tqdm.auto import tqdm

    ds = ImageFolderVal(root, limit)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                         pin_memory=device.startswith("cuda"))
    model = model.to(device).eval()
    top1 = top5 = n = 0
    for x, y in tqdm(loader, desc="ImageNet val", disable=not progress, mininterval=10):
        x, y = x.to(device, non_blocking=True), y.to(device)
        with torch.autocast(device.split(":")[0], dtype=torch.float16, enabled=autocast):
            logits = model(x)
        pred = logits.float().topk(5, dim=-1).indices
        top1 += int((pred[:, 0] == y).sum())
        top5 += int((pred == y[:, None]).any(dim=-1).sum())
        n += len(y)
    return {"acc1": 100.0 * top1 / n, "acc5": 100.0 * top5 / n, "n": n}


def load_weights(model: nn.Module, path: str | Path, prefer_ema: bool = False) -> str:
    """Load a Vim / R-MeeTo checkpoint file into ``model``; returns which weights were used.

    Accepts a bare state dict or a training checkpoint (``{"model": ..., "model_ema": ...}``,
    as ``main.py`` of both codes saves). ``prefer_ema`` takes ``model_ema`` when present: the
    Vim-B baseline (81.9 %) and the R-MeeTo Vim-B run (``--model_ema``) are EMA weights
    (R-MeeTo ``PRETRAINED.md``, ``main.py``). A ``module.`` prefix (DDP) is removed.
    """
    from .vim import CheckpointNotFoundError, load_checkpoint_file

    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint not found: {str(path)!r}; download it yourself and give its path")
    blob = load_checkpoint_file(path)
    which = "state dict"
    if isinstance(blob, dict) and prefer_ema and isinstance(blob.get("model_ema"), dict):
        blob, which = blob["model_ema"], "model_ema"
    elif isinstance(blob, dict) and isinstance(blob.get("model"), dict):
        blob, which = blob["model"], "model"
    state = {(k[7:] if k.startswith("module.") else k): v for k, v in blob.items()}
    model.load_state_dict(state, strict=True)
    return which
