"""PEBench losses and metrics on hand-made cases; every expected value is worked out in the comments."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from compendium.mllm_bench.pebench import losses as L
from compendium.mllm_bench.pebench import metrics as M


class Fixed(torch.nn.Module):
    """A "model" whose next-token distributions are fixed (one row of logits per position)."""

    def __init__(self, probs):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.log(torch.tensor(probs, dtype=torch.float32)))

    def forward(self, input_ids=None, **_):
        return SimpleNamespace(logits=self.logits.expand(input_ids.shape[0], -1, -1))

    def get_output_embeddings(self):
        return SimpleNamespace(weight=torch.zeros(self.logits.shape[-1], 1))


# Three positions, vocabulary of 3. Labels [-100, 1, 2]: position 0 predicts token 1, position 1 predicts token 2.
P_MODEL = [[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]]
P_REF = [[0.25, 0.25, 0.5], [0.2, 0.2, 0.6], [1 / 3, 1 / 3, 1 / 3]]
BATCH = {"input_ids": torch.tensor([[0, 1, 2]]), "labels": torch.tensor([[-100, 1, 2]])}
NLL = -(math.log(0.5) + math.log(0.8)) / 2  # token-averaged
LOGP = math.log(0.5) + math.log(0.8)  # sequence-summed
REF_LOGP = math.log(0.25) + math.log(0.6)


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)


def test_nll_and_sequence_logprob():
    m = Fixed(P_MODEL)
    lp, n = L.sequence_logprob(m, BATCH)
    assert float(lp) == pytest.approx(LOGP, abs=1e-6) and int(n) == 2
    assert float(L.nll(m, BATCH)) == pytest.approx(NLL, abs=1e-6)


def test_ga_gd_po():
    m = Fixed(P_MODEL)
    loss, _ = L.ga(m, L.UnlearnBatch(forget=BATCH))
    assert float(loss) == pytest.approx(-NLL, abs=1e-6)
    # retain batch: the same sequence; GD = -gamma * NLL + alpha * NLL
    loss, _ = L.gd(m, L.UnlearnBatch(forget=BATCH, retain=BATCH), gamma=2.0, alpha=0.5)
    assert float(loss) == pytest.approx(-1.5 * NLL, abs=1e-6)
    loss, _ = L.po(m, L.UnlearnBatch(forget_idk=BATCH, retain=BATCH), alpha=1.0)
    assert float(loss) == pytest.approx(2 * NLL, abs=1e-6)


def test_kl_term_is_kl_of_reference_to_model_over_answer_positions():
    m, ref = Fixed(P_MODEL), Fixed(P_REF)
    expected = (kl(P_REF[0], P_MODEL[0]) + kl(P_REF[1], P_MODEL[1])) / 2  # position 2 is not an answer position
    assert float(L.kl_to_reference(m, ref, BATCH)) == pytest.approx(expected, abs=1e-6)
    loss, logs = L.kl(m, L.UnlearnBatch(forget=BATCH, retain=BATCH), ref=ref, alpha=2.0)
    assert float(loss) == pytest.approx(-NLL + 2 * expected, abs=1e-6)
    loss, _ = L.kl(m, L.UnlearnBatch(forget=BATCH, retain=BATCH), ref=ref, alpha=1.0, retain_nll=True)
    assert float(loss) == pytest.approx(-NLL + expected + NLL, abs=1e-6)
    assert float(L.kl_to_reference(m, Fixed(P_MODEL), BATCH)) == pytest.approx(0.0, abs=1e-6)


def test_dpo_npo_simnpo_by_hand():
    m, ref = Fixed(P_MODEL), Fixed(P_REF)
    # DPO with the same sequence as winner and loser: margin 0 -> -(2/beta) log(1/2)
    loss, _ = L.dpo(m, L.UnlearnBatch(forget=BATCH, forget_idk=BATCH), ref=ref, beta=0.5, alpha=0.0)
    assert float(loss) == pytest.approx(-(2 / 0.5) * math.log(0.5), abs=1e-6)
    # NPO: -(2/beta) log sigmoid(-beta (lp - lp_ref))
    beta = 0.4
    expected = -(2 / beta) * math.log(1 / (1 + math.exp(beta * (LOGP - REF_LOGP))))
    loss, _ = L.npo(m, L.UnlearnBatch(forget=BATCH), ref=ref, beta=beta, alpha=0.0)
    assert float(loss) == pytest.approx(expected, abs=1e-5)
    # NPO + retain NLL
    loss, _ = L.npo(m, L.UnlearnBatch(forget=BATCH, retain=BATCH), ref=ref, beta=beta, alpha=1.0)
    assert float(loss) == pytest.approx(expected + NLL, abs=1e-5)
    # SimNPO: -(2/beta) log sigmoid(beta (mean NLL - delta)), no reference
    beta, delta = 2.5, 0.1
    expected = -(2 / beta) * math.log(1 / (1 + math.exp(-beta * (NLL - delta))))
    loss, _ = L.simnpo(m, L.UnlearnBatch(forget=BATCH), beta=beta, delta=delta, alpha=0.0)
    assert float(loss) == pytest.approx(expected, abs=1e-5)


def test_dpo_with_a_real_margin_and_simnpo_weights():
    m, ref = Fixed(P_MODEL), Fixed(P_REF)
    # winner: the answer "0 0" (model 0.2 and 0.1; reference 0.25 and 0.2); loser: the true answer "1 2"
    win = {"input_ids": torch.tensor([[0, 1, 2]]), "labels": torch.tensor([[-100, 0, 0]])}
    lw, rw = math.log(0.2) + math.log(0.1), math.log(0.25) + math.log(0.2)
    margin = (lw - rw) - (LOGP - REF_LOGP)  # (-0.9163) - (0.9808) = -1.8971
    beta = 0.5
    expected = -(2 / beta) * math.log(1 / (1 + math.exp(-beta * margin)))
    loss, _ = L.dpo(m, L.UnlearnBatch(forget=BATCH, forget_idk=win), ref=ref, beta=beta, alpha=0.0)
    assert float(loss) == pytest.approx(expected, abs=1e-5)
    # plus alpha times the retain NLL
    loss, _ = L.dpo(m, L.UnlearnBatch(forget=BATCH, forget_idk=win, retain=BATCH), ref=ref, beta=beta, alpha=2.0)
    assert float(loss) == pytest.approx(expected + 2 * NLL, abs=1e-5)
    # SimNPO = gamma * term + alpha * retain NLL
    term = -(2 / 2.5) * math.log(1 / (1 + math.exp(-2.5 * NLL)))
    loss, _ = L.simnpo(m, L.UnlearnBatch(forget=BATCH, retain=BATCH), beta=2.5, delta=0.0, gamma=2.0, alpha=0.5)
    assert float(loss) == pytest.approx(2 * term + 0.5 * NLL, abs=1e-5)


def test_npo_is_bounded_where_ga_is_not():
    ref = Fixed(P_REF)
    far = Fixed([[0.98, 0.01, 0.01], [0.98, 0.01, 0.01], [1 / 3, 1 / 3, 1 / 3]])  # answer already very unlikely
    ga_loss, _ = L.ga(far, L.UnlearnBatch(forget=BATCH))
    npo_loss, _ = L.npo(far, L.UnlearnBatch(forget=BATCH), ref=ref, beta=0.4, alpha=0.0)
    assert float(ga_loss) < -4  # GA keeps rewarding more forgetting
    assert 0 < float(npo_loss) < 1.0  # NPO's loss goes to 0: its gradient vanishes


def test_siu_masks():
    m, ref = Fixed(P_MODEL), Fixed(P_REF)
    # vocabulary mask on token 2: the reference distribution becomes (p0, p1, 0) renormalised
    q0 = [0.25 / 0.5, 0.25 / 0.5, 0.0]
    q1 = [0.2 / 0.4, 0.2 / 0.4, 0.0]
    expected = (kl(q0, P_MODEL[0]) + kl(q1, P_MODEL[1])) / 2
    vocab_keep = torch.tensor([True, True, False])
    assert float(L.kl_to_reference(m, ref, BATCH, vocab_mask=vocab_keep)) == pytest.approx(expected, abs=1e-6)
    # the token mask drops position 1: only position 0 is left
    tmask = torch.tensor([[True, False]])
    assert float(L.kl_to_reference(m, ref, BATCH, token_mask=tmask)) == pytest.approx(kl(P_REF[0], P_MODEL[0]), abs=1e-6)
    # SIU = alpha CE + beta DMK; a sample flagged "new answer" has no DMK positions -> DMK 0
    b = L.UnlearnBatch(siu=BATCH, siu_new_answer=torch.tensor([True]))
    loss, logs = L.siu(m, b, ref=ref, alpha=0.9, beta=0.75, concept_token_ids=[2])
    assert logs["dmk"] == pytest.approx(0.0, abs=1e-7)
    assert float(loss) == pytest.approx(0.9 * NLL, abs=1e-6)
    b = L.UnlearnBatch(siu=BATCH, siu_new_answer=torch.tensor([False]))
    loss, logs = L.siu(m, b, ref=ref, alpha=0.9, beta=0.75, concept_token_ids=[2])
    assert float(loss) == pytest.approx(0.9 * NLL + 0.75 * expected, abs=1e-6)


def test_bgd_balances_the_two_forget_streams():
    m, ref = Fixed(P_MODEL), Fixed(P_REF)
    b = L.UnlearnBatch(forget_person=BATCH, forget_event=BATCH, retain=BATCH)
    loss, _ = L.bgd(m, b, scales=(2.0, 0.5), base="gd", alpha=1.0)
    assert float(loss) == pytest.approx(-(NLL / 2.0 + NLL / 0.5) / 2 + NLL, abs=1e-6)
    loss, _ = L.bgd(m, b, ref=ref, scales=(1.0, 1.0), base="kl", alpha=1.0)
    expected_kl = (kl(P_REF[0], P_MODEL[0]) + kl(P_REF[1], P_MODEL[1])) / 2
    assert float(loss) == pytest.approx(-NLL + expected_kl, abs=1e-6)


def test_gradient_directions():
    def step(loss_fn, **kw):
        m = Fixed(P_MODEL)
        loss, _ = loss_fn(m, **kw)
        loss.backward()
        with torch.no_grad():
            m.logits -= 0.5 * m.logits.grad
        return float(L.nll(m, BATCH))

    assert step(lambda m: L.ga(m, L.UnlearnBatch(forget=BATCH))) > NLL  # ascent: the answer gets less likely
    assert step(lambda m: L.po(m, L.UnlearnBatch(forget_idk=BATCH, retain=BATCH))) < NLL  # descent on both
    assert step(lambda m: L.npo(m, L.UnlearnBatch(forget=BATCH), ref=Fixed(P_REF), alpha=0.0)) > NLL
    assert step(lambda m: L.simnpo(m, L.UnlearnBatch(forget=BATCH), alpha=0.0)) > NLL
    win = {"input_ids": torch.tensor([[0, 1, 2]]), "labels": torch.tensor([[-100, 0, 0]])}
    # DPO pushes the loser (the true answer) down relative to the winner (the refusal)
    assert step(lambda m: L.dpo(m, L.UnlearnBatch(forget=BATCH, forget_idk=win), ref=Fixed(P_REF), alpha=0.0)) > NLL
    assert step(lambda m: L.bgd(m, L.UnlearnBatch(forget_person=BATCH, forget_event=BATCH, retain=win), alpha=0.0)) > NLL


# ------------------------------------------------------------------------------------ metrics


def test_name_precision_rules():
    preds = ["Ka Lomi", "someone else", "i think it is ka lomi", ""]
    names = ["ka lomi"] * 4
    assert M.name_precision(preds, names) == 25.0  # exact: only the first (case and spaces normalised)
    assert M.name_precision(preds, names, rule="contains") == 50.0
    assert M.person_efficacy(preds, names) == 75.0
    with pytest.raises(ValueError):
        M.name_precision(preds, names[:2])


def test_keyword_recall_rouge_pope():
    kws = ("jogging", "park", "path", "morning")
    assert M.keyword_recall("the person is jogging along a green park path", kws) == 0.75
    assert M.keyword_recall("nothing here", kws) == 0.0
    # two answers: recall 1 and 0 -> efficacy 1 - 0.5
    assert M.event_efficacy(["jogging park path morning", "no"], [kws, kws]) == 0.5
    # LCS("a c d", "a b c d") = 3: precision 3/3, recall 3/4 -> F = 2 * 0.75 / 1.75
    assert M.rouge_l("a c d", "a b c d") == pytest.approx(2 * 0.75 / 1.75)
    assert M.rouge_l("x y", "a b") == 0.0
    assert M.pope_accuracy(["yes", "No.", "maybe yes", "yes it is"], ["yes", "no", "yes", "no"]) == 50.0
    # objects: answer 1 names both right; answer 2 names one right and hallucinates one -> TP 3, FP 1, FN 1
    truth = ["red circle and green square", "blue triangle and white bar"]
    assert M.object_f1(["red circle and green square", "blue triangle and black square"], truth) == pytest.approx(75.0)
    assert M.object_f1(["i do not know", "nothing"], truth) == 0.0
