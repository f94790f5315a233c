"""Emotion-Qwen (compendium.emotion.emotion_qwen): the Hybrid Compressor on transformers' Qwen2.5-VL classes,
weight loading, and the DFEW / MER2024 parsers as written and corrected. Expected values are worked out in the
comments."""

from __future__ import annotations

import pytest
import torch

from compendium.emotion.emotion_qwen import experiments as eq


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(**kw):
    base = dict(depth=2, hidden_size=32, intermediate_size=48, num_heads=4, out_hidden_size=24,
                fullatt_block_indexes=[1])
    base.update(kw)
    return eq.qwen25vl_7b_vision_config(**base)


# ---------------------------------------------------------------------------------------------------- compressor
def test_gate_rows_per_segment_sum_to_one():
    torch.manual_seed(0)
    gate = eq.GateNetWithAttention(16, num_experts=2, num_heads=4)
    w = gate(torch.randn(12, 16), segments=[8, 4])
    assert w.shape == (2, 2) and torch.allclose(w.sum(1), torch.ones(2))
    assert eq.GateNetWithAttention(16, normalise="sigmoid")(torch.randn(4, 16)).shape == (1, 2)
    with pytest.raises(ValueError):
        eq.GateNetWithAttention(16, normalise="relu")


def test_hybrid_is_the_weighted_sum_of_experts():
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLPatchMerger

    torch.manual_seed(0)
    general, emotion = Qwen2_5_VLPatchMerger(6, 8), Qwen2_5_VLPatchMerger(6, 8)
    gate = eq.GateNetWithAttention(8, num_heads=2, normalise="none")
    with torch.no_grad():  # constant raw weights (0.25 general, 0.75 emotion)
        gate.out.weight.zero_()
        gate.out.bias.copy_(torch.tensor([0.25, 0.75]))
    hybrid = eq.HybridCompressor(general, emotion, gate)
    x = torch.randn(8, 8)
    out = hybrid(x)
    assert out.shape == (2, 6)  # 8 tokens, 2x2 merge -> 2 LLM tokens
    assert torch.allclose(out, 0.25 * general(x) + 0.75 * emotion(x), atol=1e-6)
    # two images: weights broadcast over each image's merged tokens only
    hybrid.gate.normalise = "softmax"
    hybrid.set_segments([4, 4])
    out2 = hybrid(x)
    w = hybrid.last_weights
    assert w.shape == (2, 2)
    expected = torch.cat([w[i, 0] * general(x)[i:i + 1] + w[i, 1] * emotion(x)[i:i + 1] for i in range(2)])
    assert torch.allclose(out2, expected, atol=1e-6)
    hybrid.set_segments([4, 2])
    with pytest.raises(ValueError):
        hybrid(x)


def test_hybrid_inside_qwen25vl_vision_model():
    torch.manual_seed(0)
    model = eq.build_hybrid_vision_model(tiny_config(), gate_heads=4)
    grid = torch.tensor([[1, 4, 6], [2, 4, 4]])  # 24 + 32 patch tokens -> 6 + 8 LLM tokens
    out = model(torch.randn(56, 3 * 2 * 14 * 14), grid_thw=grid)
    assert out.last_hidden_state.shape == (56, 32) and out.pooler_output.shape == (14, 24)
    assert model.merger.last_weights.shape == (2, 2)
    # at initialisation both experts are the same merger, so the mixture equals the plain Qwen2.5-VL merger
    model.merger.set_segments([56])
    x = torch.randn(56, 32)
    assert torch.allclose(model.merger(x), model.merger.general(x), atol=1e-5)


def test_parameter_counts_at_7b_scale():
    with torch.device("meta"):
        model = eq.build_hybrid_vision_model()
    # one expert: RMSNorm 1280 + Linear(5120, 5120) + Linear(5120, 3584) with biases
    expert = 1280 + 5120 * 5120 + 5120 + 5120 * 3584 + 3584
    assert eq.count_parameters(model.merger.general) == expert == 44_574_464
    assert eq.count_parameters(model.merger.emotion) == expert
    # gate: MHSA 4 * 1280^2 + 4 * 1280, two Linear(1280, 1280) + LayerNorms, Linear(1280, 2)
    gate = 4 * 1280 * 1280 + 4 * 1280 + 2 * (1280 * 1280 + 1280 + 2 * 1280) + 1280 * 2 + 2
    assert eq.count_parameters(model.merger.gate) == gate


def test_load_qwen25vl_and_emotion_qwen_keys():
    torch.manual_seed(0)
    source = eq.build_hybrid_vision_model(tiny_config())
    qwen_sd = {}
    for k, v in source.state_dict().items():
        if k.startswith("merger.general."):
            qwen_sd["model.visual.merger." + k[len("merger.general."):]] = v
        elif not k.startswith("merger."):
            qwen_sd["visual." + k] = v
    qwen_sd["model.language_model.layers.0.mlp.up_proj.weight"] = torch.zeros(2, 2)  # ignored
    target = eq.build_hybrid_vision_model(tiny_config())
    rep = eq.load_vision_weights(target, qwen_sd)
    assert not rep.unexpected and not rep.shape_mismatch
    assert all(k.startswith("merger.gate.") for k in rep.missing)  # a Qwen2.5-VL checkpoint has no gate
    tsd, ssd = target.state_dict(), source.state_dict()
    assert torch.equal(tsd["blocks.0.attn.qkv.weight"], ssd["blocks.0.attn.qkv.weight"])
    assert torch.equal(tsd["merger.emotion.mlp.0.weight"], ssd["merger.general.mlp.0.weight"])  # copied
    # Emotion-Qwen names: a compressor with other internals is reported, not silently dropped
    foreign = {"generalcompressor.experts.0.weight": torch.zeros(3), "gatenet.out.weight": torch.zeros(5, 5),
               "vpm.patch_embed.proj.weight": ssd["patch_embed.proj.weight"]}
    rep2 = eq.load_vision_weights(target, foreign)
    assert rep2.unexpected == ["generalcompressor.experts.0.weight"]
    assert rep2.shape_mismatch and rep2.shape_mismatch[0].startswith("gatenet.out.weight")
    assert "patch_embed.proj.weight" in rep2.loaded


def test_read_vision_state_dict(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(FileNotFoundError):
        eq.read_vision_state_dict(tmp_path)
    save_file({"model.visual.blocks.0.norm1.weight": torch.ones(3, dtype=torch.bfloat16),
               "model.language_model.norm.weight": torch.ones(2)}, str(tmp_path / "model-00001.safetensors"))
    sd = eq.read_vision_state_dict(tmp_path)
    assert list(sd) == ["model.visual.blocks.0.norm1.weight"] and sd[list(sd)[0]].dtype == torch.float32


# ---------------------------------------------------------------------------------------------------- parsers
def test_dfew_prediction_rules():
    assert eq.dfew_predict("I feel unhappy", "happy") == "happy"  # substring: "unhappy" counts as happy
    assert eq.dfew_predict("I feel unhappy", "happy", "corrected") == "none"
    assert eq.dfew_predict("happy, sad, angry", "sad") == "sad"  # listing emotions is always right
    assert eq.dfew_predict("happy, sad, angry", "sad", "corrected") == "happy"
    assert eq.dfew_predict("Fear.", "fear", "corrected") == "fear"


def test_dfew_uar_eighth_class():
    labels = ["happy", "sad", "neutral"]
    replies = ["happy", "sad", "no idea"]
    # recalls happy 1, sad 1, neutral 0; the miss adds "none" as a 4th label with recall 0:
    # faithful UAR = 2 / 4 = 0.5 (with 7 DFEW classes: sum / 8), corrected = 2 / 3
    faithful = eq.dfew_scores(labels, replies)
    corrected = eq.dfew_scores(labels, replies, uar="corrected")
    assert faithful["UAR"] == pytest.approx(0.5) and corrected["UAR"] == pytest.approx(2 / 3)
    assert faithful["WAR"] == pytest.approx(2 / 3) == corrected["WAR"] and faithful["none"] == 1
    # no miss: no 8th class, both agree
    ok = eq.dfew_scores(labels, ["happy", "sad", "neutral"])
    assert ok["UAR"] == pytest.approx(1.0)


def test_mer2024_prediction_rules():
    assert eq.mer2024_predict("no idea at all") == "worried"  # max over (False, e) is the last word alphabetically
    assert eq.mer2024_predict("happy but also sad") == "sad"  # several matches: alphabetically last
    assert eq.mer2024_predict("surprised and angry") == "surprise"
    assert eq.mer2024_predict("no idea at all", "corrected") == "none"
    assert eq.mer2024_predict("happy but also sad", "corrected") == "happy"
    assert eq.mer2024_predict("surprised and angry", "corrected") == "angry"  # "surprised" is not the word


def test_mer2024_scores_default_label():
    labels = ["worried", "worried", "happy", "sad"]
    replies = ["hard to say", "anxious", "happy", "hard to say"]
    # faithful: worried, worried, happy, worried -> 3 of 4 right, two of them by the default
    s = eq.mer2024_scores(labels, replies)
    assert s["accuracy"] == pytest.approx(0.75) and s["worried by default"] == 3
    c = eq.mer2024_scores(labels, replies, "corrected")
    assert c["accuracy"] == pytest.approx(0.25) and c["none"] == 3


def test_strategies_on_real_labels(shared_data):
    root = shared_data / "emotion/emotion-qwen/eval_data"
    dfew = eq.read_dfew_labels(root / "DFEW/test(single-labeled)/set_1.csv")
    semi = eq.read_mer2024_labels(root / "MER2024/reference-semi.csv")
    assert len(dfew) == 2341 and len(semi) == 1169 and semi.count("worried") == 159
    # listing every class word is a perfect DFEW score under the faithful matcher, 1/7-ish when corrected
    every = eq.dfew_scores(dfew, eq.strategy_replies("every class", dfew, eq.DFEW_CLASSES))
    assert every["WAR"] == 1.0 and every["UAR"] == 1.0
    # an unparseable reply is "worried" for MER2024: accuracy = worried share 159 / 1169
    blank = eq.mer2024_scores(semi, eq.strategy_replies("no class word", semi, eq.MER2024_CLASSES))
    assert blank["accuracy"] == pytest.approx(159 / 1169)


# ---------------------------------------------------------------------------------------------------- forgetting
def _random_task(name, n, t, classes, offset, task, seed):
    from compendium.emotion.emotion_qwen import forgetting as cf

    g = torch.Generator().manual_seed(seed)
    return cf.TaskData(name, torch.randn(n, t, cf.D_TOKEN, generator=g), torch.ones(n, t, dtype=torch.bool),
                       torch.randint(0, len(classes), (n,), generator=g) + offset, task, classes, offset)


def test_forgetting_protocol_mechanics():
    # Random tensors only exercise the training code (freezing, copying, recording); they are not a result.
    import copy

    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLPatchMerger

    from compendium.emotion.emotion_qwen import forgetting as cf

    gen_tr = _random_task("g", 16, 16, tuple("abcd"), 0, 0, 0)
    emo_tr = _random_task("e", 16, 8, tuple("xyz"), 4, 1, 1)
    torch.manual_seed(0)
    base = cf.TinyLMM(Qwen2_5_VLPatchMerger(16, cf.D_TOKEN), 16, 7, layers=1, heads=2)
    hybrid = copy.deepcopy(base)
    gate = eq.GateNetWithAttention(cf.D_TOKEN, 2, 2, 16)
    hybrid.compressor = eq.HybridCompressor(hybrid.compressor, copy.deepcopy(hybrid.compressor), gate)
    task = torch.zeros(4, dtype=torch.long)
    # identical experts + softmax gate: the hybrid model starts as the stage-1 model
    assert torch.allclose(base(gen_tr.tokens[:4], gen_tr.mask[:4], task)[0],
                          hybrid(gen_tr.tokens[:4], gen_tr.mask[:4], task)[0], atol=1e-5)
    before = copy.deepcopy(hybrid.compressor.general.state_dict())
    params = cf._trainable(hybrid, [hybrid.compressor.emotion, hybrid.compressor.gate], tune_llm=True)
    cf._train(hybrid, params, emo_tr, 1, cf.ExperimentConfig(batch_size=8), torch.Generator().manual_seed(0))
    after = hybrid.compressor.general.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the general expert is frozen
    assert not torch.equal(hybrid.compressor.emotion.mlp[0].weight, base.compressor.mlp[0].weight)
    res = cf.run_experiment(gen_tr, gen_tr, emo_tr, emo_tr, cf.ExperimentConfig(
        d_llm=16, llm_layers=1, llm_heads=2, gate_heads=2, stage1_epochs=1, stage2_epochs=1, batch_size=8),
        replays=[0.0, 0.5], progress=False)
    assert list(res.variant) == ["stage 1", "single", "hybrid", "LLM only"] * 2
    assert list(res.replay) == [0.0] * 4 + [0.5] * 4
    assert res[res.variant == "hybrid"]["gate: emotion weight on general inputs"].between(0, 1).all()


# ---------------------------------------------------------------------------------------------------- seeds and claim
def _results(single, hybrid, stage1=70.0, emotion=55.0, replay=0.25):
    """Hand-made experiment rows: general accuracy per seed of single and hybrid, one stage-1 row per seed."""
    import pandas as pd

    rows = []
    for seed, (s, h) in enumerate(zip(single, hybrid)):
        rows += [{"variant": "stage 1", "replay": replay, "seed": seed, "general acc": stage1, "emotion acc": 0.0},
                 {"variant": "single", "replay": replay, "seed": seed, "general acc": s, "emotion acc": emotion},
                 {"variant": "hybrid", "replay": replay, "seed": seed, "general acc": h, "emotion acc": emotion}]
    return pd.DataFrame(rows)


def test_paired_differences_and_interval():
    from compendium.emotion.emotion_qwen import forgetting as cf

    res = _results([66.5, 69.4, 69.8], [71.1, 71.9, 73.0])
    diffs = cf.paired_differences(res, 0.25)
    assert list(diffs.round(1)) == [4.6, 2.5, 3.2]
    iv = cf.paired_interval(diffs)
    # mean 3.433, sd 1.069, t(0.975, 2) = 4.303: half-width 4.303 * 1.069 / sqrt(3) = 2.656
    assert iv["mean"] == pytest.approx(3.4333, abs=1e-3) and iv["low"] == pytest.approx(0.777, abs=1e-3)
    assert cf.paired_interval([1.0])["sd"] != cf.paired_interval([1.0])["sd"]  # NaN with one seed


def test_seeds_for_power():
    from compendium.emotion.emotion_qwen import forgetting as cf

    # normal approximation (z 1.96 + 0.84)^2 * (sd / effect)^2 = 7.85 at sd = effect; the t-test needs 10
    assert cf.seeds_for_power(3.0) == 10
    assert cf.seeds_for_power(1.0692) == 4 and cf.seeds_for_power(2.7319) == 9
    assert cf.seeds_for_power(0.0) == 2
    assert cf.seeds_for_power(100.0, max_seeds=5) == 6
    with pytest.raises(ValueError):
        cf.seeds_for_power(float("nan"))


def test_power_analysis_table():
    from compendium.emotion.emotion_qwen import forgetting as cf

    table = cf.power_analysis(_results([66.5, 69.4, 69.8], [71.1, 71.9, 73.0]))
    assert table.iloc[0]["seeds run"] == 3 and table.iloc[0, -1] == 4


def test_claim_limits_forgetting_every_branch():
    from compendium.emotion.emotion_qwen import forgetting as cf

    def verdict(single, hybrid, **kw):
        cell = cf.claim_limits_forgetting(_results(single, hybrid, **kw), 0.25, 0.375, scale_reason="tiny model")
        return cell.iloc[0]

    seeds = 6
    holds = verdict([60.0 + i % 2 for i in range(seeds)], [66.0 + i % 3 for i in range(seeds)])
    assert holds.verdict == "supported" and holds.scale == "substitute"
    assert holds.rule == "compendium.emotion.emotion_qwen.forgetting.claim_limits_forgetting"
    fails = verdict([60.0, 60.5, 61.0, 60.2, 60.8, 60.4], [60.1, 60.4, 61.0, 60.3, 60.7, 60.4])
    assert fails.verdict == "not supported"  # the interval sits at 0, far below 3 points
    wide = verdict([60, 50, 70, 55, 65, 60], [62, 58, 66, 52, 70, 61])
    assert wide.verdict == "inconclusive" and "contains 0" in wide.reason
    # unmet preconditions, each named
    one_seed = verdict([60.0], [70.0])
    assert one_seed.verdict == "inconclusive" and "enough seeds" in one_seed.reason
    few = verdict([60, 62, 58], [64, 61, 66])  # an effect, but the spread asks for more than 3 seeds
    assert few.verdict == "inconclusive" and "enough seeds" in few.reason
    unlearned = verdict([20.0 + i % 2 for i in range(seeds)], [26.0 + i % 3 for i in range(seeds)], stage1=30.0)
    assert unlearned.verdict == "inconclusive" and "general task learned" in unlearned.reason
    no_emotion = verdict([60.0 + i % 2 for i in range(seeds)], [66.0 + i % 3 for i in range(seeds)], emotion=30.0)
    assert no_emotion.verdict == "inconclusive" and "emotion task learned" in no_emotion.reason


# ---------------------------------------------------------------------------------------------------- chapter steps
# compendium.emotion.emotion_qwen.chapter: the notebook's tables, texts and figure, on small hand-made inputs.
def test_chapter_parameter_counts():
    from compendium.emotion.emotion_qwen import chapter as ch

    counts, text = ch.parameter_counts()
    p = counts.set_index("part").parameters
    experts = p["general compressor (= Qwen2.5-VL merger)"]
    assert experts == p["emotion compressor"]  # the emotion expert is a copy of the merger
    added = p["vision side with the Hybrid Compressor"] - p["vision side of Qwen2.5-VL-7B (one merger)"]
    assert added == experts + p["gate (MHSA + 2 x [Linear, ReLU, LayerNorm] + Linear)"]
    assert text.startswith(f"the Hybrid Compressor adds {added:,} parameters") and "HybridCompressor" in text
    assert (counts.millions == (counts.parameters / 1e6).round(2)).all()


def test_chapter_probe_check_small_grid():
    from compendium import published
    from compendium.emotion.emotion_qwen import chapter as ch

    table = published.load("emotion_qwen").table("probe")
    cmp, line = ch.probe_check(table, [1, 4, 4], 1, hidden_size=32, intermediate_size=48, num_heads=4,
                               out_hidden_size=24)
    # 16 patches of width 32, merged 4 to 1 -> 4 tokens of width 24
    assert line.startswith("grid [1, 4, 4]: vision tokens (16, 32) -> compressed (4, 24)")
    got = cmp.set_index(["row", "column"])
    assert got.loc[("vision encoder output", "width"), "reproduced"] == 32
    assert got.loc[("each compressor's output", "width"), "reproduced"] == 24
    tokens = got.loc[("vision encoder output", "tokens")]  # token counts only on the probe's own grid
    assert "1x4x4 grid" in tokens.reason and tokens.verdict not in ("exact", "close")


def test_chapter_weight_loading_both_paths(tmp_path):
    from safetensors.torch import save_file

    from compendium.emotion.emotion_qwen import chapter as ch

    report, line = ch.weight_loading("")  # no checkpoint: a small random Qwen2.5-VL with the real key layout
    assert report.missing and all(k.startswith("merger.gate.") for k in report.missing)
    assert line.endswith("unexpected 0; shape mismatches 0") and "still missing" in line and "['gate']" in line
    torch.manual_seed(0)
    source = eq.build_hybrid_vision_model(tiny_config())
    sd = {}
    for k, v in source.state_dict().items():
        if k.startswith("merger.general."):
            sd["model.visual.merger." + k[len("merger.general."):]] = v.contiguous()
        elif not k.startswith("merger."):
            sd["model.visual." + k] = v.contiguous()
    save_file(sd, str(tmp_path / "model-00001.safetensors"))
    report, line = ch.weight_loading(tmp_path, tiny_config())
    merger = sum(k.startswith("model.visual.merger.") for k in sd)  # these also initialise the emotion expert
    assert line.startswith(f"checkpoint keys {len(sd)}; loaded {len(sd) + merger};") and not report.unexpected


def _timed_results(single, hybrid, replay=0.25, stage1=70.0, emotion=55.0):
    """Hand-made rows with times (stage 1: 60 s, each stage-2 variant 30 s: 2 min per seed) and gate weights."""
    import pandas as pd

    rows = []
    for seed, (s, h) in enumerate(zip(single, hybrid)):
        rows += [{"variant": "stage 1", "replay": replay, "seed": seed, "general acc": stage1, "emotion acc": 0.0,
                  "seconds": 60.0},
                 {"variant": "single", "replay": replay, "seed": seed, "general acc": s, "emotion acc": emotion,
                  "seconds": 30.0},
                 {"variant": "hybrid", "replay": replay, "seed": seed, "general acc": h, "emotion acc": emotion,
                  "seconds": 30.0, "gate: emotion weight on general inputs": 0.25,
                  "gate: emotion weight on emotion inputs": 0.75}]
    return pd.DataFrame(rows)


def test_chapter_task_summary_and_run_seeds():
    from compendium.emotion.emotion_qwen import chapter as ch

    gen = _random_task("g", 16, 16, tuple("abcd"), 0, 0, 0)
    emo = _random_task("e", 16, 8, tuple("xyz"), 4, 1, 1)
    emo.y = torch.tensor([4] * 10 + [5] * 4 + [6] * 2)  # majority class: 10 of 16
    majority, text = ch.task_summary(gen, gen, emo, emo, 12.4)
    assert majority == 10 / 16
    assert text == ("frozen features in 12 s: general (16, 16, 384) / 16 test; emotion (16, 8, 384) / 16 test\n"
                    "emotion test majority class share (a trivial baseline): 62.5%; chance for CIFAR-10: 10%")
    res = ch.run_seeds(gen, gen, emo, emo, [0, 1], [0.0], stage1_epochs=1, stage2_epochs=1, tune_llm=True,
                       d_llm=16, llm_layers=1, llm_heads=2, gate_heads=2, batch_size=8)
    assert list(res.seed) == [0] * 4 + [1] * 4 and set(ch.RESULT_COLUMNS) <= set(res.columns)


def test_chapter_forgetting_tables_and_figure():
    import matplotlib

    matplotlib.use("Agg")
    from compendium.emotion.emotion_qwen import chapter as ch

    res = _timed_results([60.0, 62.0], [66.0, 68.0])
    summary = ch.forgetting_summary(res)
    # general drop from the stage-1 mean 70: single mean 61 -> 9, hybrid mean 67 -> 3
    assert summary.loc[(0.25, "single"), ("general acc", "drop")] == 9.0
    assert summary.loc[(0.25, "hybrid"), ("general acc", "drop")] == 3.0
    assert summary.loc[(0.25, "hybrid"), ("general acc", "std")] == pytest.approx(2 ** 0.5)
    fig = ch.forgetting_figure(res, [0.25], 0.375)
    ax = fig.axes[0]
    assert ax.get_title() == "after emotion fine-tuning, replay 0.25" and len(ax.collections) == 3
    assert ax.lines[0].get_ydata()[0] == 37.5  # the majority share, in %
    claims, gate = ch.forgetting_claims(res, [0.25], 0.375, 300, 400)
    assert len(claims) == 1 and "(300 + 400 training items)" in claims.iloc[0].scale_reason
    assert gate.loc[0.25].tolist() == [0.25, 0.75]


def test_chapter_power_report_texts():
    from compendium.emotion.emotion_qwen import chapter as ch

    one = ch.power_report(_timed_results([60.0], [70.0]), 1)
    assert one["per_seed_minutes"] == "2.0" and one["experiment_minutes"] == "2"
    assert "deviation of nothing yet (one seed)" in one["markdown"]
    assert "from an estimate of the spread, which needs at least two seeds. This run used 1 seed at" in one["markdown"]
    assert one["markdown"].endswith("(2 min for the experiment).")
    # differences 4.6, 2.5, 3.2: sd 1.07 -> 4 seeds (tests above); 3 run: too few, 4 x 2 min = 8 min
    few = ch.power_report(_timed_results([66.5, 69.4, 69.8], [71.1, 71.9, 73.0]), 3)
    assert "deviation of 1.1 points at replay 0.25" in few["markdown"]
    assert "from 4 seeds at replay 0.25." in few["markdown"]
    assert ("This run used 3 seeds at 2.0 min per seed on this machine (6 min for the experiment); 4 seeds would "
            "take about 8 min. Where the seeds run") in few["markdown"]
    assert few["markdown"].endswith("names that precondition.")
    enough = ch.power_report(_timed_results([66.5, 69.4, 69.8], [71.1, 71.9, 73.0]), 4)
    assert enough["markdown"].endswith("(8 min for the experiment).")
    assert enough["table"].iloc[0, -1] == 4


def test_chapter_scoring_examples():
    from compendium.emotion.emotion_qwen import chapter as ch

    ex = ch.scoring_examples().set_index("reply")
    # "unhappy" contains "happy" (faithful DFEW right); no whole class word (corrected: none); MER2024: happy / none
    assert ex.loc["I feel unhappy.", ["DFEW as written", "DFEW corrected", "MER2024 as written",
                                      "MER2024 corrected"]].tolist() == ["happy", "none", "happy", "none"]
    # a list: faithful DFEW finds the label; corrected takes the first word; MER2024 faithful the alphabetically last
    assert ex.loc["happy, sad, angry", ["DFEW as written", "DFEW corrected", "MER2024 as written"]].tolist() == \
        ["sad", "happy", "sad"]
    assert ex.loc["Hard to tell.", ["MER2024 as written", "MER2024 corrected"]].tolist() == ["worried", "none"]
    # recalls happy 1, sad 1, neutral 0: 2/4 with the 8th class "none", 2/3 over the true classes
    assert ch.toy_uar_line() == "UAR as written 0.500, corrected 0.667"


def test_chapter_scores_on_answers():
    from compendium.emotion.emotion_qwen import chapter as ch

    dfew_labels = {"a": "happy", "b": "sad", "c": "angry"}
    # a: contains "happy" but starts with "sad"; b: right both ways; c: no class word; "z" has no label (dropped)
    dfew_answers = [(1, {"a": "sad or happy", "b": "I feel sad", "c": "hard to tell", "z": "happy"}),
                    (2, {"a": "happy", "b": "sad", "c": "angry"})]
    dfew = ch.dfew_on_answers(dfew_answers, dfew_labels)
    assert len(dfew) == 8 and set(dfew.n) == {3}
    first = dfew[dfew.checkpoint == 1].set_index(["matching", "UAR rule"])
    assert first.loc[("faithful", "corrected"), "WAR"] == pytest.approx(200 / 3)  # a, b right
    assert first.loc[("corrected", "corrected"), "WAR"] == pytest.approx(100 / 3)  # b right
    assert first.loc[("faithful", "faithful"), "UAR"] == pytest.approx(50.0)  # (1 + 1 + 0 + 0 for "none") / 4
    view = ch.dfew_view(dfew)
    assert view.loc[("faithful", "corrected"), ("WAR", "max")] == 100.0  # checkpoint 2 is right on all three
    mer_labels = {"a": "worried", "b": "happy", "c": "sad"}
    # a: no class word -> "worried" as written (right by default), "none" corrected; c: "sad" is the last word found
    mer_answers = [(1, {"a": "no idea", "b": "happy", "c": "sad and angry"})]
    mer = ch.mer2024_on_answers(mer_answers, mer_labels).set_index("rules")
    assert mer.loc["faithful", "accuracy"] == 100.0 and mer.loc["faithful", "'worried' by default"] == 1
    assert mer.loc["corrected", "accuracy"] == pytest.approx(200 / 3) and mer.loc["corrected", "no class word"] == 1
    assert ch.mer2024_view(mer.reset_index()).loc["faithful", "accuracy"] == 100.0
    moves = ch.rule_moves(dfew, mer.reset_index()).set_index(["rule", "metric"])["moves the score by"]
    # WAR means over the two checkpoints: faithful matching (200/3 + 100) / 2, corrected (100/3 + 100) / 2
    assert moves[("DFEW: 'contains the word' vs first whole word", "WAR")] == round(100 / 6, 2)
    assert moves[("MER2024: default 'worried' + alphabetically last", "accuracy")] == round(100 / 3, 2)


def test_chapter_label_sets_and_strategies(shared_data):
    from compendium import published
    from compendium.emotion.emotion_qwen import chapter as ch

    small = ch.strategy_table({"DFEW set_1": ["happy", "sad"]}, {"MER2024 semi": ["worried", "happy"]})
    assert len(small) == 8 and small["as written: UAR"].isna().sum() == 4
    lines = ch.strategy_lines(small).splitlines()
    # listing all seven words: faithful right on both; corrected takes "happy" (first listed) -> 1 of 2
    assert lines[0] == "DFEW set_1, listing all seven words: WAR 100.00 / UAR 100.00 as written; 50.00 corrected"
    # no class word: "worried" by default -> 1 of 2 as written; nothing corrected
    assert lines[1] == ("MER2024-SEMI, no class word in any reply: accuracy 50.00 (= 159/1169 worried) as written; "
                        "0.00 corrected")
    dfew_sets, mer_sets = ch.read_label_sets(shared_data / "emotion/emotion-qwen/eval_data")
    assert list(dfew_sets) == [f"DFEW set_{k}" for k in range(1, 6)] and list(mer_sets) == ["MER2024 semi",
                                                                                            "MER2024 noise"]
    cmp = ch.eval_data_check(published.load("emotion_qwen").table("eval_data"), dfew_sets, mer_sets)
    assert (cmp.verdict == "exact").all()


def test_chapter_loads_affectgpt_answers(shared_data):
    from compendium.emotion.emotion_qwen import chapter as ch

    answers, meld, mer23 = ch.load_affectgpt_answers(shared_data / "emotion/affectgpt/output",
                                                     shared_data / "emotion/mertools/MERBench/dataset")
    assert set(answers) == {"MELD", "MER2023"} and all(answers[d] for d in answers)
    assert {"angry", "happy", "sad"} <= set(meld.values()) and not {"anger", "joy", "sadness"} & set(meld.values())
    epoch, replies = answers["MELD"][0]
    assert isinstance(epoch, int) and set(replies) & set(meld) and mer23


def test_chapter_summary_inputs():
    from compendium.emotion.emotion_qwen import chapter as ch

    one = ch.summary_inputs([0], [0.0])
    assert "GoEmotions, 1 seed, replay 0);" in one["ran_here"] and one["paper_claim"] and one["not_reproduced"]
    assert "9 seeds, replay 0, 0.25);" in ch.summary_inputs(list(range(9)), [0.0, 0.25])["ran_here"]
