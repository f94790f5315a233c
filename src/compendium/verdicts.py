"""The verdict contract: what every results cell of the book is evidence of.

A results cell puts a number measured here beside a published one (or tests a claim of a paper) and
says four things about it, so that a reader can weigh it:

- **basis**, of the published side: ``paper`` (printed in the paper or its official repository, at a
  named table and position), ``derived`` (computed from such numbers; the published data says how),
  ``recount`` (a consistency check of shared inputs or of our own code: counts, shapes, checksums) or
  ``reconstruction`` (a number we reverse-engineered). Only ``paper`` and ``derived`` cells are
  reproductions; the other two are *consistency checks* and are counted apart.
- **scale**, of the measured side: ``paper`` (the paper's inputs and recipe, or a computation that
  scale does not change: metrics on published outputs, analytic FLOPs), ``reduced`` (the same method at
  a smaller recipe) or ``substitute`` (another model or data set stands in).
- **verdict**, for a number: ``exact`` (equal at the precision the paper prints), ``within tolerance``
  (inside a band whose *source* is written in the published data or measured, never typed after seeing
  the gap), ``differs``, ``not comparable`` (measured at reduced or substitute scale: shown beside the
  published number, with why, unless the published data declares an ``equivalence`` with its argument)
  or ``not run here`` (with the reason and its class).
- for a **claim**: ``supported`` / ``not supported`` only when every precondition (an object with
  ``name``, ``required``, ``measured``, ``met``) is met; otherwise ``inconclusive``, naming the unmet
  ones. Each claim cell names its ``rule`` (the dotted path of the function that decided it) and its
  scale; a claim tested on a substitute reads "on the substitute: holds / fails / inconclusive" and is
  counted apart.

:func:`compare` and :func:`claim` build cells that obey these rules; :func:`validate` refuses, with a
:class:`ContractError`, any cell that does not (hand-made ones included), and :func:`save` validates every
cell before it writes a results file.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from . import published as _published

__all__ = [
    "VERDICTS", "BASES", "SCALES", "ContractError", "Tolerance", "Precondition", "NotRun", "not_run",
    "compare", "claim", "validate", "show", "show_claims", "save", "results_dir", "collect", "summary",
    "paper_rows", "consistency_checks", "plot_matrix", "reason_class", "check_book", "seed_spread",
]

EXACT, WITHIN, DIFFERS, NOT_COMPARABLE, NOT_RUN = (
    "exact", "within tolerance", "differs", "not comparable", "not run here")
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
NUMBER_VERDICTS = [EXACT, WITHIN, DIFFERS, NOT_COMPARABLE, NOT_RUN]
CLAIM_VERDICTS = [SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE]
VERDICTS = NUMBER_VERDICTS + CLAIM_VERDICTS
#: Verdicts that judge a published number; they need scale ``paper`` or a declared equivalence.
JUDGING = (EXACT, WITHIN, DIFFERS)

BASES = ("paper", "derived", "recount", "reconstruction")
REPRODUCTION_BASES = ("paper", "derived")
SCALES = ("paper", "reduced", "substitute")

COLOURS = {
    EXACT: "#1a9850", WITHIN: "#91cf60", DIFFERS: "#d73027", NOT_COMPARABLE: "#9ecae1",
    NOT_RUN: "#d9d9d9", SUPPORTED: "#1a9850", NOT_SUPPORTED: "#d73027", INCONCLUSIVE: "#fee08b",
}
_DARK = (EXACT, DIFFERS, SUPPORTED, NOT_SUPPORTED)

#: Classes of "not run here" reasons, for the verdict page. A cell names its class with
#: ``not_run(reason, kind=...)``; otherwise :func:`reason_class` reads it from the reason.
REASON_CLASSES = {
    "data": "data not available offline",
    "model": "model weights not available offline",
    "compute": "needs a GPU or more compute",
    "unpublished": "inputs never published",
    "other": "other",
}
_REASON_WORDS = [  # first match wins; words seen in the chapters' reasons
    ("unpublished", ("not published", "never published", "per-sample", "per sample", "unpublished")),
    ("compute", ("gpu", "multi-gpu", "a100", "h100", "hours", "cluster", "compute")),
    ("model", ("7b", "8b", "13b", "34b", "72b", "checkpoint", "weights", "llava", "qwen", "gpt-4", "gpt4",
               "internvl", "model not")),
    ("data", ("imagenet", "kinetics", "ade20k", "gated", "labels", "dataset", "data", "baidu", "download",
              "offline", "videos", "images", "audio")),
]

RESULT_COLUMNS = [
    "paper", "table", "kind", "row", "column", "published", "decimals", "reproduced", "difference",
    "tolerance", "tolerance_source", "verdict", "reason", "reason_class", "basis", "basis_note", "scale",
    "scale_reason", "equivalence", "counted", "counted_in", "preconditions", "rule", "unit", "source",
]


class ContractError(ValueError):
    """A results cell that breaks the verdict contract (see the module docstring)."""


@dataclass(frozen=True)
class Tolerance:
    """A tolerance band and where it comes from (printed precision, the paper's ± std, a measured seed
    spread, a hardware argument). A band without a source is refused."""

    value: float
    source: str

    def __post_init__(self):
        if not isinstance(self.source, str) or not self.source.strip():
            raise ContractError(f"tolerance {self.value!r} has no source: say where the band comes from "
                                "(printed precision, the paper's ± std, a measured seed spread)")
        if not (isinstance(self.value, (int, float)) and self.value >= 0 and math.isfinite(self.value)):
            raise ContractError(f"tolerance must be a finite number >= 0, got {self.value!r}")


def seed_spread(values: Sequence[float], *, k: float = 2.0, what: str = "seeds") -> Tolerance:
    """A tolerance measured from repeated runs: ``k`` sample standard deviations of ``values``."""
    vals = [float(v) for v in values]
    if len(vals) < 2:
        raise ContractError(f"a seed-spread tolerance needs at least 2 runs, got {len(vals)}")
    mean = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    return Tolerance(k * sd, f"{k:g} x the measured standard deviation over {len(vals)} {what} ({sd:.3g})")


@dataclass(frozen=True)
class Precondition:
    """What a claim verdict relies on: ``name``, the ``required`` value or condition, the ``measured``
    value, and whether it is ``met``."""

    name: str
    required: Any
    measured: Any
    met: bool

    def __post_init__(self):
        if not isinstance(self.met, (bool,)) and type(self.met).__name__ != "bool_":
            raise ContractError(f"precondition {self.name!r}: 'met' must be a bool, got {self.met!r}")
        object.__setattr__(self, "met", bool(self.met))

    def as_dict(self) -> dict:
        return {"name": self.name, "required": _plain(self.required), "measured": _plain(self.measured),
                "met": self.met}

    def text(self) -> str:
        mark = "met" if self.met else "NOT met"
        return f"{self.name}: {_fmt_value(self.measured)} (required {_fmt_value(self.required)}; {mark})"


@dataclass(frozen=True)
class NotRun:
    """A cell that was not measured here, the reason, and its class (a key of ``REASON_CLASSES``)."""

    reason: str
    kind: str | None = None


def not_run(reason: str, kind: str | None = None) -> NotRun:
    if kind is not None and kind not in REASON_CLASSES:
        raise ContractError(f"unknown not-run class {kind!r}; one of {list(REASON_CLASSES)}")
    return NotRun(reason, kind)


def reason_class(reason: str, kind: str | None = None) -> str:
    """The class of a not-run reason: ``kind`` when given, else read from the reason's words."""
    if kind:
        return kind
    low = (reason or "").lower()
    for key, words in _REASON_WORDS:
        if any(w in low for w in words):
            return key
    return "other"


def _plain(x):
    """A JSON-friendly copy of a measured/required value (numpy scalars become Python numbers)."""
    if hasattr(x, "item") and not isinstance(x, (list, tuple, dict, str)):
        try:
            return x.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _fmt_value(x) -> str:
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, float):
        return _fmt_number(x)
    return str(x)


def _fmt_number(x: float, decimals: int | None = None) -> str:
    """Integers as integers, small values in scientific notation, else the given (or 3 significant) digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    x = float(x)
    if decimals is not None:
        text = f"{x:.{decimals}f}"
        return "0" if decimals == 0 and text in ("-0", "0") else ("0." + "0" * decimals if re.fullmatch(r"-0\.0*", text) else text)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    if abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.4g}" if abs(x) < 1 else f"{x:.2f}"


def _decimals_of(value: float) -> int:
    text = repr(float(value))
    return 0 if "e" in text else max(0, len(text.split(".")[1].rstrip("0")))


def _as_lookup(reproduced) -> dict[tuple[str, str], object]:
    if isinstance(reproduced, Mapping):
        return {(str(r), str(c)): v for (r, c), v in reproduced.items()}
    frame = pd.DataFrame(reproduced)
    lookup: dict[tuple[str, str], object] = {}
    for rec in frame.to_dict("records"):
        value = rec.get("value")
        reason = rec.get("reason") or rec.get("note")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            value = NotRun(str(reason) if reason else "not measured")
        lookup[(str(rec["row"]), str(rec["column"]))] = value
    return lookup


def verdict_for(published: float, reproduced: float, decimals: int | None, tolerance: float | None) -> str:
    """The verdict of one measured cell at comparable scale: exact at the printed precision, else
    within the tolerance, else differs."""
    d = _decimals_of(published) if decimals is None else int(decimals)
    # Equal once rounded to the printed precision (with room for float noise).
    if abs(round(reproduced, d) - published) <= 0.5 * 10 ** (-d) * 1e-6 + 1e-12:
        return EXACT
    if tolerance is not None and abs(reproduced - published) <= tolerance + 1e-12:
        return WITHIN
    return DIFFERS


def _nan_to_none(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def compare(
    published: "pd.DataFrame | _published.PublishedTable",
    reproduced,
    *,
    scale: str,
    scale_reason: str = "",
    tolerance: Tolerance | None = None,
    default_reason: str = "not measured here",
    rule: str = "",
) -> pd.DataFrame:
    """Put measured values beside the published ones, with a verdict per cell under the contract.

    Args:
        published: a :class:`~compendium.published.PublishedTable` (or its ``frame()``): it carries each
            cell's basis, printed precision, tolerance with its source, and any declared equivalence.
        reproduced: a DataFrame with ``row``, ``column``, ``value`` (NaN value + ``reason`` for a cell
            not run), or a mapping ``{(row, column): value or NotRun}``.
        scale: the scale of the measured values: ``paper``, ``reduced`` or ``substitute``.
        scale_reason: for reduced/substitute, what differs from the paper (shown with *not comparable*).
        tolerance: a :class:`Tolerance` measured in this run (e.g. :func:`seed_spread`); it replaces the
            published one. A bare number is refused: a band needs its source.
        default_reason: the reason shown for published cells with no measured entry.
        rule: the dotted path of the function that built the measured values, if not the caller.
    """
    if scale not in SCALES:
        raise ContractError(f"compare(): scale must be one of {SCALES}, got {scale!r}")
    if scale != "paper" and not scale_reason.strip():
        raise ContractError(f"compare(): a {scale}-scale comparison needs scale_reason (what differs from the paper)")
    if tolerance is not None and not isinstance(tolerance, Tolerance):
        raise ContractError("compare(): tolerance must be a Tolerance(value, source); "
                            "a band typed in a notebook has no source")
    frame = published.frame() if isinstance(published, _published.PublishedTable) else published
    lookup = _as_lookup(reproduced)
    rows = []
    for cell in frame.to_dict("records"):
        got = lookup.get((cell["row"], cell["column"]), NotRun(default_reason))
        if tolerance is not None:
            tol, tol_source = float(tolerance.value), tolerance.source
        else:
            tol, tol_source = _nan_to_none(cell.get("tolerance")), _nan_to_none(cell.get("tolerance_source"))
            tol = None if tol is None else float(tol)
        dec = _nan_to_none(cell.get("decimals"))
        dec = _decimals_of(float(cell["value"])) if dec is None else int(dec)
        equivalence = _nan_to_none(cell.get("equivalence")) or None
        base = {
            "paper": cell["paper"], "table": cell["table"], "kind": "cell", "row": cell["row"],
            "column": cell["column"], "published": float(cell["value"]), "decimals": dec,
            "tolerance": tol, "tolerance_source": tol_source or "", "unit": _nan_to_none(cell.get("unit")) or "",
            "source": cell.get("source", ""), "basis": _nan_to_none(cell.get("basis")),
            "basis_note": _nan_to_none(cell.get("basis_note")) or "", "scale": scale,
            "scale_reason": scale_reason if scale != "paper" else "", "equivalence": "",
            "counted": bool(cell.get("counted", True)) if _nan_to_none(cell.get("counted")) is not None else True,
            "counted_in": _nan_to_none(cell.get("counted_in")) or "", "preconditions": [], "rule": rule,
        }
        if isinstance(got, NotRun):
            rows.append({**base, "reproduced": None, "difference": None, "verdict": NOT_RUN,
                         "reason": got.reason, "reason_class": reason_class(got.reason, got.kind)})
            continue
        value = float(got)
        entry = {**base, "reproduced": value, "difference": value - float(cell["value"]), "reason": "",
                 "reason_class": ""}
        if scale != "paper":
            if equivalence and equivalence.get("scale") == scale:
                entry["equivalence"] = equivalence["argument"]
            else:
                rows.append({**entry, "verdict": NOT_COMPARABLE,
                             "reason": f"measured at {scale} scale: {scale_reason}"})
                continue
        rows.append({**entry, "verdict": verdict_for(float(cell["value"]), value, dec, tol)})
    out = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    for rec in out.to_dict("records"):
        validate(rec)
    return out


def claim(
    paper: str,
    text: str,
    holds: bool | None,
    evidence: str,
    *,
    scale: str,
    preconditions: Sequence[Precondition],
    rule: str,
    scale_reason: str = "",
    source: str = "",
    table: str = "claims",
) -> pd.DataFrame:
    """One claim of a paper tested here.

    ``holds`` is the outcome of the test (True / False / None when the test itself cannot decide).
    ``supported`` / ``not supported`` are given only when every precondition is met; otherwise the
    verdict is ``inconclusive`` and the reason names the unmet preconditions. ``rule`` is the dotted path
    of the function that decided it (e.g. ``compendium.graphs.gsl.experiments.claim_no_mi_gain``).
    """
    if scale not in SCALES:
        raise ContractError(f"claim {text[:60]!r}: scale must be one of {SCALES}, got {scale!r}")
    if not rule or not isinstance(rule, str):
        raise ContractError(f"claim {text[:60]!r}: name the rule that decided it (a dotted function path)")
    pres = list(preconditions or [])
    if not all(isinstance(p, Precondition) for p in pres):
        raise ContractError(f"claim {text[:60]!r}: preconditions must be Precondition objects")
    if holds is not None and not pres:
        raise ContractError(f"claim {text[:60]!r}: a supported / not supported verdict needs its preconditions "
                            "(converged, enough seeds or splits, not at a ceiling, anchor reached, interval...)")
    unmet = [p for p in pres if not p.met]
    if holds is None:
        verdict = INCONCLUSIVE
    elif unmet:
        verdict = INCONCLUSIVE
        evidence = "unmet: " + "; ".join(p.text() for p in unmet) + ". " + evidence
    else:
        verdict = SUPPORTED if holds else NOT_SUPPORTED
    rec = {
        "paper": paper, "table": table, "kind": "claim", "row": text, "column": "claim", "published": None,
        "decimals": None, "reproduced": None, "difference": None, "tolerance": None, "tolerance_source": "",
        "verdict": verdict, "reason": evidence, "reason_class": "", "basis": "paper", "basis_note": "",
        "scale": scale, "scale_reason": scale_reason, "equivalence": "", "counted": True, "counted_in": "",
        "preconditions": [p.as_dict() for p in pres], "rule": rule, "unit": "", "source": source,
    }
    validate(rec)
    return pd.DataFrame([rec], columns=RESULT_COLUMNS)


def validate(cell: Mapping) -> None:
    """Refuse a cell that breaks the contract, with a message that says which rule and which cell."""
    where = f"{cell.get('paper')}/{cell.get('table')} [{str(cell.get('row'))[:50]} | {cell.get('column')}]"
    basis, scale, verdict = cell.get("basis"), cell.get("scale"), cell.get("verdict")
    if basis not in BASES:
        raise ContractError(f"{where}: basis must be one of {BASES}, got {basis!r}")
    if scale not in SCALES:
        raise ContractError(f"{where}: scale must be one of {SCALES}, got {scale!r}")
    if verdict not in VERDICTS:
        raise ContractError(f"{where}: unknown verdict {verdict!r}")
    if basis == "derived" and not cell.get("basis_note"):
        raise ContractError(f"{where}: a derived cell must say how it is derived (basis_note)")
    if cell.get("kind") == "claim":
        if verdict not in CLAIM_VERDICTS:
            raise ContractError(f"{where}: a claim reads supported / not supported / inconclusive, not {verdict!r}")
        if not cell.get("rule"):
            raise ContractError(f"{where}: a claim names the rule that decided it")
        if verdict in (SUPPORTED, NOT_SUPPORTED):
            pres = cell.get("preconditions") or []
            if not pres:
                raise ContractError(f"{where}: {verdict!r} without preconditions")
            bad = [p.get("name") for p in pres if not (isinstance(p, Mapping) and p.get("met") is True)]
            if bad:
                raise ContractError(f"{where}: {verdict!r} with unmet preconditions {bad}: the verdict is inconclusive")
        return
    if verdict in CLAIM_VERDICTS:
        raise ContractError(f"{where}: a number cell cannot read {verdict!r}")
    if verdict in JUDGING:
        if scale != "paper" and not cell.get("equivalence"):
            raise ContractError(f"{where}: a verdict on a published number at {scale} scale needs a declared "
                                "equivalence (its argument, in the published data); otherwise it is not comparable")
        if cell.get("reproduced") is None:
            raise ContractError(f"{where}: {verdict!r} without a measured value")
    if cell.get("tolerance") is not None and not (cell.get("tolerance_source") or "").strip():
        raise ContractError(f"{where}: tolerance {cell.get('tolerance')} without a source")
    if verdict == WITHIN and cell.get("tolerance") is None:
        raise ContractError(f"{where}: 'within tolerance' without a tolerance")
    if verdict == NOT_RUN and not cell.get("reason"):
        raise ContractError(f"{where}: 'not run here' without a reason")
    if verdict == NOT_COMPARABLE and not cell.get("reason"):
        raise ContractError(f"{where}: 'not comparable' without the reason")


# ------------------------------------------------------------------------------------ display


class HtmlTable:
    """A rendered table: HTML for the book (wrapped in a horizontal scroll container), the frame for code."""

    def __init__(self, frame: pd.DataFrame, html_text: str, caption: str = ""):
        self.data, self._html, self.caption = frame, html_text, caption

    def _repr_html_(self) -> str:
        return self._html

    def __repr__(self) -> str:  # plain-text output (nbval, terminals): the frame, no object address
        return self.data.to_string(index=False, max_colwidth=60)


_TABLE_CSS = (
    "<style>.cv-wrap{overflow-x:auto;max-width:100%}.cv-t{border-collapse:collapse;font-size:0.85em}"
    ".cv-t th,.cv-t td{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}"
    ".cv-t td.n{text-align:right;white-space:nowrap}.cv-t td.w{min-width:14em;max-width:32em}"
    ".cv-t details summary{cursor:pointer}</style>"
)


def _render(frame: pd.DataFrame, numeric: set[str], wide: set[str], verdict_col: str = "verdict",
            caption: str = "") -> HtmlTable:
    """One deterministic HTML table: verdict colours, no empty columns, wrapped long text, scroll box."""
    keep = [c for c in frame.columns if frame[c].map(lambda v: v not in (None, "") and not (isinstance(v, float) and math.isnan(v))).any()]
    view = frame[keep]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in view.columns)
    body = []
    for rec in view.to_dict("records"):
        tds = []
        for c in view.columns:
            v = rec[c]
            text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            if c == verdict_col and text:
                colour = COLOURS.get(text.split(": ")[-1].replace("holds", SUPPORTED).replace("fails", NOT_SUPPORTED), "white")
                fg = "white" if text.split(": ")[-1] in _DARK + ("holds", "fails") else "black"
                tds.append(f'<td style="background:{colour};color:{fg};white-space:nowrap">{html.escape(text)}</td>')
            elif c in numeric:
                tds.append(f'<td class="n">{html.escape(text)}</td>')
            elif c in wide and len(text) > 140:
                tds.append(f'<td class="w"><details><summary>{html.escape(text[:110])}…</summary>'
                           f'{html.escape(text)}</details></td>')
            else:
                tds.append(f'<td class="{"w" if c in wide else ""}">{html.escape(text)}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    cap = f"<caption style='caption-side:top;text-align:left'>{html.escape(caption)}</caption>" if caption else ""
    text = (f'{_TABLE_CSS}<div class="cv-wrap"><table class="cv-t">{cap}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')
    return HtmlTable(view.reset_index(drop=True), text, caption)


def _scale_label(scale: str, verdict: str) -> str:
    if scale == "substitute" and verdict in CLAIM_VERDICTS:
        return "on the substitute: " + {SUPPORTED: "holds", NOT_SUPPORTED: "fails"}.get(verdict, verdict)
    return verdict


def show(results: pd.DataFrame, *, caption: str = "", digits: int | None = None) -> HtmlTable:
    """Published vs measured: the published value at its printed precision, the measured value at the
    same precision, the difference, the verdict (coloured), basis/scale, and the reason."""
    cells = results[results["kind"] != "claim"] if "kind" in results else results
    rows = []
    for rec in cells.to_dict("records"):
        dec = rec.get("decimals")
        dec = digits if dec is None or (isinstance(dec, float) and math.isnan(dec)) else int(dec)
        what = f"{rec['basis']}" + (f" ({rec['basis_note']})" if rec.get("basis_note") else "")
        reason = rec.get("reason") or ""
        if rec.get("equivalence"):
            reason = f"equivalence: {rec['equivalence']}" + (f"; {reason}" if reason else "")
        if rec.get("tolerance") is not None and not (isinstance(rec.get("tolerance"), float) and math.isnan(rec["tolerance"])):
            reason = (reason + "; " if reason else "") + f"tolerance ±{_fmt_number(rec['tolerance'])} ({rec['tolerance_source']})"
        if not rec.get("counted", True):
            reason = (reason + "; " if reason else "") + f"counted in {rec.get('counted_in')}"
        rows.append({
            "table": rec["table"], "row": rec["row"], "column": rec["column"],
            "published": _fmt_number(rec["published"], dec),
            "measured": _fmt_number(rec["reproduced"], dec) if rec["reproduced"] is not None else "",
            "Δ": _fmt_number(rec["difference"], dec) if rec["difference"] is not None else "",
            "verdict": rec["verdict"], "basis": what, "scale": rec["scale"], "reason": reason,
        })
    frame = pd.DataFrame(rows, columns=["table", "row", "column", "published", "measured", "Δ", "verdict",
                                        "basis", "scale", "reason"])
    if frame["table"].nunique() <= 1:
        frame = frame.drop(columns="table")
    return _render(frame, {"published", "measured", "Δ"}, {"reason", "row", "basis"}, caption=caption)


def show_claims(results: pd.DataFrame, *, caption: str = "") -> HtmlTable:
    """The claims: the sentence, the verdict (on a substitute: holds / fails), its preconditions with the
    measured values, the evidence and the rule."""
    claims = results[results["kind"] == "claim"]
    rows = []
    for rec in claims.to_dict("records"):
        pres = "; ".join(Precondition(**p).text() for p in (rec.get("preconditions") or []))
        rows.append({"claim": rec["row"], "verdict": _scale_label(rec["scale"], rec["verdict"]),
                     "scale": rec["scale"], "preconditions": pres, "evidence": rec["reason"],
                     "rule": (rec.get("rule") or "").replace("compendium.", "")})
    frame = pd.DataFrame(rows, columns=["claim", "verdict", "scale", "preconditions", "evidence", "rule"])
    return _render(frame, set(), {"claim", "preconditions", "evidence"}, caption=caption)


# ------------------------------------------------------------------------------------ files


def results_dir() -> Path:
    """Where results files go: ``COMPENDIUM_RESULTS_DIR`` (the runner sets it to the executed
    notebook's folder in ``book/``), else the cache, so interactive and test runs never touch the tree."""
    env = os.environ.get("COMPENDIUM_RESULTS_DIR")
    if env:
        path = Path(env)
    else:
        from .paths import cache_root

        path = cache_root() / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _records(results: pd.DataFrame) -> list[dict]:
    frame = results.reindex(columns=RESULT_COLUMNS)
    out = []
    for rec in frame.to_dict("records"):
        clean = {}
        for k, v in rec.items():
            if isinstance(v, float) and math.isnan(v):
                v = None
            clean[k] = _plain(v) if not isinstance(v, list) else v
        out.append(clean)
    return out


def save(results: pd.DataFrame | Iterable[pd.DataFrame], paper: str, notebook: str, *, profile: str | None = None) -> Path:
    """Validate every cell, then write ``<notebook>.results.json`` (one object per cell). Returns the path."""
    if not isinstance(results, pd.DataFrame):
        results = pd.concat(list(results), ignore_index=True)
    records = _records(results)
    for rec in records:
        validate(rec)
    payload = {
        "paper": paper,
        "notebook": notebook,
        "profile": profile or os.environ.get("COMPENDIUM_PROFILE", "interactive"),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "counts": {v: int(n) for v, n in results["verdict"].value_counts().items()},
        "cells": records,
    }
    path = results_dir() / f"{notebook}.results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
    return path


def collect(book_dir: str | os.PathLike) -> pd.DataFrame:
    """Every cell of every ``*.results.json`` under the book folder, with the notebook and profile.
    Files written before the contract lack its fields: they read as NaN/None (see :func:`check_book`)."""
    frames = []
    for path in sorted(Path(book_dir).rglob("*.results.json")):
        payload = json.loads(path.read_text())
        frame = pd.DataFrame(payload["cells"]).reindex(columns=RESULT_COLUMNS)
        frame["notebook"] = payload.get("notebook", path.stem)
        frame["profile"] = payload.get("profile", "")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=RESULT_COLUMNS + ["notebook", "profile"])
    cells = pd.concat(frames, ignore_index=True)
    cells["kind"] = cells["kind"].fillna(cells["column"].map(lambda c: "claim" if c == "claim" else "cell"))
    cells["counted"] = cells["counted"].map(lambda v: True if v is None or (isinstance(v, float) and math.isnan(v)) else bool(v))
    return cells


def check_book(book_dir: str | os.PathLike) -> list[str]:
    """Every contract violation in the book's results files, one line each (empty when all cells pass)."""
    problems = []
    for path in sorted(Path(book_dir).rglob("*.results.json")):
        for cell in json.loads(path.read_text())["cells"]:
            try:
                validate(cell)
            except ContractError as exc:
                problems.append(f"{path.relative_to(book_dir)}: {exc}")
    return problems


# ------------------------------------------------------------------------------------ counts


def summary(cells: pd.DataFrame) -> pd.DataFrame:
    """Verdict counts per paper and table (counted cells only)."""
    if cells.empty:
        return pd.DataFrame(columns=["paper", "table", *VERDICTS, "total"])
    live = cells[cells["counted"].astype(bool)] if "counted" in cells else cells
    counts = live.groupby(["paper", "table", "verdict"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=[v for v in VERDICTS if v in counts.columns])
    counts["total"] = counts.sum(axis=1)
    return counts.reset_index()


def consistency_checks(cells: pd.DataFrame) -> pd.DataFrame:
    """Recounts and reconstructions: consistency checks of shared inputs or our own code, not reproductions."""
    mask = cells["basis"].isin(["recount", "reconstruction"]) & (cells["kind"] != "claim")
    return cells[mask]


def paper_rows(cells: pd.DataFrame, papers: Sequence[str]) -> pd.DataFrame:
    """The verdict page's first table: one row per paper, counted from the results files and the
    published data (each published fact counted once: cells marked ``counted: false`` are left out)."""
    rows = []
    for key in papers:
        pub = _published.load(key) if key in _published.papers() else None
        transcribed = sum(len(t.cells) for t in pub.tables if t.counted) if pub else 0
        missing = [t.id for t in pub.tables if t.not_transcribed] if pub else []
        sub = cells[(cells["paper"] == key) & cells["counted"].astype(bool)]
        nums = sub[(sub["kind"] != "claim") & sub["basis"].isin(REPRODUCTION_BASES)]
        claims = sub[sub["kind"] == "claim"]
        not_run = nums[nums["verdict"] == NOT_RUN]
        classes = not_run["reason_class"].fillna("").map(lambda k: k or "other").value_counts()

        def claim_counts(scale):
            part = claims[claims["scale"] == scale]["verdict"].value_counts()
            return " / ".join(str(int(part.get(v, 0))) for v in CLAIM_VERDICTS) if len(claims[claims["scale"] == scale]) else "–"

        rows.append({
            "paper": key,
            "published cells": transcribed,
            "tables not transcribed": ", ".join(missing) or "–",
            "measured at paper scale": int(nums[nums["verdict"].isin(JUDGING)].shape[0]),
            "exact + within": int(nums["verdict"].isin([EXACT, WITHIN]).sum()),
            "differs": int((nums["verdict"] == DIFFERS).sum()),
            "not comparable": int((nums["verdict"] == NOT_COMPARABLE).sum()),
            "not run here": ", ".join(f"{int(n)} {k}" for k, n in classes.items()) or "0",
            "claims, paper scale (S / N / I)": claim_counts("paper"),
            "claims, reduced (S / N / I)": claim_counts("reduced"),
            "claims, substitute (holds / fails / I)": claim_counts("substitute"),
            "consistency checks": int(consistency_checks(sub).shape[0]),
        })
    return pd.DataFrame(rows)


def plot_matrix(cells: pd.DataFrame, *, papers: list[str] | None = None):
    """The verdict matrix on one screen: one row per paper, one stacked bar of its counted cells and
    claims by verdict (reproductions only; consistency checks are listed apart). Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    papers = papers or list(dict.fromkeys(cells["paper"]))
    live = cells[cells["counted"].astype(bool) & (cells["basis"].isin(REPRODUCTION_BASES) | (cells["kind"] == "claim"))]
    fig, (ax_n, ax_c) = plt.subplots(1, 2, figsize=(10, 0.9 + 0.42 * len(papers)),
                                     gridspec_kw={"width_ratios": [3, 1.3]}, sharey=True)
    for ax, kinds, order, title in ((ax_n, ("cell",), NUMBER_VERDICTS, "published numbers"),
                                    (ax_c, ("claim",), CLAIM_VERDICTS, "claims")):
        part = live[live["kind"].isin(kinds)]
        counts = part.groupby(["paper", "verdict"]).size().unstack(fill_value=0).reindex(index=papers, fill_value=0)
        left = [0] * len(papers)
        for v in order:
            vals = list(counts[v]) if v in counts else [0] * len(papers)
            ax.barh(range(len(papers)), vals, left=left, color=COLOURS[v], edgecolor="white", linewidth=0.5)
            for i, (l, n) in enumerate(zip(left, vals)):
                if n and n / max(1, max(sum(x) for x in counts.values)) > 0.04:
                    ax.text(l + n / 2, i, str(int(n)), ha="center", va="center", fontsize=7,
                            color="white" if v in _DARK else "black")
            left = [l + n for l, n in zip(left, vals)]
        ax.set_title(title, fontsize=10, loc="left")
        ax.invert_yaxis() if ax is ax_n else None
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    ax_n.set_yticks(range(len(papers)), papers, fontsize=9)
    ax_n.set_xlabel("cells"); ax_c.set_xlabel("claims")
    fig.legend(handles=[Patch(color=COLOURS[v], label=v) for v in VERDICTS], loc="lower center", ncol=4,
               fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.12 if len(papers) > 4 else 0.2, 1, 1))
    return fig


def fixed_id(*parts) -> str:
    """A short deterministic id (for HTML element ids) from the content, so re-executions are byte-stable."""
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:8]
