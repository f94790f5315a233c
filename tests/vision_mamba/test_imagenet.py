"""The gpu profile's ImageNet pieces: a clear error without data, DeiT's eval transform."""
from __future__ import annotations

import io
import zipfile

import pytest
import torch

from compendium.vision_mamba.imagenet import (IMAGENET_MEAN, IMAGENET_STD, ImageNetNotFoundError,
                                                     check_imagenet_val, eval_transform)


def test_missing_or_wrong_folder_says_what_to_do(tmp_path):
    with pytest.raises(ImageNetNotFoundError, match="ImageFolder layout"):
        check_imagenet_val(tmp_path / "nowhere")
    with pytest.raises(ImageNetNotFoundError, match="ImageFolder layout"):
        check_imagenet_val("")
    for wnid in ("n01440764", "n01443537"):
        (tmp_path / wnid).mkdir()
    with pytest.raises(ImageNetNotFoundError, match="2 class folders, expected 1000"):
        check_imagenet_val(tmp_path)


def test_eval_transform_on_a_real_jpeg(shared_data):
    from PIL import Image

    with zipfile.ZipFile(shared_data / "images" / "cifar10-jpg.zip") as zf:
        name = next(n for n in zf.namelist() if n.lower().endswith(".jpg"))
        img = Image.open(io.BytesIO(zf.read(name)))
        img.load()
    wide = img.resize((64, 32))                      # short side 32 -> 256, long side 512
    x = eval_transform(wide)
    assert x.shape == (3, 224, 224)
    grey = Image.new("RGB", (300, 260), (128, 128, 128))
    g = eval_transform(grey)
    expected = (128 / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(g.mean(dim=(1, 2)), expected, atol=1e-5)


def test_load_weights_model_ema_and_ddp_prefix(tmp_path):
    from compendium.vision_mamba.rmeeto.model import RMeeToVim
    from compendium.vision_mamba.imagenet import load_weights
    from compendium.vision_mamba.vim import CheckpointNotFoundError, Vim, VimConfig

    cfg = VimConfig(img_size=32, patch_size=8, stride=8, embed_dim=16, depth=2, d_state=4, num_classes=10)
    torch.manual_seed(0)
    a, b = Vim(cfg).state_dict(), Vim(cfg).state_dict()
    torch.save({"model": {"module." + k: v for k, v in a.items()}, "model_ema": b}, tmp_path / "ck.pth")
    m = RMeeToVim(cfg, None)
    assert load_weights(m, tmp_path / "ck.pth") == "model"
    assert torch.equal(m.state_dict()["head.weight"], a["head.weight"])
    assert load_weights(m, tmp_path / "ck.pth", prefer_ema=True) == "model_ema"
    assert torch.equal(m.state_dict()["head.weight"], b["head.weight"])
    with pytest.raises(CheckpointNotFoundError):
        load_weights(m, tmp_path / "missing.pth")
