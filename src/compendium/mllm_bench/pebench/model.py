"""Vision-language models for unlearning: a generic adapter, and a tiny LLaVA trained here.

:class:`VLM` wraps any ``transformers`` image-text-to-text model whose processor expands the image
placeholder into the token sequence (LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, ... through their HF
processors). It builds training batches whose ``labels`` mark the answer tokens only, and generates
answers. Every loss in :mod:`.losses` works on these batches, so the same code unlearns the tiny model
of the scaled-down benchmark and LLaVA-1.5-7B on the real one (``gpu`` profile).

:func:`tiny_llava` builds ``LlavaForConditionalGeneration`` (a CLIP vision tower, a projector and a
Llama decoder: the same classes as LLaVA-1.5-7B, PEBench's base model) at a tiny configuration, with a
word-level tokenizer over the scaled-down benchmark's closed vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["VLM", "tiny_llava", "word_tokenizer", "vocabulary", "fit", "PROMPTS"]

# Prompt templates: "{question}" is replaced; the answer follows after one space.
PROMPTS = {
    "tiny": "<image> {question} answer :",
    "llava-1.5": "USER: <image>\n{question} ASSISTANT:",
}


@dataclass
class VLM:
    """A vision-language model, its processor and its prompt template."""

    model: object
    processor: object
    template: str = PROMPTS["tiny"]
    max_new_tokens: int = 16

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def _encode(self, images, texts, side: str):
        tok = self.tokenizer
        old = tok.padding_side
        tok.padding_side = side
        try:
            enc = self.processor(images=list(images), text=list(texts), padding=True, return_tensors="pt")
        finally:
            tok.padding_side = old
        dtype = next(self.model.parameters()).dtype
        return {k: (v.to(self.device, dtype=dtype) if v.is_floating_point() else v.to(self.device)) for k, v in enc.items()}

    def batch(self, images: Sequence, questions: Sequence[str], answers: Sequence[str]) -> dict:
        """Model inputs plus ``labels``: the answer tokens (and the end-of-sequence token) are
        supervised, the prompt, the image tokens and the padding are -100."""
        prompts = [self.template.format(question=q) for q in questions]
        eos = self.tokenizer.eos_token or ""
        full = [f"{p} {a}{(' ' + eos) if eos else ''}" for p, a in zip(prompts, answers)]
        enc = self._encode(images, full, "right")
        prompt_lens = [self._prompt_len(p, im) for p, im in zip(prompts, images)]
        labels = enc["input_ids"].clone()
        labels[enc["attention_mask"] == 0] = -100
        for i, n in enumerate(prompt_lens):
            labels[i, :n] = -100
        enc["labels"] = labels
        return enc

    def _prompt_len(self, prompt: str, image) -> int:
        """Tokens of the prompt once the processor has expanded the image placeholder (measured with the
        processor itself, so any model family works; cached by prompt and image shape)."""
        cache = self.__dict__.setdefault("_lens", {})
        key = (prompt, getattr(image, "shape", None) or getattr(image, "size", None))
        if key not in cache:
            cache[key] = int(self.processor(images=[image], text=[prompt], return_tensors="pt")["input_ids"].shape[1])
        return cache[key]

    def generate(self, images: Sequence, questions: Sequence[str], *, batch_size: int = 64,
                 max_new_tokens: int | None = None) -> list[str]:
        """Greedy answers."""
        import torch

        out = []
        was_training = self.model.training
        self.model.eval()
        for i in range(0, len(questions), batch_size):
            prompts = [self.template.format(question=q) for q in questions[i:i + batch_size]]
            enc = self._encode(images[i:i + batch_size], prompts, "left")
            with torch.no_grad():
                gen = self.model.generate(**enc, max_new_tokens=max_new_tokens or self.max_new_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id)
            out += [t.strip() for t in self.tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)]
        if was_training:
            self.model.train()
        return out

    def copy(self) -> "VLM":
        import copy

        return VLM(copy.deepcopy(self.model), self.processor, self.template, self.max_new_tokens)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, template: str = PROMPTS["llava-1.5"], dtype: str = "bfloat16",
                        device: str | None = None) -> "VLM":
        """A local image-text-to-text checkpoint (e.g. ``llava-hf/llava-1.5-7b-hf`` downloaded elsewhere)."""
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"no model at {path}: download a LLaVA-1.5-style checkpoint (e.g. llava-hf/llava-1.5-7b-hf) where the "
                "machine can reach it and give its folder")
        proc = AutoProcessor.from_pretrained(str(path))
        model = AutoModelForImageTextToText.from_pretrained(str(path), dtype=getattr(torch, dtype))
        return cls(model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")), proc, template)


# ------------------------------------------------------------------------------------ the tiny model


def vocabulary(world) -> list[str]:
    """Every word the scaled-down benchmark can ask or answer."""
    from .scenes import COLOURS, EVENT_ALIAS, IDK, OBJECTS_QUESTION, POPE_QUESTION, QUESTIONS, SHAPES

    words: list[str] = []
    texts = list(QUESTIONS.values()) + list(IDK.values()) + [POPE_QUESTION.format(obj="x"), OBJECTS_QUESTION,
                                                             "yes no and answer :"]
    texts += [e.description for e in world.events] + [" ".join(e.keywords) for e in world.events]
    texts += [p.name for p in world.persons + world.real_persons] + list(world.aliases) + [EVENT_ALIAS]
    texts += list(COLOURS) + SHAPES
    for t in texts:
        for w in t.split():
            if w not in words and w != "x":
                words.append(w)
    return words


def word_tokenizer(words: Sequence[str]):
    """A word-level ``PreTrainedTokenizerFast`` (whitespace split) over ``words`` plus the specials."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>", "<image>"]
    vocab = {w: i for i, w in enumerate(specials + [w for w in words if w not in specials])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", extra_special_tokens={"image_token": "<image>"})


def tiny_llava(world, *, image_size: int | None = None, patch_size: int = 8, hidden: int = 64, layers: int = 2,
               vision_hidden: int = 64, vision_layers: int = 2, seed: int = 0) -> VLM:
    """``LlavaForConditionalGeneration`` at a tiny configuration (about 0.2 M parameters by default)
    with its processor (CLIP image processor without resizing; a word tokenizer)."""
    import torch
    from transformers import (CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration,
                              LlavaProcessor)

    try:
        from transformers import CLIPImageProcessorPil as _ImageProcessor  # no torchvision needed
    except ImportError:  # older transformers
        from transformers import CLIPImageProcessor as _ImageProcessor

    size = image_size or world.image_size
    tok = word_tokenizer(vocabulary(world))
    ip = _ImageProcessor(do_resize=False, do_center_crop=False, do_rescale=False, do_normalize=True,
                         image_mean=[0.5] * 3, image_std=[0.25] * 3, do_convert_rgb=False)
    proc = LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=patch_size,
                          vision_feature_select_strategy="default", num_additional_image_tokens=1, image_token="<image>")
    torch.manual_seed(seed)
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=vision_hidden, intermediate_size=2 * vision_hidden,
                                       num_hidden_layers=vision_layers, num_attention_heads=4, image_size=size,
                                       patch_size=patch_size),
        text_config=LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                                num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                                max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                                bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id),
        image_token_index=tok.convert_tokens_to_ids("<image>"), vision_feature_select_strategy="default",
        vision_feature_layer=-1, projector_hidden_act="gelu",
    )
    model = LlavaForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return VLM(model, proc, PROMPTS["tiny"], max_new_tokens=12)


def fit(vlm: VLM, images, questions, answers, *, epochs: int = 30, batch_size: int = 64, lr: float = 3e-3,
        seed: int = 0, log_every: int = 0) -> list[float]:
    """Plain supervised fine-tuning (the Finetune and Goal models). Returns the loss per epoch."""
    import torch

    g = np.random.default_rng(seed)
    opt = torch.optim.AdamW(vlm.model.parameters(), lr=lr, weight_decay=0.0)
    n = len(questions)
    steps = epochs * ((n + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    vlm.model.train()
    losses = []
    for ep in range(epochs):
        order = g.permutation(n)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            batch = vlm.batch([images[j] for j in idx], [questions[j] for j in idx], [answers[j] for j in idx])
            loss = vlm.model(**batch).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / n)
        if log_every and (ep + 1) % log_every == 0:
            print(f"  epoch {ep + 1}/{epochs}  loss {losses[-1]:.3f}")
    vlm.model.eval()
    return losses
