"""``alft results``: gather evaluation summaries into the results table (Parquet + Markdown)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from alft.commands.evaluate import SUMMARY_COLUMNS
from alft.io import read_parquet, write_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("results", help="collect evaluation summaries into one table")
    p.add_argument("--summaries", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True, help="results.parquet")
    p.add_argument("--markdown", type=Path, required=True)
    p.add_argument("--csv", type=Path, default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    frames = [read_parquet(p, SUMMARY_COLUMNS) for p in args.summaries]
    table = pd.concat(frames, ignore_index=True)[SUMMARY_COLUMNS]
    table = table.sort_values(["method", "round", "seed"], key=_method_order).reset_index(drop=True)
    write_table(table, args.out, args.markdown, args.csv)
    print(table.to_string(index=False))
    return 0


def _method_order(col: pd.Series) -> pd.Series:
    if col.name == "method":  # the base model first
        return col.map(lambda m: (m != "base", m))
    return col
