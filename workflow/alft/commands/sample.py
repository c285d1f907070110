"""``alft sample``: K completions per orbit member from a policy (vLLM) -> samples.parquet."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from alft.commands._common import add_vllm_args, stage_logger, vllm_settings
from alft.errors import ConfigError
from alft.extract import extract_answer
from alft.io import read_parquet, write_parquet
from alft.sampling import generate, load_llm

SAMPLE_COLUMNS = ["orbit_id", "member", "sample_idx", "prompt", "completion", "answer",
                  "n_tokens", "finish_reason"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="sample K completions per orbit member with vLLM")
    p.add_argument("--policy", required=True, help="model directory (or hub name)")
    p.add_argument("--orbits", type=Path, required=True)
    p.add_argument("--task", default="builtin", choices=["builtin", "gsm8k", "triviaqa", "mathqa"])
    p.add_argument("--k", type=int, required=True, help="completions per orbit member")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--chat-template", action="store_true",
                   help="wrap each prompt in the model's chat template (the stored prompt stays raw)")
    p.add_argument("--out", type=Path, required=True)
    add_vllm_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    log = stage_logger("sample")
    if args.k < 1:
        raise ConfigError(f"--k must be >= 1, got {args.k}")
    orbits = read_parquet(args.orbits, {"orbit_id": "int", "member": "int", "prompt": "str"})
    llm = load_llm(args.policy, args.seed, vllm_settings(args))
    prompts = list(orbits["prompt"])
    if args.chat_template:
        from alft.commands.orbits import chat_wrap

        prompts = chat_wrap(llm, prompts)
    outs = generate(llm, prompts, n=args.k, temperature=args.temperature,
                    top_p=args.top_p, max_tokens=args.max_tokens)
    rows = []
    for (orbit_id, member, prompt), comps in zip(
            orbits[["orbit_id", "member", "prompt"]].itertuples(index=False), outs, strict=True):
        for i, c in enumerate(comps):
            rows.append({"orbit_id": orbit_id, "member": member, "sample_idx": i, "prompt": prompt,
                         "completion": c.text, "answer": extract_answer(c.text, args.task),
                         "n_tokens": c.n_tokens, "finish_reason": c.finish_reason})
    samples = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    write_parquet(samples, args.out)
    log.info("%d completions for %d prompts; %.1f%% with an extractable answer; %d tokens",
             len(samples), len(orbits), 100 * samples["answer"].notna().mean(),
             int(samples["n_tokens"].sum()))
    return 0
