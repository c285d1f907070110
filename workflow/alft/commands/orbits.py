"""``alft orbits``: paraphrase orbits of the training questions -> orbits.parquet."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from alft.commands._common import stage_logger
from alft.data import load_split
from alft.io import write_parquet
from alft.orbits import OrbitReport, builtin_orbits
from alft.tasks import builtin


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("orbits", help="build paraphrase orbits of the training split")
    p.add_argument("--split", type=Path, required=True, help="train.parquet")
    p.add_argument("--task", default="builtin", choices=["builtin"])
    p.add_argument("--size", type=int, required=True, help="members per orbit, original included")
    p.add_argument("--max-orbits", type=int, default=0, help="use the first N questions (0: all)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--report", type=Path, required=True,
                   help="Parquet: kept and rejected paraphrases per reason")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    log = stage_logger("orbits")
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
