import pytest


@pytest.fixture(scope="session")
def cifar_test_split(shared_data, tmp_path_factory):
    """The decoded CIFAR-10 test split (10,000 JPEGs), cached in a temporary folder."""
    import os

    from compendium.data import fetch
    from compendium.datasets.cifar import load_cifar10

    zip_path = fetch("images/cifar10-jpg.zip")
    old = os.environ.get("COMPENDIUM_CACHE")
    os.environ["COMPENDIUM_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        yield zip_path, load_cifar10(zip_path, "test")
    finally:
        if old is None:
            os.environ.pop("COMPENDIUM_CACHE", None)
        else:
            os.environ["COMPENDIUM_CACHE"] = old
