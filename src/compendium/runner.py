"""Execute the book's notebooks with papermill: profiles, provenance, skipping, batches.

A chapter is a folder ``notebooks/<paper>/``; each notebook ``<name>.ipynb`` there has a cell tagged
``parameters`` whose defaults are the ``ci`` profile. ``<name>.paper.yaml`` and ``<name>.gpu.yaml``
beside it hold the other profiles' parameters (a notebook without ``<name>.paper.yaml`` runs its
defaults at paper scale too: its defaults already are the full computation).

``run_notebook`` writes ``book/<paper>/<name>.ipynb`` (the notebook's ``<name>.results.json`` is
staged in a temporary folder and joins it only when the run ends well), stamps provenance into the
notebook's metadata and a closing markdown cell, and skips a notebook whose inputs (source, parameters, the package code it imports)
have not changed since the output was made. ``run_batch`` runs a grid of notebooks × parameter sets
through ``dask.distributed``, resumably.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import yaml

from .paths import repo_root

PROFILES = ("ci", "paper", "gpu")
META_KEY = "compendium"

__all__ = [
    "PROFILES", "ParameterError", "Job", "discover", "profile_parameters", "validate_parameters",
    "fingerprint", "is_up_to_date", "run_notebook", "run_batch", "load_grid",
]


class ParameterError(ValueError):
    """Bad parameters for a notebook: unknown names, wrong types, a profile the notebook lacks."""


@dataclass
class Job:
    """One execution: a source notebook, its parameters, where the output goes."""

    source: Path
    output: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    profile: str = "ci"

    @property
    def paper(self) -> str:
        return self.source.parent.name

    @property
    def name(self) -> str:
        return self.source.stem


# ------------------------------------------------------------------------------------ discovery


def discover(target: str = "all", root: Path | None = None) -> list[Path]:
    """The source notebooks a target names: ``all``, a chapter (``affectgpt``), a chapter/notebook
    (``affectgpt/mer_unibench``) or a path to an ``.ipynb``."""
    root = root or repo_root()
    nb_root = root / "notebooks"
    if target == "all":
        found = sorted(p for p in nb_root.glob("*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        # The verdict page aggregates the others: it runs last.
        return [p for p in found if p.parent.name != "status"] + [p for p in found if p.parent.name == "status"]
    path = Path(target)
    if path.suffix == ".ipynb":
        path = path if path.is_absolute() else (Path.cwd() / path)
        if not path.exists():
            raise ParameterError(f"no notebook at {path}")
        return [path.resolve()]
    if (nb_root / target).is_dir():
        return sorted((nb_root / target).glob("*.ipynb"))
    if (nb_root / f"{target}.ipynb").is_file():
        return [nb_root / f"{target}.ipynb"]
    chapters = sorted(p.name for p in nb_root.iterdir() if p.is_dir()) if nb_root.exists() else []
    raise ParameterError(f"unknown target {target!r}: use 'all', a chapter ({', '.join(chapters)}) or chapter/notebook")


# ------------------------------------------------------------------------------------ parameters


def declared_parameters(source: Path) -> dict[str, dict]:
    """The notebook's parameters cell as papermill reads it: name → {inferred_type_name, default, help}."""
    import papermill as pm

    return pm.inspect_notebook(str(source))


def profile_parameters(source: Path, profile: str) -> dict[str, Any]:
    """The parameters of one profile: {} for ``ci`` (the defaults), the YAML file's content otherwise."""
    if profile not in PROFILES:
        raise ParameterError(f"unknown profile {profile!r}; profiles are {', '.join(PROFILES)}")
    if profile == "ci":
        return {}
    path = source.with_suffix(f".{profile}.yaml")
    if not path.exists():
        if profile == "paper":
            return {}
        raise ParameterError(f"{source.parent.name}/{source.stem} has no '{profile}' profile ({path.name} missing)")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ParameterError(f"{path} must hold a mapping of parameter names to values")
    return data


_TYPE_CHECKS = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
}


def validate_parameters(source: Path, parameters: dict[str, Any]) -> None:
    """Refuse unknown parameter names and values of the wrong type, in one clear line."""
    declared = declared_parameters(source)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ParameterError(
            f"{source.parent.name}/{source.stem}: unknown parameter(s) {', '.join(unknown)}; "
            f"valid: {', '.join(declared)}"
        )
    for name, value in parameters.items():
        type_name = (declared[name].get("inferred_type_name") or "").replace("Optional[", "").rstrip("]")
        check = _TYPE_CHECKS.get(type_name.split("[")[0].lower())
        if check and value is not None and not check(value):
            raise ParameterError(
                f"{source.parent.name}/{source.stem}: parameter {name} must be {type_name}, got {value!r}"
            )


# ------------------------------------------------------------------------------------ fingerprints


_IMPORT = re.compile(r"(?:from|import)\s+compendium(?:\.(\w+))?")


def _package_files_used(source: Path) -> list[Path]:
    """The package files a notebook's code depends on: the subpackages/modules it imports, the
    core modules every notebook goes through, and its paper's published numbers."""
    pkg = Path(__file__).resolve().parent
    nb = nbformat.read(source, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    names = {m for m in _IMPORT.findall(code) if m} | {"verdicts", "published", "data", "paths"}
    files: list[Path] = []
    for name in sorted(names):
        if (pkg / name).is_dir():
            files += sorted(p for p in (pkg / name).rglob("*") if p.is_file() and p.suffix in (".py", ".yaml", ".tsv"))
        elif (pkg / f"{name}.py").is_file():
            files.append(pkg / f"{name}.py")
    return files


def fingerprint(source: Path, parameters: dict[str, Any], profile: str) -> str:
    """A hash of everything that decides a notebook's output: its code and markdown, the
    parameters and profile, and the package files it uses."""
    digest = hashlib.sha256()
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        digest.update(cell.cell_type.encode() + b"\0" + cell.source.encode() + b"\0")
    digest.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    digest.update(profile.encode())
    pkg = Path(__file__).resolve().parent
    for path in _package_files_used(source):
        digest.update(str(path.relative_to(pkg)).encode() + b"\0" + path.read_bytes())
    # Files a notebook reads besides the package and the data registry (e.g. the verdict page reads
    # every chapter's results) are declared as glob patterns in its metadata: compendium.inputs.
    root = repo_root()
    for pattern in nb.metadata.get(META_KEY, {}).get("inputs", []):
        for path in sorted(root.glob(pattern)):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def is_up_to_date(job: Job) -> bool:
    """True when the output exists and was made from the same inputs (same fingerprint)."""
    if not job.output.exists():
        return False
    try:
        meta = nbformat.read(job.output, as_version=4).metadata.get(META_KEY, {})
    except Exception:
        return False
    return meta.get("fingerprint") == fingerprint(job.source, job.parameters, job.profile) and meta.get("status") == "ok"


# ------------------------------------------------------------------------------------ provenance


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("compendium", "torch", "torch-geometric", "transformers", "numpy", "pandas", "scikit-learn", "papermill"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _hardware() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cpu_count": os.cpu_count(), "platform": platform.platform()}
    try:
        import torch

        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:
        info["gpu"] = None
    return info


def _provenance_markdown(meta: dict[str, Any]) -> str:
    params = ", ".join(f"`{k}={v!r}`" for k, v in meta["parameters"].items()) or "defaults"
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    hw = meta["hardware"]
    return (
        "### Run provenance\n\n"
        f"| | |\n|---|---|\n"
        f"| profile | `{meta['profile']}` |\n"
        f"| parameters | {params} |\n"
        f"| commit | `{meta['commit'] or 'unknown'}`{' (uncommitted changes)' if meta['dirty'] else ''} |\n"
        f"| executed | {meta['started']} |\n"
        f"| wall time | {meta['wall_time_s']:.1f} s |\n"
        f"| hardware | {hw['cpu']} ({hw['cpu_count']} cores){', GPU ' + hw['gpu'] if hw.get('gpu') else ', no GPU'} |\n"
        f"| versions | {versions} |\n"
    )


# ------------------------------------------------------------------------------------ execution


def make_job(source: Path, profile: str = "ci", overrides: dict[str, Any] | None = None, out_dir: Path | None = None) -> Job:
    params = {**profile_parameters(source, profile), **(overrides or {})}
    validate_parameters(source, params)
    out_dir = out_dir or (repo_root() / "book" / source.parent.name)
    return Job(source=source, output=out_dir / source.name, parameters=params, profile=profile)


def run_notebook(job: Job, *, force: bool = False, progress: bool = False, log_output: bool = False,
                 kernel_name: str | None = None) -> dict[str, Any]:
    """Execute one job with papermill (unless up to date); returns a summary dict
    (``status`` ok / skipped / failed, wall time, output path, error)."""
    import papermill as pm

    if not force and is_up_to_date(job):
        return {"notebook": f"{job.paper}/{job.name}", "status": "skipped", "output": str(job.output), "wall_time_s": 0.0}
    job.output.parent.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(job.source, job.parameters, job.profile)
    env_before = {k: os.environ.get(k) for k in ("COMPENDIUM_RESULTS_DIR", "COMPENDIUM_PROFILE")}
    # Results files are staged and join the book only with a notebook that ran to the end.
    staging = Path(tempfile.mkdtemp(prefix=f"compendium-{job.paper}-{job.name}-"))
    os.environ["COMPENDIUM_RESULTS_DIR"] = str(staging)
    os.environ["COMPENDIUM_PROFILE"] = job.profile
    tmp_output = job.output.with_suffix(".running.ipynb")
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    t0 = time.perf_counter()
    error = None
    try:
        pm.execute_notebook(
            str(job.source), str(tmp_output), parameters=job.parameters, cwd=str(job.source.parent),
            progress_bar=progress, log_output=log_output, kernel_name=kernel_name,
        )
        status = "ok"
    except Exception as exc:  # papermill raises PapermillExecutionError with the cell's traceback
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    wall = time.perf_counter() - t0
    meta = {
        "status": status, "profile": job.profile, "parameters": job.parameters, "fingerprint": fp,
        "commit": _git("rev-parse", "HEAD"), "dirty": bool(_git("status", "--porcelain", "--", "src", "notebooks")),
        "started": started, "wall_time_s": round(wall, 2), "versions": _versions(), "hardware": _hardware(),
        "source": str(job.source.relative_to(repo_root())) if job.source.is_relative_to(repo_root()) else str(job.source),
    }
    if tmp_output.exists():
        nb = nbformat.read(tmp_output, as_version=4)
        nb.metadata[META_KEY] = meta
        nb.cells.append(nbformat.v4.new_markdown_cell(_provenance_markdown(meta), metadata={"tags": ["provenance"]}))
        # A failed run is kept beside, never over, the last good output.
        target = job.output if status == "ok" else job.output.with_suffix(".failed.ipynb")
        nbformat.write(nb, target)
        tmp_output.unlink()
        if status == "ok":
            job.output.with_suffix(".failed.ipynb").unlink(missing_ok=True)
    if status == "ok":
        for path in staging.glob("*.results.json"):
            shutil.move(path, job.output.parent / path.name)
    shutil.rmtree(staging, ignore_errors=True)
    return {"notebook": f"{job.paper}/{job.name}", "status": status, "output": str(job.output),
            "wall_time_s": round(wall, 2), "error": error}


# ------------------------------------------------------------------------------------ batches


def load_grid(path: str | os.PathLike) -> list[dict[str, Any]]:
    """A grid file: ``{notebooks: [...], profile: ci, parameter_sets: [{...}, ...]}`` and/or
    ``matrix: {name: [v1, v2], ...}`` (their cartesian product). Returns one dict per run."""
    spec = yaml.safe_load(Path(path).read_text()) or {}
    notebooks = spec.get("notebooks") or []
    if not notebooks:
        raise ParameterError(f"{path}: 'notebooks' must list at least one chapter/notebook")
    sets = list(spec.get("parameter_sets") or [])
    matrix = spec.get("matrix") or {}
    if matrix:
        names = list(matrix)
        sets += [dict(zip(names, combo)) for combo in itertools.product(*(matrix[n] for n in names))]
    if not sets:
        sets = [{}]
    profile = spec.get("profile", "ci")
    return [{"target": nb, "profile": profile, "parameters": ps} for nb in notebooks for ps in sets]


def run_id(source: Path, profile: str, parameters: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps([profile, parameters], sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{source.parent.name}__{source.stem}__{profile}__{digest}"


def _execute_run(source: str, output: str, parameters: dict, profile: str, done_marker: str) -> dict:
    """Runs on a dask worker: one notebook, then an atomic DONE marker on success."""
    try:
        job = Job(source=Path(source), output=Path(output), parameters=parameters, profile=profile)
        result = run_notebook(job, force=True)
    except Exception:
        result = {"notebook": source, "status": "failed", "error": traceback.format_exc(limit=3), "wall_time_s": 0.0}
    result["run_id"] = Path(done_marker).parent.name
    if result["status"] == "ok":
        tmp = Path(done_marker + ".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(done_marker)
    return result


def run_batch(runs: list[dict[str, Any]], *, out_dir: Path, scheduler: str | None = None, workers: int = 2,
              progress: bool = True) -> list[dict[str, Any]]:
    """Execute runs (from :func:`load_grid`) through dask.distributed.

    Each run goes to ``out_dir/<run_id>/`` and leaves ``DONE.json`` when it succeeds; runs already
    done are not repeated (a killed batch resumes). One failure does not stop the rest. Uses a
    local cluster of ``workers`` processes, or the scheduler at ``scheduler`` (``tcp://host:8786``).
    """
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    planned, results = [], []
    for run in runs:
        for source in discover(run["target"]):
            params = {**profile_parameters(source, run["profile"]), **run["parameters"]}
            validate_parameters(source, params)
            rid = run_id(source, run["profile"], params)
            folder = out_dir / rid
            done = folder / "DONE.json"
            if done.exists():
                results.append({**json.loads(done.read_text()), "status": "done earlier"})
                continue
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "run.json").write_text(json.dumps({"source": str(source), "profile": run["profile"], "parameters": params}, indent=1))
            planned.append((str(source), str(folder / source.name), params, run["profile"], str(done)))
    if planned:
        cluster = None
        if scheduler:
            client = Client(scheduler)
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
        try:
            futures = [client.submit(_execute_run, *args, pure=False, key=f"run-{Path(args[4]).parent.name}") for args in planned]
            bar = tqdm(total=len(futures), desc="batch", disable=not progress)
            for future in as_completed(futures):
                try:
                    results.append(future.result())
                except Exception as exc:  # a worker died: report, keep going
                    results.append({"status": "failed", "error": f"{type(exc).__name__}: {exc}", "run_id": future.key})
                bar.update(1)
            bar.close()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return results
