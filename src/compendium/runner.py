"""Execute the book's notebooks with papermill: profiles, provenance, skipping, batches.

A chapter is a folder ``notebooks/<paper>/``; each notebook ``<name>.ipynb`` there has a cell tagged
``parameters`` whose defaults are the ``ci`` profile. ``<name>.paper.yaml`` and ``<name>.gpu.yaml``
beside it hold the other profiles' parameters (a notebook without ``<name>.paper.yaml`` runs its
defaults at paper scale too: its defaults already are the full computation).

``run_notebook`` writes ``book/<paper>/<name>.ipynb`` (the notebook's ``<name>.results.json`` and any other
file it writes to :func:`compendium.verdicts.results_dir` are staged in a folder under the cache and join it
only when the run ends well), stamps provenance into the notebook's metadata and a closing markdown cell,
and skips a notebook whose inputs (source, parameters, the package code it imports) have not changed since
the output was made. Only the paper profile (or the gpu profile, labelled as such) without overrides may
write into ``book/``; a failed notebook is kept outside it. ``run_batch`` runs a grid of notebooks × parameter sets through
``dask.distributed``, resumably.

A parameter's allowed values are declared once, in its comment in the parameters cell, and checked
before any kernel starts: ``rule: str = "a"  # what it is; choices: a, b, c`` (for a list parameter:
each element), ``ratio: float = 0.5  # what it is; range: 0..1`` (either bound may be left out).
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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import yaml

from .bookclean import clean_notebook
from .paths import book_dir, cache_root, repo_root

PROFILES = ("ci", "paper", "gpu")
META_KEY = "compendium"

__all__ = [
    "PROFILES", "ParameterError", "Job", "discover", "profile_parameters", "validate_parameters",
    "fingerprint", "is_up_to_date", "run_notebook", "run_batch", "load_grid", "parameter_constraints",
    "normalise_outputs", "describe_failure", "run_label",
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


_CHOICES = re.compile(r"\bchoices:\s*([^;]+?)\s*(?:;|$)")
_NUMBER = r"-?\d+(?:\.\d*)?(?:e-?\d+)?"
_RANGE = re.compile(rf"\brange:\s*(?P<low>{_NUMBER})?\s*\.\.\s*(?P<high>{_NUMBER})?")


def parameter_constraints(help_text: str) -> dict[str, Any]:
    """The machine-readable part of a parameter's comment: ``choices: a, b, c`` → {"choices": [...]},
    ``range: 0..1`` → {"range": (0.0, 1.0)} (a missing bound is None)."""
    out: dict[str, Any] = {}
    match = _CHOICES.search(help_text or "")
    if match:
        # Each choice parsed as YAML, so numbers compare as numbers and words stay strings.
        out["choices"] = [yaml.safe_load(c.strip()) for c in match.group(1).split(",") if c.strip()]
    match = _RANGE.search(help_text or "")
    if match and (match.group("low") or match.group("high")):
        out["range"] = tuple(float(b) if b else None for b in (match.group("low"), match.group("high")))
    return out


def _check_constraints(where: str, name: str, value: Any, constraints: dict[str, Any]) -> None:
    items = value if isinstance(value, list) else [value]
    choices = constraints.get("choices")
    if choices is not None:
        bad = [v for v in items if v not in choices]
        if bad:
            raise ParameterError(
                f"{where}: parameter {name} = {value!r} is not allowed; choices: {', '.join(map(str, choices))}"
            )
    if "range" in constraints:
        low, high = constraints["range"]
        for v in items:
            if isinstance(v, (int, float)) and not isinstance(v, bool) and (
                    (low is not None and v < low) or (high is not None and v > high)):
                bounds = f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"
                raise ParameterError(f"{where}: parameter {name} = {v!r} is outside its range {bounds}")


def validate_parameters(source: Path, parameters: dict[str, Any]) -> None:
    """Refuse unknown parameter names, values of the wrong type and values outside the choices or
    range declared in the parameter's comment, in one clear line, before any kernel starts."""
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
        if value is not None:
            _check_constraints(f"{source.parent.name}/{source.stem}", name, value,
                               parameter_constraints(declared[name].get("help", "")))


# ------------------------------------------------------------------------------------ fingerprints


def _package_files_used(source: Path) -> list[Path]:
    """The package files a notebook's output depends on: the import closure of its code inside the
    package (see :mod:`compendium.imports`), the published numbers of its paper and of any paper it
    loads by name, and the data registry."""
    from . import imports

    pkg = imports.PACKAGE
    nb = nbformat.read(source, as_version=4)
    code = "\n\n# --- cell ---\n".join(c.source for c in nb.cells if c.cell_type == "code")
    files = set(imports.closure(imports.code_imports(code)))
    keys = imports.published_keys(code)
    if keys is None:  # a computed key: any paper's numbers
        files |= set((pkg / "published").glob("*.yaml"))
    else:
        files |= {pkg / "published" / f"{key}.yaml" for key in keys | {source.parent.name}}
    if pkg / "papers.py" in files:
        files.add(pkg / "papers.yaml")
    files |= {p for p in (pkg / "data").glob("*") if p.suffix in (".tsv", ".yaml")}
    return sorted(p for p in files if p.is_file())


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


BOOK_PROFILES = ("paper", "gpu")


def _inside_book(path: Path) -> bool:
    try:
        book = book_dir()
    except FileNotFoundError:  # an installed package outside any repository has no book to protect
        return False
    return path.resolve().is_relative_to(book.resolve())


def make_job(source: Path, profile: str = "ci", overrides: dict[str, Any] | None = None, out_dir: Path | None = None) -> Job:
    """A validated job; ``out_dir`` defaults to ``book/<paper>/``, which only the paper or gpu profile
    without overrides may write (anything else would pass non-book numbers off as the book's)."""
    params = {**profile_parameters(source, profile), **(overrides or {})}
    validate_parameters(source, params)
    out_dir = Path(out_dir) if out_dir is not None else book_dir() / source.parent.name
    if _inside_book(out_dir) and (overrides or profile not in BOOK_PROFILES):
        what = f"parameter overrides ({', '.join(overrides)})" if overrides else f"the {profile} profile"
        raise ParameterError(
            f"{source.parent.name}/{source.stem}: a run with {what} does not write into book/ "
            f"(only --profile paper or gpu without -p does); give --out FOLDER"
        )
    return Job(source=source, output=out_dir / source.name, parameters=params, profile=profile)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def describe_failure(exc: BaseException) -> str:
    """One line: the exception's class and message. For a failure inside the notebook these are the
    cell's (papermill's ``ename`` / ``evalue``), so a data error names its key, URL and place."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename is None:
        ename, evalue = type(exc).__name__, str(exc)
    evalue = _ANSI.sub("", str(evalue or "")).strip()
    return f"{ename}: {evalue}" if evalue else ename


# Random per-execution ids and addresses in outputs: pandas Styler table ids (5 hex digits) and
# default object reprs. Replaced so that re-executing an unchanged notebook gives the same file.
_STYLER_ID = re.compile(r"\bT_([0-9a-f]{5})(?![0-9a-z])")
_ADDRESS = re.compile(r"\bat 0x[0-9a-f]{4,16}\b")
# Per-cell timing stamps papermill and nbclient add; the provenance cell records the wall time.
_TIMING_KEYS = ("execution", "papermill")


def normalise_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Make an executed notebook reproducible byte for byte: Styler ids numbered in order of
    appearance, ``at 0x...`` addresses blanked, timing metadata dropped (in place; returns ``nb``)."""
    styler_ids: dict[str, str] = {}

    def fix(text: str) -> str:
        text = _STYLER_ID.sub(lambda m: "T_" + styler_ids.setdefault(m.group(1), f"s{len(styler_ids):04d}"), text)
        return _ADDRESS.sub("at 0x…", text)

    for cell in nb.cells:
        for key in _TIMING_KEYS:
            cell.metadata.pop(key, None)
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = fix(output["text"])
            for mime, value in output.get("data", {}).items():
                if isinstance(value, str):
                    output["data"][mime] = fix(value)
    papermill_meta = nb.metadata.get("papermill")
    if papermill_meta:
        nb.metadata["papermill"] = {k: papermill_meta[k] for k in ("parameters", "version") if k in papermill_meta}
    return nb


def staging_root() -> Path:
    """Where runs stage their unfinished notebook and results: under the cache, one folder per run
    named after the process that owns it, so that a later start can remove those of dead processes."""
    return cache_root() / "staging"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _staging_prefix() -> str:
    # pid and host: a cache shared by several machines (a dask cluster) only loses folders of dead local runs.
    return f"{os.getpid()}-{platform.node() or 'host'}-"


def clean_stale_staging() -> list[Path]:
    """Remove staging folders left by killed runs on this machine (their process is gone); returns them."""
    removed = []
    root = staging_root()
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        pid, _, rest = folder.name.partition("-")
        if pid.isdigit() and rest.startswith(f"{platform.node() or 'host'}-") and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def failed_notebook_path(job: Job) -> Path:
    """Where a failed run's notebook is kept: beside the output, except for book/ outputs, whose
    failures go under the cache (book/ holds only finished notebooks)."""
    if _inside_book(job.output.parent):
        return cache_root() / "failed" / job.paper / f"{job.name}.failed.ipynb"
    return job.output.with_suffix(".failed.ipynb")


# Set by the command line's SIGINT handler. Ctrl-C reaches the kernel too (same process group), and
# ipykernel may catch it and end the cell with its own KeyboardInterrupt, or the event loop may swallow
# ours: either way the run was interrupted, and it must neither count as finished nor write its output.
INTERRUPTED = threading.Event()


def _was_interrupted(error: str | None) -> bool:
    return INTERRUPTED.is_set() or bool(error and error.split(":", 1)[0].strip() == "KeyboardInterrupt")


def run_notebook(job: Job, *, force: bool = False, progress: bool = False, log_output: bool = False,
                 kernel_name: str | None = None) -> dict[str, Any]:
    """Execute one job with papermill (unless up to date); returns a summary dict
    (``status`` ok / skipped / failed, wall time, output path, ``error`` as "Class: message",
    ``failed_notebook`` where the failed notebook was kept)."""
    import papermill as pm

    summary = {"notebook": f"{job.paper}/{job.name}", "output": str(job.output)}
    if not force and is_up_to_date(job):
        return {**summary, "status": "skipped", "wall_time_s": 0.0}
    clean_stale_staging()
    job.output.parent.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(job.source, job.parameters, job.profile)
    # The code that runs is the checkout as it is now: a commit made while a long run goes on names other code.
    commit, dirty = _git("rev-parse", "HEAD"), bool(_git("status", "--porcelain", "--", "src", "notebooks"))
    env_before = {k: os.environ.get(k) for k in ("COMPENDIUM_RESULTS_DIR", "COMPENDIUM_PROFILE")}
    # The unfinished notebook and the results files are staged; they join the output folder only
    # with a notebook that ran to the end. A killed run leaves them in the cache, never beside the book.
    staging_root().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix()}{job.paper}-{job.name}-", dir=staging_root()))
    os.environ["COMPENDIUM_RESULTS_DIR"] = str(staging)
    os.environ["COMPENDIUM_PROFILE"] = job.profile
    tmp_output = staging / f"{job.name}.running.ipynb"
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    t0 = time.perf_counter()
    error = None
    try:
        try:
            pm.execute_notebook(
                str(job.source), str(tmp_output), parameters=job.parameters, cwd=str(job.source.parent),
                progress_bar=progress, log_output=log_output, kernel_name=kernel_name,
                # The kernel's own log (a TCP warning on every start, zmq tracebacks when Ctrl-C shuts it
                # down) is not the user's business; a failing cell still reaches them as ename / evalue.
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            )
            status = "ok"
        except Exception as exc:  # papermill raises PapermillExecutionError with the cell's ename / evalue
            status, error = "failed", describe_failure(exc)
        finally:
            for key, value in env_before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        if _was_interrupted(error):
            raise KeyboardInterrupt  # the finally below removes what was staged; nothing is written
        wall = time.perf_counter() - t0
        meta = {
            "status": status, "profile": job.profile, "parameters": job.parameters, "fingerprint": fp,
            "commit": commit, "dirty": dirty,
            "started": started, "wall_time_s": round(wall, 2), "versions": _versions(), "hardware": _hardware(),
            "source": str(job.source.relative_to(repo_root())) if job.source.is_relative_to(repo_root()) else str(job.source),
        }
        failed_copy = failed_notebook_path(job)
        if tmp_output.exists():
            nb = clean_notebook(normalise_outputs(nbformat.read(tmp_output, as_version=4)))  # what a reader sees: compendium.bookclean
            nb.metadata[META_KEY] = meta
            # A fixed cell id: nbformat would draw a random one on every run.
            nb.cells.append(nbformat.v4.new_markdown_cell(_provenance_markdown(meta), id="run-provenance",
                                                          metadata={"tags": ["provenance"]}))
            # A failed run is kept apart from, never over, the last good output.
            target = job.output if status == "ok" else failed_copy
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)
        if status == "ok":
            failed_copy.unlink(missing_ok=True)
            # The results file and any side file the notebook wrote beside it (e.g. GFS's per-run record)
            for path in staging.iterdir():
                if path.is_file() and path != tmp_output:
                    shutil.move(path, job.output.parent / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary.update(status=status, wall_time_s=round(wall, 2), error=error)
    if status == "failed" and failed_copy.exists():
        summary["failed_notebook"] = str(failed_copy)
    return summary


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


def run_label(source: Path, profile: str, parameters: dict[str, Any]) -> str:
    """How a summary names a run: ``chapter/notebook [profile] name=value, ...``."""
    params = ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in parameters.items())
    return f"{source.parent.name}/{source.stem} [{profile}]" + (f" {params}" if params else "")


def _execute_run(source: str, output: str, parameters: dict, profile: str, done_marker: str) -> dict:
    """Runs on a dask worker: one notebook, then an atomic DONE marker on success."""
    try:
        job = Job(source=Path(source), output=Path(output), parameters=parameters, profile=profile)
        result = run_notebook(job, force=True)
    except Exception as exc:
        result = {"notebook": source, "status": "failed", "error": describe_failure(exc), "wall_time_s": 0.0}
    result["run_id"] = Path(done_marker).parent.name
    result["label"] = run_label(Path(source), profile, parameters)
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
    if _inside_book(out_dir):
        raise ParameterError(f"a batch does not write into book/ ({out_dir}); give another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    planned, results, labels = [], [], {}
    for run in runs:
        for source in discover(run["target"]):
            params = {**profile_parameters(source, run["profile"]), **run["parameters"]}
            validate_parameters(source, params)
            rid = run_id(source, run["profile"], params)
            folder = out_dir / rid
            done = folder / "DONE.json"
            if done.exists():
                results.append({**json.loads(done.read_text()), "status": "done earlier",
                                "label": run_label(source, run["profile"], params)})
                continue
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "run.json").write_text(json.dumps({"source": str(source), "profile": run["profile"], "parameters": params}, indent=1))
            planned.append((str(source), str(folder / source.name), params, run["profile"], str(done)))
            labels[rid] = run_label(source, run["profile"], params)
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
                    rid = str(future.key).removeprefix("run-")
                    results.append({"status": "failed", "error": describe_failure(exc), "run_id": rid,
                                    "label": labels.get(rid, rid), "wall_time_s": 0.0})
                bar.update(1)
            bar.close()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return results
