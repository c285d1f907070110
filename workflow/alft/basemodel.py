"""The builtin base policy π0: a character tokenizer and a tiny Llama, pretrained locally.

Saved with ``save_pretrained`` (safetensors + tokenizer files), so vLLM and TRL load
it exactly like a hub model. No network is needed.
"""

from __future__ import annotations

import math
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"


def build_tokenizer(texts: Sequence[str]) -> PreTrainedTokenizerFast:
    """A character-level tokenizer over printable ASCII and the characters of ``texts``.

    Every character is one token; BOS is prepended by a post-processor (a bare
    WordLevel tokenizer adds none), and the ``Fuse`` decoder joins characters back
    without spaces, so encode/decode round-trips exactly.
    """
    printable = set(string.printable) - set("\t\r\x0b\x0c")  # any English prompt format
    chars = sorted(set("".join(texts)) | printable)
    vocab = {tok: i for i, tok in enumerate([PAD, BOS, EOS, UNK] + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        padding_side="left", clean_up_tokenization_spaces=False,
    )
    fast.model_max_length = 512
    return fast


@dataclass
class ModelSpec:
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 384
    max_positions: int = 256


def build_model(vocab_size: int, spec: ModelSpec, tokenizer: PreTrainedTokenizerFast,
                seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size, num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads, num_key_value_heads=spec.num_heads,
        max_position_embeddings=spec.max_positions, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, torch_dtype="float32",
    )
    return LlamaForCausalLM(config)


def encode_examples(tokenizer: PreTrainedTokenizerFast, prompts: Sequence[str],
                    completions: Sequence[str]) -> list[tuple[list[int], int]]:
    """Token ids of prompt+completion+EOS and the index where the completion starts."""
    out = []
    for p, c in zip(prompts, completions, strict=True):
        ids_p = tokenizer(p)["input_ids"]
        ids_c = tokenizer(c, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        out.append((ids_p + ids_c, len(ids_p)))
    return out


def collate(examples: Sequence[tuple[list[int], int]], pad_id: int) -> tuple[torch.Tensor, ...]:
    """Right-padded batch with labels masked (-100) outside the completion."""
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    attn = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (ids, start) in enumerate(examples):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, start: len(ids)] = torch.tensor(ids[start:])
        attn[i, : len(ids)] = 1
    return input_ids, attn, labels


@torch.no_grad()
def greedy_complete(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast,
                    prompts: Sequence[str], max_new_tokens: int, batch_size: int = 256) -> list[str]:
    """Greedy completions with HF ``generate`` (left padding); used for checkpoint selection."""
    model.eval()
    out: list[str] = []
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(list(prompts[i: i + batch_size]), return_tensors="pt", padding=True)
        gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        out.extend(tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    model.train()
    return out


@dataclass
class PretrainConfig:
    lr: float = 2e-3
    batch_size: int = 64
    max_steps: int = 3000
    max_minutes: float = 8.0
    warmup_steps: int = 100
    eval_every: int = 250
    weight_decay: float = 0.01
    max_new_tokens: int = 48


def pretrain(model: LlamaForCausalLM, examples: list[tuple[list[int], int]], pad_id: int,
             cfg: PretrainConfig, seed: int,
             validate: Callable[[LlamaForCausalLM], float],
             progress: Callable[[int, float, float | None], None] | None = None
             ) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Train on answer tokens with AdamW + cosine decay; keep the best checkpoint on validation.

    Returns the best state dict and one history row per evaluation
    (``step, seconds, loss, val_accuracy``). Stops at ``max_steps`` or ``max_minutes``.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        frac = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    best_acc, best_state, history = -1.0, None, []
    start, losses = time.monotonic(), []
    model.train()
    for step in range(cfg.max_steps):
        idx = rng.integers(0, len(examples), size=cfg.batch_size)
        input_ids, attn, labels = collate([examples[i] for i in idx], pad_id)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = model(input_ids=input_ids, attention_mask=attn, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        elapsed = time.monotonic() - start
        last = step == cfg.max_steps - 1 or elapsed > cfg.max_minutes * 60
        acc = None
        if (step + 1) % cfg.eval_every == 0 or last:
            acc = validate(model)
            history.append({"step": step + 1, "seconds": elapsed,
                            "loss": float(np.mean(losses[-cfg.eval_every:])), "val_accuracy": acc})
            if acc > best_acc:
                best_acc = acc
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if progress is not None:
            progress(step + 1, losses[-1], acc)
        if last:
            break
    assert best_state is not None
    return best_state, history
