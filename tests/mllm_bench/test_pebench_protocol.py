"""The scaled-down PEBench: procedural data, the VLM adapter on a tiny LLaVA, the unlearning loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compendium.mllm_bench.pebench import bench as B
from compendium.mllm_bench.pebench import data as D
from compendium.mllm_bench.pebench import model as Mo
from compendium.mllm_bench.pebench import scenes as S


@pytest.fixture(scope="module")
def world():
    return S.make_world(8, 5, image_size=24, n_real_persons=2, real_per_person=3, n_pope=20, seed=3)


def test_world_is_seeded_and_well_formed(world):
    again = S.make_world(8, 5, image_size=24, n_real_persons=2, real_per_person=3, n_pope=20, seed=3)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(world.samples, again.samples))
    assert len({p.name for p in world.persons + world.real_persons}) == 10 and not set(world.aliases) & {p.name for p in world.persons}
    # every pair of identities differs in at least two attributes
    codes = [p.code for p in world.persons]
    assert min(sum(a != b for a, b in zip(c1, c2)) for i, c1 in enumerate(codes) for c2 in codes[i + 1:]) >= 2
    # every person and every event has training and held-out images
    for p in range(8):
        assert {s.split for s in world.samples if s.kind == "pebench" and s.person == p} == {"train", "heldout"}
    for e in range(5):
        assert {s.split for s in world.samples if s.kind == "pebench" and s.event == e} == {"train", "heldout"}
    img = world.samples[0].image
    assert img.shape == (24, 24, 3) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    assert all(s.question == S.OBJECTS_QUESTION and " and " in s.answer for s in world.pope)
    # the real family shows only its own events: no forget target can appear in it
    assert all(s.event >= world.meta["n_pebench_events"] for s in world.of("real"))
    assert all(e < 5 for e in B.choose_targets(world, 1, 4, seed=1)["event"].events)
    for name, desc in S.EVENTS:  # every keyword is in its sentence: the true answer has recall 1
        kws = S.keywords_of(desc)
        assert 4 <= len(kws) <= 7 and set(kws) <= set(desc.split()), name


def test_forget_retain_and_goal_sets(world):
    t = B.choose_targets(world, 2, 1, seed=0)
    f = B.forget_set(world, t["person"])
    names = {world.persons[p].name for p in t["person"].persons}
    assert f and all(q == S.QUESTIONS["person"] and a in names for _, q, a in f)
    assert all(a == S.IDK["person"] for _, _, a in B.forget_set(world, t["person"], answer="idk"))
    r = B.retain_set(world, t["joint"])
    assert not any(a in names for _, _, a in r)
    full, goal = B.training_set(world), B.training_set(world, drop=t["joint"])
    assert len(full) - len(goal) == len(B.forget_set(world, t["joint"]))
    siu, flags = B.siu_set(world, t["joint"])
    assert len(siu) == 2 * (2 + 1) and sum(flags) == 3


def test_vlm_batch_supervises_the_answer_only(world):
    vlm = Mo.tiny_llava(world, hidden=16, vision_hidden=16, layers=1, vision_layers=1)
    s = world.samples[0]
    batch = vlm.batch([s.image, s.image], [S.QUESTIONS["person"], S.QUESTIONS["event"]],
                      [world.persons[0].name, world.events[0].description])
    for i, answer in enumerate([world.persons[0].name, world.events[0].description]):
        ids = batch["labels"][i][batch["labels"][i] != -100]
        assert vlm.tokenizer.decode(ids) == f"{answer} </s>"
    # the image placeholder was expanded into (24 / 8)^2 = 9 tokens
    assert int((batch["input_ids"][0] == vlm.tokenizer.convert_tokens_to_ids("<image>")).sum()) == 9
    out = vlm.generate([s.image], [S.QUESTIONS["person"]], max_new_tokens=3)
    assert len(out) == 1 and isinstance(out[0], str)


def test_every_method_runs_and_ga_forgets(world):
    torch.manual_seed(0)
    vlm = Mo.tiny_llava(world, hidden=32, vision_hidden=32, layers=1, vision_layers=1)
    data = B.training_set(world)
    Mo.fit(vlm, [d[0] for d in data], [d[1] for d in data], [d[2] for d in data], epochs=3, batch_size=32)
    t = B.choose_targets(world, 2, 1, seed=0)
    from compendium.mllm_bench.pebench import losses as L

    before = float(L.nll(vlm.model, B._batch(vlm, B.forget_set(world, t["person"]))))
    for method in B.METHOD_DEFAULTS:
        target = t["joint"] if "BGD" in method else t["person"]
        out, hist = B.unlearn(vlm, method, world, target, steps=2, batch_size=4, eval_at=(2,), n_eval=4,
                              stop_forget_nll=None)
        cols = B.JOINT_COLUMNS if target.events else B.P_COLUMNS
        assert set(cols) <= set(hist.columns) and len(hist) == 1, method
    ga, _ = B.unlearn(vlm, "GA", world, t["person"], steps=5, lr=1e-2, batch_size=8, stop_forget_nll=None)
    after = float(L.nll(ga.model, B._batch(vlm, B.forget_set(world, t["person"]))))
    assert after > before + 0.5
    # the fine-tuned model is untouched (unlearning works on a copy)
    assert float(L.nll(vlm.model, B._batch(vlm, B.forget_set(world, t["person"])))) == pytest.approx(before, rel=1e-5)


def test_ga_early_stop(world):
    vlm = Mo.tiny_llava(world, hidden=16, vision_hidden=16, layers=1, vision_layers=1)
    t = B.choose_targets(world, 1, 1, seed=0)
    _, hist = B.unlearn(vlm, "GA", world, t["person"], steps=30, lr=0.5, batch_size=4, eval_at=(30,), n_eval=2,
                        stop_forget_nll=3.0)
    assert bool(hist["stopped"].iloc[-1])


def test_real_pebench_loader_message(tmp_path):
    with pytest.raises(D.PEBenchNotFound, match="xuzhaopan/PEBench"):
        D.load_records(tmp_path / "nowhere")
    w = D.to_world([{"image": np.zeros((4, 4, 3)), "name": f"p{i % 3}", "event": f"e{i % 2}", "description": "d",
                     "keywords": "a, b"} for i in range(12)])
    assert len(w.persons) == 3 and len(w.events) == 2 and w.events[0].keywords == ("a", "b")
    assert {s.split for s in w.samples} == {"train", "heldout"} and len(w.aliases) == 3
    with pytest.raises(KeyError, match="its keys are"):
        D.to_world([{"img": 1, "who": "x"}])


def test_lora_unlearning_path(world):
    pytest.importorskip("peft")
    vlm = Mo.tiny_llava(world, hidden=16, vision_hidden=16, layers=1, vision_layers=1)
    t = B.choose_targets(world, 1, 1, seed=0)
    out, _ = B.unlearn(vlm, "GD", world, t["person"], steps=2, lr=1e-2, batch_size=4, trainable="lora")
    trained = [n for n, p in out.model.named_parameters() if p.requires_grad]
    assert trained and all("lora_" in n for n in trained)
    assert all("language_model" in n for n in trained)
