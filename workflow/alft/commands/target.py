"""``alft target``: the target step q*_r of a round -> targets.parquet + a statistics row."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from alft.commands._common import stage_logger
from alft.errors import AlftError, ConfigError, DataError
from alft.io import read_parquet, write_parquet
from alft.targets import (CONSENSUS, ESTIMATORS, GM_SMOOTHING, GOLD_COLUMN, TargetConfig,
                          compute_targets, gold_aliases, gold_answers, target_stats)


class CollapseError(AlftError):
    """The collapse guard fired (reported by the CLI without a traceback, exit status 2)."""


CLI_STRATEGIES = ("coherence", "majority", "rlvr", "diversity", "pairwise", "safety")
# "reward": library only. "safety": the samples are the scored samples of `alft safety-dual`
# (a `cost` column) and --safety-state its dual state of the same round.


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("target", help="target step: estimate q* and GRPO rewards from a round's samples",
                       description="Build the round's target table (one row per group and answer: "
                                   "count, q, reward) and a one-row statistics table.")
    p.add_argument("--samples", type=Path, required=True, help="samples.parquet of round r")
    p.add_argument("--orbits", type=Path, required=True,
                   help="orbits.parquet (gold 'answer' read only by rlvr and for monitoring)")
    p.add_argument("--strategy", required=True, choices=CLI_STRATEGIES)
    p.add_argument("--consensus", default="mode", choices=CONSENSUS,
                   help="coherence/majority consensus: global mode, arithmetic or geometric mean")
    p.add_argument("--estimator", default="plugin", choices=ESTIMATORS,
                   help="estimator of β log q* from counts (am/gm/diversity)")
    p.add_argument("--beta", type=float, default=1.0, help="the paper's β (not TRL's KL beta)")
    p.add_argument("--aqp-eps", type=float, default=None, help="bias budget of the aqp estimator")
    p.add_argument("--gm-smoothing", type=float, default=GM_SMOOTHING,
                   help="additive count smoothing α of the reported q_GM")
    g = p.add_argument_group("collapse guard (label-free signals; 'none' turns a check off)")
    g.add_argument("--max-mode-share", type=_optional_float, default=None,
                   help="collapse if the mean per-prompt mode share exceeds this")
    g.add_argument("--max-no-answer-share", type=_optional_float, default=None,
                   help="collapse if the share of samples without an extractable answer exceeds this")
    g.add_argument("--on-collapse", choices=["error", "warn"], default="error",
                   help="error: exit 2 without writing the targets, so no further round runs "
                        "(default); warn: log it, flag the statistics row and go on")
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--method", required=True, help="method name recorded in the statistics")
    p.add_argument("--task", default="builtin", choices=["builtin", "gsm8k", "triviaqa", "mathqa"])
    p.add_argument("--embedder", default=None,
                   help="pairwise: sentence-transformers model name or path (default: the packaged "
                        "all-MiniLM-L6-v2, offline)")
    p.add_argument("--embed-device", default="cpu", help="pairwise: device of the embedder")
    p.add_argument("--safety-state", type=Path, default=None,
                   help="safety: dual state JSON of this round (alft safety-dual), holding lambda")
    p.add_argument("--safety-reward", choices=["tilt", "projection"], default="tilt",
                   help="safety: 'tilt' reward -beta*lambda*c(z) (default), or 'projection' "
                        "beta*(log nu_hat(z) - lambda*c(z)) with --estimator for log nu_hat")
    p.add_argument("--out", type=Path, required=True, help="targets.parquet")
    p.add_argument("--stats", type=Path, required=True, help="one-row statistics Parquet")
    p.set_defaults(func=run)


def _optional_float(text: str) -> float | None:
    if text.strip().lower() in ("", "none", "null", "off"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


def collapse_reasons(stats: dict, max_mode_share: float | None,
                     max_no_answer_share: float | None) -> list[str]:
    """Which guard thresholds the round's statistics exceed (empty: no collapse)."""
    out = []
    if max_mode_share is not None and stats["mode_share"] > max_mode_share:
        out.append(f"mean per-prompt mode share {stats['mode_share']:.3f} > {max_mode_share:g} "
                   f"(answer entropy {stats['answer_entropy']:.3f} nats)")
    if max_no_answer_share is not None and stats["no_answer_share"] > max_no_answer_share:
        out.append(f"share of samples without an extractable answer {stats['no_answer_share']:.3f} "
                   f"> {max_no_answer_share:g}")
    return out


def run(args: argparse.Namespace) -> int:
    log = stage_logger("target")
    t0 = time.perf_counter()
    if args.round < 0:
        raise ConfigError(f"--round must be >= 0, got {args.round}")
    if args.strategy == "pairwise":
        return _run_pairwise(args, log, t0)
    if args.strategy == "safety":
        return _run_safety(args, log, t0)
    if args.safety_state is not None:
        raise ConfigError(f"--safety-state is for --strategy safety, not {args.strategy!r}")
    cfg = TargetConfig(strategy=args.strategy, consensus=args.consensus, estimator=args.estimator,
                       beta=args.beta, aqp_eps=args.aqp_eps, gm_smoothing=args.gm_smoothing,
                       task=args.task)
    samples = read_parquet(args.samples, {"orbit_id": "int", "member": "int", "answer": "str"})
    orbits = read_parquet(args.orbits, {"orbit_id": "int", "member": "int"})
    gold = gold_answers(orbits, str(args.orbits))
    if cfg.strategy == "rlvr" and gold is None:
        raise ConfigError(f"{args.orbits}: strategy 'rlvr' needs gold labels in column "
                          f"{GOLD_COLUMN!r}, which is absent or all null")
    unknown = sorted(set(samples["orbit_id"]) - set(orbits["orbit_id"]))
    if unknown:
        log.warning("%d orbit id(s) in %s are not in %s (first: %s)", len(unknown), args.samples,
                    args.orbits, unknown[0])
    try:
        rlvr = cfg.strategy == "rlvr"
        targets, report = compute_targets(samples, cfg, gold if rlvr else None, source=str(args.samples),
                                          aliases=gold_aliases(orbits) if rlvr else None, logger=log)
    except ConfigError as err:
        if str(args.samples) in str(err):
            raise
        raise ConfigError(f"{args.samples}: {err}") from err
    stats = target_stats(samples, targets, report, gold, args.task)
    row = {"round": args.round, "method": args.method, "strategy": cfg.strategy,
           "consensus": cfg.consensus if cfg.strategy in ("coherence", "majority") else None,
           "estimator": cfg.estimator if cfg.uses_estimator else None,
           "beta": cfg.beta, **stats}
    write_outputs(args, targets, row, stats, log)
    log.info("%s/%s round %d: %d groups (%d skipped), mode share %.3f, entropy %.3f nats, "
             "no answer %.1f%%, consensus accuracy %s; %.1fs", args.method, cfg.strategy, args.round,
             stats["n_groups"], stats["groups_skipped"], stats["mode_share"], stats["answer_entropy"],
             100 * stats["no_answer_share"],
             "n/a" if stats["consensus_accuracy"] != stats["consensus_accuracy"]
             else f"{stats['consensus_accuracy']:.3f}", time.perf_counter() - t0)
    return 0



def write_outputs(args: argparse.Namespace, targets: pd.DataFrame, row: dict, stats: dict,
                  log) -> None:
    """Apply the collapse guard to the round's statistics, then write both tables.

    With ``--on-collapse error`` a violated threshold raises :class:`CollapseError`
    before anything is written, so the method's later rounds do not run.
    """
    reasons = collapse_reasons(stats, args.max_mode_share, args.max_no_answer_share)
    row["collapsed"] = bool(reasons)
    row["collapse_reason"] = "; ".join(reasons) if reasons else None
    if reasons:
        msg = (f"collapse guard: method {args.method!r} round {args.round} ({args.samples}): "
               + "; ".join(reasons))
        if args.on_collapse == "error":
            raise CollapseError(msg + ". Stopping before further rounds (thresholds: "
                                "--max-mode-share / --max-no-answer-share; --on-collapse warn "
                                "continues).")
        log.warning("%s; continuing (--on-collapse warn)", msg)
    write_parquet(targets, args.out)
    write_parquet(pd.DataFrame([row]), args.stats)

def _run_pairwise(args: argparse.Namespace, log, t0: float) -> int:
    """Pairwise-GRPO target table (:func:`alft.pairwise.pairwise_targets`) + statistics row."""
    from alft.pairwise import pairwise_targets, sentence_embedder

    samples = read_parquet(args.samples, {"orbit_id": "int", "member": "int", "answer": "str"})
    orbits = read_parquet(args.orbits, {"orbit_id": "int", "member": "int"})
    gold = gold_answers(orbits, str(args.orbits))
    embed_fn = sentence_embedder(args.embedder, device=args.embed_device)
    targets = pairwise_targets(samples, embed_fn, beta=args.beta, source=str(args.samples))
    stats = target_stats(samples, targets, None, gold, args.task)
    row = {"round": args.round, "method": args.method, "strategy": "pairwise", "consensus": None,
           "estimator": None, "beta": args.beta, **stats}
    write_outputs(args, targets, row, stats, log)
    log.info("%s/pairwise round %d: %d orbits, mode share %.3f, no answer %.1f%%; %.1fs",
             args.method, args.round, stats["n_orbits"], stats["mode_share"],
             100 * stats["no_answer_share"], time.perf_counter() - t0)
    return 0


def _run_safety(args: argparse.Namespace, log, t0: float) -> int:
    """Safety-GRPO target (slides: q* = Proj_C(ν_π), Lagrange multiplier λ as penalty weight):
    q ∝ ν̂ e^{−λc} at the round's λ (:func:`alft.safety.safety_targets`) + statistics row."""
    from alft.commands.safety import read_dual_state
    from alft.safety import PrimalDual, safety_targets

    if args.safety_state is None:
        raise ConfigError("--strategy safety needs --safety-state, the dual state of this round "
                          "written by `alft safety-dual`")
    state = read_dual_state(args.safety_state, args.method, args.round)
    dual = PrimalDual(tau=state["tau"], eta=state["eta"], lam=state["lam"],
                      lam_max=state["lam_max"])
    samples = read_parquet(args.samples, {"orbit_id": "int", "member": "int", "answer": "str",
                                          "cost": "float"})
    orbits = read_parquet(args.orbits, {"orbit_id": "int", "member": "int"})
    gold = gold_answers(orbits, str(args.orbits))
    if args.safety_reward == "projection" and args.estimator == "euclidean":
        raise ConfigError("--safety-reward projection estimates beta*log nu_hat: choose --estimator "
                          "plugin, taylor, minimax_lp or aqp (not euclidean)")
    try:
        targets = safety_targets(samples, dual, beta=args.beta, reward=args.safety_reward,
                                 estimator=args.estimator, aqp_eps=args.aqp_eps)
    except (ConfigError, DataError) as err:
        raise type(err)(f"{args.samples}: {err}") from err
    stats = target_stats(samples, targets, None, gold, args.task)
    row = {"round": args.round, "method": args.method, "strategy": "safety", "consensus": None,
           "estimator": args.estimator if args.safety_reward == "projection" else None,
           "beta": args.beta, **stats, "tau": state["tau"], "lambda": state["lam"],
           "constraint_value": state["measured"]}
    write_outputs(args, targets, row, stats, log)
    log.info("%s/safety round %d: lambda %.4g (E[c] %.4f, tau %.4g), %d groups, mode share %.3f, "
             "no answer %.1f%%; %.1fs", args.method, args.round, state["lam"], state["measured"],
             state["tau"], stats["n_groups"], stats["mode_share"], 100 * stats["no_answer_share"],
             time.perf_counter() - t0)
    return 0
