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

Only registered files are read: loaders take their file lists from the registry
(:func:`registered_below`), never from a folder listing, and ``compendium data check`` reports files in
the data folders that are not registered (:func:`unregistered_files`). Pickled content (``np.load`` with
``allow_pickle=True``, ``torch.load`` beyond plain tensors) is read only from files whose checksum is
registered or was recorded when this package wrote them (:func:`require_verified`,
:func:`record_checksum`); a file of your own needs the explicit opt-in ``COMPENDIUM_TRUST_PICKLE=1``.

Downloads are bounded: a connection that stays silent for ``COMPENDIUM_STALL_TIMEOUT`` seconds (default
30) or a file that takes longer than ``COMPENDIUM_DOWNLOAD_TIMEOUT`` seconds (default 900) fails with
the usual clear message; :func:`check` verifies many keys in parallel under an overall limit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import time
import urllib.request
import warnings
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
    "registered_below",
    "unregistered_files",
    "require_verified",
    "record_checksum",
    "matches_recorded_checksum",
    "check",
    "CheckResult",
]

ENV_ROOT = "COMPENDIUM_DATA"
ENV_CACHE = "COMPENDIUM_CACHE"
ENV_OFFLINE = "COMPENDIUM_OFFLINE"
ENV_TRUST_PICKLE = "COMPENDIUM_TRUST_PICKLE"
ENV_STALL_TIMEOUT = "COMPENDIUM_STALL_TIMEOUT"
ENV_DOWNLOAD_TIMEOUT = "COMPENDIUM_DOWNLOAD_TIMEOUT"


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
    # An archive whose download is packed differently from our copy (other container bytes, one top
    # folder more) is verified by its content instead: the SHA-256 over its members below
    # ``archive_members`` (see _content_digest), and then repacked into our layout.
    content_sha256: str | None = None
    archive_members: tuple[str, ...] = ()

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
    return tuple(Source(**{**item, "archive_members": tuple(item.get("archive_members", ()))}) for item in raw)


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


def registered_below(folder_key: str) -> list[str]:
    """The registered paths below a folder key, relative to it (sorted): what a loader may read
    from the folder that :func:`fetch` returned for that key."""
    folder_key = folder_key.strip("/")
    return [k[len(folder_key) + 1:] for k in registered_keys() if k.startswith(folder_key + "/")]


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


def _sidecar(path: Path) -> Path:
    return Path(str(path) + ".sha256")


def record_checksum(path: str | os.PathLike) -> Path:
    """Write ``<path>.sha256`` beside a file this package made (a cache, a download), so that a later
    read can tell it is the same file (:func:`matches_recorded_checksum`)."""
    path = Path(path)
    _sidecar(path).write_text(sha256_of(path) + "\n")
    return path


def matches_recorded_checksum(path: str | os.PathLike) -> bool:
    """True when ``path`` exists and its bytes match the checksum recorded beside it."""
    path, sidecar = Path(path), _sidecar(Path(path))
    if not (path.is_file() and sidecar.is_file()):
        return False
    return sha256_of(path) == sidecar.read_text().strip()


@lru_cache(maxsize=1)
def _registered_checksums() -> frozenset[str]:
    return frozenset(e.sha256 for e in _registry().values())


def require_verified(path: str | os.PathLike, what: str = "file") -> Path:
    """Allow pickled content to be read from ``path`` only if its checksum is verified: registered,
    or recorded beside it by this package; otherwise only with ``COMPENDIUM_TRUST_PICKLE=1``.

    Raises:
        ChecksumError: the file is unverified and the opt-in is not set (the message says how).
    """
    path = Path(path)
    if sha256_of(path) in _registered_checksums() or matches_recorded_checksum(path):
        return path
    if os.environ.get(ENV_TRUST_PICKLE, "") not in ("", "0"):
        warnings.warn(f"reading pickled content from the unverified {what} {path} ({ENV_TRUST_PICKLE}=1)",
                      stacklevel=2)
        return path
    raise ChecksumError(
        f"{path}: refusing to unpickle an unverified {what} (its SHA-256 is not registered, and unpickling "
        f"can run code). Use the registered file, or if you trust this file set {ENV_TRUST_PICKLE}=1"
    )


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


def _timeout(env: str, default: float) -> float:
    return float(os.environ.get(env) or default)


def _copy_bounded(url: str, fh, stall_s: float, total_s: float) -> None:
    """Copy ``url`` into ``fh``; fail when the server stays silent ``stall_s`` seconds or the whole
    transfer passes ``total_s`` seconds (a trickling server cannot hold a download forever)."""
    deadline = time.monotonic() + total_s
    with urllib.request.urlopen(url, timeout=stall_s) as response:
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"download took longer than {total_s:g} s ({ENV_DOWNLOAD_TIMEOUT})")
            block = response.read1(1 << 20) if hasattr(response, "read1") else response.read(1 << 20)
            if not block:
                return
            fh.write(block)


def _archive_names(zf) -> dict[str, str]:
    """Member name in our layout → name in the archive: one top folder common to all members (as in
    GitHub's archives) is dropped."""
    names = [n for n in zf.namelist() if not n.endswith("/")]
    tops = {n.split("/", 1)[0] for n in names}
    strip = len(tops) == 1 and all("/" in n for n in names)
    return {(n.split("/", 1)[1] if strip else n): n for n in names}


def _content_digest(path: Path, members: tuple[str, ...]) -> str:
    """SHA-256 over the sorted (name, SHA-256 of bytes) of an archive's members below ``members``."""
    import zipfile

    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as zf:
        names = _archive_names(zf)
        for name in sorted(n for n in names if n.startswith(members)):
            digest.update(name.encode() + b"\0" + hashlib.sha256(zf.read(names[name])).digest())
    return digest.hexdigest()


def _repack_verified_archive(downloaded: Path, e: Entry, dest: Path) -> None:
    """Verify a differently packed archive by its content and write it in our layout to ``dest``."""
    import zipfile

    actual = _content_digest(downloaded, e.source.archive_members)
    if actual != e.source.content_sha256:
        raise ChecksumError(
            f"the download of {e.key!r} from {e.url} does not hold the registered files (content SHA-256 "
            f"{actual[:16]}… instead of {e.source.content_sha256[:16]}…); it was not kept"
        )
    with zipfile.ZipFile(downloaded) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as out:
        names = _archive_names(src)
        for name in sorted(n for n in names if n.startswith(e.source.archive_members)):
            out.writestr(name, src.read(names[name]))


def _download(e: Entry, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp:
        tmp_path = Path(tmp.name)
    repacked = Path(str(tmp_path) + ".zip")
    try:
        with open(tmp_path, "wb") as fh:
            _copy_bounded(e.url, fh, _timeout(ENV_STALL_TIMEOUT, 30), _timeout(ENV_DOWNLOAD_TIMEOUT, 900))
        if e.source.content_sha256 and sha256_of(tmp_path) != e.sha256:
            _repack_verified_archive(tmp_path, e, repacked)
            repacked.replace(dest)
            # Our repacked bytes are not the registered ones: a later fetch checks this record.
            record_checksum(dest)
        else:
            _check(tmp_path, e)
            tmp_path.replace(dest)
    finally:
        tmp_path.unlink(missing_ok=True)
        repacked.unlink(missing_ok=True)
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
            if path == cached and e.source.content_sha256 and _sidecar(path).exists():
                # A repacked download (verified by content): check it against the checksum recorded then.
                if not matches_recorded_checksum(path):
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


def _warn_unregistered(folder: Path, key: str) -> None:
    """Warn about files in a resolved folder that the registry does not name: loaders ignore them."""
    registered = set(registered_below(key))
    extra = [p for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith((".sha256", ".part"))
             and p.relative_to(folder).as_posix() not in registered]
    if extra:
        shown = ", ".join(str(p.relative_to(folder)) for p in extra[:3]) + (" …" if len(extra) > 3 else "")
        warnings.warn(f"{folder} holds {len(extra)} unregistered file(s), ignored: {shown}", stacklevel=3)


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
        _warn_unregistered(folder, key)
        return folder
    # Files came from different places (part data root, part cache): gather them in the cache.
    target = cache_dir() / key
    for e, p in zip(items, resolved):
        dest = target / e.key[len(key) + 1:]
        if p != dest:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, dest)
    return target


# --------------------------------------------------------------------------- checks


def unregistered_files(roots: list[Path] | None = None) -> list[Path]:
    """Files in the data folders (``COMPENDIUM_DATA`` and the cache) that no registry key names:
    loaders ignore them, and ``compendium data check`` lists them. Files directly in a root (a
    README, a manifest), checksum records and partial downloads are not data files."""
    if roots is None:
        roots = [r for r in (data_root(), cache_dir()) if r is not None]
    keys = set(_registry())
    found = []
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if (path.is_file() and "/" in rel and rel not in keys
                    and not rel.endswith((".sha256", ".part", ".part.zip"))):
                found.append(path)
    return found


@dataclass(frozen=True)
class CheckResult:
    """The outcome of checking one key: ``ok``, and otherwise the error as "Class: message"."""

    key: str
    ok: bool
    error: str = ""


def check(keys: list[str], *, workers: int = 8, total_timeout: float = 1800.0) -> list[CheckResult]:
    """Resolve and verify ``keys`` in parallel (``workers`` threads); each download is bounded by
    the stall and per-file limits, and the whole check by ``total_timeout`` seconds: keys not done by
    then are reported as timed out. Returns one result per key, in the order given."""
    results: dict[str, CheckResult] = {}
    pending = list(keys)
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not pending:
                    return
                key = pending.pop(0)
            try:
                fetch(key)
                result = CheckResult(key, True)
            except Exception as exc:  # every failure is reported, none stops the others
                result = CheckResult(key, False, f"{type(exc).__name__}: {exc}")
            with lock:
                results[key] = result

    # Daemon threads: a worker stuck past the overall limit cannot keep the process alive.
    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, min(workers, len(keys))))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + total_timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with lock:
        pending.clear()  # nothing new starts after the deadline
        return [results.get(k) or CheckResult(k, False, f"TimeoutError: not verified within the overall limit of "
                                                         f"{total_timeout:g} s") for k in keys]
