"""``alft evaluate``: greedy decoding on the test split (vLLM) -> predictions + a summary row.

The summary starts with :data:`SUMMARY_COLUMNS`; for gsm8k / triviaqa / mathqa it
also has ``accuracy_strict`` (the task's required "The answer is ..." format only)
and ``accuracy_flexible`` (the lenient reading, e.g. the last number for gsm8k).
``accuracy`` uses :func:`alft.extract.extract_answer` (strict, else flexible).
TriviaQA predictions are matched against every alias of the gold answer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from alft.commands._common import add_vllm_args, stage_logger, vllm_settings
from alft.data import load_split
from alft.extract import answers_match, extract_answer, extract_answer_flexible, extract_answer_strict
from alft.io import write_parquet
from alft.sampling import generate, load_llm
from alft.tasks import format_prompt

SUMMARY_COLUMNS = ["model", "method", "round", "seed", "accuracy", "n"]
EXTRA_COLUMNS = ["accuracy_strict", "accuracy_flexible"]  # real tasks only


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="greedy test accuracy of a policy")
    p.add_argument("--policy", required=True, help="model directory (or hub name)")
    p.add_argument("--split", type=Path, required=True, help="test.parquet")
    p.add_argument("--task", default="builtin", choices=["builtin", "gsm8k", "triviaqa", "mathqa"])
    p.add_argument("--method", required=True, help="label for the results table (base, coherence, ...)")
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--chat-template", action="store_true",
                   help="wrap each prompt in the model's chat template")
    p.add_argument("--out", type=Path, required=True, help="per-question predictions Parquet")
    p.add_argument("--summary", type=Path, required=True, help="one-row summary Parquet")
    add_vllm_args(p)
    p.set_defaults(func=run)


def gold_of(test: pd.DataFrame, task: str) -> list:
    """Gold per question: the aliases for triviaqa (when present), else the answer."""
    if task == "triviaqa" and "aliases" in test:
        return [list(a) if a is not None and len(a) else [g]
                for a, g in zip(test["aliases"], test["answer"])]
    return list(test["answer"])


def score(completions: list[str], test: pd.DataFrame, task: str) -> tuple[pd.DataFrame, dict]:
    """Per-question predictions and the summary accuracies (pure: no model involved)."""
    gold = gold_of(test, task)
    preds = [extract_answer(c, task) for c in completions]
    correct = [answers_match(p, g, task) for p, g in zip(preds, gold)]
    df = pd.DataFrame({"id": test["id"], "prediction": preds, "answer": test["answer"],
                       "correct": correct, "completion": completions})
    acc = {"accuracy": float(df["correct"].mean()) if len(df) else float("nan")}
    if task != "builtin":
        for kind, fn in (("strict", extract_answer_strict), ("flexible", extract_answer_flexible)):
            p = [fn(c, task) for c in completions]
            df[f"prediction_{kind}"] = p
            df[f"correct_{kind}"] = [answers_match(x, g, task) for x, g in zip(p, gold)]
            acc[f"accuracy_{kind}"] = float(df[f"correct_{kind}"].mean()) if len(df) else float("nan")
    return df, acc


def run(args: argparse.Namespace) -> int:
    log = stage_logger("evaluate")
    test = load_split(args.split)
    llm = load_llm(args.policy, args.seed, vllm_settings(args))
    prompts = [format_prompt(q, args.task) for q in test["question"]]
    if args.chat_template:
        from alft.commands.orbits import chat_wrap

        prompts = chat_wrap(llm, prompts)
    outs = generate(llm, prompts, n=1, temperature=0.0, top_p=1.0, max_tokens=args.max_tokens)
    completions = [o[0].text for o in outs]
    df, acc = score(completions, test, args.task)
    if "template" in test:
        df["template"] = test["template"].to_numpy()
    write_parquet(df, args.out)
    columns = SUMMARY_COLUMNS + [c for c in EXTRA_COLUMNS if c in acc]
    summary = pd.DataFrame([{"model": str(args.policy), "method": args.method, "round": args.round,
                             "seed": args.seed, "n": len(df), **acc}], columns=columns)
    write_parquet(summary, args.summary)
    log.info("%s round %d: greedy accuracy %.4f on %d questions%s", args.method, args.round,
             acc["accuracy"], len(df),
             "".join(f", {k} {v:.4f}" for k, v in acc.items() if k != "accuracy"))
    if "template" in df:
        log.info("accuracy per template: %s",
                 df.groupby("template")["correct"].mean().round(3).to_dict())
    return 0
