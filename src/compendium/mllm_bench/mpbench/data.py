"""The real MPBench (Hugging Face ``xuzhaopan/MPBench``, apache-2.0), from a local folder or the hub.

The dataset holds ``step_correctness.json`` (11 MB), ``answer_aggregation.json`` (11.6 MB),
``reasoning_process_search.json`` (9.95 MB) and ``image.zip`` (873 MB). The Hugging Face viewer fails
on it (FeaturesError: pandas -> Arrow), so each file is read with ``datasets``' JSON builder first and,
when Arrow cannot hold it, with the ``json`` module.

**The record schema is not documented** and our machines cannot download the files, so the field names
below are guesses (``DEFAULT_FIELDS``): every lookup tries a list of candidate keys, and a record
without any of them raises an error that lists the keys it does have, so a user can pass the right
names through ``fields=``. Nothing here has been run on the real files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .judges import SearchCase, SolutionCase

__all__ = ["HUB_ID", "FILES", "DEFAULT_FIELDS", "MPBenchNotFound", "locate", "load_records", "step_cases",
           "aggregation_cases", "search_cases", "AggregationCase"]

HUB_ID = "xuzhaopan/MPBench"
FILES = {
    "step_correctness": "step_correctness.json",
    "answer_aggregation": "answer_aggregation.json",
    "reasoning_process_search": "reasoning_process_search.json",
}
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "question": ("question", "problem", "query", "prompt"),
    "image": ("image", "image_path", "img", "image_file"),
    "steps": ("steps", "solution_steps", "process", "reasoning_steps", "solution"),
    "labels": ("labels", "step_labels", "step_label", "label"),
    "first_error": ("first_error", "error_step", "first_error_step", "error_index"),
    "candidates": ("candidates", "responses", "solutions", "candidate_solutions"),
    "candidate_answers": ("answers", "candidate_answers", "final_answers", "predictions"),
    "answer": ("answer", "gold", "ground_truth", "gt_answer", "correct_answer"),
    "history": ("history", "history_steps", "previous_steps", "prefix_steps"),
    "next_steps": ("candidate_steps", "next_steps", "candidates", "options"),
    "next_labels": ("candidate_labels", "next_step_labels", "labels", "label"),
    "domain": ("domain", "subject", "category"),
}


class MPBenchNotFound(FileNotFoundError):
    """The MPBench files are neither at the given path nor downloadable from here."""


def _message(paradigm: str, source: str) -> str:
    return (
        f"MPBench file {FILES[paradigm]!r} not found (looked for {source!r}). Download the dataset "
        f"'{HUB_ID}' (apache-2.0) on a machine with internet, e.g. "
        f"`huggingface-cli download {HUB_ID} --repo-type dataset --local-dir MPBench`, unzip image.zip inside "
        "it, and pass that folder as data_source."
    )


def locate(source: str | Path | None, paradigm: str) -> Path:
    """The JSON file of one paradigm: ``source`` is a folder holding the files, the file itself, or a
    hub id (downloaded with ``huggingface_hub`` when the machine has internet)."""
    if paradigm not in FILES:
        raise ValueError(f"paradigm must be one of {tuple(FILES)}")
    source = str(source or HUB_ID)
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        if (path / FILES[paradigm]).is_file():
            return path / FILES[paradigm]
        raise MPBenchNotFound(_message(paradigm, str(path / FILES[paradigm])))
    if "/" in source and not source.startswith((".", "/", "~")):
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(repo_id=source, filename=FILES[paradigm], repo_type="dataset"))
        except Exception as err:  # offline, gated, or no such repo
            raise MPBenchNotFound(_message(paradigm, source) + f" (hub error: {type(err).__name__})") from err
    raise MPBenchNotFound(_message(paradigm, source))


def load_records(path: str | Path) -> list[dict]:
    """The records of one file: through ``datasets`` (JSON builder), or the ``json`` module when Arrow
    cannot hold the mixed types (as on the hub viewer)."""
    path = Path(path)
    try:
        import datasets

        ds = datasets.load_dataset("json", data_files=str(path), split="train")
        return [dict(r) for r in ds]
    except Exception:
        text = path.read_text()
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        if isinstance(obj, dict):
            lists = [v for v in obj.values() if isinstance(v, list)]
            if len(lists) == 1:
                return lists[0]
            return [dict(v, id=k) if isinstance(v, dict) else {"id": k, "value": v} for k, v in obj.items()]
        return list(obj)


def _get(record: dict, what: str, fields: dict, *, required: bool = True) -> Any:
    for key in fields.get(what, DEFAULT_FIELDS[what]):
        if key in record and record[key] is not None:
            return record[key]
    if required:
        raise KeyError(
            f"MPBench record has none of the keys {list(fields.get(what, DEFAULT_FIELDS[what]))} for '{what}'; "
            f"its keys are {sorted(record)}. Pass fields={{'{what}': ('<key>',)}}."
        )
    return None


def _image(record: dict, fields: dict, image_root: str | Path | None):
    ref = _get(record, "image", fields, required=False)
    if ref is None or image_root is None or not isinstance(ref, str):
        return ref
    from PIL import Image

    return Image.open(Path(image_root) / ref).convert("RGB")


def _as_label(v) -> int:
    """Step labels may come as 1/0, +1/-1, True/False or strings."""
    if isinstance(v, str):
        return int(v.strip().lower() in ("1", "+", "correct", "true", "yes", "positive"))
    return int(float(v) > 0)


def step_cases(records: list[dict], *, fields: dict | None = None, image_root=None) -> list[tuple[SolutionCase, list[int]]]:
    """(case, step labels) pairs. Labels come from a per-step list or from a first-error index
    (1-based; -1 or 0 or None for "no error"; then steps after the first error are labelled 0)."""
    fields = fields or {}
    out = []
    for r in records:
        steps = [str(s) for s in _get(r, "steps", fields)]
        labels = _get(r, "labels", fields, required=False)
        if isinstance(labels, list) and len(labels) == len(steps):
            y = [_as_label(v) for v in labels]
        else:
            k = _get(r, "first_error", fields)
            k = -1 if k in (None, -1, 0, "-1", "") else int(k)
            y = [1] * len(steps) if k < 0 else [1] * (k - 1) + [0] * (len(steps) - k + 1)
        out.append((SolutionCase(str(_get(r, "question", fields)), steps, _image(r, fields, image_root)), y))
    return out


@dataclass
class AggregationCase:
    question: str
    candidates: list[list[str]]
    answers: list
    gold: Any
    image: Any = None


def aggregation_cases(records: list[dict], *, fields: dict | None = None, image_root=None) -> list[AggregationCase]:
    fields = fields or {}
    out = []
    for r in records:
        cands = _get(r, "candidates", fields)
        steps = [[str(s) for s in (c.get("steps") if isinstance(c, dict) else c)] for c in cands]
        answers = _get(r, "candidate_answers", fields, required=False)
        if answers is None:
            answers = [c.get("answer") if isinstance(c, dict) else None for c in cands]
        out.append(AggregationCase(str(_get(r, "question", fields)), steps, list(answers), _get(r, "answer", fields),
                                   _image(r, fields, image_root)))
    return out


def search_cases(records: list[dict], *, fields: dict | None = None, image_root=None) -> list[tuple[SearchCase, list[int]]]:
    fields = fields or {}
    out = []
    for r in records:
        nxt = _get(r, "next_steps", fields)
        texts = [str(c.get("step", c.get("text")) if isinstance(c, dict) else c) for c in nxt]
        labels = _get(r, "next_labels", fields, required=False)
        if labels is None:
            labels = [c.get("label") for c in nxt]
        case = SearchCase(str(_get(r, "question", fields)), [str(s) for s in (_get(r, "history", fields) or [])], texts,
                          _image(r, fields, image_root))
        out.append((case, [_as_label(v) for v in labels]))
    return out
