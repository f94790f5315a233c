"""One registry and one resolver for every file the book reads.

A file is named by its *key*: its path relative to the data root, e.g.
``"graphs/heterophilous/tolokers.npz"`` or ``"emotion/affectgpt/emotion_wheel/wheel1.xlsx"``. A key
that names a folder (``"emotion/affectgpt/output"``) stands for every registered file below it.

``fetch(key)`` resolves a key, in this order:

1. an explicit ``path=`` argument (a file, or the folder that the key names);
2. the environment variable ``COMPENDIUM_DATA``: a data root laid out like the keys
   (tests and CI point it at ``../shared/data``);
3. the local cache (``COMPENDIUM_CACHE``, default ``~/.cache/compendium/data``);
4. a download from the file's public URL into the cache (skipped when ``COMPENDIUM_OFFLINE=1``);
5. otherwise :class:`DataNotFoundError`, naming the file, its URL and where to put it.

Every file found is checked against the SHA-256 in ``registry.tsv``; a mismatch raises
:class:`ChecksumError` and the file is never used. ``sources.yaml`` records, per folder, the
repository and commit each file was published at, its licence and what to cite.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

__all__ = [
    "DataError",
    "DataNotFoundError",
    "ChecksumError",
    "Entry",
    "Source",
    "fetch",
    "entries",
    "entry",
    "source_of",
    "cache_dir",
    "data_root",
    "registered_keys",
]

ENV_ROOT = "COMPENDIUM_DATA"
ENV_CACHE = "COMPENDIUM_CACHE"
ENV_OFFLINE = "COMPENDIUM_OFFLINE"


class DataError(RuntimeError):
    """Base class of the data layer's errors."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A registered file could be found nowhere and could not be downloaded."""


class ChecksumError(DataError):
    """A file exists but its bytes are not the registered ones."""


@dataclass(frozen=True)
class Source:
    """Where a group of files was published (one repository at one commit)."""

    prefix: str
    repo: str
    commit: str
    licence: str
    citation: str
    repo_path: str = ""
    url: str | None = None
    verify_download: bool = True

    def url_for(self, key: str) -> str:
        if self.url:
            return self.url
        rest = key[len(self.prefix):]
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.repo_path}{rest}"


@dataclass(frozen=True)
class Entry:
    """One registered file: its key, checksum, size and source."""

    key: str
    sha256: str
    size: int
    source: Source

    @property
    def url(self) -> str:
        return self.source.url_for(self.key)


# --------------------------------------------------------------------------- registry


@lru_cache(maxsize=1)
def _sources() -> tuple[Source, ...]:
    text = resources.files(__package__).joinpath("sources.yaml").read_text()
    raw = yaml.safe_load(text)["sources"]
    return tuple(Source(**item) for item in raw)


def source_of(key: str) -> Source:
    """The source (repository, commit, licence, citation) a key belongs to."""
    matches = [s for s in _sources() if key.startswith(s.prefix) or s.prefix.rstrip("/") == key]
    if not matches:
        raise DataError(f"no source in sources.yaml covers {key!r}")
    return max(matches, key=lambda s: len(s.prefix))


@lru_cache(maxsize=1)
def _registry() -> dict[str, Entry]:
    text = resources.files(__package__).joinpath("registry.tsv").read_text()
    table: dict[str, Entry] = {}
    for line in text.splitlines()[1:]:
        if not line.strip():
            continue
        key, sha, size = line.split("\t")
        table[key] = Entry(key, sha, int(size), source_of(key))
    return table


def registered_keys() -> list[str]:
    """Every registered file key, sorted."""
    return sorted(_registry())


def entry(key: str) -> Entry:
    """The registry entry of one file key."""
    try:
        return _registry()[key]
    except KeyError:
        raise DataError(f"{key!r} is not a registered file; see compendium.data.registered_keys()") from None


def entries(key: str) -> list[Entry]:
    """The entries a key stands for: the file itself, or every file below a folder key."""
    key = key.strip("/")
    reg = _registry()
    if key in reg:
        return [reg[key]]
    below = [e for k, e in sorted(reg.items()) if k.startswith(key + "/")]
    if not below:
        raise DataError(f"{key!r} names no registered file or folder; see compendium.data.registered_keys()")
    return below


# --------------------------------------------------------------------------- locations


def data_root() -> Path | None:
    """The data root named by ``COMPENDIUM_DATA``, if any."""
    value = os.environ.get(ENV_ROOT)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Where downloaded files are kept (``COMPENDIUM_CACHE`` or ``~/.cache/compendium``) / data."""
    base = os.environ.get(ENV_CACHE)
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "compendium"
    return root / "data"


# --------------------------------------------------------------------------- checksums


_verified: dict[tuple[str, int, int], str] = {}


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) so repeated fetches stay cheap."""
    st = path.stat()
    memo_key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if memo_key not in _verified:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _verified[memo_key] = digest.hexdigest()
    return _verified[memo_key]


def _check(path: Path, e: Entry) -> Path:
    actual = sha256_of(path)
    if actual != e.sha256:
        raise ChecksumError(
            f"{path} is not the registered file {e.key!r}: SHA-256 {actual[:16]}… instead of "
            f"{e.sha256[:16]}…. It is corrupt or a different version; delete it and download it again "
            f"from {e.url}"
        )
    return path


# --------------------------------------------------------------------------- resolution


def _where_to_put(e: Entry) -> str:
    root = data_root()
    places = [f"{root / e.key}" if root else f"$COMPENDIUM_DATA/{e.key}", str(cache_dir() / e.key)]
    return " or ".join(places)


def _download(e: Entry, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp:
        tmp_path = Path(tmp.name)
    try:
        with urllib.request.urlopen(e.url, timeout=60) as response, open(tmp_path, "wb") as fh:
            shutil.copyfileobj(response, fh)
        if e.source.verify_download:
            _check(tmp_path, e)
        tmp_path.replace(dest)
    finally:
        tmp_path.unlink(missing_ok=True)
    if not e.source.verify_download:
        # Record the checksum of what was downloaded, so a later fetch checks against it.
        Path(str(dest) + ".sha256").write_text(sha256_of(dest) + "\n")
    return dest


def _resolve_file(e: Entry, explicit: Path | None) -> Path:
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(explicit)
    root = data_root()
    if root is not None:
        candidates.append(root / e.key)
    cached = cache_dir() / e.key
    candidates.append(cached)
    for path in candidates:
        if path.is_file():
            sidecar = Path(str(path) + ".sha256")
            if path == cached and not e.source.verify_download and sidecar.exists():
                # A download whose bytes differ from our copy by design: check it against the
                # checksum recorded when it was downloaded.
                if sha256_of(path) != sidecar.read_text().strip():
                    raise ChecksumError(f"{path} changed since it was downloaded; delete it to fetch it again")
                return path
            return _check(path, e)
    if explicit is not None:
        raise DataNotFoundError(f"{explicit} does not exist (expected the file {e.key!r}, from {e.url})")
    offline = os.environ.get(ENV_OFFLINE, "") not in ("", "0")
    reason = "offline mode (COMPENDIUM_OFFLINE=1)" if offline else ""
    if not offline:
        try:
            return _download(e, cached)
        except ChecksumError:
            raise
        except Exception as exc:  # no network, 404, ...: fall through to the clear message
            reason = f"download failed: {type(exc).__name__}: {exc}"
    raise DataNotFoundError(
        f"data file {e.key!r} not found. Download it from {e.url} and put it at {_where_to_put(e)} "
        f"(or set {ENV_ROOT} to a folder holding it under that relative path) [{reason}]"
    )


def fetch(key: str, path: str | os.PathLike | None = None) -> Path:
    """Resolve a registered file or folder key to a local, checksum-verified path.

    Args:
        key: a registry key, e.g. ``"graphs/heterophilous/tolokers.npz"``, or a folder key,
            e.g. ``"emotion/affectgpt/output"`` (every registered file below it).
        path: an explicit location: the file itself, or for a folder key the folder holding the
            files under their relative paths.

    Returns:
        The file's path, or for a folder key the folder in which every file below it was found.

    Raises:
        DataNotFoundError: the file is nowhere and cannot be downloaded (the message says from where
            to download it and where to put it).
        ChecksumError: a file was found but its SHA-256 is not the registered one.
    """
    key = key.strip("/")
    items = entries(key)
    explicit = Path(path).expanduser() if path is not None else None
    if len(items) == 1 and items[0].key == key:
        return _resolve_file(items[0], explicit)
    resolved = [
        _resolve_file(e, explicit / e.key[len(key) + 1:] if explicit is not None else None) for e in items
    ]
    # The folder to return is the one holding the first file; all files must share it.
    first = resolved[0]
    folder = Path(str(first)[: len(str(first)) - (len(items[0].key) - len(key))])
    if all(str(p).startswith(str(folder) + os.sep) for p in resolved):
        return folder
    # Files came from different places (part data root, part cache): gather them in the cache.
    target = cache_dir() / key
    for e, p in zip(items, resolved):
        dest = target / e.key[len(key) + 1:]
        if p != dest:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, dest)
    return target
