"""Emotion wheels, synonym and word-form maps, and the official label mapping of AffectGPT / OV-MER.

Implements the "case1 / case2 / case3" label mappings used by the EW (emotion-wheel) metrics of AffectGPT
(arXiv 2501.16566, Sec. 4 "MER-UniBench") and OV-MER (arXiv 2410.01495), from the definitions in
``../shared/research/emotion.md`` section 1.3, which describes ``AffectGPT/my_affectgpt/evaluation/wheel.py`` and
``toolkit/utils/functions.py::string_to_list`` in ``zeroQiaoba/AffectGPT`` @
``d961cab04ab2903fefb22a641331e1242949b15d`` (the same code is in ``zeroQiaoba/MERTools`` @
``89120b780ab18b28349f0e37dcc12b8cc253cb02``, ``MER2025/MER2025_Track23``).

Files (``emotion_wheel/`` of that commit; in the book: ``fetch("emotion/affectgpt/emotion_wheel")``):

- ``wheel1.xlsx`` .. ``wheel5.xlsx``: columns ``level1, level2, level3``; merged cells are empty below their first row
  and are forward-filled; words are lower-cased and stripped. The union of the words of the five wheels has 253
  entries.
- ``synonym.xlsx``: 8 GPT runs, columns ``word_run{k}`` (a wheel word) and ``synonym_run{k}`` (comma-separated
  synonyms). The merged map ``synonym -> wheel words`` (:func:`build_raw_mapping`) has 1,255 keys.
- ``format.csv``: columns ``name`` (one of the 1,255 words) and ``format`` (comma-separated word forms). The map
  ``form -> names`` (:func:`build_format_mapping`) has 7,386 keys.

Used by the AffectGPT and MER2025 chapters (``notebooks/affectgpt/``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "LEVELS",
    "NUM_WHEELS",
    "EmotionWheels",
    "WheelTree",
    "build_format_mapping",
    "build_raw_mapping",
    "map_label_format",
    "map_label_synonym",
    "map_label_wheel",
    "read_format_table",
    "read_synonym_runs",
    "read_wheel",
    "string_to_list",
    "wheel_cluster_map",
    "wheel_words",
]

NUM_WHEELS = 5
LEVELS = ("level1", "level2")
NUM_SYNONYM_RUNS = 8

#: A wheel as nested, insertion-ordered dicts: ``{level1: {level2: [level3, ...]}}`` in file order.
WheelTree = dict[str, dict[str, list[str]]]

_LIST_SPLIT = re.compile(r"['\",]")


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return False


def string_to_list(value: Any) -> list[str]:
    """Parse a label-list string the way the official AffectGPT / MER2025 code does.

    Rule (``toolkit/utils/functions.py::string_to_list``, emotion.md section 1.3): a list or array is returned as a
    list unchanged; ``''``, ``None`` and NaN give ``[]``; otherwise drop one leading ``'['`` and one trailing
    ``']'``, split on every ``'``, ``"`` and ``,``, strip the pieces and drop the empty ones. Splitting on quote
    characters is a quirk the published numbers include: ``"[don't believe, doubt]"`` gives
    ``['don', 't believe', 'doubt']``.
    """
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    if _is_missing(value) or value == "":
        return []
    text = str(value)
    if text.startswith("["):
        text = text[1:]
    if text.endswith("]"):
        text = text[:-1]
    return [piece.strip() for piece in _LIST_SPLIT.split(text) if piece.strip()]


def _norm(word: Any) -> str:
    return str(word).lower().strip()


# --------------------------------------------------------------------------------------------------------------
# Wheels
# --------------------------------------------------------------------------------------------------------------
def read_wheel(path: str | Path) -> WheelTree:
    """Read one ``wheelK.xlsx`` into ``{level1: {level2: [level3, ...]}}`` (forward-filled, lower-cased, stripped).

    A row whose cell is empty inherits the last non-empty value of that column (merged cells), as the official
    reader does; level-3 words are appended in file order, duplicates kept.
    """
    df = pd.read_excel(path, engine="openpyxl")
    missing = {"level1", "level2", "level3"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    tree: WheelTree = {}
    current = {"level1": "", "level2": "", "level3": ""}
    for row in df[["level1", "level2", "level3"]].itertuples(index=False):
        for col, value in zip(("level1", "level2", "level3"), row):
            if not pd.isna(value):
                current[col] = _norm(value)
        tree.setdefault(current["level1"], {}).setdefault(current["level2"], []).append(current["level3"])
    return tree


def wheel_words(tree: Mapping[str, Mapping[str, Sequence[str]]]) -> set[str]:
    """All words (level 1, 2 and 3) of one wheel."""
    words: set[str] = set()
    for level1, children in tree.items():
        words.add(level1)
        for level2, leaves in children.items():
            words.add(level2)
            words.update(leaves)
    return words


def wheel_cluster_map(tree: Mapping[str, Mapping[str, Sequence[str]]], level: str) -> dict[str, str]:
    """Map every word of a wheel to its cluster centre at ``level``.

    - ``level1``: every word -> its level-1 root.
    - ``level2``: a level-2 or level-3 word -> its level-2 parent; a level-1 root -> ``sorted(children)[0]`` (the
      alphabetically first of its level-2 children).

    Words are visited in file order (root, then each level-2 word followed by its level-3 words) and a later
    assignment overwrites an earlier one. This matters for the words that sit under two roots in wheel 2
    (``disappointed``, ``overwhelmed``, ``inferior``, ``embarrassed``): the occurrence lower in the sheet wins, as in
    the official ``func_get_wheel_cluster``.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    cluster: dict[str, str] = {}
    for root, children in tree.items():
        cluster[root] = root if level == "level1" else sorted(children)[0]
        for level2, leaves in children.items():
            centre = root if level == "level1" else level2
            cluster[level2] = centre
            for leaf in leaves:
                cluster[leaf] = centre
    return cluster


# --------------------------------------------------------------------------------------------------------------
# Synonyms and word forms
# --------------------------------------------------------------------------------------------------------------
def read_synonym_runs(path: str | Path) -> list[list[tuple[str, list[str]]]]:
    """Read ``synonym.xlsx`` into 8 runs, each a list of ``(wheel_word, [synonyms])`` pairs (lower-cased, stripped).

    Each run pairs a wheel word (column ``word_run{k}``) with its GPT synonyms (``synonym_run{k}``, parsed with
    :func:`string_to_list`). Row order differs between runs, so rows are not aligned across runs.
    """
    df = pd.read_excel(path, engine="openpyxl")
    runs = []
    for k in range(1, NUM_SYNONYM_RUNS + 1):
        pairs = []
        for word, synonyms in zip(df[f"word_run{k}"], df[f"synonym_run{k}"]):
            if pd.isna(word):
                continue
            pairs.append((_norm(word), [_norm(s) for s in string_to_list(synonyms)]))
        runs.append(pairs)
    return runs


def build_raw_mapping(runs: Iterable[Iterable[tuple[str, Sequence[str]]]]) -> dict[str, tuple[str, ...]]:
    """``raw_mapping``: word -> sorted wheel words ``w`` with ``word == w`` or ``word`` in the synonyms of ``w``.

    Union over all runs (emotion.md section 1.3). On the real files this has 1,255 keys.
    """
    merged: dict[str, set[str]] = {}
    for run in runs:
        for raw, synonyms in run:
            merged.setdefault(raw, set()).add(raw)
            for synonym in synonyms:
                merged.setdefault(synonym, set()).add(raw)
    return {word: tuple(sorted(raws)) for word, raws in merged.items()}


def read_format_table(path: str | Path) -> list[tuple[str, list[str]]]:
    """Read ``format.csv`` into ``(name, [forms])`` pairs; forms are parsed with :func:`string_to_list`.

    Cells are read as text (``keep_default_na=False``), so no word is turned into NaN; an empty ``format`` gives no
    forms.
    """
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [(name, string_to_list(forms)) for name, forms in zip(df["name"], df["format"])]


def build_format_mapping(table: Iterable[tuple[str, Sequence[str]]]) -> dict[str, tuple[str, ...]]:
    """``format_mapping``: a word form -> sorted names whose form list contains it; a name also maps to itself.

    On the real ``format.csv`` this has 7,386 keys (emotion.md section 1.3).
    """
    merged: dict[str, set[str]] = {}
    for name, forms in table:
        for form in forms:
            merged.setdefault(form, set()).add(name)
        merged.setdefault(name, set()).add(name)
    return {form: tuple(sorted(names)) for form, names in merged.items()}


# --------------------------------------------------------------------------------------------------------------
# Mapping one label
# --------------------------------------------------------------------------------------------------------------
def map_label_format(label: str, format_mapping: Mapping[str, Sequence[str]]) -> str:
    """OV-MER metric M1 ("case1"): the alphabetically first name whose forms include ``label``; ``''`` if none."""
    names = format_mapping.get(label)
    if not names:
        return ""
    return sorted(names)[0]


def map_label_synonym(
    label: str, format_mapping: Mapping[str, Sequence[str]], raw_mapping: Mapping[str, Sequence[str]]
) -> str:
    """OV-MER metric M2 ("case2"): M1, then the alphabetically first wheel word of that name's synonym set.

    ``''`` if the label has no form entry or the name has no synonym entry.
    """
    name = map_label_format(label, format_mapping)
    if not name:
        return ""
    raws = raw_mapping.get(name)
    if not raws:
        return ""
    return sorted(raws)[0]


def map_label_wheel(
    label: str,
    format_mapping: Mapping[str, Sequence[str]],
    raw_mapping: Mapping[str, Sequence[str]],
    wheel_map: Mapping[str, str],
) -> str:
    """EW mapping ("case3"): label -> forms -> wheel words -> cluster centre, first candidate in alphabetical order.

    ``cands = [raw for f in format_mapping[label] for raw in raw_mapping[f]]``; return ``wheel_map[c]`` for the
    alphabetically first ``c`` in ``sorted(cands)`` that is in the wheel, else ``''``. A label with no form entry
    gives ``''``. The alphabetical rule produces the documented oddities, which the published numbers include:
    "fear" has the forms fear/fearful/fearless, "fearless" brings the wheel words brave/courageous/daring, and
    these sort before "fear", so "fear" lands in a positive cluster of wheels 2-5 (happy, joyful, genius, joyful);
    "neutral" maps to nothing in every wheel; "surprise" maps to nothing in wheel 5.
    """
    names = format_mapping.get(label)
    if not names:
        return ""
    candidates = sorted(raw for name in names for raw in raw_mapping.get(name, ()))
    for candidate in candidates:
        if candidate in wheel_map:
            return wheel_map[candidate]
    return ""


# --------------------------------------------------------------------------------------------------------------
# All maps together
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmotionWheels:
    """The five wheels plus the format and synonym maps; maps labels for the EW, M1 and M2 metrics.

    Build it from the official directory with :meth:`from_dir` (cached per path), or directly from small dicts in
    tests: ``EmotionWheels(trees=[{"happy": {"joyful": ["glad"]}}], format_mapping=..., raw_mapping=...)``.
    Wheels are numbered from 1 in the public methods, as in the file names.
    """

    trees: tuple[WheelTree, ...]
    format_mapping: Mapping[str, tuple[str, ...]]
    raw_mapping: Mapping[str, tuple[str, ...]]
    _cluster_maps: dict[tuple[int, str], dict[str, str]] = field(default_factory=dict, repr=False, compare=False)
    _memo: dict[tuple[str, int, str], dict[str, str]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "trees", tuple(self.trees))

    @classmethod
    def from_dir(cls, path: str | Path, synonym_runs: tuple[int, ...] | None = None) -> "EmotionWheels":
        """Load ``wheel1..5.xlsx``, ``synonym.xlsx`` and ``format.csv`` from ``path`` (cached per resolved path).

        ``synonym_runs``: build the synonym map from these GPT runs of ``synonym.xlsx`` only (1-based; default all
        8, the released map), to test how the scores depend on the map's version."""
        if synonym_runs is not None:
            bad = [k for k in synonym_runs if not 1 <= k <= NUM_SYNONYM_RUNS]
            if bad or not synonym_runs:
                raise ValueError(f"synonym_runs must be non-empty run numbers in 1..{NUM_SYNONYM_RUNS}, got {synonym_runs}")
            synonym_runs = tuple(sorted(set(synonym_runs)))
        return _load_wheels(str(Path(path).resolve()), synonym_runs)

    @property
    def num_wheels(self) -> int:
        return len(self.trees)

    @property
    def words(self) -> set[str]:
        """Union of the words of all wheels (253 for the official files)."""
        out: set[str] = set()
        for tree in self.trees:
            out |= wheel_words(tree)
        return out

    def cluster_map(self, wheel: int, level: str = "level1") -> dict[str, str]:
        """Cluster map of wheel ``wheel`` (1-based) at ``level`` (see :func:`wheel_cluster_map`)."""
        key = (wheel, level)
        if key not in self._cluster_maps:
            if not 1 <= wheel <= self.num_wheels:
                raise ValueError(f"wheel must be in 1..{self.num_wheels}, got {wheel}")
            self._cluster_maps[key] = wheel_cluster_map(self.trees[wheel - 1], level)
        return self._cluster_maps[key]

    def map_label(self, label: str, wheel: int, level: str = "level1") -> str:
        """Map one (already lower-cased, stripped) label onto wheel ``wheel`` at ``level``; ``''`` if it drops."""
        return map_label_wheel(label, self.format_mapping, self.raw_mapping, self.cluster_map(wheel, level))

    def map_labels(self, labels: Any, mode: str = "wheel", wheel: int = 1, level: str = "level1") -> set[str]:
        """Map a label list (or list string) to a set, dropping labels that map to nothing.

        ``labels`` goes through :func:`string_to_list`, then each item is lower-cased and stripped (as the
        official ``calculate_openset_overlap_rate`` does). ``mode``: ``"format"`` (M1), ``"synonym"`` (M2) or
        ``"wheel"`` (M3 / EW, needs ``wheel`` and ``level``).
        """
        if mode not in ("format", "synonym", "wheel"):
            raise ValueError(f"mode must be 'format', 'synonym' or 'wheel', got {mode!r}")
        key = (mode, wheel, level) if mode == "wheel" else (mode, 0, "")
        memo = self._memo.setdefault(key, {})
        out = set()
        for item in string_to_list(labels):
            label = _norm(item)
            if label not in memo:
                memo[label] = self._map_one(label, mode, wheel, level)
            if memo[label]:
                out.add(memo[label])
        return out

    def _map_one(self, label: str, mode: str, wheel: int, level: str) -> str:
        if mode == "format":
            return map_label_format(label, self.format_mapping)
        if mode == "synonym":
            return map_label_synonym(label, self.format_mapping, self.raw_mapping)
        return map_label_wheel(label, self.format_mapping, self.raw_mapping, self.cluster_map(wheel, level))


@functools.lru_cache(maxsize=8)
def _read_synonyms_cached(path: str) -> tuple:
    return tuple(tuple(run) for run in read_synonym_runs(path))


@functools.lru_cache(maxsize=32)
def _load_wheels(path: str, synonym_runs: tuple[int, ...] | None = None) -> EmotionWheels:
    root = Path(path)
    trees = tuple(read_wheel(root / f"wheel{k}.xlsx") for k in range(1, NUM_WHEELS + 1))
    runs = _read_synonyms_cached(str(root / "synonym.xlsx"))
    if synonym_runs is not None:
        runs = tuple(runs[k - 1] for k in synonym_runs)
    raw_mapping = build_raw_mapping(runs)
    format_mapping = build_format_mapping(read_format_table(root / "format.csv"))
    return EmotionWheels(trees=trees, format_mapping=format_mapping, raw_mapping=raw_mapping)
