"""Fixtures for the graph tests: real graphs from the shared data, PyG's processed copies in a temp folder."""

from __future__ import annotations

import pytest

from compendium.graphs.datasets import load_dataset


@pytest.fixture(scope="session")
def pyg_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("pyg")


@pytest.fixture(scope="session")
def load(shared_data, pyg_cache):
    cache: dict = {}

    def _load(name: str):
        if name not in cache:
            cache[name] = load_dataset(name, root=shared_data, cache_dir=pyg_cache)
        return cache[name]

    return _load


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Two contended cores: one torch thread is many times faster than two (measured 27×)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
