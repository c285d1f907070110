"""Evaluation metrics for the diversity row (R = −H(ν), q* ∝ 1/ν̂): entropy, distinct answers, pass@k.

All functions take a samples table with columns ``orbit_id, member, answer`` (answer =
E(y), a string or null) and, for pass@k, a boolean/0-1 correctness column; a *prompt*
is one (orbit_id, member). Everything is computed with pandas group-bys (no Python
loop over prompts).

* ``answer_entropy`` — H(ν̂) in nats of the empirical distribution over the prompt's
  *extractable* answers (no-answer samples left out, as in
  :func:`alft.targets.target_stats`); NaN for a prompt without any answer.
  ``include_none=True`` counts "no answer" as one more outcome instead.
* ``distinct`` — number of distinct extractable answers.
* ``pass@k`` — the unbiased estimator 1 − C(n−c, k)/C(n, k) (Chen et al. 2021) from n
  samples with c correct; computed as 1 − Π_{j=n−c+1}^{n}(1 − k/j), exactly 1 when
  n − c < k (once per distinct (n, c) pair). k > n raises ValueError.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from alft.errors import DataError

KEYS = ["orbit_id", "member"]

__all__ = ["answer_entropy", "pass_at_k", "pass_at_k_counts", "mark_correct",
           "diversity_metrics", "summarise", "round_metrics"]


def _check(samples: pd.DataFrame, cols: Iterable[str], source: str) -> None:
    missing = [c for c in cols if c not in samples.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; found {list(samples.columns)}")


def _answers(samples: pd.DataFrame) -> pd.Series:
    return samples["answer"].map(lambda v: v if isinstance(v, str) and v != "" else None)


def answer_entropy(samples: pd.DataFrame, include_none: bool = False,
                   source: str = "samples") -> pd.DataFrame:
    """Per prompt: ``n`` samples, ``n_answered``, ``distinct`` answers, ``entropy`` (nats).

    Index: (orbit_id, member), sorted.
    """
    _check(samples, [*KEYS, "answer"], source)
    df = samples[KEYS].copy()
    ans = _answers(samples)
    df["answer"] = ans.fillna("\x00<none>") if include_none else ans
    n = df.groupby(KEYS).size().rename("n")
    answered = df.dropna(subset=["answer"])
    counts = answered.groupby([*KEYS, "answer"]).size().rename("count").reset_index()
    tot = counts.groupby(KEYS)["count"].transform("sum")
    p = counts["count"] / tot
    counts["plogp"] = -p * np.log(p)
    per = counts.groupby(KEYS).agg(entropy=("plogp", "sum"), distinct=("count", "size"),
                                   n_answered=("count", "sum"))
    out = pd.DataFrame(n).join(per, how="left")
    out["distinct"] = out["distinct"].fillna(0).astype("int64")
    out["n_answered"] = out["n_answered"].fillna(0).astype("int64")
    out["entropy"] = out["entropy"].astype(float)  # NaN where nothing was answered
    return out[["n", "n_answered", "distinct", "entropy"]].sort_index()


def pass_at_k_counts(n: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """Unbiased pass@k = 1 − C(n−c, k)/C(n, k), elementwise over arrays n, c."""
    n = np.asarray(n, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"pass@k: k must be a positive integer, got {k!r}")
    k = int(k)
    if np.any(c < 0) or np.any(c > n):
        raise ValueError("pass@k: need 0 <= c <= n")
    if np.any(n < k):
        raise ValueError(f"pass@k: k={k} exceeds the number of samples n={int(n.min())} of a prompt")
    # C(n−c,k)/C(n,k) = Π_{j=n−c+1}^{n} (1 − k/j); evaluated once per distinct (n, c)
    # pair as −expm1(Σ log1p(−k/j)) (relative error ~1e-15; lgamma differences lose ~1e-11)
    pairs, inv = np.unique(np.stack([n.ravel(), c.ravel()]), axis=1, return_inverse=True)
    vals = np.empty(pairs.shape[1])
    for i, (ni, ci) in enumerate(pairs.T):
        if ni - ci < k:
            vals[i] = 1.0
        else:
            j = np.arange(ni - ci + 1, ni + 1, dtype=float)
            vals[i] = -np.expm1(np.sum(np.log1p(-k / j)))
    return vals[inv.ravel()].reshape(n.shape)


def mark_correct(samples: pd.DataFrame, gold: Mapping[int, str], task: str = "builtin",
                 column: str = "correct") -> pd.DataFrame:
    """A copy of ``samples`` with a boolean ``column``: E(y) ≡ gold[orbit_id] (no answer: False)."""
    from alft.extract import answers_match

    _check(samples, ["orbit_id", "answer"], "samples")
    out = samples.copy()
    ans = _answers(samples)
    cache: dict[tuple[int, str], bool] = {}
    vals = []
    for o, z in zip(out["orbit_id"].astype(int), ans):
        if z is None or o not in gold:
            vals.append(False)
            continue
        key = (o, z)
        if key not in cache:
            cache[key] = bool(answers_match(z, gold[o], task))
        vals.append(cache[key])
    out[column] = np.asarray(vals, dtype=bool)
    return out


def pass_at_k(samples: pd.DataFrame, ks: int | Iterable[int], correct_col: str = "correct",
              source: str = "samples") -> pd.DataFrame:
    """Per prompt: ``n``, ``n_correct`` and ``pass@k`` for each k in ``ks``."""
    _check(samples, [*KEYS, correct_col], source)
    corr = samples[correct_col]
    if corr.isna().any():
        raise DataError(f"{source}: column {correct_col!r} has a null value")
    vals = corr.astype(float).to_numpy()
    if not np.all((vals == 0) | (vals == 1)):
        raise DataError(f"{source}: column {correct_col!r} must be boolean (0/1)")
    df = samples[KEYS].copy()
    df["_c"] = vals.astype(np.int64)
    g = df.groupby(KEYS)["_c"].agg(n="size", n_correct="sum").sort_index()
    ks = [ks] if isinstance(ks, (int, np.integer)) else list(ks)
    for k in ks:
        g[f"pass@{k}"] = pass_at_k_counts(g["n"].to_numpy(), g["n_correct"].to_numpy(), k)
    return g


def diversity_metrics(samples: pd.DataFrame, ks: Iterable[int] = (1,),
                      correct_col: str | None = None, include_none: bool = False,
                      source: str = "samples") -> pd.DataFrame:
    """Per-prompt table: n, n_answered, distinct, entropy, and with ``correct_col``:
    n_correct, accuracy (= pass@1, share of correct samples) and pass@k for each k."""
    out = answer_entropy(samples, include_none=include_none, source=source)
    if correct_col is not None:
        pk = pass_at_k(samples, sorted(set(ks) | {1}), correct_col, source)
        out = out.join(pk.drop(columns="n"))
        out["accuracy"] = out["n_correct"] / out["n"]
    return out


def summarise(per_prompt: pd.DataFrame) -> dict[str, float]:
    """Means over prompts (entropy over prompts with an answer), plus ``n_prompts``."""
    res: dict[str, float] = {"n_prompts": int(len(per_prompt))}
    for col in per_prompt.columns:
        if col in ("n", "n_answered", "n_correct"):
            continue
        res[col] = float(per_prompt[col].mean()) if len(per_prompt) else float("nan")
    return res


def round_metrics(samples: pd.DataFrame, gold: Mapping[int, str] | None, ks: Iterable[int],
                  task: str = "builtin", source: str = "samples") -> dict[str, float]:
    """One policy's diversity row from its samples (slides, "Instantiations": Diversity,
    R = −H(ν), q* ∝ 1/ν_π): means over prompts of ``entropy`` H(ν̂) (nats, answered
    samples; prompts without an answer left out), ``distinct`` answers, and with gold
    labels ``accuracy`` (share of correct samples, = pass@1) and ``pass@k`` for each k
    in ``ks`` (unbiased estimator); plus ``no_answer_share`` over all samples,
    ``n_prompts`` and ``n_samples``. Without gold the accuracy and pass@k are NaN.

    ValueError when a k exceeds the samples of some prompt (message names k and n).
    """
    ks = sorted({int(k) for k in ks} | {1})
    _check(samples, [*KEYS, "answer"], source)
    if len(samples) == 0:
        raise DataError(f"{source}: no samples")
    n_min = int(samples.groupby(KEYS).size().min())
    if ks[-1] > n_min:
        raise ValueError(f"pass@k: k={ks[-1]} exceeds the {n_min} samples of the smallest prompt "
                         f"in {source}")
    if gold:
        per = diversity_metrics(mark_correct(samples, gold, task), ks, "correct", source=source)
    else:
        per = answer_entropy(samples, source=source)
        per["accuracy"] = np.nan
        for k in ks:
            per[f"pass@{k}"] = np.nan
    res = summarise(per[["entropy", "distinct", "accuracy", *[f"pass@{k}" for k in ks]]])
    res["n_samples"] = int(len(samples))
    res["no_answer_share"] = float(_answers(samples).isna().mean())
    return res
