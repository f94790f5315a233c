"""The synthetic chains, the judges and the online search of the scaled-down MPBench."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch

from compendium.mllm_bench.mpbench import bench, chains as C, data as D, judges as J, metrics as M

from .tiny import tiny_llama, tiny_tokenizer


def _problem():
    return C.Problem(5, (C.Instruction("+", 3), C.Instruction("*", 2)))


def test_apply_keeps_values_exact_and_in_range():
    assert C.apply(6, "/", 3) == 2
    assert C.apply(7, "/", 2) is None  # not an integer
    assert C.apply(99, "+", 1) is None  # out of 0..99
    assert C.apply(3, "-", 4) is None


def test_labels_are_local_validity():
    p = _problem()
    assert p.answer == 16 and p.text() == "Start with 5. In order: add 3, then multiply by 2. What is the result?"
    ok = [C.Step(5, "+", 3, 8), C.Step(8, "*", 2, 16)]
    assert C.label_steps(p, ok) == [1, 1]
    # wrong result, then a correct continuation from the wrong value: only the first step is wrong
    assert C.label_steps(p, [C.Step(5, "+", 3, 9), C.Step(9, "*", 2, 18)]) == [0, 1]
    # the previous value copied wrongly
    assert C.label_steps(p, [C.Step(5, "+", 3, 8), C.Step(9, "*", 2, 18)]) == [1, 0]
    # the wrong operation
    assert C.label_steps(p, [C.Step(5, "-", 3, 2), C.Step(2, "*", 2, 4)]) == [0, 1]
    assert C.correct_solution(p) == ok


def test_injected_errors_sit_where_asked():
    rng = random.Random(3)
    for _ in range(50):
        p = C.make_problem(rng, 6, rng.choice(["easy", "hard"]))
        assert all(0 <= s.c <= 99 for s in C.correct_solution(p))
        pos = rng.randrange(6)
        made = C.inject_error(p, pos, rng)
        if made is None:
            continue
        steps, kind = made
        labels = C.label_steps(p, steps)
        assert labels.count(0) == 1 and M.first_error(labels) == pos and kind in C.ERROR_KINDS


def test_policy_and_sets():
    rng = random.Random(0)
    p = C.make_problem(rng, 6, "hard")
    assert C.sample_solution(p, 0.0, rng) == C.correct_solution(p)
    assert C.label_steps(p, C.sample_solution(p, 1.0, rng))[0] == 0
    rs = C.make_search(40, seed=1)
    assert all(sorted(i.labels) == [0, 1] for i in rs)  # balanced: random F1 = 50
    rs3 = C.make_search(10, n_wrong=3, seed=1)
    assert all(sorted(i.labels) == [0, 0, 0, 1] for i in rs3)
    sc = C.make_step_correctness(200, error_share=0.8, seed=2)
    share = np.mean([min(i.labels) == 0 for i in sc])
    assert 0.7 < share < 0.9


def test_oracle_constant_and_random_judges():
    b = bench.make_benchmark(60, 20, 60, seed=7)
    oracle = bench.table_row(bench.run_judge(J.OracleJudge(), b))
    assert oracle["FEI"] == oracle["AEI"] == oracle["F1"] == oracle["MCC"] == 100.0
    # a critic that never flags an error: FEI = share of error-free solutions, AEI = share of correct steps
    const = bench.table_row(bench.run_judge(J.ConstantJudge(1.0), b))
    assert const["FEI"] == pytest.approx(100 * np.mean([min(i.labels) == 1 for i in b.sc]))
    assert const["AEI"] == pytest.approx(100 * np.mean([y for i in b.sc for y in i.labels]))
    assert const["MCC"] == 0.0
    with pytest.raises(TypeError):
        J.OracleJudge().score_solutions([J.SolutionCase("q", ["1 + 1 = 2"])])


def test_trained_scorer_learns_something_quickly():
    torch.manual_seed(0)
    scorer = J.train_step_scorer(16, 1, 2, 400, updates=250, lr=3e-3, seed=0)
    b = bench.make_benchmark(80, 5, 80, seed=11)
    run = bench.run_judge(scorer, b)
    flat = np.array([s for row in run.sc_scores for s in row])
    assert flat.min() >= -1 and flat.max() <= 1
    row = bench.table_row(run)
    assert row["AEI"] > 70  # most steps are correct and it has learnt to say so, at least


def test_json_parsing():
    assert J.parse_json_scores('Here: {"scores": [1, -0.5, 2]}', 3) == [1.0, -0.5, 1.0]
    assert J.parse_json_scores('{"scores": [1, -0.5]}', 3) is None
    assert J.parse_json_scores("[0.1, 0.2]", 2) == [0.1, 0.2]
    assert J.parse_json_scores("I think it is fine", 2) is None


def test_causal_lm_judge_cached_scores_equal_full_prompts():
    judge = J.CausalLMJudge(tiny_llama(), tiny_tokenizer(), name="tiny")
    p = _problem()
    case = J.SolutionCase(p.text(), ["5 + 3 = 8", "8 * 2 = 16"])
    cached = judge.score_solutions([case])[0]
    for k in (1, 2):
        full = judge._prefix_text(case.question) + "".join(
            f"Step {i}: {s}\n" for i, s in enumerate(case.step_texts[:k], start=1)) + J.YES_NO_QUESTION.format(k=k) + judge.tail
        with torch.no_grad():
            logits = judge.model(input_ids=judge._ids(full)).logits[0, -1]
        assert cached[k - 1] == pytest.approx(judge._score_from_logits(logits), abs=1e-5)
    assert all(-1 <= s <= 1 for s in cached)
    # memoised on the step prefix: a second candidate sharing step 1 reuses its verdict
    other = judge.score_solutions([J.SolutionCase(p.text(), ["5 + 3 = 8", "8 * 2 = 15"])])[0]
    assert other[0] == cached[0]
    cand = judge.score_candidates([J.SearchCase(p.text(), ["5 + 3 = 8"], ["8 * 2 = 16", "8 + 2 = 10"])])[0]
    assert len(cand) == 2 and cand[0] == pytest.approx(cached[1], abs=1e-5)


def test_causal_lm_judge_json_mode_counts_failures():
    judge = J.CausalLMJudge(tiny_llama(), tiny_tokenizer(), mode="json", max_new_tokens=4, fallback=-0.25)
    out = judge.score_solutions([J.SolutionCase("q", ["1 + 1 = 2", "2 + 1 = 3"])])
    assert out == [[-0.25, -0.25]] and judge.parse_failures == 1  # an untrained model writes no JSON


def test_online_search_beats_no_prm_with_the_oracle():
    rng = random.Random(0)
    problems = [C.make_problem(rng, 6, "hard") for _ in range(40)]
    none = bench.search_accuracy(problems, None, k=4, policy_error_rate=0.3, seed=1)
    greedy = bench.search_accuracy(problems, J.OracleJudge(), k=4, policy_error_rate=0.3, seed=1)
    beam = bench.search_accuracy(problems, J.OracleJudge(), k=2, beam=3, policy_error_rate=0.3, seed=1)
    assert greedy > none + 30 and beam > none + 30
    # the chance that one random pick is right at every step: (1 - 0.3)^6 ~ 12 %
    assert none < 40


def test_online_search_follows_the_prm_scores():
    """The search really uses the PRM: an inverted oracle (it prefers wrong steps) does worse than no PRM,
    and with an error-free policy every judge reaches 100 % (nothing to choose between)."""

    class Inverted(J.OracleJudge):
        def score_candidates(self, cases):
            return [[-s for s in row] for row in super().score_candidates(cases)]

    rng = random.Random(2)
    problems = [C.make_problem(rng, 6, "easy") for _ in range(30)]
    kw = dict(k=4, policy_error_rate=0.3, seed=3)
    inverted = bench.search_accuracy(problems, Inverted(), **kw)
    none = bench.search_accuracy(problems, None, **kw)
    oracle = bench.search_accuracy(problems, J.OracleJudge(), **kw)
    # the inverted oracle takes a wrong step wherever one is proposed (all 4 right: 0.7^4 = 24 % per step), so it
    # ends right only when later slips happen to cancel earlier ones (2 of these 30 problems)
    assert inverted <= 10.0 and inverted < none < oracle
    assert bench.search_accuracy(problems, Inverted(), k=4, policy_error_rate=0.0, seed=3) == 100.0
    # a beam of 3 keeps the 3 best partial solutions by their minimum step score: with the oracle one of them
    # is fully valid whenever the policy proposed a valid step at every expansion
    path = bench.prm_search(problems[0], J.OracleJudge(), k=2, beam=3, policy_error_rate=0.3, rng=random.Random(0))
    assert len(path) == 6 and C.label_steps(problems[0], path) == [1] * 6


def test_real_mpbench_loader(tmp_path):
    with pytest.raises(D.MPBenchNotFound, match="xuzhaopan/MPBench"):
        D.locate(tmp_path, "step_correctness")
    sc = [{"question": "q1", "steps": ["a", "b", "c"], "first_error": 2},
          {"question": "q2", "steps": ["a", "b"], "labels": [1, -1]}]
    (tmp_path / "step_correctness.json").write_text(json.dumps(sc))
    pairs = D.step_cases(D.load_records(D.locate(tmp_path, "step_correctness")))
    assert [y for _, y in pairs] == [[1, 0, 0], [1, 0]]
    with pytest.raises(KeyError, match="its keys are"):
        D.step_cases([{"prompt": "q", "chain": ["a"]}])
    assert D.step_cases([{"prompt": "q", "chain": ["a"], "label": [1]}], fields={"steps": ("chain",)})[0][1] == [1]
    rs = [{"question": "q", "history": ["a"], "candidate_steps": ["b", "c"], "candidate_labels": [1, 0]}]
    (tmp_path / "reasoning_process_search.json").write_text(json.dumps(rs))
    rpairs = D.search_cases(D.load_records(D.locate(tmp_path, "reasoning_process_search")))
    aa = D.aggregation_cases([{"question": "q", "answer": "B", "candidates": [{"steps": ["x"], "answer": "b"},
                                                                              {"steps": ["y"], "answer": "C"}]}])
    run = bench.run_judge_on_cases(J.ConstantJudge(0.5), pairs, aa, rpairs)
    row = bench.table_row(run)
    assert row["BoN"] == 50.0 and row["F1"] == pytest.approx(100 * 2 / 3)


@pytest.mark.skipif(os.environ.get("FULL_TEST") != "1", reason="loads SmolLM2-135M (about a minute): FULL_TEST=1")
def test_smollm2_judge_scores_in_range():
    judge = J.load_smollm2()
    s = judge.score_solutions([J.SolutionCase(_problem().text(), ["5 + 3 = 8", "8 * 2 = 16"])])[0]
    assert len(s) == 2 and all(-1 <= v <= 1 for v in s)


def test_vision_language_judge_on_a_tiny_llava():
    """The gpu profile's judge class, on a randomly initialised tiny LLaVA with an image."""
    from compendium.mllm_bench.pebench import model as pe_model, scenes

    world = scenes.make_world(3, 2, image_size=16, n_real_persons=1, real_per_person=1, n_pope=2, seed=0)
    vlm = pe_model.tiny_llava(world, hidden=16, vision_hidden=16, layers=1, vision_layers=1)
    vlm.processor.chat_template = (
        "{% for m in messages %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image> "
        "{% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endfor %}answer :")
    judge = J.VisionLanguageJudge(vlm.model, vlm.processor, name="tiny VLM")
    image = world.samples[0].image
    s = judge.score_solutions([J.SolutionCase("is there a red circle ?", ["yes", "no"], image)])[0]
    c = judge.score_candidates([J.SearchCase("q", ["yes"], ["yes", "no", "yes"], image)])[0]
    assert len(s) == 2 and len(c) == 3 and all(-1 <= v <= 1 for v in s + c)


def test_real_mpbench_images_and_answers(tmp_path):
    """Images are opened from image_root by their relative path; final answers compare after normalising."""
    from PIL import Image

    (tmp_path / "img").mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "img" / "q1.png")
    recs = [{"question": "q", "image": "img/q1.png", "steps": ["a", "b"], "labels": ["correct", "incorrect"]}]
    (case, y), = D.step_cases(recs, image_root=tmp_path)
    assert y == [1, 0] and case.image.size == (8, 8) and case.image.getpixel((0, 0)) == (255, 0, 0)
    assert D.step_cases(recs)[0][0].image == "img/q1.png"  # no image_root: the reference is kept
    aa = D.aggregation_cases([{"question": "q", "answer": " B. ", "responses": [["x"], ["y"], ["z"]],
                               "final_answers": ["b", "C", "b."]}])
    run = bench.run_judge_on_cases(J.ConstantJudge(0.0), [], aa, [])
    assert run.aa_gold == ["b"] and run.aa_answers == [["b", "c", "b"]]
    # a constant judge: BoN = a random pick (2 of 3 right); the weighted vote follows the majority "b"
    assert M.answer_aggregation(run.aa_scores, run.aa_answers, run.aa_gold)["BoN"] == pytest.approx(200 / 3)
    assert M.answer_aggregation(run.aa_scores, run.aa_answers, run.aa_gold)["MV"] == 100.0
