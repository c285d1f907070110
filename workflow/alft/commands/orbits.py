"""``alft orbits``: paraphrase orbits of the training questions -> orbits.parquet.

builtin: the task's own templates (``--paraphraser templates``, offline).
gsm8k / triviaqa / mathqa: an LLM rewrites each question (``--paraphraser llm``,
vLLM, :func:`alft.paraphrase.llm_orbits`); every rewrite is validated before it
enters an orbit and rejections are counted per reason in the ``--report`` Parquet.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from alft.commands._common import add_vllm_args, stage_logger, vllm_settings
from alft.data import load_split
from alft.errors import ConfigError
from alft.io import write_parquet
from alft.orbits import OrbitReport, builtin_orbits
from alft.tasks import builtin

TASKS = ("builtin", "gsm8k", "triviaqa", "mathqa")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("orbits", help="build paraphrase orbits of the training split")
    p.add_argument("--split", type=Path, required=True, help="train.parquet")
    p.add_argument("--task", default="builtin", choices=TASKS)
    p.add_argument("--paraphraser", choices=["templates", "llm"], default=None,
                   help="templates (builtin only; default there) or llm (default for other tasks)")
    p.add_argument("--size", type=int, default=None,
                   help="members per orbit, original included (templates)")
    p.add_argument("--n-paraphrases", type=int, default=None,
                   help="llm: rewrites asked for per question (default: --size - 1)")
    p.add_argument("--max-orbits", type=int, default=0, help="use the first N questions (0: all)")
    p.add_argument("--seed", type=int, required=True)
    g = p.add_argument_group("LLM paraphraser")
    g.add_argument("--model", default=None, help="paraphrasing model: directory or hub name")
    g.add_argument("--temperature", type=float, default=0.7)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--max-tokens", type=int, default=512)
    g.add_argument("--min-ratio", type=float, default=0.5, help="shortest rewrite / original length")
    g.add_argument("--max-ratio", type=float, default=2.0, help="longest rewrite / original length")
    g.add_argument("--batch-size", type=int, default=0, help="prompts per vLLM call (0: all)")
    g.add_argument("--chat-template", action="store_true",
                   help="wrap the paraphrase request in the model's chat template")
    add_vllm_args(p)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--report", type=Path, required=True,
                   help="Parquet: kept and rejected paraphrases per reason")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paraphraser = args.paraphraser or ("templates" if args.task == "builtin" else "llm")
    if paraphraser == "templates":
        if args.task != "builtin":
            raise ConfigError(f"--paraphraser templates exists for task builtin only; use "
                              f"--paraphraser llm for {args.task}")
        return _run_templates(args)
    return _run_llm(args)


def _run_templates(args: argparse.Namespace) -> int:
    log = stage_logger("orbits")
    if args.size is None:
        raise ConfigError("--size is required for the template paraphraser")
    train = load_split(args.split)
    missing = [c for c in ("template", *builtin.Problem.__dataclass_fields__) if c not in train]
    if missing:
        from alft.errors import DataError

        raise DataError(f"{args.split}: builtin orbits need column(s) {missing}")
    if args.max_orbits:
        train = train.iloc[: args.max_orbits]
    report = OrbitReport()
    orbits = builtin_orbits(train, args.size, args.seed, report)
    write_parquet(orbits, args.out)
    rows = [{"reason": "kept", "count": report.n_members}]
    rows += [{"reason": r, "count": c} for r, c in sorted(report.rejected.items())]
    write_parquet(pd.DataFrame(rows), args.report)
    log.info("%d orbits, %d members kept, %d paraphrases dropped %s", report.n_questions,
             report.n_members, sum(report.rejected.values()), dict(report.rejected))
    return 0


def chat_wrap(llm, prompts: list[str]) -> list[str]:
    """Each prompt as one user turn in the model's chat template (generation prompt added)."""
    tok = llm.get_tokenizer()
    if not getattr(tok, "chat_template", None):
        raise ConfigError("--chat-template: the model's tokenizer has no chat template")
    return [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                    add_generation_prompt=True) for p in prompts]


def _run_llm(args: argparse.Namespace) -> int:
    from alft.paraphrase import llm_orbits
    from alft.sampling import generate, load_llm

    log = stage_logger("orbits")
    if not args.model:
        raise ConfigError("--paraphraser llm needs --model (a model directory or hub name)")
    n = args.n_paraphrases if args.n_paraphrases is not None else (
        args.size - 1 if args.size is not None else None)
    if n is None or n < 1:
        raise ConfigError(f"--n-paraphrases (or --size - 1) must be >= 1, got {n}")
    train = load_split(args.split)
    if args.max_orbits:
        train = train.iloc[: args.max_orbits]
    llm = load_llm(args.model, args.seed, vllm_settings(args))

    def generate_fn(prompts: list[str]) -> list[str]:
        texts = chat_wrap(llm, prompts) if args.chat_template else prompts
        outs = generate(llm, texts, n=1, temperature=args.temperature, top_p=args.top_p,
                        max_tokens=args.max_tokens)
        return [o[0].text for o in outs]

    report = OrbitReport()
    orbits, counts = llm_orbits(train, generate_fn, n, args.task, min_ratio=args.min_ratio,
                                max_ratio=args.max_ratio, batch_size=args.batch_size or None,
                                report=report)
    write_parquet(orbits, args.out)
    write_parquet(counts, args.report)
    log.info("%d orbits from %s, %d members kept, %d paraphrases rejected %s", report.n_questions,
             args.model, report.n_members, sum(report.rejected.values()), dict(report.rejected))
    return 0
