"""CIFAR-10 from the JPEG zip, and the training loops with their weight cache (a few steps)."""
import numpy as np
import torch

from compendium.datasets.cifar import CLASSES, augment, load_cifar10, to_tensor
from compendium.vision_mamba.dyvm.model import DyVMConfig
from compendium.vision_mamba.dyvm.train import fit_dyvm
from compendium.vision_mamba.train import TrainConfig, evaluate, fit_vim, subset_indices, throughput
from compendium.vision_mamba.vim import VimConfig


def test_cifar_test_split(cifar_test_split):
    zip_path, (x, y) = cifar_test_split
    assert x.shape == (10000, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [1000] * 10 and len(CLASSES) == 10
    assert 100 < x.mean() < 140                    # real images, not zeros
    x2, y2 = load_cifar10(zip_path, "test")        # second call: from the .npy cache
    assert np.array_equal(x2, x) and np.array_equal(y2, y)


def test_tensor_and_augment(cifar_test_split):
    _, (x, _) = cifar_test_split
    t = to_tensor(x[:16])
    assert t.shape == (16, 3, 32, 32) and abs(float(t.mean())) < 0.5
    a = augment(t, torch.Generator().manual_seed(0))
    assert a.shape == t.shape and not torch.equal(a, t)
    assert torch.equal(augment(t, torch.Generator().manual_seed(0)), a)


def test_fit_vim_and_dyvm_cache(cifar_test_split):
    _, (x, y) = cifar_test_split
    sub = subset_indices(10000, 512)
    data = {"x_train": x[sub], "y_train": y[sub], "x_test": x[sub[:200]], "y_test": y[sub[:200]]}
    mc = VimConfig(img_size=32, patch_size=8, stride=8, embed_dim=32, depth=4, num_classes=10)
    tc = TrainConfig(epochs=1, batch_size=32, max_steps=3)
    r = fit_vim(mc, tc, data, "test-split-512", progress=False, eval_subset=None)
    assert not r.cached and r.path.is_file() and r.history[-1]["step"] == 3
    again = fit_vim(mc, tc, data, "test-split-512", progress=False)
    assert again.cached and again.key == r.key
    torch.testing.assert_close(again.model.head.weight, r.model.head.weight)
    d = fit_dyvm(r, DyVMConfig(vim=mc, pruning_loc=(1, 2, 3)), TrainConfig(epochs=1, batch_size=32, max_steps=2, lr=1e-4),
                 data, progress=False, eval_subset=None)
    ev = evaluate(d.model, data["x_test"], data["y_test"])
    assert 0 <= ev["acc"] <= 100 and 0 <= ev["block_keep_ratio"] <= 1
    assert throughput(r.model, to_tensor(x[:16]), warmup=1, iters=1) > 0


def test_cache_keys_of_the_chapters_weights_are_pinned():
    """The keys the DyVM and R-MeeTo chapters' cached weights are stored under (the paper profile's dense tiny Vim
    and its DyVM fine-tuning): a change to ``config_key``, ``CODE_VERSION`` or a config's fields or defaults
    orphans every trained model in the cache. Change them only on purpose, with these values."""
    from compendium.data import entry
    from compendium.vision_mamba.dyvm.train import DyVMLossConfig
    from compendium.vision_mamba.train import CIFAR_VIM, CODE_VERSION, config_key

    tag = f"cifar10-jpg-{entry('images/cifar10-jpg.zip').size}"   # cifar_and_dense_vim's data tag
    assert tag == "cifar10-jpg-63273525" and CODE_VERSION == 1
    dense = config_key("vim", CIFAR_VIM, TrainConfig(), tag)
    assert dense == "e1f1264e35647761"
    assert config_key("vim", CIFAR_VIM, TrainConfig(epochs=4.0, max_steps=None), tag) == dense   # the paper profile
    dyvm_cfg = DyVMConfig(vim=CIFAR_VIM, pruning_loc=(2, 4, 6), keep_ratio=0.7)
    dyvm_train = TrainConfig(epochs=0.5, lr=2e-4, min_lr=1e-6, weight_decay=1e-8)
    assert config_key("dyvm", dense, dyvm_cfg, dyvm_train, DyVMLossConfig(block_keep_target=0.8)) == "bc54df7cd0abb296"


def test_cifar_and_dense_vim_keeps_the_chapters_cache_key(cifar_test_split, monkeypatch):
    from dataclasses import replace

    from compendium.vision_mamba import train
    from compendium.vision_mamba.train import CIFAR_VIM, DENSE_EVAL_SUBSET, cifar_and_dense_vim, config_key

    zip_path, (x, y) = cifar_test_split
    seen = []
    # the test split stands in for both splits (decoding the 50,000 training JPEGs would dominate the test)
    monkeypatch.setattr(train, "load_cifar10", lambda path, split: seen.append((path, split)) or (x, y))
    cfg = TrainConfig(epochs=4.0, max_steps=2, num_threads=1)
    data, dense = cifar_and_dense_vim(cfg, progress=False)
    assert seen == [(zip_path, "train"), (zip_path, "test")] and data["x_test"].shape == (10000, 32, 32, 3)
    # the key the chapters used before this helper: their cached weights stay valid
    assert dense.key == config_key("vim", CIFAR_VIM, replace(cfg, num_threads=1), f"cifar10-jpg-{zip_path.stat().st_size}")
    assert [h["step"] for h in dense.history] == [2] and DENSE_EVAL_SUBSET == 2000


def test_saved_weights_are_read_back_only_while_their_checksum_matches(tmp_path):
    from compendium.vision_mamba.train import load_weights, save_weights

    path = tmp_path / "w.pt"
    assert load_weights(path, lambda: torch.nn.Linear(3, 2)) is None  # nothing saved
    torch.manual_seed(0)
    saved = torch.nn.Linear(3, 2)
    save_weights(path, saved, history=[{"epoch": 1}], seconds=1.5)
    model, record = load_weights(path, lambda: torch.nn.Linear(3, 2))
    assert torch.equal(model.weight, saved.weight) and not model.training
    assert record["history"] == [{"epoch": 1}] and record["seconds"] == 1.5
    path.write_bytes(path.read_bytes() + b"x")  # changed after it was saved: not used
    assert load_weights(path, lambda: torch.nn.Linear(3, 2)) is None
