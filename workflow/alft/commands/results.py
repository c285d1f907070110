"""``alft results``: gather evaluation summaries into the results table (Parquet + Markdown)."""

from __future__ import annotations

import argparse
import re
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
    p.add_argument("--plot", type=Path, default=None,
                   help="PNG: greedy test accuracy vs round, one line per method")
    p.add_argument("--summary", type=Path, default=None,
                   help="Parquet (+ .md next to it): mean, sd, min, max and n over seeds per method and "
                        "round, with the gain over the base model")
    p.set_defaults(func=run)

    c = sub.add_parser("collect", help="concatenate one-row statistics tables into one table")
    c.add_argument("--inputs", type=Path, nargs="*", default=[])
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--markdown", type=Path, required=True)
    c.set_defaults(func=run_collect)


def run(args: argparse.Namespace) -> int:
    frames = [read_parquet(p, SUMMARY_COLUMNS) for p in args.summaries]
    table = pd.concat(frames, ignore_index=True)
    extra = [c for c in table.columns if c not in SUMMARY_COLUMNS]  # e.g. accuracy_strict
    table = replicates(table[SUMMARY_COLUMNS + extra])
    table = table.sort_values(["method", "round", "seed"], key=_method_order).reset_index(drop=True)
    write_table(table, args.out, args.markdown, args.csv)
    if args.plot is not None:
        plot_accuracy(table, args.plot)
    print(table.to_string(index=False))
    if args.summary is not None:
        summary = seed_summary(table)
        write_table(summary, args.summary, args.summary.with_suffix(".md"))
        print(summary.to_string(index=False))
    return 0


REPLICATE = re.compile(r"^(?P<method>[a-z][a-z0-9_]*?)_s(?P<seed>\d+)$")


def replicates(table: pd.DataFrame) -> pd.DataFrame:
    """Methods named ``<method>_s<k>`` are seed ``k`` of ``<method>``: split the name into both columns."""
    out = table.copy()
    for i, name in out["method"].items():
        m = REPLICATE.match(str(name))
        if m:
            out.at[i, "method"] = m["method"]
            out.at[i, "seed"] = int(m["seed"])
    return out


def seed_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy over seeds per method and round, and its gain over the base model (same seed's base
    if the base was replicated, else the single base)."""
    base = table[table["method"] == "base"].set_index("seed")["accuracy"]
    rows = table.copy()
    rows["gain"] = [a - (base[s] if s in base.index else base.mean()) for a, s in zip(rows["accuracy"],
                                                                                   rows["seed"])]
    g = rows.groupby(["method", "round"], sort=False)
    out = g["accuracy"].agg(["mean", "std", "min", "max", "count"]).join(g["gain"].mean().rename("gain_mean"))
    out = out.reset_index().rename(columns={"mean": "accuracy_mean", "std": "accuracy_sd",
                                            "min": "accuracy_min", "max": "accuracy_max", "count": "n_seeds"})
    out["accuracy_sd"] = out["accuracy_sd"].fillna(0.0)
    return out.sort_values(["method", "round"], key=_method_order).reset_index(drop=True)


def run_collect(args: argparse.Namespace) -> int:
    frames = [read_parquet(p) for p in args.inputs]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    write_table(table, args.out, args.markdown)
    if len(table):
        print(table.to_string(index=False))
    return 0


def _method_order(col: pd.Series) -> pd.Series:
    if col.name == "method":  # the base model first
        return col.map(lambda m: (m != "base", m))
    return col


def plot_accuracy(table: pd.DataFrame, path: Path) -> None:
    """Accuracy vs round per method (mean over seeds, min–max band); the base model is round 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alft.io import atomic_path

    base = table[table["method"] == "base"]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    methods = [m for m in table["method"].unique() if m != "base"] or ["base"]
    for method in methods:
        rows = pd.concat([base.assign(method=method), table[table["method"] == method]])
        g = rows.groupby("round")["accuracy"].agg(["mean", "min", "max"]).sort_index()
        (line,) = ax.plot(g.index, 100 * g["mean"], marker="o", label=method)
        if (g["max"] > g["min"]).any():
            ax.fill_between(g.index, 100 * g["min"], 100 * g["max"], alpha=0.2, color=line.get_color())
    ax.set_xlabel("round")
    ax.set_ylabel("greedy test accuracy (%)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
