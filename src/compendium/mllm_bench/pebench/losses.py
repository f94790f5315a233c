"""Unlearning losses, as PEBench (arXiv 2503.12545) benchmarks them, on any transformers VLM batch.

A *batch* is the dict :meth:`.model.VLM.batch` returns: the model's inputs plus ``labels`` aligned
with ``input_ids`` (-100 everywhere except the answer tokens). Notation as in the research note
(``../shared/research/mllm_benchmarks.md`` section 1.2): theta is the model being unlearned, theta_0
the frozen fine-tuned model (also the reference), D_f the forget set, D_r the retain set,
l(x, y; theta) the token-averaged NLL of the answer.

=========  ============================================================================  ============
method     loss                                                                          from
=========  ============================================================================  ============
GA         -E_f l                                                                        Yao et al.
GD         -gamma E_f l + alpha E_r l                                                    Liu et al.
KL         -E_f l + alpha E_r KL(pi_0 || pi_theta) over answer tokens (+ E_r l, MLLMU)    TOFU
PO         E_f l(x, y_idk) + alpha E_r l                                                 TOFU "IdK"
DPO        -(2/beta) E_f log sig(beta[(lp_w - lp0_w) - (lp_l - lp0_l)]) + alpha E_r l     Rafailov
NPO        -(2/beta) E_f log sig(-beta[lp(y) - lp0(y)]) + alpha E_r l                    Zhang et al.
SimNPO     -(2/beta) E_f log sig(beta(l_sum/|y| - delta)) * gamma + alpha E_r l          Fan et al.
SIU        alpha CE + beta DMK (dual-masked KL) on single-image multifaceted data        Li et al.
BGD        -(L_f^p / s_p + L_f^e / s_e)/2 + retain term of the base method (GD or KL)    PEBench
=========  ============================================================================  ============

lp is the sequence-summed log-probability of the answer; y_w is the refusal ("I do not know ..."),
y_l the true answer. GA, GD, KL, PO, NPO, SimNPO and DPO follow the formulas of their papers as
implemented in ``locuslab/open-unlearning`` (commit d3d7cf9) and ``franciscoliu/MLLMU-Bench``
(commit 0e3098e), as the research note summarises them. **Reconstructed** (no text available):

- SIU's data construction and dual-masked KL are simplified (:func:`siu`);
- BGD is PEBench's joint-unlearning method, described only as "data balancing + task balancing";
  our formula (balanced person/event forget batches, each forget NLL divided by its scale) is a
  reconstruction (:func:`bgd`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "FixedModel",
    "answer_logits",
    "sequence_logprob",
    "nll",
    "kl_to_reference",
    "UnlearnBatch",
    "ga",
    "gd",
    "kl",
    "po",
    "dpo",
    "npo",
    "simnpo",
    "siu",
    "bgd",
    "METHODS",
    "NEEDS_REFERENCE",
]


def _f(x) -> float:
    return float(x.detach()) if torch.is_tensor(x) else float(x)


def _inputs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k != "labels"}


def answer_logits(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Next-token logits at the positions that predict an answer token: returns (logits [B, T-1, V],
    targets [B, T-1], mask [B, T-1])."""
    logits = model(**_inputs(batch)).logits[:, :-1]
    targets = batch["labels"][:, 1:]
    mask = targets != -100
    return logits, targets.clamp(min=0), mask


def _token_logprobs(logits, targets):
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def sequence_logprob(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of the answer tokens' log-probabilities [B], number of answer tokens [B])."""
    logits, targets, mask = answer_logits(model, batch)
    lp = _token_logprobs(logits, targets) * mask
    return lp.sum(-1), mask.sum(-1)


def nll(model, batch: dict) -> torch.Tensor:
    """l(x, y; theta): the answer's NLL averaged over its tokens, then over the batch."""
    lp, n = sequence_logprob(model, batch)
    return (-lp / n.clamp(min=1)).mean()


def kl_to_reference(model, ref, batch: dict, *, token_mask: torch.Tensor | None = None,
                    vocab_mask: torch.Tensor | None = None) -> torch.Tensor:
    """KL(pi_ref || pi_theta) of the next-token distributions, averaged over the answer positions.

    ``token_mask`` [B, T-1] drops positions (SIU's token-level mask); ``vocab_mask`` [V] (True = keep)
    zeroes tokens in the reference distribution before renormalising (SIU's vocabulary-level mask).
    """
    logits, _, mask = answer_logits(model, batch)
    with torch.no_grad():
        ref_logits, _, _ = answer_logits(ref, batch)
    if token_mask is not None:
        mask = mask & token_mask
    logp = torch.log_softmax(logits.float(), dim=-1)
    ref_logits = ref_logits.float()
    if vocab_mask is not None:
        ref_logits = ref_logits.masked_fill(~vocab_mask.to(ref_logits.device), float("-inf"))
    ref_logp = torch.log_softmax(ref_logits, dim=-1)
    ref_p = ref_logp.exp()
    kl = (ref_p * (torch.where(ref_p > 0, ref_logp, torch.zeros_like(ref_logp)) - logp)).sum(-1)
    return (kl * mask).sum() / mask.sum().clamp(min=1)


@dataclass
class UnlearnBatch:
    """The batches one unlearning step may need (each a :meth:`VLM.batch` dict or None)."""

    forget: dict | None = None  # forget inputs, true answers
    retain: dict | None = None
    forget_idk: dict | None = None  # forget inputs, refusal answers (PO, DPO)
    siu: dict | None = None  # SIU's multifaceted single-image data
    siu_new_answer: torch.Tensor | None = None  # [B] True where the SIU sample carries the new (alias) answer
    forget_person: dict | None = None  # BGD's two forget streams
    forget_event: dict | None = None
    extra: dict = field(default_factory=dict)


def ga(model, b: UnlearnBatch, **_) -> tuple[torch.Tensor, dict]:
    """Gradient ascent: maximise the forget NLL (unbounded: stop early)."""
    lf = nll(model, b.forget)
    return -lf, {"forget_nll": _f(lf)}


def gd(model, b: UnlearnBatch, *, gamma: float = 1.0, alpha: float = 1.0, **_):
    """Gradient difference: ascend on the forget set, descend on the retain set."""
    lf, lr = nll(model, b.forget), nll(model, b.retain)
    return -gamma * lf + alpha * lr, {"forget_nll": _f(lf), "retain_nll": _f(lr)}


def kl(model, b: UnlearnBatch, *, ref, alpha: float = 1.0, retain_nll: bool = False, **_):
    """Ascent on the forget set plus the KL to the fine-tuned model on the retain set
    (``retain_nll=True`` adds the retain NLL, as MLLMU-Bench's KL_Min does)."""
    lf = nll(model, b.forget)
    div = kl_to_reference(model, ref, b.retain)
    loss = -lf + alpha * div
    logs = {"forget_nll": _f(lf), "retain_kl": _f(div)}
    if retain_nll:
        lr = nll(model, b.retain)
        loss = loss + lr
        logs["retain_nll"] = _f(lr)
    return loss, logs


def po(model, b: UnlearnBatch, *, alpha: float = 1.0, **_):
    """Preference optimisation as TOFU's "IdK": learn the refusal on the forget prompts, keep the
    retain answers."""
    li, lr = nll(model, b.forget_idk), nll(model, b.retain)
    return li + alpha * lr, {"idk_nll": _f(li), "retain_nll": _f(lr)}


def dpo(model, b: UnlearnBatch, *, ref, beta: float = 0.1, alpha: float = 1.0, **_):
    """DPO with the refusal as winner and the true answer as loser (sequence-summed log-probs, the
    2/beta factor of open-unlearning), plus the retain NLL."""
    lw, _ = sequence_logprob(model, b.forget_idk)
    ll, _ = sequence_logprob(model, b.forget)
    with torch.no_grad():
        rw, _ = sequence_logprob(ref, b.forget_idk)
        rl, _ = sequence_logprob(ref, b.forget)
    margin = (lw - rw) - (ll - rl)
    pref = -(2.0 / beta) * F.logsigmoid(beta * margin).mean()
    loss, logs = pref, {"dpo": _f(pref)}
    if alpha and b.retain is not None:
        lr = nll(model, b.retain)
        loss = loss + alpha * lr
        logs["retain_nll"] = _f(lr)
    return loss, logs


def npo(model, b: UnlearnBatch, *, ref, beta: float = 0.4, alpha: float = 1.0, **_):
    """Negative preference optimisation (NPO-RT with ``alpha`` > 0): a bounded push away from the
    reference's likelihood of the forget answers."""
    lp, _ = sequence_logprob(model, b.forget)
    with torch.no_grad():
        rp, _ = sequence_logprob(ref, b.forget)
    term = -(2.0 / beta) * F.logsigmoid(-beta * (lp - rp)).mean()
    loss, logs = term, {"npo": _f(term)}
    if alpha and b.retain is not None:
        lr = nll(model, b.retain)
        loss = loss + alpha * lr
        logs["retain_nll"] = _f(lr)
    return loss, logs


def simnpo(model, b: UnlearnBatch, *, beta: float = 2.5, delta: float = 0.0, gamma: float = 1.0, alpha: float = 1.0, **_):
    """SimNPO: NPO without a reference model, on the length-normalised NLL."""
    lp, n = sequence_logprob(model, b.forget)
    mean_nll = -lp / n.clamp(min=1)
    term = -(2.0 / beta) * F.logsigmoid(beta * (mean_nll - delta)).mean()
    loss, logs = gamma * term, {"simnpo": _f(term), "forget_nll": _f(mean_nll.mean())}
    if alpha and b.retain is not None:
        lr = nll(model, b.retain)
        loss = loss + alpha * lr
        logs["retain_nll"] = _f(lr)
    return loss, logs


def siu(model, b: UnlearnBatch, *, ref, alpha: float = 0.9, beta: float = 0.75, concept_token_ids=None, **_):
    """Single Image Unlearning (Li et al. 2024), **simplified reconstruction**: L = alpha CE + beta DMK
    on the multifaceted data built from one image per forget concept (``UnlearnBatch.siu``: the image
    with a new, unseen answer; the same image with the co-occurring concept's true answer; retain
    samples). DMK is the KL to the fine-tuned model with a token-level mask (the positions of the new
    answers are left out) and a vocabulary-level mask (the forgotten concept's tokens get zero
    probability in the reference distribution)."""
    ce = nll(model, b.siu)
    token_mask = None
    if b.siu_new_answer is not None:
        token_mask = ~b.siu_new_answer.to(b.siu["labels"].device)[:, None].expand(-1, b.siu["labels"].shape[1] - 1)
    vocab_mask = None
    if concept_token_ids is not None and len(concept_token_ids):
        logits_dim = model.get_output_embeddings().weight.shape[0]
        vocab_mask = torch.ones(logits_dim, dtype=torch.bool)
        vocab_mask[torch.as_tensor(list(concept_token_ids), dtype=torch.long)] = False
    dmk = kl_to_reference(model, ref, b.siu, token_mask=token_mask, vocab_mask=vocab_mask)
    return alpha * ce + beta * dmk, {"ce": _f(ce), "dmk": _f(dmk)}


def bgd(model, b: UnlearnBatch, *, ref=None, scales=(1.0, 1.0), base: str = "gd", alpha: float = 1.0, **_):
    """Balanced gradient difference for joint person + event unlearning (**reconstructed**).

    Data balancing is done by the sampler (as many person as event forget samples per batch); task
    balancing divides each forget NLL by its scale (the unlearning loop uses each stream's initial
    forget NLL divided by the mean of the two, so both targets move at the same relative speed and
    the total forget weight stays that of GD):
    L = -(L_f^p / s_p + L_f^e / s_e) / 2 + retain term, where the retain term is GD's retain NLL
    (``base="gd"``) or KL's KL to the fine-tuned model (``base="kl"``)."""
    lp, le = nll(model, b.forget_person), nll(model, b.forget_event)
    forget = (lp / scales[0] + le / scales[1]) / 2
    if base == "gd":
        retain = nll(model, b.retain)
    elif base == "kl":
        retain = kl_to_reference(model, ref, b.retain)
    else:
        raise ValueError("base must be 'gd' or 'kl'")
    return -forget + alpha * retain, {"forget_person_nll": _f(lp), "forget_event_nll": _f(le),
                                      "forget_nll": _f((lp + le) / 2), "retain": _f(retain)}


METHODS: dict[str, Callable] = {"GA": ga, "GD": gd, "KL": kl, "PO": po, "DPO": dpo, "NPO": npo, "SimNPO": simnpo,
                                "SIU": siu, "BGD": bgd}
NEEDS_REFERENCE = {"KL", "DPO", "NPO", "SIU", "BGD"}


class FixedModel(torch.nn.Module):
    """A toy "model" whose next-token probabilities are fixed per position, whatever the input: the
    losses on it can be checked with a calculator (the chapter's first example). ``probs``: (L, V)."""

    def __init__(self, probs):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.log(torch.tensor(probs)))

    def forward(self, input_ids=None, **_):
        from types import SimpleNamespace

        return SimpleNamespace(logits=self.logits.expand(input_ids.shape[0], -1, -1))
