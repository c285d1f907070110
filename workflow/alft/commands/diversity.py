"""``alft diversity-metrics`` and ``alft diversity-table``: the Diversity-GRPO row as rounds.

Slides, "Instantiations" (Diversity: R(ν) = −H(ν), q* ∝ 1/ν_π) and Part II (the plug-in
log is most biased for rare answers, exactly the ones diversity rewards). Per method and
round r, ``diversity-metrics`` summarises the samples of π_r
(:func:`alft.diversity.round_metrics`: answer entropy, distinct answers per prompt,
pass@k, sample accuracy, no-answer share) with the greedy test accuracy of π_r from its
evaluation summary; ``diversity-table`` gathers every round into one table (Parquet +
Markdown + CSV) and a figure comparing the methods (plug-in vs minimax-LP estimator)
across rounds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from alft.commands._common import stage_logger, publish_per_round
from alft.errors import ConfigError, DataError
from alft.io import atomic_path, read_parquet, write_parquet

TASKS = ["builtin", "gsm8k", "triviaqa", "mathqa"]
BASE_COLUMNS = ["method", "estimator", "round", "n_prompts", "n_samples", "entropy", "distinct",
                "no_answer_share", "accuracy", "test_accuracy"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diversity-metrics", help="answer entropy, distinct answers, pass@k, accuracy of pi_r",
        description="One row of diversity metrics from the samples of pi_r (means over prompts).")
    p.add_argument("--samples", type=Path, required=True, help="samples.parquet of pi_r")
    p.add_argument("--orbits", type=Path, required=True,
                   help="orbits.parquet (gold 'answer' for accuracy and pass@k)")
    p.add_argument("--task", default="builtin", choices=TASKS)
    p.add_argument("--k", type=int, nargs="+", default=[1],
                   help="pass@k values (config key diversity.pass_k; each at most sampling.k)")
    p.add_argument("--summary", type=Path, default=None,
                   help="evaluation summary of pi_r (alft evaluate): its greedy test accuracy")
    p.add_argument("--method", required=True)
    p.add_argument("--estimator", default=None, help="the method's estimator (a label in the table)")
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="one-row metrics Parquet")
    p.set_defaults(func=run_metrics)

    t = sub.add_parser("diversity-table", help="Diversity-GRPO table and comparison figure")
    t.add_argument("--inputs", type=Path, nargs="+", required=True,
                   help="metrics rows (diversity-metrics)")
    t.add_argument("--out", type=Path, required=True, help="diversity.parquet")
    t.add_argument("--markdown", type=Path, required=True)
    t.add_argument("--csv", type=Path, default=None)
    t.add_argument("--plot", type=Path, default=None,
                   help="PNG: entropy, distinct answers, pass@k and accuracy vs round per method")
    t.set_defaults(func=run_table)


def pass_columns(columns: list[str]) -> list[str]:
    """The pass@k columns of a table, in increasing k."""
    return sorted((c for c in columns if c.startswith("pass@")), key=lambda c: int(c[5:]))


def run_metrics(args: argparse.Namespace) -> int:
    from alft.diversity import round_metrics
    from alft.targets import gold_answers

    log = stage_logger("diversity")
    t0 = time.perf_counter()
    if args.round < 0:
        raise ConfigError(f"--round must be >= 0, got {args.round}")
    bad = [k for k in args.k if k < 1]
    if bad:
        raise ConfigError(f"config key diversity.pass_k: k must be >= 1, got {bad[0]}")
    samples = read_parquet(args.samples, {"orbit_id": "int", "member": "int", "answer": "str"})
    if len(samples) == 0:
        raise DataError(f"{args.samples}: no samples")
    n_min = int(samples.groupby(["orbit_id", "member"]).size().min())
    too_big = [k for k in args.k if k > n_min]
    if too_big:
        raise ConfigError(f"config key diversity.pass_k: k={max(too_big)} exceeds the {n_min} "
                          f"samples per prompt in {args.samples} (keep every k <= sampling.k)")
    orbits = read_parquet(args.orbits, {"orbit_id": "int", "member": "int"})
    gold = gold_answers(orbits, str(args.orbits))
    metrics = round_metrics(samples, gold, args.k, args.task, source=str(args.samples))
    test_acc = float("nan")
    if args.summary is not None:
        summary = read_parquet(args.summary, {"accuracy": "float"})
        if len(summary) != 1:
            raise DataError(f"{args.summary}: expected one summary row, found {len(summary)}")
        test_acc = float(summary["accuracy"].iloc[0])
    row = {"method": args.method, "estimator": args.estimator, "round": args.round,
           **{k: metrics[k] for k in ("n_prompts", "n_samples", "entropy", "distinct",
                                      "no_answer_share", "accuracy")},
           "test_accuracy": test_acc,
           **{c: metrics[c] for c in pass_columns(list(metrics))}}
    write_parquet(pd.DataFrame([row]), args.out)
    log.info("%s round %d: entropy %.4f nats, %.3f distinct answers, accuracy %.4f, %s; %.1fs",
             args.method, args.round, metrics["entropy"], metrics["distinct"], metrics["accuracy"],
             ", ".join(f"{c} {metrics[c]:.4f}" for c in pass_columns(list(metrics))),
             time.perf_counter() - t0)
    return 0


def run_table(args: argparse.Namespace) -> int:
    frames = [read_parquet(p, BASE_COLUMNS) for p in args.inputs]
    passes = [pass_columns(list(f.columns)) for f in frames]
    if any(p != passes[0] for p in passes):
        i = next(i for i, p in enumerate(passes) if p != passes[0])
        raise DataError(f"{args.inputs[i]}: pass@k columns {passes[i]} differ from "
                        f"{args.inputs[0]}'s {passes[0]}")
    table = pd.concat(frames, ignore_index=True)[BASE_COLUMNS + passes[0]]
    publish_per_round(table, "diversity metrics", args, plot_diversity)
    return 0


def plot_diversity(table: pd.DataFrame, path: Path) -> None:
    """2×2 panels vs round, one line per method: answer entropy, distinct answers per
    prompt, pass@k (largest k), accuracy (samples solid, greedy test dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    passes = pass_columns(list(table.columns))
    top = passes[-1] if passes else None
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5), dpi=120)
    panels = [("entropy", "answer entropy (nats)", 1), ("distinct", "distinct answers / prompt", 1),
              (top, f"{top} (%)" if top else "pass@k", 100), ("accuracy", "accuracy (%)", 100)]
    for method, sub in table.groupby("method", sort=True):
        sub = sub.sort_values("round")
        est = sub["estimator"].dropna()
        label = f"{method} ({est.iloc[0]})" if len(est) else method
        for ax, (col, _, scale) in zip(axes.flat, panels):
            if col is None:
                continue
            (line,) = ax.plot(sub["round"], scale * sub[col], marker="o", label=label)
            if col == "accuracy" and sub["test_accuracy"].notna().any():
                ax.plot(sub["round"], 100 * sub["test_accuracy"], marker="s", ls="--",
                        color=line.get_color(), label=f"{label}, greedy test")
    for ax, (_, ylabel, _) in zip(axes.flat, panels):
        ax.set_xlabel("round (policy pi_r)")
        ax.set_ylabel(ylabel)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Diversity-GRPO: reward -log nu estimated by each method's estimator")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
