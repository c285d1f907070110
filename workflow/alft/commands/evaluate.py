"""``alft evaluate``: greedy decoding on the test split (vLLM) -> predictions + a summary row."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from alft.commands._common import add_vllm_args, stage_logger, vllm_settings
from alft.data import load_split
from alft.extract import answers_match, extract_answer
from alft.io import write_parquet
from alft.sampling import generate, load_llm
from alft.tasks import format_prompt

SUMMARY_COLUMNS = ["model", "method", "round", "seed", "accuracy", "n"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="greedy test accuracy of a policy")
    p.add_argument("--policy", required=True, help="model directory (or hub name)")
    p.add_argument("--split", type=Path, required=True, help="test.parquet")
    p.add_argument("--task", default="builtin")
    p.add_argument("--method", required=True, help="label for the results table (base, coherence, ...)")
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--out", type=Path, required=True, help="per-question predictions Parquet")
    p.add_argument("--summary", type=Path, required=True, help="one-row summary Parquet")
    add_vllm_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    log = stage_logger("evaluate")
    test = load_split(args.split)
    llm = load_llm(args.policy, args.seed, vllm_settings(args))
    prompts = [format_prompt(q, args.task) for q in test["question"]]
    outs = generate(llm, prompts, n=1, temperature=0.0, top_p=1.0, max_tokens=args.max_tokens)
    completions = [o[0].text for o in outs]
    preds = [extract_answer(c, args.task) for c in completions]
    correct = [answers_match(p, g, args.task) for p, g in zip(preds, test["answer"])]
    df = pd.DataFrame({"id": test["id"], "prediction": preds, "answer": test["answer"],
                       "correct": correct, "completion": completions})
    if "template" in test:
        df["template"] = test["template"].to_numpy()
    write_parquet(df, args.out)
    acc = float(df["correct"].mean())
    summary = pd.DataFrame([{"model": str(args.policy), "method": args.method, "round": args.round,
                             "seed": args.seed, "accuracy": acc, "n": len(df)}],
                           columns=SUMMARY_COLUMNS)
    write_parquet(summary, args.summary)
    log.info("%s round %d: greedy accuracy %.4f on %d questions", args.method, args.round, acc, len(df))
    if "template" in df:
        log.info("accuracy per template: %s",
                 df.groupby("template")["correct"].mean().round(3).to_dict())
    return 0
