"""The Emotion-Qwen chapter's tables, texts and figure, assembled from :mod:`.experiments` (the Hybrid Compressor
and the scoring scripts' parsers) and :mod:`.forgetting` (the forgetting experiment); only
``notebooks/emotion_qwen`` imports this module.

Each function is one step of the chapter (the notebook calls them in order, so the random streams are consumed in the
same order as when this code lived in the notebook): parameter counts, the shape probe, weight loading, the
forgetting experiment's tables, power analysis text, claims and figure, the scoring-rule demonstrations on hand-made
replies, real AffectGPT answers and the ``eval_data`` label files, and the summary box's inputs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from compendium import verdicts
from compendium.emotion.emotion_qwen import experiments as eq
from compendium.emotion.emotion_qwen import forgetting as cf
from compendium.emotion.unibench import find_checkpoints, load_descriptions, load_merbench_labels

__all__ = ["parameter_counts", "probe_check", "weight_loading", "task_summary", "run_seeds", "RESULT_COLUMNS",
           "forgetting_summary", "forgetting_figure", "power_report", "forgetting_claims", "scoring_examples",
           "toy_uar_line", "load_affectgpt_answers", "dfew_on_answers", "dfew_view", "mer2024_on_answers",
           "mer2024_view", "rule_moves", "read_label_sets", "strategy_table", "strategy_lines", "eval_data_check",
           "summary_inputs", "STRATEGIES"]

STRATEGIES = ("oracle", "every class", "no class word", "always neutral")
RESULT_COLUMNS = ["variant", "replay", "seed", "general acc", "emotion acc", "gate: emotion weight on general inputs",
                  "gate: emotion weight on emotion inputs", "trainable params"]
GATE_COLUMNS = ["gate: emotion weight on general inputs", "gate: emotion weight on emotion inputs"]
COLOURS = {"stage 1": "grey", "single": "#d73027", "hybrid": "#4575b4", "LLM only": "#91bfdb"}


def _plural(n: int) -> str:
    return "s" if n != 1 else ""


# ---------------------------------------------------------------------------------------------------- compressor
def parameter_counts() -> tuple[pd.DataFrame, str]:
    """Parameter counts of the hybrid vision model at 7B scale beside Qwen2.5-VL-7B's vision side (built on the meta
    device: shapes and counts only), and the printed line with the added count and the merger's structure."""
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel

    with torch.device("meta"):  # shapes and counts only: no memory for 7B-scale weights
        full = eq.build_hybrid_vision_model()
        plain = Qwen2_5_VisionTransformerPretrainedModel(eq.qwen25vl_7b_vision_config())
    counts = pd.DataFrame([
        {"part": "ViT (patch embed + 32 blocks)",
         "parameters": eq.count_parameters(full) - eq.count_parameters(full.merger)},
        {"part": "general compressor (= Qwen2.5-VL merger)", "parameters": eq.count_parameters(full.merger.general)},
        {"part": "emotion compressor", "parameters": eq.count_parameters(full.merger.emotion)},
        {"part": "gate (MHSA + 2 x [Linear, ReLU, LayerNorm] + Linear)",
         "parameters": eq.count_parameters(full.merger.gate)},
        {"part": "vision side with the Hybrid Compressor", "parameters": eq.count_parameters(full)},
        {"part": "vision side of Qwen2.5-VL-7B (one merger)", "parameters": eq.count_parameters(plain)},
    ])
    counts["millions"] = (counts.parameters / 1e6).round(2)
    extra = eq.count_parameters(full) - eq.count_parameters(plain)
    text = (f"the Hybrid Compressor adds {extra:,} parameters ({extra / 1e6:.1f} M) to the 7B model's vision side\n"
            f"{full.merger}")
    return counts, text


def probe_check(table: pd.DataFrame, probe_grid: Sequence[int], probe_depth: int, **widths) -> tuple[pd.DataFrame, str]:
    """Run the hybrid vision model (the 7B widths unless ``widths`` overrides them, ``probe_depth`` blocks) on one
    random input of the ``probe_grid`` patch grid and compare its shapes with the published probe ``table``; token
    counts are compared only on the probe's own 4x28x48 grid. Returns the comparison and the printed line."""
    cfg_probe = eq.qwen25vl_7b_vision_config(depth=probe_depth, fullatt_block_indexes=[probe_depth - 1], **widths)
    torch.manual_seed(0)
    probe_model = eq.build_hybrid_vision_model(cfg_probe).eval()
    grid = torch.tensor([probe_grid])
    n_patches = int(grid.prod())
    t0 = time.time()
    with torch.no_grad():
        out = probe_model(torch.randn(n_patches, 3 * 2 * 14 * 14), grid_thw=grid)
    line = (f"grid {probe_grid}: vision tokens {tuple(out.last_hidden_state.shape)} -> compressed "
            f"{tuple(out.pooler_output.shape)} in {time.time() - t0:.0f} s; gate weights (general, emotion) "
            f"{probe_model.merger.last_weights.numpy().round(3)}")
    is_probe_grid = list(probe_grid) == [4, 28, 48]
    why = f"this profile ran a {'x'.join(map(str, probe_grid))} grid; the paper profile runs the probe's 4x28x48"
    probe_rep = {
        ("vision encoder output", "width"): out.last_hidden_state.shape[1],
        ("each compressor's output", "width"): out.pooler_output.shape[1],
        ("vision encoder output", "tokens"): out.last_hidden_state.shape[0] if is_probe_grid else verdicts.not_run(why),
        ("each compressor's output", "tokens"): out.pooler_output.shape[0] if is_probe_grid else verdicts.not_run(why),
    }
    return verdicts.compare(table, probe_rep, scale="paper"), line


def weight_loading(checkpoint: str | Path = "", target_config=None):
    """Load a Qwen2.5-VL (or Emotion-Qwen) checkpoint's vision weights into the hybrid model (``target_config``:
    default the 7B one); without ``checkpoint``, a small randomly initialised Qwen2.5-VL with the real key layout.
    Returns the load report and the printed line; everything but the gate must load."""
    if checkpoint:
        target = eq.build_hybrid_vision_model(target_config)
        state = eq.read_vision_state_dict(checkpoint)
    else:
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        small = eq.qwen25vl_7b_vision_config(depth=2, hidden_size=64, intermediate_size=96, num_heads=4,
                                             out_hidden_size=96, fullatt_block_indexes=[1])
        tiny_cfg = Qwen2_5_VLConfig(vision_config=small.to_dict(), text_config=dict(
            hidden_size=96, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=512, bos_token_id=0, eos_token_id=1,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 4, 4]}))
        state = Qwen2_5_VLForConditionalGeneration(tiny_cfg).state_dict()
        target = eq.build_hybrid_vision_model(small)
    report = eq.load_vision_weights(target, state)
    line = (f"checkpoint keys {len(state)}; loaded {len(report.loaded)}; still missing {len(report.missing)} "
            f"({sorted({k.split('.')[1] for k in report.missing})}); unexpected {len(report.unexpected)}; "
            f"shape mismatches {len(report.shape_mismatch)}")
    assert not report.shape_mismatch and all(k.startswith("merger.gate.") for k in report.missing)
    return report, line


# ---------------------------------------------------------------------------------------------------- forgetting
def task_summary(general_train: cf.TaskData, general_test: cf.TaskData, emotion_train: cf.TaskData,
                 emotion_test: cf.TaskData, seconds: float) -> tuple[float, str]:
    """The emotion test set's majority-class share (a trivial baseline) and the printed lines on the four tasks."""
    majority = emotion_test.y.bincount().max().item() / len(emotion_test)
    text = (f"frozen features in {seconds:.0f} s: general {tuple(general_train.tokens.shape)} / "
            f"{len(general_test)} test; emotion {tuple(emotion_train.tokens.shape)} / {len(emotion_test)} test\n"
            f"emotion test majority class share (a trivial baseline): {100 * majority:.1f}%; chance for CIFAR-10: 10%")
    return majority, text


def run_seeds(general_train: cf.TaskData, general_test: cf.TaskData, emotion_train: cf.TaskData,
              emotion_test: cf.TaskData, seeds: Sequence[int], replays: Sequence[float], *, stage1_epochs: int,
              stage2_epochs: int, tune_llm: bool, **sizes) -> pd.DataFrame:
    """The forgetting experiment once per seed (stage 1 once per seed, then every variant for every replay
    fraction), concatenated. ``sizes``: further :class:`~compendium.emotion.emotion_qwen.forgetting.ExperimentConfig`
    fields (the chapter uses the defaults)."""
    frames = []
    for seed in seeds:
        cfg = cf.ExperimentConfig(stage1_epochs=stage1_epochs, stage2_epochs=stage2_epochs, tune_llm=tune_llm,
                                  seed=int(seed), **sizes)
        frames.append(cf.run_experiment(general_train, general_test, emotion_train, emotion_test, cfg,
                                        replays=[float(r) for r in replays]))
    return pd.concat(frames, ignore_index=True)


def forgetting_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd of both accuracies per (replay, variant) after stage 2, with the drop of general accuracy from
    the stage-1 mean."""
    before = results[results.variant == "stage 1"].groupby("replay")[["general acc", "emotion acc"]].mean()
    after = results[results.variant != "stage 1"].groupby(["replay", "variant"])[["general acc", "emotion acc"]].agg(
        ["mean", "std"])
    summary = after.copy()
    for r in summary.index:
        summary.loc[r, ("general acc", "drop")] = (before.loc[r[0], "general acc"]
                                                   - after.loc[r, ("general acc", "mean")])
    return summary


def forgetting_figure(results: pd.DataFrame, replays: Sequence[float], majority: float):
    """One panel per replay fraction: emotion vs general accuracy of every run, the majority share dotted."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(replays), figsize=(5 * len(replays), 3.6), squeeze=False)
    for ax, replay in zip(axes[0], replays):
        sub = results[results.replay == replay]
        for variant, grp in sub.groupby("variant"):
            ax.scatter(grp["general acc"], grp["emotion acc"], label=variant, color=COLOURS[variant], s=40)
        ax.set_xlabel("general task accuracy (%)")
        ax.set_ylabel("emotion task accuracy (%)")
        ax.axhline(100 * majority, color="grey", lw=0.7, ls=":")
        ax.set_title(f"after emotion fine-tuning, replay {replay:.2f}")
    axes[0][0].legend(fontsize=8)
    plt.tight_layout()
    return fig


def power_report(results: pd.DataFrame, n_seeds: int) -> dict:
    """The power analysis of the run (``table``), its Markdown paragraph (``markdown``) and the minutes per seed
    and for the experiment as glued strings (``per_seed_minutes``, ``experiment_minutes``)."""
    power = cf.power_analysis(results)
    stage2_s = results[results.variant != "stage 1"].groupby("seed")["seconds"].sum()
    stage1_s = results[results.variant == "stage 1"].groupby("seed")["seconds"].first()
    per_seed_min = float((stage2_s + stage1_s).mean()) / 60
    needed_by_replay = {r[0]: int(r[3]) for r in power.itertuples(index=False)
                        if r[3] is not None and np.isfinite(r[3])}
    needed = list(needed_by_replay.values())
    sd_text = ", ".join(f"{r[2]:.1f} points at replay {r[0]:.2f}" for r in power.itertuples(index=False)
                        if np.isfinite(r[2]))
    enough = bool(needed) and n_seeds >= max(needed)
    markdown = (
        f"**Power analysis (from this run).** The per-seed differences hybrid − single of general accuracy have a "
        f"standard deviation of {sd_text or 'nothing yet (one seed)'}. A two-sided paired t-test at α = {cf.ALPHA} "
        f"detects a {cf.EFFECT_POINTS:g}-point difference with {cf.POWER:.0%} power from "
        + (" and ".join(f"{n} seeds at replay {r:.2f}" for r, n in needed_by_replay.items())
           or "an estimate of the spread, which needs at least two seeds") + ". "
        f"This run used {n_seeds} seed{_plural(n_seeds)} at {per_seed_min:.1f} min per seed on this "
        f"machine ({n_seeds * per_seed_min:.0f} min for the experiment)"
        + ("." if enough else (f"; {max(needed)} seeds would take about {max(needed) * per_seed_min:.0f} min. "
                               "Where the seeds run are fewer than the test needs, the verdict below is inconclusive "
                               "and names that precondition." if needed else "."))
    )
    return {"table": power, "markdown": markdown, "experiment_minutes": f"{n_seeds * per_seed_min:.0f}",
            "per_seed_minutes": f"{per_seed_min:.1f}"}


def forgetting_claims(results: pd.DataFrame, replays: Sequence[float], majority: float, n_general: int,
                      n_emotion: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The forgetting claim's cells (one per replay fraction, at the substitute's scale) and the hybrid's mean gate
    weights per replay fraction."""
    scale_reason = ("tiny Qwen2 decoder trained from scratch on frozen MobileNetV2 CIFAR-10 / MiniLM GoEmotions tokens "
                    f"({n_general} + {n_emotion} training items), not Emotion-Qwen's 7B model and data")
    claim_cells = pd.concat([cf.claim_limits_forgetting(results, float(r), majority, scale_reason=scale_reason)
                             for r in replays], ignore_index=True)
    gate = results[results.variant == "hybrid"].groupby("replay")[GATE_COLUMNS].mean()
    return claim_cells, gate


# ---------------------------------------------------------------------------------------------------- scoring rules
def scoring_examples() -> pd.DataFrame:
    """Four hand-checkable replies, each parsed by the DFEW and MER2024 rules as written and corrected."""
    examples = pd.DataFrame([
        {"reply": "I feel unhappy.", "true": "happy"},
        {"reply": "happy, sad, angry", "true": "sad"},
        {"reply": "The person looks surprised and a bit angry.", "true": "angry"},
        {"reply": "Hard to tell.", "true": "sad"},
    ])
    examples["DFEW as written"] = [eq.dfew_predict(r, t) for r, t in zip(examples.reply, examples.true)]
    examples["DFEW corrected"] = [eq.dfew_predict(r, t, "corrected") for r, t in zip(examples.reply, examples.true)]
    examples["MER2024 as written"] = [eq.mer2024_predict(r) for r in examples.reply]
    examples["MER2024 corrected"] = [eq.mer2024_predict(r, "corrected") for r in examples.reply]
    return examples


def toy_uar_line() -> str:
    """Three replies, recalls happy 1, sad 1, neutral 0: the as-written UAR divides by 4 labels (3 true + "none")."""
    toy_f = eq.dfew_scores(["happy", "sad", "neutral"], ["happy", "sad", "no idea"])
    toy_c = eq.dfew_scores(["happy", "sad", "neutral"], ["happy", "sad", "no idea"], uar="corrected")
    return f"UAR as written {toy_f['UAR']:.3f}, corrected {toy_c['UAR']:.3f}"


def load_affectgpt_answers(outputs_dir: str | Path, labels_dir: str | Path):
    """AffectGPT's free-text answers per checkpoint on MELD and MER2023 (``{dataset: [(checkpoint, {name: reply})]}``)
    and the two label sets, MELD's words mapped to DFEW's (anger -> angry, joy -> happy, sadness -> sad)."""
    to_dfew = {"anger": "angry", "joy": "happy", "sadness": "sad"}
    answers = {dataset: [(ck.checkpoint, load_descriptions(Path(str(ck.openset).replace("-openset.npz", ".npz"))))
                         for ck in find_checkpoints(outputs_dir, dataset).itertuples()]
               for dataset in ("MELD", "MER2023")}
    meld_labels = {n: to_dfew.get(w, w) for n, w in load_merbench_labels(labels_dir, "MELD").items()}
    mer23_labels = load_merbench_labels(labels_dir, "MER2023")
    return answers, meld_labels, mer23_labels


def _paired(labels: Mapping[str, str], ans: Mapping[str, str]) -> tuple[list[str], list[str]]:
    names = [n for n in labels if n in ans]
    return [labels[n] for n in names], [ans[n] for n in names]


def dfew_on_answers(answers: Sequence[tuple], labels: Mapping[str, str]) -> pd.DataFrame:
    """DFEW WAR / UAR (in %) of each checkpoint's answers under each matching x UAR rule (faithful, corrected)."""
    rows = []
    for epoch, ans in answers:
        lab, rep = _paired(labels, ans)
        for matching in ("faithful", "corrected"):
            for uar in ("faithful", "corrected"):
                s = eq.dfew_scores(lab, rep, matching=matching, uar=uar)
                rows.append({"checkpoint": epoch, "matching": matching, "UAR rule": uar, "WAR": 100 * s["WAR"],
                             "UAR": 100 * s["UAR"], "n": s["n"]})
    return pd.DataFrame(rows)


def dfew_view(dfew_real: pd.DataFrame) -> pd.DataFrame:
    return dfew_real.groupby(["matching", "UAR rule"])[["WAR", "UAR"]].agg(["mean", "min", "max"]).round(2)


def mer2024_on_answers(answers: Sequence[tuple], labels: Mapping[str, str]) -> pd.DataFrame:
    """MER2024 WAF / accuracy (in %) of each checkpoint's answers under the rules as written and corrected, with the
    counts of default "worried" guesses and of replies without a class word."""
    rows = []
    for epoch, ans in answers:
        lab, rep = _paired(labels, ans)
        for mode in ("faithful", "corrected"):
            s = eq.mer2024_scores(lab, rep, mode)
            rows.append({"checkpoint": epoch, "rules": mode, "WAF": 100 * s["WAF"], "accuracy": 100 * s["accuracy"],
                         "'worried' by default": s["worried by default"], "no class word": s["none"], "n": s["n"]})
    return pd.DataFrame(rows)


def mer2024_view(mer_real: pd.DataFrame) -> pd.DataFrame:
    return mer_real.groupby("rules")[["WAF", "accuracy", "'worried' by default", "no class word"]].mean().round(2)


def rule_moves(dfew_real: pd.DataFrame, mer_real: pd.DataFrame) -> pd.DataFrame:
    """How many points each published rule moves the mean score over checkpoints (as written minus corrected)."""
    d = dfew_real.groupby(["matching", "UAR rule"])[["WAR", "UAR"]].mean()
    m = mer_real.groupby("rules")[["WAF", "accuracy"]].mean()
    moves = pd.DataFrame([
        {"rule": "DFEW: 'contains the word' vs first whole word", "metric": "WAR",
         "moves the score by": d.loc[("faithful", "corrected"), "WAR"] - d.loc[("corrected", "corrected"), "WAR"]},
        {"rule": "DFEW: 8th class 'none' in UAR", "metric": "UAR",
         "moves the score by": d.loc[("faithful", "faithful"), "UAR"] - d.loc[("faithful", "corrected"), "UAR"]},
        {"rule": "DFEW: both rules", "metric": "UAR",
         "moves the score by": d.loc[("faithful", "faithful"), "UAR"] - d.loc[("corrected", "corrected"), "UAR"]},
        {"rule": "MER2024: default 'worried' + alphabetically last", "metric": "WAF",
         "moves the score by": m.loc["faithful", "WAF"] - m.loc["corrected", "WAF"]},
        {"rule": "MER2024: default 'worried' + alphabetically last", "metric": "accuracy",
         "moves the score by": m.loc["faithful", "accuracy"] - m.loc["corrected", "accuracy"]},
    ])
    moves["moves the score by"] = moves["moves the score by"].round(2)
    return moves


def read_label_sets(eval_data: str | Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The DFEW single-labelled test sets 1-5 and the MER2024 SEMI / NOISE references shipped in ``eval_data/``."""
    eval_data = Path(eval_data)
    dfew_sets = {f"DFEW set_{k}": eq.read_dfew_labels(eval_data / f"DFEW/test(single-labeled)/set_{k}.csv")
                 for k in range(1, 6)}
    mer_sets = {f"MER2024 {s}": eq.read_mer2024_labels(eval_data / f"MER2024/reference-{s}.csv")
                for s in ("semi", "noise")}
    return dfew_sets, mer_sets


def strategy_table(dfew_sets: Mapping[str, list[str]], mer_sets: Mapping[str, list[str]]) -> pd.DataFrame:
    """Scores (in %) of each answer strategy on each label set, as written and corrected."""
    rows = []
    for name, labels in dfew_sets.items():
        for strat in STRATEGIES:
            rep = eq.strategy_replies(strat, labels, eq.DFEW_CLASSES)
            f = eq.dfew_scores(labels, rep)
            c = eq.dfew_scores(labels, rep, matching="corrected", uar="corrected")
            rows.append({"labels": name, "strategy": strat, "as written: WAR": 100 * f["WAR"],
                         "as written: UAR": 100 * f["UAR"], "corrected: WAR": 100 * c["WAR"],
                         "corrected: UAR": 100 * c["UAR"]})
    for name, labels in mer_sets.items():
        for strat in STRATEGIES:
            rep = eq.strategy_replies(strat, labels, eq.MER2024_CLASSES)
            f, c = eq.mer2024_scores(labels, rep), eq.mer2024_scores(labels, rep, "corrected")
            rows.append({"labels": name, "strategy": strat, "as written: WAR": 100 * f["accuracy"],
                         "as written: UAR": np.nan, "as written: WAF": 100 * f["WAF"],
                         "corrected: WAR": 100 * c["accuracy"], "corrected: WAF": 100 * c["WAF"]})
    return pd.DataFrame(rows)


def strategy_lines(strategies: pd.DataFrame) -> str:
    """The two printed lines on DFEW set_1 (every class word listed) and MER2024-SEMI (no class word)."""
    s1 = strategies[(strategies.labels == "DFEW set_1")].set_index("strategy")
    semi = strategies[(strategies.labels == "MER2024 semi")].set_index("strategy")
    return (f"DFEW set_1, listing all seven words: WAR {s1.loc['every class', 'as written: WAR']:.2f} / UAR "
            f"{s1.loc['every class', 'as written: UAR']:.2f} as written; "
            f"{s1.loc['every class', 'corrected: WAR']:.2f} corrected\n"
            f"MER2024-SEMI, no class word in any reply: accuracy {semi.loc['no class word', 'as written: WAR']:.2f} "
            f"(= 159/1169 worried) as written; {semi.loc['no class word', 'corrected: WAR']:.2f} corrected")


def eval_data_check(table: pd.DataFrame, dfew_sets: Mapping[str, list[str]],
                    mer_sets: Mapping[str, list[str]]) -> pd.DataFrame:
    """Compare the label files' row and class counts with the published ``eval_data`` table; all must be exact."""
    count_rep = {}
    for name, labels in mer_sets.items():
        row = "MER2024 reference-" + name.split()[-1]
        count_rep[(row, "rows")] = len(labels)
        for cls in eq.MER2024_CLASSES:
            count_rep[(row, cls)] = labels.count(cls)
    for k, (name, labels) in enumerate(dfew_sets.items(), start=1):
        count_rep[("DFEW single-labelled test", f"set_{k} rows")] = len(labels)
    cmp_eval = verdicts.compare(table, count_rep, scale="paper")
    assert (cmp_eval.verdict == "exact").all()
    return cmp_eval


# ---------------------------------------------------------------------------------------------------- summary
def summary_inputs(seeds: Sequence[int], replays: Sequence[float]) -> dict[str, str]:
    """The summary box's sentences (``paper_claim``, ``ran_here``, ``not_reproduced``) for this run's settings."""
    return dict(
        paper_claim=("A Hybrid Compressor (a general and an emotion expert mixed by a gate) lets an LMM gain emotion "
                     "skills while keeping its general vision-language ability."),
        ran_here=(f"the compressor on Qwen2.5-VL's real classes (shapes at full width); the forgetting claim on a "
                  f"substitute (tiny decoder, CIFAR-10 vs GoEmotions, {len(seeds)} seed{_plural(len(seeds))}, replay "
                  f"{', '.join(f'{r:g}' for r in replays)}); the DFEW/MER2024 scoring rules on AffectGPT's published "
                  f"answers."),
        not_reproduced="any number of the paper's tables (not transcribed; the 7B model and its data do not run here).",
    )
