"""The steps of the MER2025 chapter (``notebooks/mer2025/mer2025.ipynb``), so that the notebook holds calls.

Imported by that chapter only: the metrics and the baseline's protocol live in
:mod:`compendium.emotion.mer2025.experiments`, the baseline in :mod:`compendium.emotion.mer2025.model` (and the OV-MER
readers and scoring in :mod:`compendium.emotion.unibench`); this module resolves the chapter's data, picks the
track-1 data source, builds its tables against the published data, draws its figures and writes the summary's
sentences. Nothing here changes a computation of the chapter: seeds, recipes and their order are the notebook's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from compendium import published, verdicts
from compendium.data import fetch
from compendium.emotion import unibench as ub
from compendium.emotion.mer2025 import experiments as mer
from compendium.emotion.mer2025.model import AttentionFusion
from compendium.emotion.metrics import mer2024_ov_metric
from compendium.emotion.wheel import EmotionWheels

#: The registered data folders the chapter reads, by the name the chapter uses for them (``ekman``: GoEmotions,
#: read only for ``features="goemotions"``).
DATA_KEYS = {"wheels": "emotion/affectgpt/emotion_wheel", "ov_store": "emotion/mertools/MER2024/ov_store",
             "ovmer": "emotion/ov-mer/output", "ekman": "text/goemotions/ekman"}
#: The track-1 data sources of the ``features`` parameter.
FEATURES = ("synthetic", "goemotions", "mer2025")
#: The OV-MER model whose published descriptions and Qwen label lists the chapter checks sample by sample.
CHAT_UNIVI = "results-ovmerd/Chat-UniVi/output-reason-7b-nosubtitle-addsub-eng"
#: The released MER-DES scorer's sampling (vLLM, ``MER2025_Track23/evaluation.py``).
QWEN_SAMPLING = dict(do_sample=True, temperature=0.7, top_p=0.8, repetition_penalty=1.05)
#: The MER2024-OV row of the published table and its three columns, by the metric's key.
MER2024_OV_ROW = "MER2024-OV example predictions"
MER2024_OV_COLUMNS = {"accuracy": "set-level accuracy", "recall": "recall", "average": "average"}


def setup(data_root: str = "", features: str = "synthetic", keys: Mapping[str, str] = DATA_KEYS,
          threads: int | None = 1) -> tuple[dict[str, Path], EmotionWheels, object]:
    """Check ``features``, set torch's threads (small models on a shared 2-core machine; ``None``: untouched) and
    return ``(paths, wheels, paper)``: the chapter's data folders by name (a non-empty ``data_root``, laid out
    like ``compendium data list``, wins over the environment; GoEmotions only for ``features="goemotions"``), the
    emotion wheels and the published data."""
    if threads is not None:
        torch.set_num_threads(threads)
    if features not in FEATURES:
        raise ValueError(f"features must be synthetic, goemotions or mer2025, got {features!r}")
    paths = {name: fetch(key, path=Path(data_root) / key if data_root else None)
             for name, key in keys.items() if name != "ekman" or features == "goemotions"}
    return paths, EmotionWheels.from_dir(paths["wheels"]), published.load("mer2025")


def hand_check_waf() -> str:
    """WAF and accuracy of four hand-checkable labels: happy F1 2/3 (1 true), sad F1 2/3 (2 true), neutral F1 1
    (1 true), so WAF = (2/3 + 2 * 2/3 + 1) / 4 = 0.75 (``AssertionError`` otherwise)."""
    toy = mer.waf(["happy", "sad", "sad", "neutral"], ["happy", "sad", "happy", "neutral"])
    assert abs(toy["waf"] - 0.75) < 1e-12, f"hand-checked WAF {toy['waf']}, not 0.75"
    return f"WAF {toy['waf']:.4f}, accuracy {toy['accuracy']:.4f}"


def fusion_demo(seed: int, dims: Sequence[int] = (1024, 768, 768), hidden_dim: int = 128, batch: int = 4) -> str:
    """The baseline on ``batch`` random inputs (after ``torch.manual_seed(seed)``): its size, its outputs' shapes
    and its raw fusion weights (rows need not sum to 1), as text."""
    torch.manual_seed(seed)
    demo = AttentionFusion(list(dims), hidden_dim=hidden_dim, dropout=0.3)
    demo.eval()
    fused, logits, w = demo([torch.randn(batch, d) for d in dims])
    return (f"parameters: {sum(p.numel() for p in demo.parameters()):,}  (HUBERT-large 1024 + RoBERTa-base 768 + "
            f"CLIP-large 768, hidden 128)\n"
            f"fused {tuple(fused.shape)}, logits {tuple(logits.shape)}, raw weights {tuple(w.shape)}\n"
            f"raw weights of 4 random inputs (rows do not sum to 1):\n {w.detach().numpy().round(3)}")


def _minilm(texts: list[str]) -> np.ndarray:
    from compendium.emotion.backbones import encode_texts_cached

    return encode_texts_cached(texts, tokens=False)["sentence"]


def track1_data(features: str, paths: Mapping[str, Path], *, num_train: int, num_test: int, seed: int,
                mer2025_root: str = "", feature_names: Mapping[str, str] | None = None, test_labels_csv: str = "",
                encode: Callable[[list[str]], np.ndarray] = _minilm,
                log: Callable[[str], None] | None = print) -> mer.Track1Data:
    """The track-1 data of ``features``: the gated MER2025 features under ``mer2025_root`` (``feature_names``:
    modality -> feature folder), GoEmotions encoded by all-MiniLM-L6-v2 (``encode``; ``log`` gets the time), or
    synthetic features."""
    if features == "mer2025":
        return mer.load_mer2025_track1(mer2025_root or "(not given)", dict(feature_names or {}),
                                       test_labels_csv or None)
    if features == "goemotions":
        t0 = time.time()
        data = mer.goemotions_track1(paths["ekman"], num_train, num_test, seed, encode=encode)
        if log is not None:
            log(f"MiniLM sentence embeddings in {time.time() - t0:.0f} s")
        return data
    return mer.synthetic_track1(num_train, num_test, seed=seed)


def describe_track1(data: mer.Track1Data, settings: Mapping[str, Sequence[str]]) -> str:
    """Where the data comes from, the training labels' counts and the modality settings, as text."""
    counts = pd.Series(data.y_train).map(dict(enumerate(mer.EMOTIONS))).value_counts().to_dict()
    return f"{data.origin}\ntrain labels: {counts}\nsettings: {', '.join(settings)}"


def random_search(data: mer.Track1Data, settings: Mapping[str, Sequence[str]], num_runs: int, num_epochs: int,
                  seed: int, log: Callable[[str], None] | None = print) -> tuple[pd.DataFrame, dict]:
    """:func:`compendium.emotion.mer2025.experiments.random_search`, with its duration given to ``log``."""
    t0 = time.time()
    runs, results = mer.random_search(data, settings, num_runs, num_epochs, seed, log=log)
    if log is not None:
        log(f"{len(runs)} cross-validated runs in {time.time() - t0:.0f} s")
    return runs, results


def best_run(results: Mapping, setting: str | None = None):
    """The ``(key, CVResult)`` with the best CV WAF (the first on ties), among ``setting``'s runs if given."""
    key = max((k for k in results if setting is None or k[1] == setting), key=lambda k: results[k].cv_waf)
    return key, results[key]


def plot_runs(results: Mapping, settings: Mapping[str, Sequence[str]]):
    """Left: the best run's validation curves with each fold's kept epoch; right: the raw fusion weights of the
    AVT runs (or of the three copies of one feature). Returns the figure, closed (``display`` it)."""
    import matplotlib.pyplot as plt

    best_key, best = best_run(results)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for fold, curve in enumerate(best.curves):
        axes[0].plot(np.arange(len(curve)), 100 * np.array(curve), label=f"fold {fold}")
        axes[0].scatter(best.folds.best_epoch[fold], 100 * best.folds.eval_waf[fold], color="k", s=12, zorder=3)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("validation WAF (%)")
    axes[0].legend(fontsize=7)
    axes[0].set_title(f"best run {best_key}: validation curves, kept epochs (dots)")
    if "AVT" in settings:
        ws = pd.DataFrame({k[1]: results[k].mean_weights for k in results if k[1] == "AVT"}).T
        ws.columns = ["audio", "text", "video"]
        ws.plot.bar(ax=axes[1])
        axes[1].axhline(0, color="grey", lw=0.8)
        axes[1].set_title("raw fusion weights (mean over validation samples)")
    else:
        axes[1].bar(range(3), best.mean_weights)
        axes[1].set_xticks(range(3), ["copy 1", "copy 2", "copy 3"])
        axes[1].set_title("raw weights of the three copies of one feature")
    fig.tight_layout()
    plt.close(fig)
    return fig


def best_weights(results: Mapping) -> str:
    """The best run's raw fusion weights and their sum, as one line."""
    w = best_run(results)[1].mean_weights
    return f"raw weights of the best run: {np.round(w, 3)} sum {round(float(w.sum()), 3)}"


def compare_semi(paper, data: mer.Track1Data, results: Mapping, settings: Mapping[str, Sequence[str]],
                 features: str) -> pd.DataFrame:
    """The published MER-SEMI table beside this run: only real MER2025 features with test labels and an AVT run
    give a measured cell (the best AVT run's test WAF); otherwise every cell is *not run here*, saying why."""
    semi_rep = {}
    real = features == "mer2025"
    reason = ("MER2025 test labels are withheld (scored on CodaLab only)" if real else
              f"needs the gated MER2025 features; this run used {data.origin.split(':')[0].lower()} data")
    if real and data.y_test is not None and "AVT" in settings:
        semi_rep[("official baseline (attention fusion)", "test WAF")] = 100 * best_run(results, "AVT")[1].test_waf
    scale = "paper" if real else "substitute"
    return verdicts.compare(paper.table("semi"), semi_rep, scale=scale,
                            scale_reason="" if scale == "paper" else data.origin,
                            default_reason=verdicts.not_run(reason, kind="data").reason,
                            rule="compendium.emotion.mer2025.experiments.cross_validate")


def side_table(runs: pd.DataFrame, data: mer.Track1Data) -> pd.DataFrame:
    """Per setting, the best CV WAF and test WAFs over the runs (percent, 2 decimals), with the data's origin."""
    side = runs.groupby("setting")[["CV WAF"] + [c for c in runs.columns if c.startswith("test WAF")]].max().round(2)
    side["data"] = data.origin.split(";")[0]
    return side


def write_submission(features: str, data: mer.Track1Data, results: Mapping, submission_csv: str,
                     log: Callable[[str], None] = print) -> Path | None:
    """With real MER2025 test features and a ``submission_csv``, the CodaLab submission of the best run
    (:func:`compendium.emotion.mer2025.experiments.write_submission`); otherwise nothing."""
    if not (features == "mer2025" and len(data.test) and submission_csv):
        return None
    path = mer.write_submission(data.test_names, best_run(results)[1].test_outputs, submission_csv)
    log(f"submission written: {path}")
    return path


def compare_mer2024_ov(paper, ov_store: str | Path) -> tuple[dict, dict, pd.DataFrame]:
    """The MER2024 OV metric on the official example with the official and the literal list parser, and the
    official one beside the published values: ``(official, literal, cells)``; every cell must be exact."""
    official = mer2024_ov_metric(ov_store, parser="official")
    literal = mer2024_ov_metric(ov_store, parser="literal")
    cells = verdicts.compare(paper.table("mer2024_ov"),
                             {(MER2024_OV_ROW, col): official[key] for key, col in MER2024_OV_COLUMNS.items()},
                             scale="paper", rule="compendium.emotion.metrics.mer2024_ov_metric")
    assert (cells.verdict == "exact").all(), "the MER2024 OV metric must match the official example exactly"
    return official, literal, cells


def parser_lines(official: Mapping[str, float], literal: Mapping[str, float]) -> str:
    """Accuracy, recall and average under both parsers, seven decimals, one parser a line."""
    return "\n".join(f"{name} {r['accuracy']:.7f} {r['recall']:.7f} {r['average']:.7f}"
                     for name, r in (("official parser:", official), ("literal parser: ", literal)))


def compare_merfg(scores: pd.DataFrame, ov_table=None) -> pd.DataFrame:
    """MER-FG of the OV-MER baselines (``scores``: :func:`compendium.emotion.unibench.score_ov_mer_baselines`)
    beside the values derived from the OV-MER table (default: the AffectGPT chapter's published ``ovmer``)."""
    ov_table = ov_table if ov_table is not None else published.load("affectgpt").table("ovmer")
    return verdicts.compare(mer.merfg_published(ov_table, list(scores.index)), mer.merfg_measured(scores),
                            scale="paper", rule="compendium.emotion.mer2025.experiments.merfg_measured")


def merfg_wide(cells: pd.DataFrame) -> pd.DataFrame:
    """Published, reproduced and difference (column groups) per model (rows, in the table's order), 2 decimals."""
    order = list(dict.fromkeys(cells.row))
    return cells.pivot(index="row", columns="column", values=["published", "reproduced", "difference"]).loc[order].round(2)


@dataclass
class OvmerdReference:
    """The OV-MERD ground truth (``labels``: name -> label-list string, ``check-openset.csv``), Chat-UniVi's
    published Qwen2.5-7B label lists (``chat_univi``) and the samples both have (``names``, in label order)."""

    labels: dict[str, str]
    chat_univi: dict[str, str]
    names: list[str]


def ovmerd_reference(ov_store: str | Path, ovmer_dir: str | Path) -> OvmerdReference:
    """Read :class:`OvmerdReference` from the MER2024 ``ov_store`` and the OV-MER output folders."""
    check = pd.read_csv(Path(ov_store) / "check-openset.csv", dtype=str, keep_default_na=False)
    labels = dict(zip(check["name"], check["openset"]))
    chat_univi = ub.load_openset_npz(Path(ovmer_dir) / f"{CHAT_UNIVI}-openset.npz")
    return OvmerdReference(labels, chat_univi, [n for n in labels if n in chat_univi])


def merfg_direct_check(ref: OvmerdReference, wheels: EmotionWheels, scores: pd.DataFrame,
                       model: str = "Chat-UniVi") -> str:
    """MER-FG of ``model``'s published lists scored directly
    (:func:`compendium.emotion.mer2025.experiments.merfg_scores`); its L1 must equal the per-wheel route of ``scores``
    (``AssertionError`` otherwise)."""
    direct = mer.merfg_scores([ref.labels[n] for n in ref.names], [ref.chat_univi[n] for n in ref.names], wheels)
    assert abs(100 * direct["L1"] - mer.merfg_measured(scores)[(model, "L1")]) < 1e-9, "the two MER-FG routes differ"
    return f"{model} MER-FG: L1 {100 * direct['L1']:.2f}, L2 {100 * direct['L2']:.2f}, mean {100 * direct['mean']:.2f}"


def merdes_scores(ovmer_dir: str | Path, ref: OvmerdReference, wheels: EmotionWheels, models: Sequence[str],
                  scopes: Sequence[str] = ("wheel", "all"), log: Callable[[str], None] | None = print) -> dict:
    """MER-DES with the lexicon extractor for each lexicon scope (:func:`compendium.emotion.mer2025.experiments.
    merdes_lexicon_scores`), by scope; ``log`` gets how many extractions ran and how long they took."""
    t0 = time.time()
    merdes = {scope: mer.merdes_lexicon_scores(ovmer_dir, ref.labels, wheels, list(models), scope=scope)
              for scope in scopes}
    if log is not None:
        first = merdes[scopes[0]]
        log(f"{sum(len(t) for t in merdes.values()) * int(first.n.iloc[0])} extractions "
            f"({'two' if len(scopes) == 2 else len(scopes)} lexicons) in {time.time() - t0:.0f} s")
    return merdes


def merdes_example(ovmer_dir: str | Path, ref: OvmerdReference, wheels: EmotionWheels) -> str:
    """The first shared sample of Chat-UniVi: the lexicon extractor's labels, Qwen's and the truth, as one line."""
    name = ref.names[0]
    text = ub.load_descriptions(Path(ovmer_dir) / f"{CHAT_UNIVI}.npz")[name]
    return (f"Chat-UniVi, {name} → lexicon: {mer.extract_wheel_labels(text, mer.emotion_lexicon(wheels))} "
            f"| Qwen: {ref.chat_univi[name]} | truth: {ref.labels[name]}")


def plot_merdes(merdes: Mapping[str, pd.DataFrame]):
    """MER-DES with the lexicon extractor against the published Qwen extraction, per model, both lexicons (with
    their Spearman correlation). Returns the figure, closed (``display`` it)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for scope, marker in (("wheel", "o"), ("all", "x")):
        t = merdes[scope]
        rho = mer.rank_agreement(list(t["Qwen mean"]), list(t["lexicon mean"]))["rho"]
        ax.scatter(t["Qwen mean"], t["lexicon mean"], marker=marker, label=f"lexicon: {scope} (Spearman {rho:.2f})")
    for model, row in merdes["wheel"].iterrows():
        ax.annotate(model, (row["Qwen mean"], row["lexicon mean"]), fontsize=6)
    ax.set_xlabel("MER-DES with the published Qwen2.5-7B extraction (%)")
    ax.set_ylabel("MER-DES with the lexicon extractor (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    plt.close(fig)
    return fig


def llm_extraction(ovmer_dir: str | Path, ref: OvmerdReference, wheels: EmotionWheels, des_model: str,
                   des_samples: int, max_new_tokens: int, seed: int, load: Callable | None = None,
                   log: Callable[[str], None] = print) -> pd.DataFrame | None:
    """The released recipe's LLM extraction on the first ``des_samples`` descriptions of Chat-UniVi (gpu profile:
    ``des_model`` a local Qwen2.5-7B-Instruct folder; ``load``: default
    :func:`compendium.emotion.backbones.load_chat_lm`), scored beside the published Qwen lists: MER-FG x100.
    Without ``des_model`` nothing runs (``log`` says so) and the result is None."""
    if not des_model:
        log("LLM extraction not run: it needs des_model (a local Qwen2.5-7B-Instruct folder, gpu profile)")
        return None
    if load is None:
        from compendium.emotion.backbones import load_chat_lm as load
    desc = ub.load_descriptions(Path(ovmer_dir) / f"{CHAT_UNIVI}.npz")
    names = sorted(n for n in desc if n in ref.labels and n in ref.chat_univi)[:des_samples]
    extractor = load(des_model)
    ours = mer.extract_openset([desc[n] for n in names],
                               lambda msgs: extractor.chat(msgs, max_new_tokens=max_new_tokens, seed=seed,
                                                           **QWEN_SAMPLING))
    gt = [ref.labels[n] for n in names]
    return pd.DataFrame({"Qwen2.5-7B extraction (published)": mer.merfg_scores(gt, [ref.chat_univi[n] for n in names],
                                                                               wheels),
                         f"{extractor.name[:24]} extraction": mer.merfg_scores(gt, ours, wheels)}).T.mul(100).round(2)


def merpr_example() -> pd.DataFrame:
    """MER-PR on a hand-checkable case. Openness: errors (0.5, 0, -0.5, 0), so RMSE = sqrt(0.5 / 4) = 0.3536
    (``AssertionError`` otherwise); CCC = 2 cov / (var_t + var_p + (mean_t - mean_p)^2)."""
    y_true = np.array([[1.0, 2.0], [2.0, 2.5], [3.0, 3.0], [4.0, 3.5]])
    y_pred = np.array([[1.5, 2.0], [2.0, 2.0], [2.5, 3.5], [4.0, 3.0]])
    table = mer.merpr_scores(y_true, y_pred, ["openness", "conscientiousness"])
    assert abs(table.loc[0, "rmse"] - np.sqrt(0.125)) < 1e-12, "hand-checked RMSE"
    return table


def summary_texts(data: mer.Track1Data, merdes: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    """The summary box's sentences (``paper_claim``, ``ran_here``, ``not_reproduced``) for ``notebook.summary_box``."""
    rho = mer.rank_agreement(list(merdes["wheel"]["Qwen mean"]), list(merdes["wheel"]["lexicon mean"]))
    return dict(
        paper_claim="MER2025 sets four tracks (semi-supervised, fine-grained, descriptive, personality) with released "
                    "baselines and scorers; attention fusion of audio, video and text is the MER-SEMI baseline.",
        ran_here=f"the MER2024 OV metric on the official example (paper scale); MER-FG of the ten OV-MER baselines "
                 f"from their published lists (derived, counted on the AffectGPT page); the track-1 baseline on "
                 f"{data.origin.split(';')[0]}; MER-DES with a deterministic extractor (substitute: Spearman "
                 f"{rho['rho']:.2f} with the published Qwen extraction over {rho['n']} models).",
        not_reproduced="every MER2025 ranking number (test labels withheld, features gated) and the paper's baseline "
                       "tables (no reachable public source prints them).")
