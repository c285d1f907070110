"""``alft lp-table`` and ``alft lp-figures``: estimator tables and their bias/variance figures.

The maths is in :mod:`alft.estimators`; this module parses arguments and writes files
(atomically, through :mod:`alft.io`).

AQP budgets are given as fractions f in (0, 1] of the way from the minimax bias floor
to the Taylor estimator's worst-case bias: eps = minimax + f * (taylor - minimax), so
one list of fractions is sensible for every K (eps/minimax grows like K).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from alft import estimators as est
from alft.errors import ConfigError
from alft.io import atomic_path, write_parquet, write_table

TABLE_COLUMNS = ["method", "K", "eps", "X", "coef"]
SUMMARY_COLUMNS = ["method", "K", "eps", "eps_fraction", "max_bias", "bias_x_K1sq",
                   "max_second_moment", "max_abs_coef", "seconds"]


def _int_list(text: str) -> list[int]:
    try:
        vals = [int(v) for v in text.replace(",", " ").split()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected integers, got {text!r}") from err
    return vals


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected numbers, got {text!r}") from err


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("lp-table", help="build estimator tables (plug-in, Taylor, minimax LP, AQP)",
                              description=__doc__.splitlines()[0])
    p.add_argument("--beta", type=float, default=1.0, help="reward scale beta (default 1)")
    p.add_argument("--K", type=_int_list, default=[2, 4, 8, 16, 32],
                   help="group sizes for plugin, taylor, euclidean and minimax_lp (comma list)")
    p.add_argument("--methods", default="plugin,taylor,euclidean,minimax_lp",
                   help="non-AQP methods to tabulate (comma list)")
    p.add_argument("--aqp-K", type=_int_list, default=[], help="group sizes for AQP tables")
    p.add_argument("--aqp-eps-fractions", type=_float_list, default=[],
                   help="AQP budgets as fractions of the way from the minimax bias to Taylor's bias")
    p.add_argument("--tables", required=True, help="output Parquet: method, K, eps, X, coef")
    p.add_argument("--summary", required=True, help="output Parquet: one row per (method, K, eps)")
    p.add_argument("--summary-md", default=None, help="optional Markdown copy of the summary")
    p.set_defaults(func=run)

    f = subparsers.add_parser("lp-figures", help="worst-case bias vs K and the AQP Pareto frontier",
                              description="Draw the slides' bias-rate and Pareto figures (PNG + Parquet).")
    f.add_argument("--beta", type=float, default=1.0)
    f.add_argument("--K", type=_int_list, default=[2, 4, 8, 16, 32, 64], help="K values of the bias curves")
    f.add_argument("--aqp-fraction", type=float, default=0.2, help="AQP budget fraction on the bias curve")
    f.add_argument("--pareto-K", type=int, default=32, help="K of the Pareto frontier")
    f.add_argument("--pareto-fractions", type=_float_list,
                   default=[0.15, 0.2, 0.3, 0.45, 0.65, 0.9, 1.0])
    f.add_argument("--bias-png", required=True)
    f.add_argument("--bias-data", required=True)
    f.add_argument("--pareto-png", required=True)
    f.add_argument("--pareto-data", required=True)
    f.set_defaults(func=run_figures)


# ---------------------------------------------------------------------------- helpers

def _validate(beta: float, Ks: list[int], what: str) -> None:
    if not np.isfinite(beta) or beta <= 0:
        raise ConfigError(f"--beta must be positive, got {beta}")
    bad = [k for k in Ks if k < 1]
    if bad:
        raise ConfigError(f"{what}: group sizes must be >= 1, got {bad}")


def _check_fractions(fracs: list[float], what: str) -> None:
    bad = [f for f in fracs if not 0 < f <= 1]
    if bad:
        raise ConfigError(f"{what}: fractions must lie in (0, 1], got {bad}")


def aqp_eps(K: int, fraction: float, beta: float = 1.0) -> float:
    """eps = minimax + fraction * (taylor - minimax) (worst-case weighted biases)."""
    floor = est.minimax_value(K, beta)
    taylor = est.worst_case_bias(est.taylor_table(K, beta), K, beta)
    return floor + fraction * (taylor - floor)


def _summary_row(method: str, K: int, eps: float, frac: float, c: np.ndarray, beta: float,
                 seconds: float) -> dict:
    target = "euclidean" if method == "euclidean" else "log"
    bias = est.worst_case_bias(c, K, beta, target=target)
    return {"method": method, "K": K, "eps": eps, "eps_fraction": frac, "max_bias": bias,
            "bias_x_K1sq": bias * (K + 1) ** 2,
            "max_second_moment": est.worst_case_second_moment(c, K),
            "max_abs_coef": float(np.abs(c).max()), "seconds": seconds}


def _build(method: str, K: int, beta: float, eps: float | None) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    try:
        c = est.estimator_table(method, K, beta, eps)
    except ValueError as err:
        raise ConfigError(f"{method} table for K={K}: {err}") from err
    return c, time.perf_counter() - t0


# ---------------------------------------------------------------------------- lp-table

def run(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in est.METHODS or m == "aqp"]
    if unknown:
        raise ConfigError(f"--methods: unknown or AQP method(s) {unknown}; choose from "
                          f"{[m for m in est.METHODS if m != 'aqp']} (AQP uses --aqp-K)")
    _validate(args.beta, args.K + args.aqp_K, "--K/--aqp-K")
    _check_fractions(args.aqp_eps_fractions, "--aqp-eps-fractions")
    if "minimax_lp" in methods and max(args.K, default=0) > est.MINIMAX_LP_MAX_K:
        raise ConfigError(f"--K: minimax_lp is limited to K <= {est.MINIMAX_LP_MAX_K} "
                          f"(exponentially large coefficients); use AQP (--aqp-K) for larger K")
    if args.aqp_K and not args.aqp_eps_fractions:
        raise ConfigError("--aqp-K needs --aqp-eps-fractions")

    jobs = [(m, K, None, np.nan) for K in args.K for m in methods]
    for K in args.aqp_K:
        for f in args.aqp_eps_fractions:
            jobs.append(("aqp", K, aqp_eps(K, f, args.beta), f))
    tables, rows = [], []
    for method, K, eps, frac in tqdm(jobs, desc="lp-table", unit="table"):
        c, secs = _build(method, K, args.beta, eps)
        e = np.nan if eps is None else float(eps)
        tables.append(pd.DataFrame({"method": method, "K": K, "eps": e,
                                    "X": np.arange(K + 1, dtype=np.int64), "coef": c}))
        rows.append(_summary_row(method, K, e, frac, c, args.beta, secs))
    table = pd.concat(tables, ignore_index=True)
    table["K"] = table["K"].astype(np.int64)
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    write_parquet(table[TABLE_COLUMNS], args.tables)
    write_table(summary, args.summary, args.summary_md)
    print(summary.to_string(index=False))
    return 0


# -------------------------------------------------------------------------- lp-figures

def run_figures(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    _validate(args.beta, args.K + [args.pareto_K], "--K/--pareto-K")
    _check_fractions([args.aqp_fraction], "--aqp-fraction")
    _check_fractions(args.pareto_fractions, "--pareto-fractions")

    rows = []
    jobs = [(m, K) for K in sorted(set(args.K)) for m in ("plugin", "taylor", "minimax_lp", "aqp")
            if not (m == "minimax_lp" and K > est.MINIMAX_LP_MAX_K)]
    for method, K in tqdm(jobs, desc="bias curves", unit="table"):
        eps = aqp_eps(K, args.aqp_fraction, args.beta) if method == "aqp" else None
        c, secs = _build(method, K, args.beta, eps)
        rows.append(_summary_row(method, K, np.nan if eps is None else eps,
                                 args.aqp_fraction if eps is not None else np.nan, c, args.beta, secs))
    curves = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    write_parquet(curves, args.bias_data)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    labels = {"plugin": "plug-in log(X/K)", "taylor": "Taylor-corrected",
              "minimax_lp": "minimax LP", "aqp": f"AQP (budget fraction {args.aqp_fraction:g})"}
    for method, grp in curves.groupby("method", sort=False):
        ax.loglog(grp["K"], grp["max_bias"], "o-", label=labels[method])
    Ks = np.array(sorted(set(args.K)), float)
    ref = curves[curves.method == "taylor"]["max_bias"].iloc[0] * Ks[0]
    ax.loglog(Ks, ref / Ks, "k:", lw=1, label="O(1/K)")
    lp = curves[curves.method == "minimax_lp"]
    if len(lp):
        c2 = lp["bias_x_K1sq"].iloc[-1]
        ax.loglog(Ks, c2 / (Ks + 1) ** 2, "k--", lw=1, label="O(1/K²)")
    ax.set_xticks(Ks)
    ax.set_xticklabels([f"{k:g}" for k in Ks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("K (samples per group)")
    ax.set_ylabel(r"worst-case weighted bias  $\max_p |p\,E[c_X] - \beta p\log p|$")
    ax.set_title("Bias rates of reward estimators")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(args.bias_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)

    K = args.pareto_K
    prow = []
    for f in tqdm(sorted(args.pareto_fractions), desc=f"pareto K={K}", unit="table"):
        eps = aqp_eps(K, f, args.beta)
        c, secs = _build("aqp", K, args.beta, eps)
        prow.append(_summary_row("aqp", K, eps, f, c, args.beta, secs))
    extra = [("taylor", None), ("plugin", None)]
    if K <= est.MINIMAX_LP_MAX_K:
        extra.insert(0, ("minimax_lp", None))
    for method, _ in extra:
        c, secs = _build(method, K, args.beta, None)
        prow.append(_summary_row(method, K, np.nan, np.nan, c, args.beta, secs))
    pareto = pd.DataFrame(prow, columns=SUMMARY_COLUMNS)
    write_parquet(pareto, args.pareto_data)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    a = pareto[pareto.method == "aqp"]
    ax.plot(a["max_bias"], a["max_second_moment"], "o-", label="AQP frontier")
    for method, grp in pareto[pareto.method != "aqp"].groupby("method"):
        ax.plot(grp["max_bias"], grp["max_second_moment"], "s", label=method)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("worst-case weighted bias")
    ax.set_ylabel(r"worst-case second moment  $\max_p E[c_X^2]$")
    ax.set_title(f"Bias–variance Pareto frontier (K={K})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(args.pareto_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    print(pareto.to_string(index=False))
    return 0


__all__ = ["register", "run", "run_figures", "aqp_eps", "TABLE_COLUMNS", "SUMMARY_COLUMNS"]
