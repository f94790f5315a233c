"""What an executed notebook shows a reader: the answer, not the machinery.

The runner applies :func:`clean_notebook` to every notebook it executes (after
:func:`compendium.runner.normalise_outputs`), so the stored notebook, and the book page made from it,
carry:

- code cells folded under the theme's toggle (tag ``hide-input``), except the parameters cell;
- the parameters cell showing the values the run used: papermill's injected cell is merged into it
  (each injected value replaces the default on its line, the comment kept) and removed;
- no stderr (warnings, progress bars, "Loading weights"), no progress-bar lines in stdout, no
  progress widgets, no bare object reprs (``<Figure size ...>``, ``<... at 0x…>``) as outputs;
- no machine paths: the repository, its parent folder (``shared/``) and the home folder are written
  relative (``shared/data/...``, ``~/...``);
- no ``# NBVAL_*`` comment lines: nbval reads the same markers from the cell tags they become
  (``nbval-check-output`` ...), so the canary checks still apply.

Progress bars still show when a person runs a notebook; they are only left out of the stored outputs.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterable

import nbformat

__all__ = ["clean_notebook", "clean_file", "merge_parameters", "strip_paths", "clean_stream", "is_noise_output"]

HIDE_INPUT = "hide-input"
#: Tags that already decide how a cell shows (left as they are).
SHOWN_AS_TAGGED = ("parameters", "remove-cell", "remove-input", "hide-input", "hide-cell")
_NBVAL_LINE = re.compile(r"^\s*#\s*(NBVAL_[A-Z_]+)\s*$")
# A progress bar line: "45%|████      | 9/20 [00:01<00:02, 4.2it/s]" (tqdm) or a "Loading ...: 100%" counter.
_PROGRESS = re.compile(r"\d{1,3}%\|.*\||\d+/\d+ \[\d+:\d+<|\bit/s\]|(?:Loading|Downloading|Fetching)[^\n]*:\s*\d{1,3}%")
# Outputs that are nothing but an object's default repr.
_BARE_REPR = re.compile(r"^\s*\[?\s*(<[^<>\n]*( at 0x[0-9a-f…]*|Figure size [^<>\n]*)>[,\s]*)+\]?\s*$")
_WIDGET = "application/vnd.jupyter.widget-view+json"


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _set_tags(cell, tags: Iterable[str]) -> None:
    tags = list(dict.fromkeys(tags))
    if tags:
        cell.metadata["tags"] = tags
    else:
        cell.metadata.pop("tags", None)


def _assignments(source: str) -> dict[str, str] | None:
    """name -> value source of each top-level ``name = value`` / ``name: type = value``; None if unparsable."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.get_source_segment(source, node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            out[node.target.id] = ast.get_source_segment(source, node.value)
    return out


def merge_parameters(defaults: str, injected: str) -> str | None:
    """The parameters cell's source with each injected value in place of its default (comments and type
    annotations kept), or None when that cannot be done safely (a default spread over several lines, a
    name the cell does not declare): then the caller keeps both cells."""
    values = _assignments(injected)
    if values is None or _assignments(defaults) is None:
        return None
    lines = defaults.splitlines()
    for name, value in values.items():
        pattern = re.compile(rf"^({re.escape(name)}\s*(?::[^=]+)?=\s*)(.*?)(\s*#.*)?$")
        hits = [i for i, line in enumerate(lines) if pattern.match(line)]
        if len(hits) != 1:
            return None
        i = hits[0]
        head, old, comment = pattern.match(lines[i]).groups()
        if _assignments(lines[i]) is None:  # the default continues on the next lines
            return None
        lines[i] = f"{head}{value}{comment or ''}"
    merged = "\n".join(lines)
    got = _assignments(merged)
    if got is None or any(ast.dump(ast.parse(got[k])) != ast.dump(ast.parse(v)) for k, v in values.items()):
        return None
    return merged


def strip_paths(text: str, roots: Iterable[tuple[str, str]]) -> str:
    """Machine paths written relative: each ``(absolute prefix, replacement)`` in turn, longest first."""
    for prefix, replacement in sorted(roots, key=lambda r: -len(r[0])):
        if prefix and prefix not in ("/", "."):
            text = text.replace(prefix.rstrip("/") + "/", replacement)
    return text


def default_roots() -> list[tuple[str, str]]:
    """The repository (-> relative), its parent folder (-> relative: ``shared/...``), the home folder (-> ``~/``)."""
    from .paths import repo_root

    roots = []
    try:
        root = repo_root()
        roots += [(str(root), ""), (str(root.parent), "")]
    except FileNotFoundError:
        pass
    roots.append((str(Path.home()), "~/"))
    return roots


def clean_stream(text: str) -> str:
    """stdout without progress bars: a carriage-return rewritten line keeps its last state, and a line
    that is a progress bar goes."""
    lines = []
    for line in text.split("\n"):
        if "\r" in line:
            line = [part for part in line.split("\r") if part.strip()][-1] if line.strip() else ""
        if _PROGRESS.search(line):
            continue
        lines.append(line)
    return "\n".join(lines)


def is_noise_output(output) -> bool:
    """stderr, a progress widget, or an output whose only content is a bare object repr."""
    kind = output.get("output_type")
    if kind == "stream":
        return output.get("name") == "stderr" or not clean_stream(output.get("text", "")).strip()
    data = output.get("data", {})
    if _WIDGET in data:
        return True
    if kind in ("display_data", "execute_result") and set(data) <= {"text/plain"}:
        return bool(_BARE_REPR.match(data.get("text/plain", "")))
    return False


def clean_notebook(nb: nbformat.NotebookNode, roots: Iterable[tuple[str, str]] | None = None) -> nbformat.NotebookNode:
    """Clean an executed notebook for the book, in place (see the module docstring); returns ``nb``."""
    roots = list(default_roots() if roots is None else roots)
    params = next((c for c in nb.cells if "parameters" in _tags(c)), None)
    injected = next((c for c in nb.cells if "injected-parameters" in _tags(c)), None)
    if params is not None and injected is not None:
        merged = merge_parameters(params.source, injected.source)
        if merged is not None:
            params.source = merged
            nb.cells.remove(injected)
    kept = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            kept.append(cell)
            continue
        tags = _tags(cell)
        source_lines = cell.source.split("\n")
        markers = [m.group(1) for line in source_lines if (m := _NBVAL_LINE.match(line))]
        if markers:
            cell.source = "\n".join(line for line in source_lines if not _NBVAL_LINE.match(line)).strip("\n")
            tags += [m.lower().replace("_", "-") for m in markers]
        if not any(t in SHOWN_AS_TAGGED for t in tags) or "injected-parameters" in tags:
            tags.append(HIDE_INPUT)
        _set_tags(cell, tags)
        outputs = []
        for output in cell.get("outputs", []):
            if is_noise_output(output):
                continue
            if output.get("output_type") == "stream":
                output["text"] = strip_paths(clean_stream(output["text"]), roots)
            for mime, value in output.get("data", {}).items():
                if isinstance(value, str) and (mime.startswith("text/") or mime == "application/json"):
                    output["data"][mime] = strip_paths(value, roots)
            if output.get("output_type") == "error":
                output["traceback"] = [strip_paths(line, roots) for line in output.get("traceback", [])]
                output["evalue"] = strip_paths(output.get("evalue", ""), roots)
            outputs.append(output)
        cell.outputs = outputs
        kept.append(cell)
    nb.cells = kept
    nb.metadata.pop("widgets", None)  # the state of the progress widgets removed above
    return nb


def clean_file(path: str | Path, out: str | Path | None = None) -> Path:
    """Clean a stored notebook (``out`` defaults to the same file)."""
    nb = nbformat.read(str(path), as_version=4)
    target = Path(out or path)
    nbformat.write(clean_notebook(nb), str(target))
    return target
