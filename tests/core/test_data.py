"""The data layer: good file, corrupt file, missing file with no network, folders, sources."""

from __future__ import annotations

import shutil

import pytest

from compendium import data

KEY = "emotion/mertools/MER2024/ov_store/check-openset.csv"


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """An empty data root and cache, offline."""
    root, cache = tmp_path / "root", tmp_path / "cache"
    root.mkdir()
    monkeypatch.setenv("COMPENDIUM_DATA", str(root))
    monkeypatch.setenv("COMPENDIUM_CACHE", str(cache))
    monkeypatch.setenv("COMPENDIUM_OFFLINE", "1")
    return root, cache


def test_good_file_resolves_from_data_root(shared_data):
    path = data.fetch(KEY)
    assert path == shared_data / KEY
    assert data.sha256_of(path) == data.entry(KEY).sha256


def test_explicit_path_wins(shared_data, isolated, tmp_path):
    copy = tmp_path / "mine.csv"
    shutil.copyfile(shared_data / KEY, copy)
    assert data.fetch(KEY, path=copy) == copy


def test_corrupt_file_is_refused(shared_data, isolated):
    root, _ = isolated
    bad = root / KEY
    bad.parent.mkdir(parents=True)
    bad.write_bytes((shared_data / KEY).read_bytes()[:-10] + b"tampered!!")
    with pytest.raises(data.ChecksumError, match="SHA-256"):
        data.fetch(KEY)


def test_missing_file_offline_names_url_and_place(isolated):
    with pytest.raises(data.DataNotFoundError) as info:
        data.fetch(KEY)
    message = str(info.value)
    assert "raw.githubusercontent.com/zeroQiaoba/MERTools/89120b780ab18b28349f0e37dcc12b8cc253cb02/MER2024/ov_store/check-openset.csv" in message
    assert KEY in message and "COMPENDIUM_DATA" in message


def test_missing_file_without_network_fails_cleanly(isolated, monkeypatch):
    # Not offline mode: the download is attempted and fails (no route), then the clear error.
    monkeypatch.setenv("COMPENDIUM_OFFLINE", "0")
    import urllib.request

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(data.DataNotFoundError, match="download failed: OSError"):
        data.fetch(KEY)


def test_download_is_verified_and_cached(shared_data, isolated, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_OFFLINE", "0")
    import io
    import urllib.request

    payload = (shared_data / KEY).read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(payload))
    _, cache = isolated
    path = data.fetch(KEY)
    assert path == cache / "data" / KEY and path.read_bytes() == payload
    # A corrupted download is refused and leaves nothing behind.
    path.unlink()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(payload[:100]))
    with pytest.raises(data.ChecksumError):
        data.fetch(KEY)
    assert not path.exists()


def test_folder_key_resolves_every_file(shared_data):
    folder = data.fetch("emotion/affectgpt/emotion_wheel")
    assert folder == shared_data / "emotion/affectgpt/emotion_wheel"
    assert len(data.entries("emotion/affectgpt/emotion_wheel")) == 7


def test_every_registered_file_has_a_source_and_url():
    keys = data.registered_keys()
    assert len(keys) > 500
    for key in keys:
        e = data.entry(key)
        assert e.url.startswith("https://") and e.source.licence and e.source.citation


def test_unknown_key_is_a_clear_error():
    with pytest.raises(data.DataError, match="registered"):
        data.fetch("graphs/nope.npz")
