"""Exact tests for alft.diversity: entropy, distinct answers, unbiased pass@k."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from alft.diversity import (answer_entropy, diversity_metrics, mark_correct, pass_at_k,
                            pass_at_k_counts, summarise)
from alft.errors import DataError


def frame(groups: dict) -> pd.DataFrame:
    rows = []
    for (o, m), answers in groups.items():
        for i, a in enumerate(answers):
            rows.append({"orbit_id": o, "member": m, "sample_idx": i, "answer": a})
    return pd.DataFrame(rows)


def brute_pass_at_k(correct: list[bool], k: int) -> float:
    """Share of all k-subsets of the n samples containing at least one correct sample."""
    subsets = list(itertools.combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in s) for s in subsets) / len(subsets)


def test_entropy_and_distinct():
    df = frame({(0, 0): ["1", "1", "2", None], (0, 1): ["3", "3", "3", "3"],
                (1, 0): [None, None, None, None], (1, 2): ["a", "b", "c", "d"]})
    out = answer_entropy(df)
    p = np.array([2, 1]) / 3
    assert out.loc[(0, 0), "entropy"] == pytest.approx(-(p * np.log(p)).sum(), abs=1e-15)
    assert out.loc[(0, 1), "entropy"] == 0.0
    assert math.isnan(out.loc[(1, 0), "entropy"])
    assert out.loc[(1, 2), "entropy"] == pytest.approx(math.log(4), abs=1e-15)
    assert out["distinct"].tolist() == [2, 1, 0, 4]
    assert out["n"].tolist() == [4] * 4 and out["n_answered"].tolist() == [3, 4, 0, 4]
    with_none = answer_entropy(df, include_none=True)
    assert with_none.loc[(1, 0), "entropy"] == 0.0
    assert with_none.loc[(0, 0), "entropy"] == pytest.approx(1.5 * math.log(2), abs=1e-15)
    with pytest.raises(DataError, match="answer"):
        answer_entropy(df.drop(columns="answer"))


@pytest.mark.parametrize("seed", range(3))
def test_pass_at_k_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    groups, flags = {}, {}
    for g in range(8):
        n = int(rng.integers(4, 11))
        correct = (rng.uniform(size=n) < rng.uniform()).tolist()
        groups[(g // 3, g % 3)] = ["x"] * n
        flags[(g // 3, g % 3)] = correct
    df = frame(groups)
    df["correct"] = [c for key in groups for c in flags[key]]
    res = pass_at_k(df, [1, 2, 3, 4])
    for key, correct in flags.items():
        for k in (1, 2, 3, 4):
            assert res.loc[key, f"pass@{k}"] == pytest.approx(brute_pass_at_k(correct, k), abs=1e-12)
        assert res.loc[key, "pass@1"] == pytest.approx(np.mean(correct), abs=1e-15)


def test_pass_at_k_counts_edges_and_large_n():
    assert pass_at_k_counts([5, 5, 5], [0, 5, 3], 3).tolist() == [0.0, 1.0, 1.0]
    for n, c, k in [(1000, 3, 10), (200, 0, 200), (200, 1, 200), (60, 7, 25)]:
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert pass_at_k_counts([n], [c], k)[0] == pytest.approx(exact, rel=1e-11, abs=1e-15)
    with pytest.raises(ValueError, match="exceeds"):
        pass_at_k_counts([3], [1], 4)
    with pytest.raises(ValueError, match="positive integer"):
        pass_at_k_counts([3], [1], 0)
    with pytest.raises(ValueError, match="c <= n"):
        pass_at_k_counts([3], [4], 1)


def test_mark_correct_and_metrics_table():
    df = frame({(0, 0): ["5", "5", "6", None], (1, 0): ["2", "3", "2.0", "2"]})
    df = mark_correct(df, {0: "5", 1: "2"})
    assert df["correct"].tolist() == [True, True, False, False, True, False, True, True]
    per = diversity_metrics(df, ks=(2,), correct_col="correct")
    assert per.loc[(0, 0), "accuracy"] == 0.5 and per.loc[(1, 0), "accuracy"] == 0.75
    assert per.loc[(0, 0), "pass@2"] == pytest.approx(1 - 1 / 6)
    assert per.loc[(1, 0), "distinct"] == 3  # "2.0" is a distinct string: canonicalisation is E's job
    s = summarise(per)
    assert s["n_prompts"] == 2 and s["accuracy"] == pytest.approx(0.625)
    assert set(s) >= {"entropy", "distinct", "pass@1", "pass@2", "accuracy"}
    bad = df.assign(correct=[0.5] * len(df))
    with pytest.raises(DataError, match="boolean"):
        pass_at_k(bad, 1)
    with pytest.raises(DataError, match="correct"):
        pass_at_k(df.drop(columns="correct"), 1)
