"""One torch thread: the CI machine has 2 contended cores, where 2 OpenMP threads run slower."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
