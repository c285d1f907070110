"""``alft data``: build the task's splits as Parquet (``id, question, answer`` + task columns).

builtin: generated (pretrain/train/val/test.parquet). gsm8k / triviaqa / mathqa:
loaded through :func:`alft.tasks.loaders.load_task` from the hub (``--source hub``)
or a local .parquet/.jsonl/.json/.csv file (``--source PATH``; a ``{split}`` in the
path is replaced by the split name), written as train/val/test.parquet. The
validation split is carved from the training split with ``--seed``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from alft.commands._common import stage_logger
from alft.errors import ConfigError
from alft.io import write_parquet
from alft.tasks import builtin

TASKS = ("builtin", "gsm8k", "triviaqa", "mathqa")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="build the task's splits (builtin: generated; others: hub or file)")
    p.add_argument("--task", default="builtin", choices=TASKS)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--n-pretrain", type=int, default=None, help="builtin only")
    p.add_argument("--n-train", type=int, required=True,
                   help="training questions (real tasks: 0 = all left after the validation split)")
    p.add_argument("--n-val", type=int, required=True, help="validation questions (carved from train)")
    p.add_argument("--n-test", type=int, required=True, help="test questions (real tasks: 0 = all)")
    p.add_argument("--n-train-more", type=int, default=0,
                   help="builtin only: training questions drawn after the pretraining corpus "
                        "(more fresh orbit blocks, same base model)")
    p.add_argument("--mix", type=float, nargs="+", default=list(builtin.PRETRAIN_MIX),
                   help="builtin only: template weights in the pretraining corpus")
    r = p.add_argument_group("real tasks (gsm8k, triviaqa, mathqa)")
    r.add_argument("--source", default="hub",
                   help="'hub' or a local .parquet/.jsonl/.json/.csv file ('{split}' is replaced "
                        "by the split name)")
    r.add_argument("--columns", default=None,
                   help='JSON column mapping, e.g. \'{"question": "Problem", "answer": "correct"}\'')
    r.add_argument("--train-split", default="train")
    r.add_argument("--test-split", default="test")
    p.add_argument("--out-dir", type=Path, required=True,
                   help="writes train/val/test.parquet (builtin also pretrain.parquet) here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.task == "builtin":
        return _run_builtin(args)
    return _run_real(args)


def _run_builtin(args: argparse.Namespace) -> int:
    log = stage_logger("data")
    if args.n_pretrain is None:
        raise ConfigError("--n-pretrain is required for --task builtin")
    if args.n_train_more < 0:
        raise ConfigError(f"--n-train-more must be >= 0 (builtin.n_train_more), got {args.n_train_more}")
    splits = builtin.make_splits(args.seed, args.n_pretrain, args.n_train, args.n_val,
                                 args.n_test, tuple(args.mix), n_train_more=args.n_train_more)
    for name, df in splits.items():
        write_parquet(df, args.out_dir / f"{name}.parquet")
        counts = df["template"].value_counts().sort_index().to_dict()
        log.info("%s: %d questions, per template %s", name, len(df), counts)
    return 0


def _source_for(source: str, split: str) -> str:
    return source if source == "hub" else source.replace("{split}", split)


def parse_columns(text: str | None) -> dict[str, str] | None:
    if text is None or not text.strip():
        return None
    try:
        cols = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--columns: not valid JSON ({err}): {text!r}") from None
    if not isinstance(cols, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in cols.items()):
        raise ConfigError(f"--columns must be a JSON object of strings, got {text!r}")
    return cols or None


def _run_real(args: argparse.Namespace) -> int:
    from alft.tasks.loaders import load_task

    log = stage_logger("data")
    for flag in ("n_train", "n_val", "n_test"):
        if getattr(args, flag) < 0:
            raise ConfigError(f"--{flag.replace('_', '-')} must be >= 0, got {getattr(args, flag)}")
    if args.n_pretrain:
        log.warning("--n-pretrain is ignored for task %s (no pretraining corpus)", args.task)
    columns = parse_columns(args.columns)
    limit = args.n_train + args.n_val if args.n_train > 0 else None
    pool = load_task(args.task, _source_for(args.source, args.train_split), args.train_split,
                     columns, limit)
    test = load_task(args.task, _source_for(args.source, args.test_split), args.test_split,
                     columns, args.n_test or None)
    if len(pool) <= args.n_val:
        raise ConfigError(f"{_source_for(args.source, args.train_split)}: {len(pool)} training "
                          f"questions, not enough for --n-val {args.n_val} plus a training split")
    if len(test) == 0:
        raise ConfigError(f"{_source_for(args.source, args.test_split)}: no test questions")
    order = np.random.default_rng(args.seed).permutation(len(pool))
    val = pool.iloc[order[:args.n_val]].reset_index(drop=True)
    rest = order[args.n_val:]
    train = pool.iloc[rest[:args.n_train] if args.n_train > 0 else rest].reset_index(drop=True)
    if args.n_train > 0 and len(train) < args.n_train:
        log.warning("only %d training questions available (asked for %d)", len(train), args.n_train)
    for name, df in (("train", train), ("val", val), ("test", test)):
        write_parquet(df, args.out_dir / f"{name}.parquet")
        log.info("%s: %d questions (%s)", name, len(df),
                 _source_for(args.source, args.test_split if name == "test" else args.train_split))
    return 0
