"""Exact tests (no sampling) for alft.estimators and `alft lp-table` / `alft lp-figures`."""

from __future__ import annotations

from math import comb

import mpmath
import numpy as np
import pandas as pd
import pytest

from alft import estimators as est
from alft.cli import main


def binom_expect(table: np.ndarray, p: float) -> float:
    """E[c_X], X ~ Binomial(K, p), by exact summation over X (math.fsum)."""
    K = len(table) - 1
    import math

    return math.fsum(comb(K, x) * p**x * (1 - p) ** (K - x) * table[x] for x in range(K + 1))


PS = np.linspace(0.0, 1.0, 41)


# ------------------------------------------------------------------- U-statistics
@pytest.mark.parametrize("K", [1, 2, 5, 10, 20])
def test_falling_factorial_is_unbiased(K):
    for m in range(K + 1):
        t = est.falling_factorial_table(m, K)
        for p in PS:
            assert binom_expect(t, p) == pytest.approx(p**m, abs=1e-12)


def test_falling_factorial_values():
    np.testing.assert_allclose(est.falling_factorial_table(2, 4), [0, 0, 2 / 12, 6 / 12, 1])
    np.testing.assert_allclose(est.falling_factorial_table(0, 3), [1, 1, 1, 1])


@pytest.mark.parametrize("K", [3, 7, 12])
def test_polynomial_reward_unbiased(K):
    poly = [0.3, -1.2, 2.5, -0.7][: K + 1]
    t = est.polynomial_reward_table(poly, K)
    for p in PS:
        want = sum(a * p**m for m, a in enumerate(poly))
        assert binom_expect(t, p) == pytest.approx(want, abs=1e-12)


def test_euclidean_table_exact():
    for K in (1, 4, 9):
        t = est.euclidean_table(K, beta=2.0)
        np.testing.assert_allclose(t, 2.0 * (1 - np.arange(K + 1) / K), atol=1e-15)
        for p in PS:
            assert binom_expect(t, p) == pytest.approx(2.0 * (1 - p), abs=1e-12)
        assert est.worst_case_bias(t, K, 2.0, target="euclidean") < 1e-14


def test_polynomial_errors():
    with pytest.raises(ValueError, match="degree 3"):
        est.polynomial_reward_table([1, 0, 0, 1], 2)
    with pytest.raises(ValueError, match="m <= K"):
        est.falling_factorial_table(3, 2)
    with pytest.raises(ValueError, match="K must be >= 1"):
        est.falling_factorial_table(0, 0)
    with pytest.raises(ValueError, match="K must be >= 1"):
        est.plugin_table(0)
    with pytest.raises(ValueError, match="integer"):
        est.minimax_lp(4.0)
    # trailing zeros do not raise the degree
    np.testing.assert_allclose(est.polynomial_reward_table([1, -1, 0, 0], 1), [1, 0])


# ------------------------------------------------------------- plug-in and Taylor
def test_plugin_and_taylor_tables():
    K = 8
    x = np.arange(1, K + 1)
    pl = est.plugin_table(K, beta=0.5)
    np.testing.assert_allclose(pl[1:], 0.5 * np.log(x / K))
    assert pl[0] == pytest.approx(0.5 * np.log(0.5 / K))
    ta = est.taylor_table(K)
    np.testing.assert_allclose(ta[1:], np.log(x / K) + (K - x) / (2 * K * x))
    assert ta[0] == pytest.approx(np.log(est.TAYLOR_ZERO_COUNT / K))


def test_first_order_bias_formula_holds_for_large_K():
    # slides: E[log q_hat] ~ log q - (1-q)/(2Kq); check at q fixed, K large (X=0 negligible)
    K, q = 400, 0.3
    plug = binom_expect(est.plugin_table(K), q) - np.log(q)
    assert plug == pytest.approx(-(1 - q) / (2 * K * q), rel=0.02)
    tay = binom_expect(est.taylor_table(K), q) - np.log(q)
    assert abs(tay) < abs(plug) / 20  # the correction removes the O(1/K) term


# --------------------------------------------------------------------- minimax LP
@pytest.fixture(scope="module")
def biases():
    out = {}
    for K in (2, 3, 4, 6, 8, 12, 16, 24, 32):
        out[K] = {
            "lp": est.worst_case_bias(est.minimax_lp(K), K),
            "taylor": est.worst_case_bias(est.taylor_table(K), K),
            "plugin": est.worst_case_bias(est.plugin_table(K), K),
        }
    return out


def test_lp_rate_is_one_over_K_squared(biases):
    scaled = {K: b["lp"] * (K + 1) ** 2 for K, b in biases.items()}
    # converges to a constant (~0.325): bounded, increasing, tiny late changes
    assert all(0.30 < v < 0.33 for v in scaled.values())
    assert scaled[32] - scaled[16] < 3e-4
    assert scaled[32] == pytest.approx(0.3250, abs=5e-4)


def test_plugin_and_taylor_only_one_over_K(biases):
    for name in ("plugin", "taylor"):
        kb = {K: b[name] * K for K, b in biases.items()}
        assert kb[32] > 0.09 and kb[32] >= 0.9 * kb[8]  # K * bias does not vanish
        sq = {K: b[name] * (K + 1) ** 2 for K, b in biases.items()}
        assert sq[32] > 3 * sq[8]  # bias * K^2 grows: not O(1/K^2)


def test_ordering_lp_taylor_plugin(biases):
    for K, b in biases.items():
        if K >= 4:
            assert b["lp"] < b["taylor"] < b["plugin"], K


def test_lp_is_true_minimax():
    # Known-value check: the worst-case bias of the float64 table equals the LP value
    # computed in the Chebyshev basis, and the error equioscillates at >= K+2 points.
    for K in (4, 16, 32):
        c = est.minimax_lp(K)
        b = est.worst_case_bias(c, K)
        assert b == pytest.approx(est.minimax_value(K), rel=1e-6)
        p = np.linspace(1e-9, 1, 200001) ** 2
        err = p * est.bernstein_mean(c, p) - p * np.log(p)
        near = np.abs(err) > 0.999 * b
        sign_changes = np.count_nonzero(np.diff(np.sign(err[near])))
        assert sign_changes + 1 >= K + 2
    # any perturbation of the optimum is worse (local optimality, exact evaluator)
    K = 8
    c = est.minimax_lp(K)
    rng = np.random.default_rng(0)
    for _ in range(5):
        assert est.worst_case_bias(c + 1e-4 * rng.standard_normal(K + 1), K) > est.worst_case_bias(c, K)


def test_lp_coefficients_grow_and_limit():
    assert np.abs(est.minimax_lp(32)).max() == pytest.approx(3.93e6, rel=0.01)
    with pytest.raises(ValueError, match="aqp"):
        est.minimax_lp(33)
    with pytest.warns(RuntimeWarning):
        est.minimax_lp(34, allow_large=True)
    np.testing.assert_allclose(est.minimax_lp(6, beta=2.5), 2.5 * est.minimax_lp(6))


def test_evaluator_against_mpmath():
    K = 12
    c = est.minimax_lp(K)
    b = est.worst_case_bias(c, K)
    mpmath.mp.dps = 40

    def err(p):
        p = mpmath.mpf(p)
        s = mpmath.fsum(mpmath.mpf(float(ck)) * mpmath.binomial(K, k) * p**k * (1 - p) ** (K - k)
                        for k, ck in enumerate(c))
        return abs(p * s - p * mpmath.log(p))

    grid = np.linspace(1e-6, 1, 3001) ** 2
    ref = max(float(err(p)) for p in grid)
    assert ref <= b * (1 + 1e-9)
    assert b <= ref * (1 + 1e-3)  # coarse reference grid: the evaluator finds the true peak
    m = est.worst_case_second_moment(c, K)
    assert m >= max(float(x) for x in (c[0] ** 2, c[-1] ** 2))


# ---------------------------------------------------------------------------- AQP
@pytest.fixture(scope="module")
def frontier():
    K = 16
    floor = est.minimax_value(K)
    epss = [floor * f for f in (1.5, 2, 3, 5, 8)]
    return K, [(e, est.aqp(K, e)) for e in epss]


def test_aqp_bias_constraint_on_fine_grid(frontier):
    K, pts = frontier
    p = np.linspace(0, 1, 200001)
    p = np.unique(np.concatenate([p, p**4]))
    for eps, c in pts:
        bias = np.abs(p * est.bernstein_mean(c, p) - est._plogp(p))
        assert bias.max() <= eps * (1 + 1e-9)
        assert est.worst_case_bias(c, K) <= eps * (1 + 1e-9)
        assert est.worst_case_bias(c, K) >= eps * (1 - 1e-3)  # the budget is used


def test_aqp_frontier_monotone(frontier):
    K, pts = frontier
    moments = [est.worst_case_second_moment(c, K) for _, c in pts]
    assert all(a > b for a, b in zip(moments, moments[1:]))
    # AQP beats the LP's variance and, at Taylor's bias, Taylor's variance
    assert moments[0] < est.worst_case_second_moment(est.minimax_lp(K), K)
    ta = est.taylor_table(K)
    c = est.aqp(K, est.worst_case_bias(ta, K))
    assert est.worst_case_second_moment(c, K) <= est.worst_case_second_moment(ta, K)


def test_aqp_large_K_moderate_coefficients():
    K = 128
    eps = 16 * est.minimax_value(K)
    c = est.aqp(K, eps)
    assert est.worst_case_bias(c, K) <= eps * (1 + 1e-9)
    assert np.abs(c).max() < 50
    assert est.worst_case_second_moment(c, K) < 200


def test_aqp_infeasible_and_beta():
    with pytest.raises(ValueError, match="minimax bias"):
        est.aqp(8, 0.9 * est.minimax_value(8))
    with pytest.raises(ValueError, match="eps"):
        est.aqp(8, -1.0)
    e = 3 * est.minimax_value(8)
    np.testing.assert_allclose(est.aqp(8, 2 * e, beta=2.0), 2 * est.aqp(8, e), rtol=1e-12)


# ------------------------------------------------------------ lookup and dispatch
def test_rewards_from_counts():
    c = est.estimator_table("plugin", 4)
    counts = np.array([[0, 1, 4], [2, 2, 3]])
    np.testing.assert_array_equal(est.rewards_from_counts(c, counts), c[counts])
    np.testing.assert_array_equal(est.rewards_from_counts(c, [3.0]), c[[3]])
    with pytest.raises(ValueError, match="0..4"):
        est.rewards_from_counts(c, [5])
    with pytest.raises(ValueError, match="integers"):
        est.rewards_from_counts(c, [1.5])


def test_estimator_table_dispatch():
    K = 6
    np.testing.assert_array_equal(est.estimator_table("taylor", K), est.taylor_table(K))
    np.testing.assert_array_equal(est.estimator_table("minimax_lp", K, 2.0), est.minimax_lp(K, 2.0))
    np.testing.assert_array_equal(est.estimator_table("euclidean", K), est.euclidean_table(K))
    e = 2 * est.minimax_value(K)
    np.testing.assert_array_equal(est.estimator_table("aqp", K, eps=e), est.aqp(K, e))
    with pytest.raises(ValueError, match="needs a bias budget"):
        est.estimator_table("aqp", K)
    with pytest.raises(ValueError, match="unknown estimator"):
        est.estimator_table("nope", K)
    for m in est.METHODS:
        t = est.estimator_table(m, K, eps=e if m == "aqp" else None)
        assert t.shape == (K + 1,) and np.all(np.isfinite(t))


# ---------------------------------------------------------------------------- CLI
def test_cli_lp_table(tmp_path):
    tables, summary, md = tmp_path / "t.parquet", tmp_path / "s.parquet", tmp_path / "s.md"
    rc = main(["lp-table", "--K", "4,8", "--aqp-K", "8", "--aqp-eps-fractions", "0.5,0.9",
               "--tables", str(tables), "--summary", str(summary), "--summary-md", str(md)])
    assert rc == 0
    t = pd.read_parquet(tables)
    assert list(t.columns) == ["method", "K", "eps", "X", "coef"]
    assert pd.api.types.is_integer_dtype(t["K"]) and pd.api.types.is_integer_dtype(t["X"])
    lp8 = t[(t.method == "minimax_lp") & (t.K == 8)].sort_values("X")
    np.testing.assert_allclose(lp8["coef"], est.minimax_lp(8))
    assert len(t[t.method == "aqp"]) == 2 * 9 and t[t.method == "aqp"]["eps"].notna().all()
    s = pd.read_parquet(summary)
    assert {"method", "K", "eps", "max_bias", "max_second_moment"} <= set(s.columns)
    assert len(s) == 4 * 2 + 2
    aq = s[s.method == "aqp"]
    assert (aq["max_bias"] <= aq["eps"] * (1 + 1e-9)).all()
    assert md.read_text().startswith("| method")
    assert not list(tmp_path.glob(".*part"))  # atomic writes leave no temporaries


def test_cli_errors(tmp_path, capsys):
    args = ["--tables", str(tmp_path / "t.parquet"), "--summary", str(tmp_path / "s.parquet")]
    assert main(["lp-table", "--K", "40", *args]) == 2
    assert "K <= 32" in capsys.readouterr().err
    assert main(["lp-table", "--K", "4", "--aqp-K", "8", "--aqp-eps-fractions", "1.5", *args]) == 2
    assert not (tmp_path / "t.parquet").exists()


def test_cli_lp_figures(tmp_path):
    out = {k: tmp_path / n for k, n in [("bias-png", "b.png"), ("bias-data", "b.parquet"),
                                         ("pareto-png", "p.png"), ("pareto-data", "p.parquet")]}
    argv = ["lp-figures", "--K", "4,8,16", "--pareto-K", "8", "--pareto-fractions", "0.3,0.6,1"]
    for k, v in out.items():
        argv += [f"--{k}", str(v)]
    assert main(argv) == 0
    assert out["bias-png"].read_bytes()[:4] == b"\x89PNG"
    curves = pd.read_parquet(out["bias-data"])
    assert set(curves.method) == {"plugin", "taylor", "minimax_lp", "aqp"}
    par = pd.read_parquet(out["pareto-data"])
    a = par[par.method == "aqp"].sort_values("max_bias")
    assert np.all(np.diff(a["max_second_moment"]) < 0)
