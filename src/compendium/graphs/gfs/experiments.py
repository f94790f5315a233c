"""The GFS chapter's experiments: main table, the 83.75 % claim, selection criteria, ratio sensitivity.

All functions return tidy DataFrames (one row per run, or per case) built on
:func:`compendium.graphs.gfs.train.run_grid`; the notebook only chooses the recipe and plots.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ... import published
from ..datasets import OFFLINE_DATASETS, GraphData, load_dataset
from ..harness import convergence, summarise
from .train import run_grid
from ..models import GNN_NAMES
from .tfi import compare_with_official, load_official_tfi, selection_scores, tfi

__all__ = [
    "check_choices",
    "check_left_out",
    "left_out_models",
    "load_graphs",
    "runs_overview",
    "selection_table",
    "step_cost",
    "recorded_step_times",
    "recorded_benchmarks",
    "run_scope",
    "tfi_reading",
    "STABLE_SPEARMAN",
    "PAPER_RATIOS",
    "DEFAULT_RATIO",
    "ratio_for",
    "tfi_scores",
    "main_table",
    "main_table_wide",
    "gfs_cases",
    "headline",
    "selection_comparison",
    "ratio_sensitivity",
    "tfi_agreement",
    "plot_gain_heatmap",
    "plot_tfi_distributions",
    "plot_ratio_curve",
]

#: Per-dataset r of the official appendix statistics notebook, from ``published/gfs.yaml`` (table ``ratios``).
PAPER_RATIOS = {rec["row"]: float(rec["value"]) for rec in published.load("gfs").table("ratios").frame().to_dict("records")}
#: The official default r (``train.py --ratio``) for datasets without a published ratio.
DEFAULT_RATIO = 0.5


def check_choices(datasets: Iterable[str], models: Iterable[str] = (), tfi_source: str = "official") -> None:
    """Refuse, with what to choose instead, a data set that is not offline, an unknown GNN or TFI source."""
    bad = sorted(set(datasets) - set(OFFLINE_DATASETS))
    if bad:
        raise ValueError(f"{bad} are not offline datasets; choose from {sorted(OFFLINE_DATASETS)}")
    bad = sorted(set(models) - set(GNN_NAMES))
    if bad:
        raise ValueError(f"unknown models {bad}; choose from {list(GNN_NAMES)}")
    if tfi_source not in ("official", "ours"):
        raise ValueError(f"tfi_source must be 'official' or 'ours', got {tfi_source!r}")


def check_left_out(left_out: dict | None, datasets: Iterable[str] = (), models: Iterable[str] = GNN_NAMES) -> None:
    """Refuse a ``left_out`` entry (``{dataset: {"models": [...], "reason": "..."}}``) for a graph not in
    ``datasets``, with a GNN not in ``models``, or without a reason."""
    datasets, models = set(datasets), set(models)
    for name, entry in (left_out or {}).items():
        if datasets and name not in datasets:
            raise ValueError(f"left_out names {name!r}, which this profile does not run; choose from {sorted(datasets)}")
        bad = sorted(set(entry.get("models", [])) - models)
        if bad or not entry.get("models"):
            raise ValueError(f"left_out[{name!r}] must list some of the profile's models {sorted(models)}, got {bad or entry}")
        if not str(entry.get("reason", "")).strip():
            raise ValueError(f"left_out[{name!r}] needs a 'reason' (shown in the not-run cells)")


def left_out_models(left_out: dict | None, dataset: str) -> tuple[list[str], str]:
    """The GNNs a profile leaves out on ``dataset`` and why (``([], "")`` when none)."""
    entry = (left_out or {}).get(dataset) or {}
    return list(entry.get("models", [])), str(entry.get("reason", ""))


def load_graphs(names: Iterable[str], root: str | os.PathLike | None = None) -> dict[str, GraphData]:
    """Each named graph once, in order of first mention."""
    return {name: load_dataset(name, root=root) for name in dict.fromkeys(names)}


def ratio_for(name: str, ratios: dict[str, float] | float | None = None) -> float:
    """The GFS ratio for a dataset: a float for all, a dict (falling back to the paper's), or the paper's."""
    if isinstance(ratios, (int, float)):
        return float(ratios)
    table = {**PAPER_RATIOS, **(ratios or {})}
    return float(table.get(name, DEFAULT_RATIO))


def tfi_scores(source: str = "official", root: str | os.PathLike | None = None, random_state: int = 0,
               cache_dir: str | os.PathLike | None = None):
    """A ``scores(graph, split)`` function giving TFI.

    ``source='official'``: the authors' committed vectors (the exact feature split they used);
    ``'ours'``: our estimator with ``random_state`` (cached in memory and, with ``cache_dir``, on disk).
    """
    if source not in ("official", "ours"):
        raise ValueError(source)

    @lru_cache(maxsize=None)
    def _ours(name: str, split: int, g_id: int) -> np.ndarray:
        g = _graphs[g_id]
        if cache_dir is not None:
            path = Path(cache_dir) / f"{name}_tfi_split{split}_seed{random_state}.npy"
            if path.exists():
                return np.load(path)
        v = tfi(g.x, g.edge_index, g.y, g.split(split)[0], random_state=random_state)
        if cache_dir is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, v)
        return v

    _graphs: dict[int, GraphData] = {}

    def scores(g: GraphData, split: int) -> np.ndarray:
        if source == "official":
            return load_official_tfi(g.name, split, root)
        _graphs[id(g)] = g
        return _ours(g.name, split, id(g))

    scores.source = source  # type: ignore[attr-defined]
    return scores


# --------------------------------------------------------------------------- main table


def main_table(graphs: Sequence[GraphData], cfg, models: Sequence[str] = GNN_NAMES,
               splits: Iterable[int] | dict[str, Iterable[int]] = range(10), ratios: dict | float | None = None,
               scores=None, with_mlp: bool = True, progress: bool = True, workers: int = 1,
               default_splits: Iterable[int] = range(10), left_out: dict | None = None) -> pd.DataFrame:
    """Every GNN as plain model (r = 1) and with GFS (r from :func:`ratio_for`), plus the MLP (r = 0).

    ``cfg``: a :class:`TrainConfig` or a function of the graph returning one. ``splits`` may be a dict
    per dataset name (fewer splits for the large graphs). ``left_out``: GNNs not run on a graph
    (:func:`check_left_out`). Returns one row per run.
    """
    scores = scores or tfi_scores("official")

    def jobs(g):
        r = ratio_for(g.name, ratios)
        skip = set(left_out_models(left_out, g.name)[0])
        out = [(m, rr) for m in models if m not in skip for rr in (1.0, r)]
        return out + ([("MLP", 0.0)] if with_mlp else [])

    split_fn = (lambda g: splits.get(g.name, default_splits)) if isinstance(splits, dict) else splits
    return run_grid(graphs, jobs, cfg, split_fn, scores=scores, progress=progress, workers=workers)


def main_table_wide(runs: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """Datasets × (model, base/+GFS) table of 'mean ± std' strings (percent), plus the MLP column."""
    s = summarise(runs)
    s["cell"] = [f"{m:.{decimals}f} ± {sd:.{decimals}f}" if not np.isnan(sd) else f"{m:.{decimals}f}"
                 for m, sd in zip(s["test_mean"], s["test_std"])]
    s["kind"] = np.where(s["variant"].str.endswith("+GFS"), "+GFS", np.where(s["variant"] == "MLP", "", "base"))
    s["col"] = [f"{m} {k}".strip() if m != "MLP" else "MLP" for m, k in zip(s["model"], s["kind"])]
    wide = s.pivot(index="dataset", columns="col", values="cell").fillna("not run")  # a GNN left out on a graph
    order = [c for m in list(dict.fromkeys(s["model"])) for c in (f"{m} base", f"{m} +GFS", m) if c in wide.columns]
    return wide[order].loc[list(dict.fromkeys(s["dataset"]))]


def gfs_cases(runs: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """One row per (dataset, GNN): base and +GFS mean (percent), gain, and a significance test.

    The paper does not say how "significant" was decided (research note §1.3). We use a one-sided
    paired t-test over the splits both variants ran on (same split → paired), H1: GFS > base, at
    ``alpha``; "improved" is simply a higher mean.
    """
    rows = []
    gnn_runs = runs[runs["model"] != "MLP"]
    for (d, m), grp in gnn_runs.groupby(["dataset", "model"], sort=False):
        base = grp[grp["ratio"] >= 1.0].set_index("split")["test"]
        gfs = grp[(grp["ratio"] > 0) & (grp["ratio"] < 1)].set_index("split")["test"]
        common = base.index.intersection(gfs.index)
        if len(common) == 0:
            continue
        b, f = base.loc[common].to_numpy(), gfs.loc[common].to_numpy()
        diff = f - b
        if len(common) > 1 and np.std(diff) > 0:
            p = float(stats.ttest_rel(f, b, alternative="greater").pvalue)
        else:
            p = float("nan")
        rows.append({"dataset": d, "model": m, "ratio": float(grp[(grp["ratio"] > 0) & (grp["ratio"] < 1)]["ratio"].iloc[0]),
                     "n_splits": len(common), "base": 100 * b.mean(), "gfs": 100 * f.mean(),
                     "gain": 100 * diff.mean(), "p_value": p, "improved": bool(diff.mean() > 0),
                     "significant": bool(diff.mean() > 0 and p < alpha)})
    return pd.DataFrame(rows)


def headline(cases: pd.DataFrame) -> dict:
    """Counts of cases improved in mean and significantly (the claim's rule is
    :func:`compendium.graphs.gfs.claims.claim_headline`)."""
    n = len(cases)
    return {"cases": n, "improved": int(cases["improved"].sum()) if n else 0,
            "significant": int(cases["significant"].sum()) if n else 0,
            "improved_pct": 100 * cases["improved"].mean() if n else float("nan"),
            "significant_pct": 100 * cases["significant"].mean() if n else float("nan")}


def runs_overview(runs: pd.DataFrame, ratios: dict | float | None = None) -> pd.DataFrame:
    """Per data set: splits, runs, budget, steps run and best step (medians), runs cut by their budget while
    improving, wall and CPU seconds, and the GFS ratio."""
    conv = convergence(runs).set_index("dataset")
    times = runs.groupby("dataset", sort=False).agg(splits=("split", "nunique"), seconds=("seconds", "sum"),
                                                    cpu_seconds=("cpu_seconds", "sum"))
    out = times.join(conv[["runs", "max_steps", "median_steps", "median_best_step", "not_converged"]])
    out["ratio r"] = [ratio_for(d, ratios) for d in out.index]
    return out.round(1)


def selection_table(sel_runs: pd.DataFrame) -> pd.DataFrame:
    """Criteria × data sets of the mean test metric (percent), with the mean rank, best first."""
    sel = summarise(sel_runs, by=("dataset", "selection"))
    table = sel.pivot(index="selection", columns="dataset", values="test_mean")
    table["mean rank"] = table.rank(ascending=False).mean(axis=1)
    return table.sort_values("mean rank").round(2)


def step_cost(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Milliseconds per training step (with its evaluation) per data set × variant, and GFS / plain per
    (data set, model)."""
    per_step = runs.assign(ms=1000 * runs["seconds"] / runs["steps"])
    cost = per_step.groupby(["dataset", "model", "variant"], sort=False)["ms"].mean().reset_index()
    is_gfs = cost["variant"].str.endswith("+GFS")
    base = cost[~is_gfs].set_index(["dataset", "model"])["ms"]
    ratio = (cost[is_gfs].set_index(["dataset", "model"])["ms"] / base).dropna().rename("GFS / plain")
    table = cost.pivot_table(index="dataset", columns="variant", values="ms", sort=False).round(1)
    return table, ratio


def recorded_step_times(path: str | os.PathLike) -> pd.DataFrame | None:
    """The recorded step-time benchmark (``benchmarks/graph_step_time.py``) as model × plain/+GFS, in CPU
    milliseconds per step of the package's path, and, where the run's ``*_side_by_side.csv`` sits beside it, the
    plain model's ratios of that same run: PyG's step over ours, ours over the memory-traffic bound and over
    GCN's step. None when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return None
    st = pd.read_csv(path)
    if "backend" in st.columns:
        st = st[st["backend"] == "sparse"]
    st["model"] = st["variant"].str.replace("+GFS", "", regex=False)
    st["kind"] = np.where(st["variant"].str.endswith("+GFS"), "+GFS", "plain")
    view = st.pivot_table(index="model", columns="kind", values="cpu_sec_per_step", sort=False).mul(1000).round(0)
    view.columns = [f"{c}, ms CPU/step" for c in view.columns]
    side = path.with_name(path.stem + "_side_by_side.csv")
    if side.is_file():
        ratios = pd.read_csv(side).set_index("variant")
        plain = ratios.loc[ratios.index.isin(view.index)]
        if "pyg" in plain.columns:
            view["PyG / ours"] = (plain["pyg"] / plain["package"]).round(2)
        view["ours / bound"] = plain["package / bound"].round(1)
        view["ours / GCN"] = plain["package / GCN"].round(2)
    return view


def recorded_benchmarks(folder: str | os.PathLike, pattern: str = "graph_step_time_*_cpu*.csv") -> pd.DataFrame | None:
    """Every recorded step-time run in ``folder`` (:func:`recorded_step_times`), one block per run file (index
    ``run``, ``model``); ratios are only comparable within a run. None when there is none."""
    files = sorted(f for f in Path(folder).glob(pattern) if not f.stem.endswith("_side_by_side"))
    frames = {f.stem.removeprefix("graph_step_time_"): recorded_step_times(f) for f in files}
    return pd.concat(frames, names=["run", "model"]) if frames else None


# --------------------------------------------------------------------------- selection and ratio


def selection_comparison(graphs: Sequence[GraphData], cfg, model: str = "GCN",
                         methods: Sequence[str] = ("TFI", "MI (no graph)", "h_GE", "h_attr", "h_sim-cos",
                                                   "h_sim-euc", "h_CTF", "random"),
                         ratios: dict | float | None = None, splits: Iterable[int] = range(10),
                         tfi_source: str = "official", root=None, progress: bool = True, workers: int = 1,
                         n_jobs: int | None = None) -> pd.DataFrame:
    """GFS with each feature-selection criterion in place of TFI (same model, ratio and splits).

    Also runs the plain model (r = 1) once per split as the reference (``selection = 'none (<model>)'``).
    ``TFI`` uses ``tfi_source``. One row per run, the criterion in the column ``selection``. ``n_jobs``
    parallelises the kNN estimators (computed in this process before training starts).
    """
    splits = list(splits)
    score_fns = {}
    for meth in methods:
        if meth == "TFI":
            score_fns[meth] = tfi_scores(tfi_source, root=root)
        else:
            score_fns[meth] = (lambda g, s, _m=meth: selection_scores(_m, g, s, n_jobs=n_jobs))

    def jobs(g):
        r = ratio_for(g.name, ratios)
        return [(model, r, meth) for meth in methods] + [(model, 1.0, f"none ({model})")]

    return run_grid(graphs, jobs, cfg, splits, scores=score_fns, progress=progress, workers=workers,
                    tag_column="selection")


def ratio_sensitivity(graphs: Sequence[GraphData], cfg, model: str = "GCN",
                      ratios: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
                      splits: Iterable[int] = range(10), scores=None, progress: bool = True, workers: int = 1) -> pd.DataFrame:
    """Test metric as a function of GFS's r (0 = MLP, 1 = plain GNN), TFI ranking."""
    scores = scores or tfi_scores("official")
    jobs = [("MLP" if r == 0 else model, float(r)) for r in ratios]
    return run_grid(graphs, jobs, cfg, list(splits), scores=scores, progress=progress, workers=workers)


def tfi_agreement(graphs: Sequence[GraphData], splits: Sequence[int] = (0, 1), root=None, n_jobs: int | None = None,
                  progress: bool = True, ours: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Our TFI against the authors' vectors, per dataset and split (see :func:`compare_with_official`).

    ``ours``: precomputed ``{dataset: [len(splits), F]}`` TFI (e.g. from :func:`tfi_per_split`).
    """
    from .train import tqdm

    frames = [compare_with_official(g, list(splits), root=root, n_jobs=n_jobs,
                                    ours=None if ours is None else ours.get(g.name))
              for g in tqdm(list(graphs), desc="TFI", disable=not progress, leave=False)]
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- text from the run


def _names(items: Iterable) -> str:
    items = [str(i) for i in items]
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else "".join(items)


def run_scope(graphs: Sequence[GraphData], models: Sequence[str], splits_for, cfg_for, left_out: dict | None = None) -> str:
    """One markdown paragraph: what this run trains (models, graphs, splits per graph, budgets, GNNs left out)."""
    per_graph = []
    for g in graphs:
        cfg, splits = cfg_for(g), list(splits_for(g))
        budget = f"at most {cfg.steps} steps" if cfg.patience else f"{cfg.steps} steps"
        per_graph.append(f"{g.name} ({len(splits)} split{'s' if len(splits) != 1 else ''}, {budget})")
    text = (f"**This run.** {len(models)} GNN{'s' if len(models) != 1 else ''} ({_names(models)}), each plain and "
            f"with GFS, and the MLP, on {len(graphs)} graph{'s' if len(graphs) != 1 else ''}: {_names(per_graph)}.")
    for g in graphs:
        skipped, reason = left_out_models(left_out, g.name)
        if skipped:
            text += f" Not run on {g.name}: {_names(skipped)} ({reason})."
    return text


#: Seed-vs-seed Spearman at or above which the reading calls the kNN MI estimator stable on a graph
#: (a wording threshold of the text; no verdict depends on it).
STABLE_SPEARMAN = 0.9


def _span(values: pd.Series) -> str:
    lo, hi = f"{values.min():.2f}", f"{values.max():.2f}"
    return lo if lo == hi else f"{lo}–{hi}"


def tfi_reading(agree: pd.DataFrame) -> str:
    """The reading of the TFI comparison, with every number taken from ``agree`` (:func:`tfi_agreement`)."""
    per = agree.groupby("dataset", sort=False)[["spearman", "spearman ours seed vs seed", "mean ours",
                                                 "mean official"]].mean()
    floor = per["spearman ours seed vs seed"]
    stable, unstable = per[floor >= STABLE_SPEARMAN], per[floor < STABLE_SPEARMAN]
    parts = []
    if len(stable):
        parts.append(f"Where the estimator is stable ({_names(stable.index)}: seed-vs-seed Spearman "
                     f"{_span(stable['spearman ours seed vs seed'])}), our vectors agree with the authors' to the same "
                     f"degree (Spearman {_span(stable['spearman'])}).")
    if len(unstable):
        parts.append(f"Where two seeds of our own estimator agree less ({_names(unstable.index)}: "
                     f"{_span(unstable['spearman ours seed vs seed'])}), agreement with the authors is lower too "
                     f"(Spearman {_span(unstable['spearman'])}): the two fall together, as they should if the authors' "
                     f"vectors are one more draw of the same estimator.")
    gap = (agree["mean ours"] - agree["mean official"]).abs()
    parts.append(f"The per-split mean TFI differs from the authors' by at most {gap.max():.3f} nats.")
    if "cora" in per.index:
        parts.append(f"The authors' repository ships no Cora/CiteSeer splits; with random seed-0 50/25/25 splits "
                     f"(their CSTAG procedure) the means match theirs (Cora: ours {per.loc['cora', 'mean ours']:.3f}, "
                     f"theirs {per.loc['cora', 'mean official']:.3f}), which is how these splits were chosen.")
    return "**Reading.** " + " ".join(parts)


# --------------------------------------------------------------------------- figures


def plot_gain_heatmap(cases: pd.DataFrame, ax=None, value: str = "gain"):
    """Heatmap datasets × GNNs of the GFS gain (percentage points); '*' marks significant cases."""
    import matplotlib.pyplot as plt

    piv = cases.pivot(index="dataset", columns="model", values=value)
    sig = cases.pivot(index="dataset", columns="model", values="significant")
    cols = [m for m in GNN_NAMES if m in piv.columns]
    piv, sig = piv[cols], sig[cols]
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 1.5 + 0.9 * len(cols)), max(2.5, 0.8 + 0.45 * len(piv))))
    lim = float(np.nanmax(np.abs(piv.to_numpy()))) or 1.0
    im = ax.imshow(piv.to_numpy(), cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(piv)), piv.index)
    for i in range(piv.shape[0]):
        for j in range(piv.shape[1]):
            v = piv.iat[i, j]
            if not np.isnan(v):
                ax.text(j, i, f"{v:+.1f}{'*' if sig.iat[i, j] else ''}", ha="center", va="center", fontsize=8)
    ax.figure.colorbar(im, ax=ax, label="GFS − base (points)")
    ax.set_title("GFS gain per GNN × dataset (* = paired t-test p < 0.05)")
    return ax


def plot_tfi_distributions(tfi_by_dataset: dict[str, np.ndarray], ax=None, official: dict[str, np.ndarray] | None = None):
    """Box plots of the per-feature TFI of each dataset (ours; the authors' beside it when given)."""
    import matplotlib.pyplot as plt

    names = list(tfi_by_dataset)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 + 0.8 * len(names), 3.5))
    pos = np.arange(len(names))
    w = 0.35 if official else 0.6
    ax.boxplot([np.ravel(tfi_by_dataset[n]) for n in names], positions=pos - (w / 2 if official else 0), widths=w,
               showfliers=False, patch_artist=True, boxprops=dict(facecolor="#9ecae1"))
    if official:
        ax.boxplot([np.ravel(official[n]) for n in names], positions=pos + w / 2, widths=w, showfliers=False,
                   patch_artist=True, boxprops=dict(facecolor="#fdae6b"))
        ax.legend([plt.Rectangle((0, 0), 1, 1, fc="#9ecae1"), plt.Rectangle((0, 0), 1, 1, fc="#fdae6b")],
                  ["ours", "authors'"], loc="upper right")
    ax.set_xticks(pos, names, rotation=45, ha="right")
    ax.set_ylabel("TFI (nats)")
    ax.set_title("Per-feature TFI (training nodes, per split)")
    return ax


def plot_ratio_curve(runs: pd.DataFrame, ax=None):
    """Mean test metric (± std over splits) against r, one line per dataset."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    s = runs.groupby(["dataset", "ratio"])["test"].agg(["mean", "std"]).reset_index()
    for d, grp in s.groupby("dataset", sort=False):
        ax.errorbar(grp["ratio"], 100 * grp["mean"], yerr=100 * grp["std"].fillna(0), marker="o", capsize=2, label=d)
    ax.set_xlabel("r (fraction of features, by TFI, sent to the GNN branch)")
    ax.set_ylabel("test metric (%)")
    ax.legend(fontsize=8)
    return ax
