"""``alft safety-dual`` and ``alft safety-table``: the Safety-GRPO row as pipeline rounds.

Slides, "Instantiations" (Safety: R(ν) = 𝕀_C(ν), q* = Proj_C(ν_π)) and "Safety Extension:
Safety-GRPO" (Lagrange multipliers as dynamic penalty weights). Per method and round r:

* ``safety-dual`` scores the samples of π_r with the configured cost scorer c ∈ [0, 1],
  measures the constraint value Ê_r[c] and takes one projected dual-ascent step
  λ_r = clip(λ_{r-1} + η (Ê_r[c] − τ), 0, λ_max) (:meth:`alft.safety.PrimalDual.update`;
  round 0 starts from ``--lambda0``). It writes the scored samples, the dual state of
  round r (a small JSON file read by round r+1's ``safety-dual`` and by round r's
  ``alft target --strategy safety``) and one row of safety metrics
  (:func:`alft.safety.safety_metrics`).
* ``safety-table`` gathers the rows of every round into the Safety-GRPO table
  (Parquet + Markdown + CSV) and a figure of Ê[c] against τ and λ per round.

The harmful/benign prompt split is for reporting only. Builtin task: a STAND-IN where a
problem is "harmful" when its gold answer is in the unsafe answer set (default: a
multiple of 7, :func:`alft.safety.builtin_unsafe`). Real tasks: ``--harmful-prompts``, a
local file of question ids; without it every prompt counts as benign.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd

from alft.commands._common import stage_logger, publish_per_round
from alft.errors import ConfigError, DataError
from alft.io import atomic_path, read_parquet, write_json, write_parquet

TASKS = ["builtin", "gsm8k", "triviaqa", "mathqa"]
STATE_KEYS = ("method", "round", "tau", "eta", "lam", "lam_prev", "measured", "lam_max", "history")
METRIC_COLUMNS = [
    "method", "round", "scorer", "tau", "eta", "lambda_prev", "lambda", "constraint_value",
    "feasible", "harmful_cost", "harmful_unsafe_share", "harmful_accuracy", "benign_cost",
    "benign_non_refusal", "benign_accuracy", "n_samples", "n_prompts", "n_harmful_prompts",
    "n_benign_prompts", "split",
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "safety-dual", help="Safety-GRPO dual step: score round r's samples, update lambda, metrics",
        description="Score the samples of pi_r with a cost scorer, measure the constraint value "
                    "E[c], update the Lagrange multiplier lambda by projected dual ascent, and "
                    "write the scored samples, the dual state of round r and a metrics row.")
    p.add_argument("--samples", type=Path, required=True, help="samples.parquet of pi_r")
    p.add_argument("--orbits", type=Path, required=True,
                   help="orbits.parquet (gold 'answer' read for the benign/harmful metrics only)")
    p.add_argument("--task", default="builtin", choices=TASKS)
    p.add_argument("--scorer", default="answer_set",
                   help="cost scorer: answer_set (builtin stand-in), profanity, detoxify, or an "
                        "entry point 'module:attr' (config key safety.scorer)")
    p.add_argument("--scorer-options", default="{}",
                   help="JSON object of scorer keyword arguments (config key safety.scorer_options)")
    p.add_argument("--tau", type=float, required=True, help="budget tau of E[c] <= tau (safety.tau)")
    p.add_argument("--dual-lr", type=float, default=2.0, help="dual step eta (safety.dual_lr)")
    p.add_argument("--lambda0", type=float, default=0.0, help="lambda before round 0 (safety.lambda0)")
    p.add_argument("--lambda-max", type=float, default=1e6, help="cap of lambda (safety.lambda_max)")
    p.add_argument("--state-in", type=Path, default=None,
                   help="dual state JSON of round r-1 (required for r >= 1, absent at r = 0)")
    p.add_argument("--harmful-prompts", type=Path, default=None,
                   help="file of harmful question ids (.txt one per line, or .csv/.parquet/.jsonl "
                        "with a 'question_id' column; config key safety.harmful_prompts)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="a sample with cost >= this counts as unsafe in harmful_unsafe_share")
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--scored", type=Path, required=True, help="out: scored samples Parquet (cost)")
    p.add_argument("--state", type=Path, required=True, help="out: dual state JSON of round r")
    p.add_argument("--metrics", type=Path, required=True, help="out: one-row metrics Parquet")
    p.set_defaults(func=run_dual)

    t = sub.add_parser("safety-table", help="Safety-GRPO table (and figure) from per-round metrics")
    t.add_argument("--inputs", type=Path, nargs="+", required=True, help="metrics rows (safety-dual)")
    t.add_argument("--out", type=Path, required=True, help="safety.parquet")
    t.add_argument("--markdown", type=Path, required=True)
    t.add_argument("--csv", type=Path, default=None)
    t.add_argument("--plot", type=Path, default=None,
                   help="PNG: constraint value vs tau, lambda and benign accuracy per round")
    t.set_defaults(func=run_table)


# ------------------------------------------------------------------ dual state
def dual_state_record(state: Any, method: str, round_: int, lam_prev: float,
                      measured: float) -> dict[str, Any]:
    """The JSON record of round r's dual state (:class:`alft.safety.PrimalDual` + round data)."""
    d = state.to_dict()
    return {"method": method, "round": int(round_), "tau": d["tau"], "eta": d["eta"],
            "lam": d["lam"], "lam_prev": float(lam_prev), "measured": float(measured),
            "lam_max": d["lam_max"], "history": d["history"]}


def read_dual_state(path: Path, method: str | None = None, round_: int | None = None,
                    tau: float | None = None, eta: float | None = None) -> dict[str, Any]:
    """Read and check a dual state file; every error names the file and the key at fault.

    ``round_``/``method``: the expected values; ``tau``/``eta``: the current budget and
    step, which must equal the state's (else the config changed mid-run).
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: safety dual state not found")
    try:
        d = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{p}: not a JSON safety dual state ({err})") from err
    if not isinstance(d, dict):
        raise DataError(f"{p}: a safety dual state must be a JSON object")
    missing = [k for k in STATE_KEYS if k not in d]
    if missing:
        raise DataError(f"{p}: safety dual state lacks key(s) {missing}")
    for key in ("tau", "eta", "lam", "lam_prev", "measured", "lam_max"):
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise DataError(f"{p}: key {key!r} must be a finite number, got {v!r}")
    if d["lam"] < 0:
        raise DataError(f"{p}: key 'lam' must be >= 0, got {d['lam']!r}")
    if round_ is not None and d["round"] != round_:
        raise DataError(f"{p}: key 'round' is {d['round']!r}, expected {round_}")
    if method is not None and d["method"] != method:
        raise DataError(f"{p}: key 'method' is {d['method']!r}, expected {method!r}")
    for key, cur, cfg_key in (("tau", tau, "safety.tau"), ("eta", eta, "safety.dual_lr")):
        if cur is not None and not math.isclose(d[key], cur, rel_tol=1e-12, abs_tol=1e-15):
            raise ConfigError(f"{p}: key {key!r} is {d[key]!r} but config key {cfg_key} is now "
                              f"{cur!r}; the multiplier was learned for the old value, so rerun "
                              f"the method's rounds from round 0")
    return d


def scorer_options(text: str) -> dict[str, Any]:
    """Parse ``--scorer-options`` (config key safety.scorer_options): a JSON object."""
    try:
        opts = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"config key safety.scorer_options: not valid JSON ({err})") from err
    if not isinstance(opts, dict):
        raise ConfigError(f"config key safety.scorer_options must be a mapping, got {opts!r}")
    return opts


def read_harmful_prompts(path: Path) -> set[str]:
    """Question ids of the harmful prompts from a local file (.txt, .csv, .parquet, .jsonl)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config key safety.harmful_prompts: {p} not found")
    suffix = p.suffix.lower()
    if suffix == ".txt":
        return {line.strip() for line in p.read_text().splitlines() if line.strip()}
    if suffix == ".parquet":
        df = read_parquet(p, ["question_id"])
    elif suffix == ".csv":
        df = pd.read_csv(p, dtype=str)
    elif suffix in (".jsonl", ".json"):
        df = pd.read_json(p, lines=suffix == ".jsonl", dtype=False)
    else:
        raise ConfigError(f"config key safety.harmful_prompts: {p}: unsupported file type "
                          f"{suffix!r} (use .txt, .csv, .parquet or .jsonl)")
    if "question_id" not in df.columns:
        raise DataError(f"{p}: missing column 'question_id'; found {list(df.columns)}")
    return {str(v) for v in df["question_id"].dropna()}


# --------------------------------------------------------------------- commands
def run_dual(args: argparse.Namespace) -> int:
    from alft.safety import (AnswerSetScorer, PrimalDual, harmful_orbits_from_gold,
                             load_scorer, safety_metrics)
    from alft.targets import gold_answers

    log = stage_logger("safety")
    t0 = time.perf_counter()
    if args.round < 0:
        raise ConfigError(f"--round must be >= 0, got {args.round}")
    if not (0.0 <= args.tau <= 1.0):
        raise ConfigError(f"config key safety.tau must lie in [0, 1] (costs do), got {args.tau!r}")
    for value, key, ok in ((args.dual_lr, "safety.dual_lr", args.dual_lr > 0),
                           (args.lambda0, "safety.lambda0", args.lambda0 >= 0),
                           (args.lambda_max, "safety.lambda_max", args.lambda_max > 0)):
        if not (ok and math.isfinite(value)):
            raise ConfigError(f"config key {key} must be a finite number "
                              f"{'>= 0' if key.endswith('lambda0') else '> 0'}, got {value!r}")
    if args.round == 0 and args.state_in is not None:
        raise ConfigError("round 0 starts from --lambda0 (config key safety.lambda0); "
                          f"--state-in {args.state_in} is for rounds >= 1")
    if args.round > 0 and args.state_in is None:
        raise ConfigError(f"round {args.round} needs --state-in, the dual state of round "
                          f"{args.round - 1}")
    if args.state_in is not None:
        prev = read_dual_state(args.state_in, args.method, args.round - 1, args.tau, args.dual_lr)
        state = PrimalDual(tau=args.tau, eta=args.dual_lr, lam=prev["lam"],
                           lam_max=args.lambda_max, history=list(prev["history"]))
    else:
        state = PrimalDual(tau=args.tau, eta=args.dual_lr, lam=args.lambda0,
                           lam_max=args.lambda_max)
    lam_prev = float(state.lam)

    samples = read_parquet(args.samples, {"orbit_id": "int", "member": "int", "answer": "str",
                                          "completion": "str"})
    if len(samples) == 0:
        raise DataError(f"{args.samples}: no samples")
    opts = scorer_options(args.scorer_options)
    if args.scorer == "answer_set":
        opts.setdefault("task", args.task)
    scorer = load_scorer(args.scorer, **opts)
    cost = scorer(samples["completion"].tolist())
    keep = [c for c in ("orbit_id", "member", "sample_idx", "answer") if c in samples.columns]
    scored = samples[keep].copy()
    scored["cost"] = cost

    orbits = read_parquet(args.orbits, {"orbit_id": "int", "member": "int"})
    gold = gold_answers(orbits, str(args.orbits))
    if args.harmful_prompts is not None:
        ids = read_harmful_prompts(args.harmful_prompts)
        if "question_id" not in orbits.columns:
            raise DataError(f"{args.orbits}: missing column 'question_id' (needed to match "
                            f"{args.harmful_prompts})")
        qid = orbits["question_id"].astype(str)
        harmful: set[int] | None = set(orbits.loc[qid.isin(ids), "orbit_id"].astype(int))
        split = f"file: {args.harmful_prompts}"
        if not harmful:
            log.warning("no question id of %s occurs in %s: no harmful prompts",
                        args.harmful_prompts, args.orbits)
    elif args.task == "builtin" and gold:
        inner = scorer.scorer
        unsafe = ((lambda z: bool(inner.answer_cost([z])[0]))
                  if isinstance(inner, AnswerSetScorer) else None)
        harmful = harmful_orbits_from_gold(gold, unsafe)
        split = "builtin stand-in: gold answer in the unsafe set"
    else:
        harmful, split = None, "none (all prompts benign)"

    metrics = safety_metrics(scored, harmful, gold, args.task, args.threshold)
    measured = metrics["constraint_value"]
    state.update(measured)
    lam = float(state.lam)
    row = {"method": args.method, "round": args.round, "scorer": args.scorer, "tau": args.tau,
           "eta": args.dual_lr, "lambda_prev": lam_prev, "lambda": lam,
           "constraint_value": measured, "feasible": bool(measured <= args.tau),
           **{k: v for k, v in metrics.items() if k != "constraint_value"}, "split": split}
    write_parquet(scored, args.scored)
    write_json(dual_state_record(state, args.method, args.round, lam_prev, measured), args.state)
    write_parquet(pd.DataFrame([row], columns=METRIC_COLUMNS), args.metrics)
    log.info("%s round %d: E[c] = %.4f (tau %.4g) -> lambda %.4g -> %.4g; harmful cost %.4f, "
             "benign accuracy %.4f, benign non-refusal %.4f; %.1fs", args.method, args.round,
             measured, args.tau, lam_prev, lam, metrics["harmful_cost"],
             metrics["benign_accuracy"], metrics["benign_non_refusal"], time.perf_counter() - t0)
    return 0


def run_table(args: argparse.Namespace) -> int:
    frames = [read_parquet(p, METRIC_COLUMNS) for p in args.inputs]
    table = pd.concat(frames, ignore_index=True)[METRIC_COLUMNS]
    publish_per_round(table, "safety metrics", args, plot_safety)
    return 0


def plot_safety(table: pd.DataFrame, path: Path) -> None:
    """Three panels per method: Ê[c] and harmful cost vs τ; λ; benign accuracy/non-refusal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), dpi=120)
    for method, sub in table.groupby("method", sort=True):
        sub = sub.sort_values("round")
        (line,) = axes[0].plot(sub["round"], sub["constraint_value"], marker="o",
                               label=f"{method}: E[c], all prompts")
        if sub["harmful_cost"].notna().any():
            axes[0].plot(sub["round"], sub["harmful_cost"], marker="s", ls="--",
                         color=line.get_color(), label=f"{method}: harmful cost")
        axes[0].axhline(float(sub["tau"].iloc[0]), color=line.get_color(), ls=":", lw=1,
                        label=f"{method}: tau")
        axes[1].plot(sub["round"], sub["lambda"], marker="o", label=method)
        axes[2].plot(sub["round"], 100 * sub["benign_accuracy"], marker="o",
                     label=f"{method}: benign accuracy")
        axes[2].plot(sub["round"], 100 * sub["benign_non_refusal"], marker="s", ls="--",
                     color=axes[2].lines[-1].get_color(), label=f"{method}: benign non-refusal")
    axes[0].set_ylabel("cost")
    axes[1].set_ylabel("lambda after the round's dual step")
    axes[2].set_ylabel("%")
    for ax in axes:
        ax.set_xlabel("round (policy pi_r)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
