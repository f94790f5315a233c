"""Small artifacts this project trained itself and commits, each with its checksum and provenance.

The shared data registry (:mod:`compendium.data`) holds public files we never commit; this one holds the
few weights we made (a few MB at most) and ship inside the package, so that a chapter can start from a
finished model instead of training one for an hour. ``registry.yaml`` beside this file lists each artifact:
file name, sha256, size in bytes and ``provenance`` (what made it: recipe, epochs, accuracies, machine, time,
commit). :func:`path` refuses a file whose checksum is not the recorded one, in one line.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..data import DataError, DataNotFoundError, sha256_of

__all__ = ["ArtifactError", "REGISTRY", "entries", "path", "register"]

HERE = Path(__file__).resolve().parent
REGISTRY = HERE / "registry.yaml"


class ArtifactError(DataError):
    """A trained artifact that is missing, unregistered or not the recorded file."""


def entries(registry: Path = REGISTRY) -> dict[str, dict]:
    """``{name: {file, sha256, size, provenance}}`` from the registry (empty when there is none)."""
    if not registry.exists():
        return {}
    data = yaml.safe_load(registry.read_text()) or {}
    return dict(data.get("artifacts") or {})


def path(name: str, registry: Path = REGISTRY) -> Path:
    """The verified file of artifact ``name``."""
    known = entries(registry)
    if name not in known:
        raise ArtifactError(f"no trained artifact named {name!r} (registered: {', '.join(sorted(known)) or 'none'}); "
                            "make it with 'compendium train'")
    e = known[name]
    file = registry.parent / e["file"]
    if not file.exists():
        raise DataNotFoundError(f"trained artifact {name!r}: {e['file']} is registered but missing from the package")
    got = sha256_of(file)
    if got != e["sha256"]:
        raise ArtifactError(f"trained artifact {name!r}: {e['file']} has sha256 {got[:12]}…, "
                            f"the registry records {e['sha256'][:12]}…")
    return file


def register(name: str, file: Path, provenance: dict, registry: Path = REGISTRY) -> dict:
    """Record ``file`` (which must sit beside the registry) as artifact ``name`` with its provenance."""
    file = Path(file)
    if file.parent.resolve() != registry.parent.resolve():
        raise ArtifactError(f"{file.name}: a trained artifact must sit beside {registry.name}")
    data = yaml.safe_load(registry.read_text()) if registry.exists() else None
    data = data or {}
    data.setdefault("artifacts", {})
    entry = {"file": file.name, "sha256": sha256_of(file), "size": file.stat().st_size, "provenance": provenance}
    data["artifacts"][name] = entry
    registry.write_text("# Trained artifacts of this project: written by 'compendium train', do not edit by hand.\n"
                        + yaml.safe_dump(data, sort_keys=False, width=110))
    return entry
