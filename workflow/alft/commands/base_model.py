"""``alft base-model``: pretrain the builtin tiny policy π0 and save it like a hub model."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from alft import basemodel as bm
from alft.commands._common import log_host, stage_logger
from alft.data import load_split
from alft.errors import ConfigError, DataError
from alft.extract import answers_match, extract_answer
from alft.io import atomic_dir, write_parquet
from alft.tasks import format_prompt

# Head sizes supported by vLLM's CPU attention backend (vllm 0.32, cpu_attn.py).
VLLM_CPU_HEAD_DIMS = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("base-model", help="pretrain the builtin tiny base model")
    p.add_argument("--pretrain", type=Path, required=True, help="pretrain.parquet (needs a trace column)")
    p.add_argument("--val", type=Path, required=True, help="val.parquet, for checkpoint selection")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--num-layers", type=int, default=4)
    p.add_argument("--num-heads", type=int, default=4)
    p.add_argument("--intermediate-size", type=int, default=384)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-steps", type=int, default=2000)
    p.add_argument("--max-minutes", type=float, default=8.0,
                   help="wall-clock cap; when it binds, the result depends on the machine's speed")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--out", type=Path, required=True, help="model directory (safetensors + tokenizer)")
    p.add_argument("--log-parquet", type=Path, required=True, help="validation history")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    log = stage_logger("base-model")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormals make CPU training erratically slow
    log_host(log)
    head_dim, rem = divmod(args.hidden_size, args.num_heads)
    if rem or head_dim not in VLLM_CPU_HEAD_DIMS:
        raise ConfigError(
            f"base_model.hidden_size / base_model.num_heads = {args.hidden_size}/{args.num_heads}"
            f" must be a head size vLLM's CPU attention supports: {VLLM_CPU_HEAD_DIMS}")
    pre, val = load_split(args.pretrain), load_split(args.val)
    if "trace" not in pre:
        raise DataError(f"{args.pretrain}: missing column 'trace' (the chain-of-thought to learn)")
    tokenizer = bm.build_tokenizer(list(pre["question"]) + list(pre["trace"]))
    spec = bm.ModelSpec(hidden_size=args.hidden_size, num_layers=args.num_layers,
                        num_heads=args.num_heads, intermediate_size=args.intermediate_size)
    model = bm.build_model(len(tokenizer), spec, tokenizer, args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model: %d parameters, vocabulary %d, %d pretraining traces", n_params,
             len(tokenizer), len(pre))
    examples = bm.encode_examples(tokenizer, [format_prompt(q) for q in pre["question"]],
                                  [" " + t for t in pre["trace"]])
    val_prompts = [format_prompt(q) for q in val["question"]]

    def validate(m) -> float:
        outs = bm.greedy_complete(m, tokenizer, val_prompts, max_new_tokens=48)
        correct = pd.Series([answers_match(extract_answer(o), a) for o, a in zip(outs, val["answer"])])
        if "template" in val:
            per = correct.groupby(val["template"].to_numpy()).mean().round(3).to_dict()
            log.info("validation accuracy per template: %s", per)
        return float(correct.mean())

    cfg = bm.PretrainConfig(lr=args.lr, batch_size=args.batch_size, max_steps=args.max_steps,
                            max_minutes=args.max_minutes, eval_every=args.eval_every)
    bar = tqdm(total=cfg.max_steps, desc="pretrain", mininterval=5.0)

    def progress(step: int, loss: float, acc: float | None) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False,
                        **({"val_acc": f"{acc:.3f}"} if acc is not None else {}))
        if acc is not None:
            log.info("step %d: loss %.4f, validation greedy accuracy %.3f", step, loss, acc)

    start = time.monotonic()
    best, history = bm.pretrain(model, examples, tokenizer.pad_token_id, cfg, args.seed,
                                validate, progress)
    bar.close()
    model.load_state_dict(best)
    hist = pd.DataFrame(history)
    last_step = int(hist["step"].iloc[-1])
    if last_step < cfg.max_steps:
        log.warning("stopped at step %d of %d by the wall-clock cap (--max-minutes %g, config "
                    "key base_model.max_minutes): this base model depends on the machine's "
                    "speed; raise the cap to train all %d steps",
                    last_step, cfg.max_steps, cfg.max_minutes, cfg.max_steps)
    best_row = hist.loc[hist["val_accuracy"].idxmax()]
    log.info("kept step %d (validation accuracy %.3f) after %.0f s", best_row["step"],
             best_row["val_accuracy"], time.monotonic() - start)
    with atomic_dir(args.out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
    hist["selected"] = hist["step"] == best_row["step"]
    write_parquet(hist, args.log_parquet)
    return 0
