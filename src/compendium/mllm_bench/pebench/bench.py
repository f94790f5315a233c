"""The scaled-down PEBench protocol: targets, Finetune and Goal models, unlearning runs, evaluation.

PEBench's protocol (Fig. 3 caption): train a *Finetune* model on everything (the lower bound for
unlearning), a *Goal* model on the retain data only (the upper bound), apply the unlearning methods
to the Finetune model and evaluate. Here the "pre-training" knowledge (the real family and the
world-fact questions) is learnt in the same run as the benchmark itself.

The forget set of a target is the training images that show it, asked about it (person: "who is in
the image?"; event: "what is happening in the image?"). The retain set is every other training
question on images that show no forget target. The Goal model is trained without the forget set's
questions (it sees the images, asked about the other concept).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from . import losses as L
from . import metrics as M
from .model import VLM, fit, tiny_llava
from .scenes import EVENT_ALIAS, IDK, QUESTIONS, World

__all__ = ["Target", "choose_targets", "training_set", "forget_set", "retain_set", "evaluate", "unlearn",
           "METHOD_DEFAULTS", "P_COLUMNS", "E_COLUMNS", "JOINT_COLUMNS", "run_real", "compare_real",
           "REAL_RUN_SCALE", "final_table", "measured_cells", "plus_minus", "budget_curves"]

P_COLUMNS = ["P-Eff", "P-Gen", "P-Retain", "P-Scope", "P-Real", "P-WF"]
E_COLUMNS = ["E-Eff", "E-Gen", "E-Retain", "E-Scope", "E-Real", "E-WF"]
JOINT_COLUMNS = ["P-Eff", "P-Gen", "P-Retain", "P-Real", "P-WF", "E-Eff", "E-Gen", "E-Retain", "E-Real", "E-WF"]


@dataclass(frozen=True)
class Target:
    """What to forget: person indices and/or event indices."""

    persons: tuple[int, ...] = ()
    events: tuple[int, ...] = ()

    @property
    def kind(self) -> str:
        return "joint" if self.persons and self.events else ("person" if self.persons else "event")


def choose_targets(world: World, n_persons: int, n_events: int, *, seed: int = 0) -> dict[str, Target]:
    """Person, event and joint targets (the joint target is the person target plus the event target)."""
    rng = random.Random(seed)
    persons = tuple(sorted(rng.sample(range(len(world.persons)), n_persons)))
    n_pebench = world.meta.get("n_pebench_events", len(world.events))  # the real family's events are never targets
    events = tuple(sorted(rng.sample(range(n_pebench), n_events)))
    return {"person": Target(persons=persons), "event": Target(events=events), "joint": Target(persons, events)}


# ------------------------------------------------------------------------------------ data


def _qa(world: World, s, which: str, answer: str | None = None):
    if which == "person":
        name = (world.real_persons if s.kind == "real" else world.persons)[s.person].name
        return s.image, QUESTIONS["person"], answer or name
    if which == "event":
        return s.image, QUESTIONS["event"], answer or world.events[s.event].description
    return s.image, s.question, s.answer


def _is_forget(s, target: Target, which: str) -> bool:
    return s.kind == "pebench" and ((which == "person" and s.person in target.persons)
                                    or (which == "event" and s.event in target.events))


def _shows_target(s, target: Target) -> bool:
    return s.kind == "pebench" and (s.person in target.persons or s.event in target.events)


def training_set(world: World, drop: Target | None = None) -> list[tuple]:
    """(image, question, answer) triples of the fine-tuning data; ``drop`` removes a target's forget
    questions (the Goal model's data)."""
    out = []
    for s in world.samples:
        if s.split != "train":
            continue
        for which in ("person", "event"):
            if drop is not None and _is_forget(s, drop, which):
                continue
            out.append(_qa(world, s, which))
    out += [_qa(world, s, "pope") for s in world.pope if s.split == "train"]
    return out


def forget_set(world: World, target: Target, which: str | None = None, *, answer: str | None = None) -> list[tuple]:
    """The target's forget questions on its training images (``which`` restricts to one concept;
    ``answer="idk"`` gives the refusal answers PO and DPO train towards)."""
    out = []
    for s in world.of("pebench", "train"):
        for w in ("person", "event"):
            if (which is None or which == w) and _is_forget(s, target, w):
                out.append(_qa(world, s, w, IDK[w] if answer == "idk" else None))
    return out


def retain_set(world: World, target: Target) -> list[tuple]:
    """Both questions on every training image that shows no forget target."""
    return [_qa(world, s, w) for s in world.of("pebench", "train") if not _shows_target(s, target)
            for w in ("person", "event")]


def siu_set(world: World, target: Target) -> tuple[list[tuple], list[bool]]:
    """SIU's multifaceted data from **one** training image per forget concept (reconstructed): the
    image with a new answer (an unused alias name / a vague event sentence), and the same image
    with the other concept's true answer (decoupling). Returns the triples and the "new answer" flags."""
    out, flags = [], []
    for i, p in enumerate(target.persons):
        s = next(s for s in world.of("pebench", "train") if s.person == p)
        out += [_qa(world, s, "person", world.aliases[i % len(world.aliases)]), _qa(world, s, "event")]
        flags += [True, False]
    for e in target.events:
        s = next(s for s in world.of("pebench", "train") if s.event == e and s.person not in target.persons)
        out += [_qa(world, s, "event", EVENT_ALIAS), _qa(world, s, "person")]
        flags += [True, False]
    return out, flags


def concept_token_ids(vlm: VLM, world: World, target: Target) -> list[int]:
    """Vocabulary ids of the forgotten concepts' words (names; event keywords) for SIU's vocabulary mask.

    Each word is tokenised as it appears inside an answer (with and without a leading space), so a
    sub-word tokenizer (LLaVA's Llama tokenizer) masks the pieces of the name, and a word-level one
    (the tiny model's) the word itself. Special, unknown and whitespace-only tokens are never masked."""
    tok = vlm.tokenizer
    words = [w for p in target.persons for w in world.persons[p].name.split()]
    words += [k for e in target.events for k in world.events[e].keywords]
    skip = set(tok.all_special_ids) | {tok.unk_token_id}
    ids: set[int] = set()
    for w in words:
        for text in (w, " " + w):
            for i in tok(text, add_special_tokens=False)["input_ids"]:
                if i is not None and i not in skip and tok.decode([i]).strip():
                    ids.add(int(i))
    return sorted(ids)


# ------------------------------------------------------------------------------------ evaluation


def _subsample(items, n, seed):
    if len(items) <= n:
        return items
    idx = np.random.default_rng(seed).choice(len(items), n, replace=False)
    return [items[i] for i in sorted(idx)]


def evaluation_sets(world: World, target: Target, *, n: int = 48, seed: int = 0,
                    exclude: Target | None = None) -> dict[str, list]:
    """The images each column is computed on (at most ``n`` each, fixed for the whole experiment).

    ``exclude`` (the joint target, when one Goal model serves all three settings) keeps the *other*
    forget concept out: person-setting images show no forget event, event-setting images no forget
    person, and retain images neither."""
    ex = exclude or Target()
    train, held = world.of("pebench", "train"), world.of("pebench", "heldout")
    both = Target(tuple(sorted(set(target.persons) | set(ex.persons))), tuple(sorted(set(target.events) | set(ex.events))))
    sets = {
        "pop_forget_train": [s for s in train if s.person in target.persons and s.event not in ex.events],
        "pop_forget_held": [s for s in held if s.person in target.persons and s.event not in ex.events],
        "ev_forget_train": [s for s in train if s.event in target.events and s.person not in ex.persons],
        "ev_forget_held": [s for s in held if s.event in target.events and s.person not in ex.persons],
        "retain_train": [s for s in train if not _shows_target(s, both)],
        "real": world.of("real", "heldout"),
        "pope": [s for s in world.pope if s.split == "heldout"],
    }
    if target.persons and target.events:  # the joint setting: the forget images are those of its own targets
        sets["pop_forget_train"] = [s for s in train if s.person in target.persons]
        sets["pop_forget_held"] = [s for s in held if s.person in target.persons]
        sets["ev_forget_train"] = [s for s in train if s.event in target.events]
        sets["ev_forget_held"] = [s for s in held if s.event in target.events]
    return {k: _subsample(v, n, seed + i) for i, (k, v) in enumerate(sets.items())}


def evaluate(vlm: VLM, world: World, target: Target, sets: dict[str, list] | None = None, *, n: int = 48,
             seed: int = 0, name_rule: str = "exact") -> dict[str, float]:
    """Every Table-1/Table-2 column that applies to the target (person columns when it has persons,
    event columns when it has events), plus ROUGE-L beside the keyword recall of event answers."""
    sets = sets or evaluation_sets(world, target, n=n, seed=seed)
    memo: dict = {}

    def ask(key, which):
        if (key, which) not in memo:
            items = sets[key]
            qs = [s.question if which == "pope" else QUESTIONS[which] for s in items]
            memo[(key, which)] = vlm.generate([s.image for s in items], qs) if items else []
        return memo[(key, which)]

    def names(key):
        return [(world.real_persons if s.kind == "real" else world.persons)[s.person].name for s in sets[key]]

    def kws(key):
        return [world.events[s.event].keywords for s in sets[key]]

    def rouge(key):
        preds = ask(key, "event")
        return float(np.mean([M.rouge_l(p, world.events[s.event].description) for p, s in zip(preds, sets[key])]))

    def guard(fn, *keys):  # a column whose images are missing (no real family / no POPE set given) is NaN
        return fn() if all(sets[k] for k in keys) else float("nan")

    out: dict[str, float] = {}
    def world_facts():  # POPE accuracy for yes/no questions, object F1 for the scaled-down object questions
        preds, answers = ask("pope", "pope"), [s.answer for s in sets["pope"]]
        if all(a in ("yes", "no") for a in answers):
            return M.pope_accuracy(preds, answers)
        return M.object_f1(preds, answers)

    wf = guard(world_facts, "pope")
    if target.persons:
        out["P-Eff"] = M.person_efficacy(ask("pop_forget_train", "person"), names("pop_forget_train"), rule=name_rule)
        out["P-Gen"] = M.person_efficacy(ask("pop_forget_held", "person"), names("pop_forget_held"), rule=name_rule)
        out["P-Retain"] = M.name_precision(ask("retain_train", "person"), names("retain_train"), rule=name_rule)
        out["P-Scope"] = rouge("pop_forget_train")
        out["P-Real"] = guard(lambda: M.name_precision(ask("real", "person"), names("real"), rule=name_rule), "real")
        out["P-WF"] = wf
    if target.events:
        out["E-Eff"] = M.event_efficacy(ask("ev_forget_train", "event"), kws("ev_forget_train"))
        out["E-Gen"] = M.event_efficacy(ask("ev_forget_held", "event"), kws("ev_forget_held"))
        out["E-Retain"] = 1.0 - M.event_efficacy(ask("retain_train", "event"), kws("retain_train"))
        out["E-Scope"] = M.name_precision(ask("ev_forget_train", "person"), names("ev_forget_train"), rule=name_rule)
        out["E-Real"] = guard(lambda: rouge("real"), "real")
        out["E-WF"] = wf
        out["E-Eff (ROUGE-L)"] = 1.0 - rouge("ev_forget_train")
    return out


# ------------------------------------------------------------------------------------ training and unlearning


def train_vlm(make_model, world: World, drop: Target | None = None, *, epochs: int = 30, lr: float = 3e-3,
              batch_size: int = 32, seed: int = 0) -> tuple[VLM, list[float]]:
    """A Finetune (``drop=None``) or Goal model from a fresh ``make_model(world, seed=seed)``."""
    vlm = make_model(world, seed=seed)
    data = training_set(world, drop)
    losses = fit(vlm, [d[0] for d in data], [d[1] for d in data], [d[2] for d in data], epochs=epochs, lr=lr,
                 batch_size=batch_size, seed=seed)
    return vlm, losses


# Defaults per method (the research note's values where it gives them).
METHOD_DEFAULTS = {
    "GA": {}, "GD": {"gamma": 1.0, "alpha": 1.0}, "KL": {"alpha": 1.0}, "PO": {"alpha": 1.0},
    "DPO": {"beta": 0.1, "alpha": 1.0}, "NPO": {"beta": 0.4, "alpha": 1.0}, "SimNPO": {"beta": 2.5, "delta": 0.0, "alpha": 1.0},
    "SIU": {"alpha": 0.9, "beta": 0.75}, "GD + BGD": {"base": "gd", "alpha": 1.0}, "KL + BGD": {"base": "kl", "alpha": 1.0},
}


def _make_trainable(vlm: VLM, trainable: str) -> list:
    if trainable == "lora":
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError as err:
            raise ImportError("trainable='lora' needs peft: pip install peft") from err
        cfg = LoraConfig(r=16, lora_alpha=16, lora_dropout=0.05,
                         target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)")
        vlm.model = get_peft_model(vlm.model, cfg)
        return [p for p in vlm.model.parameters() if p.requires_grad]
    if trainable not in ("language", "all"):
        raise ValueError("trainable must be 'language', 'all' or 'lora'")
    for n, p in vlm.model.named_parameters():
        p.requires_grad_(trainable == "all" or "vision_tower" not in n)
    return [p for p in vlm.model.parameters() if p.requires_grad]


class _Pool:
    def __init__(self, items, rng):
        self.items, self.rng = items, rng

    def draw(self, n):
        idx = self.rng.choice(len(self.items), n, replace=len(self.items) < n)
        return [self.items[i] for i in idx], idx


def _batch(vlm, triples):
    return vlm.batch([t[0] for t in triples], [t[1] for t in triples], [t[2] for t in triples])


def unlearn(finetuned: VLM, method: str, world: World, target: Target, *, steps: int = 40, lr: float = 1e-3,
            batch_size: int = 16, seed: int = 0, eval_at=(), eval_sets=None, trainable: str = "language",
            stop_forget_nll: float | None = 10.0, hp: dict | None = None, n_eval: int = 48,
            exclude: Target | None = None) -> tuple[VLM, pd.DataFrame]:
    """Unlearn ``target`` from a copy of the fine-tuned model with ``method`` (a key of
    ``METHOD_DEFAULTS``) for ``steps`` AdamW steps; evaluate at the steps listed in ``eval_at``.

    GA-family runs stop when the forget NLL exceeds ``stop_forget_nll`` (the FIUBench authors keep the
    GA loss above -10); later checkpoints then repeat the stopped model. ``trainable``: "language"
    (everything but the vision tower: MLLM unlearning usually adapts the language model and the
    projector), "all", or "lora" (LoRA r = 16, alpha = 16, dropout 0.05 on the language model's linear
    layers, MLLMU-Bench's setting; needs ``peft``; for 7B models).
    """
    if method not in METHOD_DEFAULTS:
        raise ValueError(f"method must be one of {tuple(METHOD_DEFAULTS)}")
    vlm = finetuned.copy()
    ref = finetuned.model.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    params = _make_trainable(vlm, trainable)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    hp = {**METHOD_DEFAULTS[method], **(hp or {})}
    base = "BGD" if method.endswith("BGD") else method
    loss_fn = L.METHODS[base]

    forget = _Pool(forget_set(world, target), rng)
    forget_idk = forget_set(world, target, answer="idk")
    retain = _Pool(retain_set(world, target), rng)
    siu_data, siu_flags = siu_set(world, target) if base == "SIU" else ([], [])
    concept_ids = concept_token_ids(vlm, world, target) if base == "SIU" else None
    if base == "BGD":
        fp, fe = _Pool(forget_set(world, target, "person"), rng), _Pool(forget_set(world, target, "event"), rng)
        if "scales" not in hp:  # task balancing: each stream's initial forget NLL, relative to their mean
            with torch.no_grad():
                init = (float(L.nll(ref, _batch(vlm, fp.items[:64]))), float(L.nll(ref, _batch(vlm, fe.items[:64]))))
            hp["scales"] = tuple(v / (sum(init) / 2) for v in init)
    eval_sets = eval_sets or evaluation_sets(world, target, n=n_eval, seed=seed, exclude=exclude)

    rows, stopped = [], False
    t0 = time.perf_counter()
    for step in range(steps + 1):
        if step in eval_at:
            rows.append({"step": step, "stopped": stopped, **evaluate(vlm, world, target, eval_sets)})
        if step == steps or stopped:
            continue
        vlm.model.train()
        b = L.UnlearnBatch()
        if base in ("GA", "GD", "KL", "DPO", "NPO", "SimNPO"):
            items, idx = forget.draw(batch_size)
            b.forget = _batch(vlm, items)
            if base == "DPO":
                b.forget_idk = _batch(vlm, [forget_idk[i] for i in idx])
        if base == "PO":
            items, _ = _Pool(forget_idk, rng).draw(batch_size)
            b.forget_idk = _batch(vlm, items)
        if base in ("GD", "KL", "PO", "DPO", "NPO", "SimNPO", "BGD"):
            b.retain = _batch(vlm, retain.draw(batch_size)[0])
        if base == "SIU":
            extra, _ = retain.draw(max(0, batch_size - len(siu_data)))
            b.siu = _batch(vlm, siu_data + extra)
            b.siu_new_answer = torch.tensor(siu_flags + [False] * len(extra))
        if base == "BGD":  # data balancing: as many person as event forget samples
            b.forget_person = _batch(vlm, fp.draw(batch_size // 2)[0])
            b.forget_event = _batch(vlm, fe.draw(batch_size // 2)[0])
        loss, logs = loss_fn(vlm.model, b, ref=ref, concept_token_ids=concept_ids, **hp)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if stop_forget_nll is not None and logs.get("forget_nll", 0.0) > stop_forget_nll:
            stopped = True
    vlm.model.eval()
    history = pd.DataFrame(rows)
    history.attrs["seconds"] = time.perf_counter() - t0
    return vlm, history


# ------------------------------------------------------------------------------------ one seed of the experiment

SINGLE_METHODS = ("GA", "GD", "KL", "PO", "DPO", "NPO", "SimNPO", "SIU")
JOINT_METHODS = ("GD", "GD + BGD", "KL", "KL + BGD")


def run_seed(seed: int, *, world_kwargs: dict, make_model=tiny_llava, n_forget_persons: int, n_forget_events: int,
             train_epochs: int = 40, train_lr: float = 3e-3, train_batch: int = 32, methods=SINGLE_METHODS,
             joint_methods=JOINT_METHODS, steps: int = 40, eval_at=(5, 15, 40), lr: float = 1e-3,
             batch_size: int = 16, n_eval: int = 32, stop_forget_nll: float | None = 10.0,
             hp: dict | None = None, log=print) -> pd.DataFrame:
    """Everything for one seed: the world (``make_world(seed=seed, **world_kwargs)``), a Finetune and a
    Goal model (``make_model(world, seed=seed)`` builds an untrained VLM; default the tiny LLaVA), every single-target method on
    the person and the event target, and the joint methods (each evaluated at the ``eval_at`` budgets and at
    ``steps``).

    One Goal model per seed is trained without the joint target's forget questions; the person and
    event settings are evaluated on images that show no other forget concept, so that it is the upper
    bound of all three settings (see :func:`evaluation_sets`). Returns one row per (setting, method,
    step) with every column."""
    from .scenes import make_world

    t0 = time.perf_counter()
    world = make_world(seed=seed, **world_kwargs)
    targets = choose_targets(world, n_forget_persons, n_forget_events, seed=seed)
    joint = targets["joint"]
    finetune, ft_loss = train_vlm(make_model, world, None, epochs=train_epochs, lr=train_lr, batch_size=train_batch, seed=seed)
    goal, goal_loss = train_vlm(make_model, world, joint, epochs=train_epochs, lr=train_lr, batch_size=train_batch, seed=seed + 7)
    log(f"seed {seed}: Finetune and Goal trained ({time.perf_counter() - t0:.0f} s; final losses {ft_loss[-1]:.3f}, {goal_loss[-1]:.3f})")
    rows = []
    for setting in ("person", "event", "joint"):
        target = targets[setting]
        sets = evaluation_sets(world, target, n=n_eval, seed=seed, exclude=None if setting == "joint" else joint)
        for name, ref_model in (("Finetune", finetune), ("Goal", goal)):
            rows.append({"seed": seed, "setting": setting, "method": name, "step": 0, "stopped": False,
                         **evaluate(ref_model, world, target, sets)})
        for method in (methods if setting != "joint" else joint_methods):
            t1 = time.perf_counter()
            at = tuple(sorted(set(eval_at) | {steps}))
            _, hist = unlearn(finetune, method, world, target, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                              eval_at=at, eval_sets=sets, stop_forget_nll=stop_forget_nll,
                              hp=(hp or {}).get(method))
            for rec in hist.to_dict("records"):
                rows.append({"seed": seed, "setting": setting, "method": method, **rec})
            log(f"  {setting:6s} {method:7s} {time.perf_counter() - t1:5.0f} s")
    frame = pd.DataFrame(rows)
    frame.attrs["seconds"] = time.perf_counter() - t0
    frame.attrs["targets"] = {k: {"persons": [world.persons[i].name for i in v.persons],
                                  "events": [world.events[i].name for i in v.events]} for k, v in targets.items()}
    return frame


# ------------------------------------------------------------------------------------ the real benchmark (gpu profile)


def run_real(finetuned: VLM, world: World, *, methods=("GA", "GD", "KL", "PO", "DPO", "SIU"),
             joint_methods=JOINT_METHODS, forget_share: float = 0.1, steps: int = 30, lr: float = 2e-5,
             batch_size: int = 4, trainable: str = "lora", n_eval: int = 200, seed: int = 0,
             stop_forget_nll: float | None = 10.0, log=print) -> pd.DataFrame:
    """PEBench's protocol on a real benchmark (``data.to_world``) and a model already fine-tuned on it
    (the paper's Finetune model; its Goal model cannot be made from a checkpoint, so it is not run).

    The forget targets are ``forget_share`` of the persons and of the events (PEBench does not
    publish its forget ratio); each single-target method unlearns the person target and the event
    target, each joint method both at once, for ``steps`` steps (LoRA by default, MLLMU-Bench's
    setting). Returns one row per (setting, method) with every column that applies, the Finetune
    model's row first. Columns whose images PEBench does not ship (Real, World Fact) are NaN.
    """
    targets = choose_targets(world, max(1, round(forget_share * len(world.persons))),
                             max(1, round(forget_share * world.meta.get("n_pebench_events", len(world.events)))), seed=seed)
    rows = []
    for setting in ("person", "event", "joint"):
        listed = joint_methods if setting == "joint" else methods
        if not listed:
            continue
        target = targets[setting]
        sets = evaluation_sets(world, target, n=n_eval, seed=seed, exclude=None if setting == "joint" else targets["joint"])
        rows.append({"setting": setting, "method": "Finetune", **evaluate(finetuned, world, target, sets)})
        for method in listed:
            t0 = time.perf_counter()
            _, hist = unlearn(finetuned, method, world, target, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                              eval_at=(steps,), eval_sets=sets, trainable=trainable, stop_forget_nll=stop_forget_nll)
            rows.append({"setting": setting, "method": method, **hist.iloc[-1].drop(["step", "stopped"]).to_dict()})
            log(f"  {setting:6s} {method:8s} {time.perf_counter() - t0:5.0f} s")
    frame = pd.DataFrame(rows)
    frame.attrs["targets"] = {k: {"persons": [world.persons[i].name for i in v.persons],
                                  "events": [world.events[i].name for i in v.events]} for k, v in targets.items()}
    return frame


#: Why the real-benchmark run is not the paper's recipe (its numbers read "not comparable" beside Table 1/2).
REAL_RUN_SCALE = ("PEBench's unlearning recipe (forget ratio, steps, learning rate) is unpublished and ours stands in "
                  "(LoRA, 10 % of the persons and events); the event columns are keyword recall, not the paper's GPT-4 G-Eval")


def compare_real(published_table, frame: pd.DataFrame, setting: str | tuple[str, ...]) -> pd.DataFrame:
    """``compendium.verdicts.compare`` of :func:`run_real`'s rows of ``setting`` with a published table,
    at ``substitute`` scale (``REAL_RUN_SCALE`` says why): the measured values stand beside the paper's
    as *not comparable*. A NaN column is *not run here* with its reason."""
    from compendium import verdicts

    settings = (setting,) if isinstance(setting, str) else tuple(setting)
    measured = {}
    for rec in frame[frame.setting.isin(settings)].to_dict("records"):
        for col, v in rec.items():
            if col in ("setting", "method"):
                continue
            if v is None or (isinstance(v, float) and np.isnan(v)):
                if (rec["method"], col) in measured:  # the other setting's row measured it (Finetune in both)
                    continue
                v = verdicts.not_run("PEBench ships no real-person / POPE images: give them separately"
                                     if col in ("P-Real", "E-Real", "P-WF", "E-WF") else "no images for this column in the run",
                                     kind="data")
            measured[(rec["method"], col)] = v
    return verdicts.compare(published_table, measured, scale="substitute", scale_reason=REAL_RUN_SCALE,
                            default_reason="not run on the real benchmark (Goal needs retraining; method not in the run)",
                            rule="compendium.mllm_bench.pebench.bench.run_real")


# ------------------------------------------------------------------------------------ tables of the scaled-down runs


def final_table(runs: pd.DataFrame, setting: str, columns: list[str], methods) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and standard deviation over seeds of ``columns`` at the full budget, one row per method,
    Finetune first and Goal last (``methods``: the order of the others)."""
    sub = runs[runs.setting == setting]
    last = sub[(sub.step == sub.step.max()) | sub.method.isin(["Finetune", "Goal"])]
    grouped = last.groupby("method")[columns]
    order = ["Finetune"] + [m for m in methods if m in set(last.method)] + ["Goal"]
    return grouped.mean().reindex(order), grouped.std(ddof=1).reindex(order)


def measured_cells(*means: pd.DataFrame) -> dict:
    """``{(method, column): value}`` from mean tables (:func:`final_table`), for ``verdicts.compare``;
    a NaN is *not run here* (no images for that column in the run)."""
    from compendium import verdicts

    cells = {}
    for mean in means:
        for method, row in mean.iterrows():
            for col, v in row.items():
                cells[(method, col)] = verdicts.not_run("no images for this column in the run", kind="other") if pd.isna(v) else float(v)
    return cells


def plus_minus(mean: pd.DataFrame, std: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """"mean ± std" strings (the mean alone where the std is undefined: one seed)."""
    out = mean.copy().astype(object)
    for c in mean.columns:
        for i in mean.index:
            m, s = mean.loc[i, c], std.loc[i, c]
            out.loc[i, c] = f"{m:.{digits}f}" + ("" if pd.isna(s) else f" ± {s:.{digits}f}")
    return out


def budget_curves(runs: pd.DataFrame, setting: str, x: str, y: str, methods) -> tuple[dict[str, pd.DataFrame], pd.Series]:
    """Per method, the mean (``x``, ``y``) at each evaluated budget, starting from the Finetune model
    (step 0); and the Goal model's point."""
    sub = runs[runs.setting == setting]
    base = sub[sub.method == "Finetune"][[x, y]].mean()
    goal = sub[sub.method == "Goal"][[x, y]].mean()
    curves = {m: pd.concat([base.to_frame().T.assign(step=0).set_index("step"),
                            sub[sub.method == m].groupby("step")[[x, y]].mean()]) for m in methods}
    return curves, goal
