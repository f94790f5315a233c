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


# --------------------------------------------------------------------------- issue 16: registered files only,
# verified pickles, bounded downloads. Local servers listen on 127.0.0.1 only and stop by themselves.

import contextlib
import socket
import threading
import time
import warnings
import zipfile
from pathlib import Path

AFFECTGPT_SIMS = "emotion/affectgpt/output/results-sims"


@contextlib.contextmanager
def local_server(behaviour: str, payload: bytes = b"", lifetime_s: float = 30.0):
    """An HTTP-ish server on 127.0.0.1: ``silent`` accepts and never answers; ``trickle`` sends headers then
    one byte every 0.1 s; ``serve`` answers every request with ``payload``. Yields its base URL."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()
    held = []

    def handle(conn):
        conn.settimeout(1.0)
        with contextlib.suppress(OSError):
            conn.recv(65536)
            if behaviour == "serve":
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
                conn.close()
            elif behaviour == "trickle":
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                while not stop.is_set():
                    conn.sendall(b"x")
                    time.sleep(0.1)

    def loop():
        deadline = time.monotonic() + lifetime_s  # bounded: the server ends even if a test hangs
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
        for conn in held:
            conn.close()
        server.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)


def _registry_pointing_at(monkeypatch, url: str, keys: list[str], **source_fields):
    """Replace the registry by entries for ``keys`` whose URL is ``url`` (the real checksums and sizes)."""
    real = {k: data.entry(k) for k in data.registered_keys()}
    table = {}
    for key in keys:
        source = data.Source(prefix=key, repo="test/local", commit="0", licence="-", citation="-", url=f"{url}/{key}",
                             **source_fields)
        table[key] = data.Entry(key, real[key].sha256 if key in real else "0" * 64,
                                real[key].size if key in real else 0, source)
    monkeypatch.setattr(data, "_registry", lambda: table)
    monkeypatch.setattr(data, "_registered_checksums", lambda: frozenset(e.sha256 for e in table.values()))
    return table


def test_unregistered_checkpoint_is_ignored_with_a_warning_and_reported(shared_data, isolated, capsys):
    from compendium.cli import main as cli_main
    from compendium.emotion import unibench

    root, _ = isolated
    shutil.copytree(shared_data / AFFECTGPT_SIMS, root / AFFECTGPT_SIMS)
    run_dir = next((root / AFFECTGPT_SIMS).iterdir())
    phantom = run_dir / "checkpoint_000065_loss_0.400-openset.npz"
    shutil.copyfile(next(run_dir.glob("checkpoint_000060_*-openset.npz")), phantom)
    with pytest.warns(UserWarning, match="unregistered checkpoint.*checkpoint_000065"):
        found = unibench.find_checkpoints(root / "emotion/affectgpt/output", "SIMS")
    assert found["checkpoint"].tolist() == [30, 35, 40, 45, 50, 55, 60]
    assert data.unregistered_files() == [phantom]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli_main(["data", "check", AFFECTGPT_SIMS + "/"]) == 1
    out = capsys.readouterr().out
    assert f"? {phantom}: not a registered file" in out and "21/21 files resolve" in out


def test_pickled_label_file_must_be_registered(shared_data, tmp_path, monkeypatch):
    import numpy as np

    from compendium.emotion import unibench

    labels = tmp_path / "dataset"
    (labels / "sims-process").mkdir(parents=True)
    corpus = {"s1": {"val": 1.0}, "s2": {"val": -1.0}}
    np.savez(labels / "sims-process" / "label.npz", test_corpus=np.array(corpus, dtype=object))
    with pytest.raises(data.ChecksumError, match="refusing to unpickle.*COMPENDIUM_TRUST_PICKLE=1"):
        unibench.load_merbench_labels(labels, "SIMS")
    monkeypatch.setenv("COMPENDIUM_TRUST_PICKLE", "1")  # the documented opt-in for a file of your own
    with pytest.warns(UserWarning, match="unverified"):
        assert unibench.load_merbench_labels(labels, "SIMS") == {"s1": 1.0, "s2": -1.0}
    monkeypatch.delenv("COMPENDIUM_TRUST_PICKLE")
    registered = shared_data / "emotion/mertools/MERBench/dataset"
    assert len(unibench.load_merbench_labels(registered, "SIMS")) == 457  # the registered file is read


def test_checkpoints_load_weights_only_unless_verified_or_opted_in(tmp_path, monkeypatch):
    import argparse

    import torch

    from compendium.vision_mamba.vim import load_checkpoint_file

    plain = tmp_path / "plain.pth"
    torch.save({"model": {"w": torch.ones(2)}}, plain)
    assert load_checkpoint_file(plain)["model"]["w"].sum() == 2  # tensors only: no code can run
    with_args = tmp_path / "with_args.pth"
    torch.save({"model": {"w": torch.ones(2)}, "args": argparse.Namespace(lr=1)}, with_args)
    with pytest.raises(data.ChecksumError, match="refusing to unpickle an unverified checkpoint"):
        load_checkpoint_file(with_args)
    monkeypatch.setenv("COMPENDIUM_TRUST_PICKLE", "1")
    with pytest.warns(UserWarning):
        assert load_checkpoint_file(with_args)["args"].lr == 1


def test_cache_files_are_read_only_as_they_were_written(tmp_path):
    cached = tmp_path / "vim-abc.pt"
    cached.write_bytes(b"weights")
    assert not data.matches_recorded_checksum(cached)  # no record: not used
    data.record_checksum(cached)
    assert data.matches_recorded_checksum(cached)
    cached.write_bytes(b"tampered")
    assert not data.matches_recorded_checksum(cached)


def test_registered_cifar_content_checksum_matches_the_shared_archive(shared_data):
    e = data.entry("images/cifar10-jpg.zip")
    assert e.source.content_sha256 and e.source.archive_members == ("train/", "test/")
    assert data._content_digest(shared_data / e.key, e.source.archive_members) == e.source.content_sha256


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return path


def test_archive_download_is_verified_by_content_and_repacked(isolated, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_OFFLINE", "0")
    _, cache = isolated
    ours = {"train/cat/0.jpg": b"cat", "test/dog/0.jpg": b"dog"}
    canonical = _zip(tmp_path / "canonical.zip", ours)
    digest = data._content_digest(canonical, ("train/", "test/"))
    # GitHub's archive of the repository: the same files under one top folder, plus a README.
    github = _zip(tmp_path / "github.zip", {**{f"repo-abc/{k}": v for k, v in ours.items()}, "repo-abc/README.md": b"r"})
    key = "images/cifar10-jpg.zip"
    with local_server("serve", github.read_bytes()) as url:
        _registry_pointing_at(monkeypatch, url, [key], content_sha256=digest, archive_members=("train/", "test/"))
        path = data.fetch(key)
    assert path == cache / "data" / key and data.matches_recorded_checksum(path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(ours) and zf.read("train/cat/0.jpg") == b"cat"
    # A download whose content differs is refused and nothing is kept.
    path.unlink()
    tampered = _zip(tmp_path / "bad.zip", {"repo-abc/train/cat/0.jpg": b"not a cat", "repo-abc/test/dog/0.jpg": b"dog"})
    with local_server("serve", tampered.read_bytes()) as url:
        _registry_pointing_at(monkeypatch, url, [key], content_sha256=digest, archive_members=("train/", "test/"))
        with pytest.raises(data.ChecksumError, match="does not hold the registered files"):
            data.fetch(key)
    assert not path.exists() and not list(path.parent.glob("*.part*"))


def test_a_silent_server_cannot_stall_a_download(isolated, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_OFFLINE", "0")
    monkeypatch.setenv("COMPENDIUM_STALL_TIMEOUT", "0.5")
    with local_server("silent") as url:
        _registry_pointing_at(monkeypatch, url, [KEY])
        t0 = time.monotonic()
        with pytest.raises(data.DataNotFoundError, match="download failed: .*timed out"):
            data.fetch(KEY)
    assert time.monotonic() - t0 < 5


def test_a_trickling_server_cannot_hold_a_download(isolated, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_OFFLINE", "0")
    monkeypatch.setenv("COMPENDIUM_DOWNLOAD_TIMEOUT", "1")
    with local_server("trickle") as url:
        _registry_pointing_at(monkeypatch, url, [KEY])
        t0 = time.monotonic()
        with pytest.raises(data.DataNotFoundError, match="download failed: TimeoutError: download took longer than 1 s"):
            data.fetch(KEY)
    assert time.monotonic() - t0 < 5


def test_data_check_is_parallel_and_bounded_when_the_network_hangs(isolated, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_OFFLINE", "0")
    monkeypatch.setenv("COMPENDIUM_STALL_TIMEOUT", "60")  # each file alone would wait a minute
    keys = [f"text/goemotions/file{i}.tsv" for i in range(12)]
    with local_server("silent") as url:
        _registry_pointing_at(monkeypatch, url, keys)
        t0 = time.monotonic()
        results = data.check(keys, workers=4, total_timeout=1.5)
        elapsed = time.monotonic() - t0
    assert elapsed < 4, elapsed
    assert [r.key for r in results] == keys and not any(r.ok for r in results)
    assert all("overall limit of 1.5 s" in r.error for r in results)


def test_a_graph_read_from_a_given_root_is_verified_too(shared_data, tmp_path):
    """The Planetoid files are pickles: a data root passed by hand is checked like COMPENDIUM_DATA."""
    from compendium.graphs import datasets

    root = tmp_path / "root"
    shutil.copytree(shared_data / "graphs/planetoid", root / "graphs/planetoid")
    tampered = root / "graphs/planetoid/ind.cora.graph"
    tampered.write_bytes(tampered.read_bytes()[:-4] + b"evil")
    with pytest.raises(data.ChecksumError, match="ind.cora.graph"):
        datasets.load_dataset("cora", root=root, cache_dir=tmp_path / "cache")
