"""R-MeeTo re-training loop: the code's schedule, and a two-step run on real CIFAR-10 images."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from compendium.vision_mamba.rmeeto.model import MergeConfig
from compendium.vision_mamba.rmeeto.train import RetrainConfig, epoch_lr, retrain, training_free
from compendium.vision_mamba.vim import Vim, VimConfig

torch.set_num_threads(1)


def test_epoch_lr_follows_the_code():
    cfg = RetrainConfig(epochs=3, lr=1e-4, min_lr=1e-6)
    lrs = [epoch_lr(e, cfg) for e in range(3)]
    # timm CosineLRScheduler.step(epoch) after each epoch: epochs 0 and 1 at the base lr
    assert lrs[0] == lrs[1] == pytest.approx(1e-4)
    assert lrs[2] == pytest.approx(1e-6 + 0.5 * (1e-4 - 1e-6) * (1 + math.cos(math.pi / 3)))


@pytest.fixture(scope="module")
def small_data(cifar_test_split):
    _, (x, y) = cifar_test_split
    idx = np.random.default_rng(0).permutation(len(x))[:96]
    return {"x_train": x[idx[:64]], "y_train": y[idx[:64]], "x_test": x[idx[64:]], "y_test": y[idx[64:]]}


def test_retrain_two_steps(small_data):
    torch.manual_seed(0)
    cfg = VimConfig(img_size=32, patch_size=8, stride=8, embed_dim=16, depth=4, d_state=4, num_classes=10)
    teacher = Vim(cfg).eval()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    merge = MergeConfig(num_prune=3)
    rc = RetrainConfig(epochs=2, batch_size=16, train_subset=None, max_steps=3, lr=1e-3)
    res = retrain(teacher, merge, rc, small_data, eval_subset=None, cache=False, progress=False)
    assert [h["epoch"] for h in res.history] == [0, 1]          # 3 steps < one epoch of 4
    # the code's accumulation: an update after every micro-batch plus one more after every second
    assert res.history[1]["updates"] == 3 + 1
    plain = retrain(teacher, merge, replace(rc, optimizer_steps="plain", teacher_drop_path=0.0), small_data,
                    eval_subset=None, cache=False, progress=False)
    assert plain.history[1]["updates"] == 3
    assert res.history[0]["lr"] is None and res.history[1]["lr"] == pytest.approx(1e-3)
    assert res.history[1]["kl"] >= 0 and res.seconds > 0
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())   # teacher frozen
    changed = [k for k, v in res.model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed                                                                     # student moved
    accs = training_free(teacher, {"dense": None, "merged": merge,
                                   "pruned": MergeConfig(num_prune=3, prune=True)},
                         small_data["x_test"], small_data["y_test"])
    assert set(accs) == {"dense", "merged", "pruned"} and all(0 <= a <= 100 for a in accs.values())
    assert res.history[0]["acc"] == pytest.approx(accs["merged"])


def test_cache_keys_of_the_paper_profile_are_pinned():
    """The keys of the paper profile's re-trained variants and control (on the dense tiny Vim's key, pinned in
    test_cifar_train.py): a change to a config's fields or defaults orphans the cached models."""
    from compendium.vision_mamba.train import config_key

    dense = "e1f1264e35647761"
    merge = MergeConfig(num_prune=12)
    rcfg = RetrainConfig(epochs=3, batch_size=64, lr=1e-4, train_subset=10000)
    variants = {"merge": merge, "prune": replace(merge, prune=True), "unordered": replace(merge, ordered=False)}
    keys = {v: config_key("rmeeto", dense, m, rcfg, 2000) for v, m in variants.items()}
    assert keys == {"merge": "0f018fa2e2e1b296", "prune": "bf8a92968bd59993", "unordered": "30aa304c78bf284c"}
    assert config_key("rmeeto-control", dense, rcfg, 2000) == "af05640e59c031c2"


def test_dense_control_has_its_own_key_and_stays_dense(small_data):
    torch.manual_seed(0)
    cfg = VimConfig(img_size=32, patch_size=8, stride=8, embed_dim=16, depth=4, d_state=4, num_classes=10)
    teacher = Vim(cfg).eval()
    rc = RetrainConfig(epochs=1, batch_size=16, train_subset=None, max_steps=2, lr=1e-3)
    control = retrain(teacher, None, rc, small_data, eval_subset=None, cache=False, progress=False)
    merged = retrain(teacher, MergeConfig(num_prune=3), rc, small_data, eval_subset=None, cache=False, progress=False)
    assert control.key != merged.key
    assert control.model.merge.num_prune == 0                      # the control never merges
    dense_acc = training_free(teacher, {"dense": None}, small_data["x_test"], small_data["y_test"])["dense"]
    assert control.history[0]["acc"] == pytest.approx(dense_acc)   # record 0: the dense model itself
    assert control.history[1]["updates"] == 2 + 1 and control.seconds > 0
