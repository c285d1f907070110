"""``alft data``: build the task's splits as Parquet (``id, question, answer`` + task columns)."""

from __future__ import annotations

import argparse
from pathlib import Path

from alft.commands._common import stage_logger
from alft.io import write_parquet
from alft.tasks import builtin


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="generate the builtin task's splits")
    p.add_argument("--task", default="builtin", choices=["builtin"])
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--n-pretrain", type=int, required=True)
    p.add_argument("--n-train", type=int, required=True)
    p.add_argument("--n-val", type=int, required=True)
    p.add_argument("--n-test", type=int, required=True)
    p.add_argument("--mix", type=float, nargs="+", default=list(builtin.PRETRAIN_MIX),
                   help="template weights in the pretraining corpus")
    p.add_argument("--out-dir", type=Path, required=True,
                   help="writes pretrain/train/val/test.parquet here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    log = stage_logger("data")
    splits = builtin.make_splits(args.seed, args.n_pretrain, args.n_train, args.n_val,
                                 args.n_test, tuple(args.mix))
    for name, df in splits.items():
        write_parquet(df, args.out_dir / f"{name}.parquet")
        counts = df["template"].value_counts().sort_index().to_dict()
        log.info("%s: %d questions, per template %s", name, len(df), counts)
    return 0
