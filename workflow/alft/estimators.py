"""Reward estimators from K samples: plug-in, Taylor, U-statistics, minimax LP, AQP.

Part II of the slides ("Resolving the Estimation Bias"). Throughout, X ~ Binomial(K, p)
counts how often an answer occurs among the K sampled traces of a prompt, and an
*estimator* is a table ``c = (c_0, ..., c_K)``: the reward of a trace whose answer
occurred X times is ``c[X]`` (a lookup, :func:`rewards_from_counts`). Its mean is the
Bernstein polynomial

    P_c(p) = E[c_X] = sum_k c_k C(K,k) p^k (1-p)^(K-k).

Targets. The KL game's reward is beta*log q (slides: R(z) = beta log q*(z)); the
Euclidean game's is beta*(1 - q).

Weighted bias (the slides' convention, "the bias is weighted by p" because a policy
gradient weights answer z by its probability): for the log target,

    bias_w(c; p) = |p * P_c(p) - beta * p * log p|,

and :func:`worst_case_bias` returns max_{p in [0,1]} bias_w. The unweighted bias of
*any* finite table is unbounded as p -> 0 (log p -> -inf), so only the weighted
quantity is a meaningful worst case. Under this evaluator

* plug-in and Taylor tables have worst-case weighted bias Theta(1/K): the maximum
  sits at p ~ 1/K, where X = 0 is likely and the X = 0 rule (a finite stand-in for
  log 0) and the 1/(Kq) Taylor term dominate;
* the minimax LP attains the optimal Theta(1/K^2) (Ditzian-Totik), measured here as
  worst-case bias * (K+1)^2 -> 0.325 (0.3221 at K=4, 0.3250 at K=32);
* the AQP trades bias for second moment along a Pareto frontier.

Numerics of the minimax LP. p*P_c(p) is exactly a polynomial of degree K+1 that
vanishes at p = 0, so the LP is the best uniform approximation of beta*p*log p by
such polynomials. We solve it in the well-conditioned basis p*T_j(2p-1) (Chebyshev on
[0,1]) with an exchange method: solve the LP on a grid clustered like Chebyshev nodes,
find every local maximum of the error on a ~100x finer grid (refined by golden-section
search), add the violators, re-solve; stop when the discrete LP value and the true
maximum agree to 1e-8 relative. The Chebyshev coefficients are then converted to the
Bernstein table in exact rational arithmetic (:class:`fractions.Fraction`) and rounded
once to float64. A fixed-grid LP in the Bernstein basis instead stalls at 1.23x the
optimum at K=32 (measured by the issue's author).

Limit. The exact minimax table's coefficients alternate in sign and grow exponentially
(max |c_X| ~ 3.5 at K=4, 2.4e2 at K=16, 3.9e6 at K=32, 6.4e8 at K=40, 1.1e11 at K=48),
so above :data:`MINIMAX_LP_MAX_K` = 32 the float64 table no longer attains its own
bias (rounding the coefficients alone changes the worst-case bias by 6e-6 relative at
K=40 and 0.5% at K=48) and its second moment is astronomically large (~1e13 at K=32).
:func:`minimax_lp` therefore refuses K > 32 (``allow_large=True`` computes it anyway,
with a warning). For large K use :func:`aqp`, whose coefficients stay moderate; the
*value* of the minimax problem (:func:`minimax_value`) is computed in the Chebyshev
basis and stays accurate for K up to 256.
"""

from __future__ import annotations

import functools
import warnings
from fractions import Fraction
from math import comb
from typing import Sequence

import numpy as np
from numpy.polynomial import chebyshev as _cheb
from scipy.optimize import linprog
from scipy.stats import binom

__all__ = [
    "METHODS",
    "MINIMAX_LP_MAX_K",
    "MINIMAX_VALUE_MAX_K",
    "DEFAULT_ZERO_COUNT",
    "TAYLOR_ZERO_COUNT",
    "bernstein_mean",
    "plugin_table",
    "taylor_table",
    "falling_factorial_table",
    "polynomial_reward_table",
    "euclidean_table",
    "minimax_value",
    "minimax_lp",
    "aqp",
    "worst_case_bias",
    "worst_case_second_moment",
    "rewards_from_counts",
    "estimator_table",
]

METHODS: tuple[str, ...] = ("plugin", "taylor", "minimax_lp", "aqp", "euclidean")
MINIMAX_LP_MAX_K = 32
MINIMAX_VALUE_MAX_K = 256
#: X = 0 rule of the plug-in and Taylor estimators: q_hat = DEFAULT_ZERO_COUNT / K
#: (a "half count", so log(X/K) is finite: c_0 = log(1/(2K))).
DEFAULT_ZERO_COUNT = 0.5
#: X = 0 rule of the Taylor estimator (see :func:`taylor_table`).
TAYLOR_ZERO_COUNT = 0.225

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


# ----------------------------------------------------------------------------- checks

def _check_K(K: int) -> int:
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)):
        raise ValueError(f"K must be an integer number of samples, got {K!r}")
    if K < 1:
        raise ValueError(f"K must be >= 1 (the number of samples per group), got {K}")
    return int(K)


def _check_beta(beta: float) -> float:
    beta = float(beta)
    if not np.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be a positive finite number, got {beta}")
    return beta


def _check_coefs(coefs: Sequence[float] | np.ndarray, K: int) -> np.ndarray:
    c = np.asarray(coefs, dtype=float)
    if c.shape != (K + 1,):
        raise ValueError(f"an estimator table for K={K} has K+1={K + 1} entries, got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("estimator table holds non-finite values")
    return c


# ------------------------------------------------------------------- Bernstein algebra

def _pmf_matrix(K: int, p: np.ndarray) -> np.ndarray:
    """B[i, k] = C(K,k) p_i^k (1-p_i)^(K-k), the Binomial(K, p_i) pmf."""
    return binom.pmf(np.arange(K + 1)[None, :], K, np.asarray(p, float)[:, None])


def _de_casteljau(c: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Backward-stable evaluation of sum_k c_k b_{k,K}(p) (no cancellation blow-up)."""
    p = np.asarray(p, float)
    b = np.broadcast_to(c, (p.size, c.size)).copy()
    q = (1.0 - p)[:, None]
    pp = p[:, None]
    for r in range(c.size - 1, 0, -1):
        b[:, :r] = q * b[:, :r] + pp * b[:, 1 : r + 1]
    return b[:, 0]


def bernstein_mean(coefs: Sequence[float] | np.ndarray, p: np.ndarray | float) -> np.ndarray:
    """P_c(p) = E_{X~Bin(K,p)}[c_X] = sum_k c_k C(K,k) p^k (1-p)^(K-k) (de Casteljau)."""
    c = np.asarray(coefs, float)
    p = np.atleast_1d(np.asarray(p, float))
    return _de_casteljau(c, p)


def _plogp(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, float)
    safe = np.where(p > 0, p, 1.0)
    return np.where(p > 0, p * np.log(safe), 0.0)


# ---------------------------------------------------------------- simple estimators

def plugin_table(K: int, beta: float = 1.0, zero_count: float = DEFAULT_ZERO_COUNT) -> np.ndarray:
    """Plug-in beta*log(X/K) (slides: q_hat = X/K).

    X = 0 rule: log 0 = -inf would make the reward unusable, so X = 0 is scored as if
    ``zero_count`` (default a half) of the K samples had given the answer:
    c_0 = beta*log(zero_count/K).
    """
    K = _check_K(K)
    beta = _check_beta(beta)
    if not 0 < zero_count < 1:
        raise ValueError(f"zero_count must lie in (0, 1), got {zero_count}")
    x = np.arange(K + 1, dtype=float)
    x[0] = zero_count
    return beta * np.log(x / K)


def taylor_table(K: int, beta: float = 1.0, zero_count: float = TAYLOR_ZERO_COUNT) -> np.ndarray:
    """Taylor-corrected beta*[log q_hat + (1 - q_hat)/(2 K q_hat)], q_hat = X/K.

    From the slides' E[log q_hat] ~ log q - (1-q)/(2Kq): add the estimated bias back,
    c_X = beta*[log(X/K) + (K-X)/(2KX)] for X >= 1. X = 0 rule: the correction term
    diverges at q_hat = 0, so c_0 = beta*log(zero_count/K) without correction. The
    default zero_count = 0.225 (= TAYLOR_ZERO_COUNT) minimises this table's worst-case
    weighted bias; the minimiser is K-independent (0.217 at K=4, 0.227 at K=128), and
    it gives ~0.10/K against ~0.25-0.58/K for the plug-in.
    """
    K = _check_K(K)
    beta = _check_beta(beta)
    if not 0 < zero_count < 1:
        raise ValueError(f"zero_count must lie in (0, 1), got {zero_count}")
    x = np.arange(1, K + 1, dtype=float)
    q = x / K
    return beta * np.concatenate([[np.log(zero_count / K)], np.log(q) + (1.0 - q) / (2.0 * K * q)])


def falling_factorial_table(m: int, K: int) -> np.ndarray:
    """U-statistic (X)_m/(K)_m = X(X-1)...(X-m+1) / (K(K-1)...(K-m+1)).

    Slides, Theorem (exact unbiased estimation): the unique minimum-variance unbiased
    estimator of p^m from X ~ Binomial(K, p); requires 0 <= m <= K.
    """
    K = _check_K(K)
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 0:
        raise ValueError(f"the power m must be a non-negative integer, got {m!r}")
    if m > K:
        raise ValueError(
            f"p^{m} has no unbiased estimator from K={K} samples: E[f(X)] is a polynomial "
            f"of degree <= K in p, so the degree m must satisfy m <= K"
        )
    x = np.arange(K + 1, dtype=float)
    out = np.ones(K + 1)
    for j in range(m):
        out *= (x - j) / (K - j)
    return out


def polynomial_reward_table(poly: Sequence[float], K: int) -> np.ndarray:
    """Unbiased table for the reward r(p) = sum_m poly[m] * p^m (Bregman game, degree d <= K).

    By linearity sum_m poly[m] * (X)_m/(K)_m (slides, Solution 1). Trailing zero
    coefficients do not count towards the degree; d > K raises ValueError.
    """
    K = _check_K(K)
    a = np.atleast_1d(np.asarray(poly, dtype=float))
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError("poly must be a non-empty 1-D sequence of finite monomial coefficients")
    nz = np.flatnonzero(a)
    d = int(nz[-1]) if nz.size else 0
    if d > K:
        raise ValueError(
            f"a polynomial reward of degree {d} cannot be estimated without bias from K={K} "
            f"samples (needs degree <= K)"
        )
    out = np.zeros(K + 1)
    for m in range(d + 1):
        if a[m] != 0:
            out += a[m] * falling_factorial_table(m, K)
    return out


def euclidean_table(K: int, beta: float = 1.0) -> np.ndarray:
    """Euclidean game: reward beta*(1 - q), estimated exactly by beta*(1 - X/K)."""
    K = _check_K(K)
    beta = _check_beta(beta)
    return polynomial_reward_table([beta, -beta], K)


# ------------------------------------------------------------------------ minimax LP

def _cheb_grid(n: int) -> np.ndarray:
    """n points in (0, 1], clustered at both ends like Chebyshev nodes (spacing ~1/n^2)."""
    th = np.linspace(0.0, np.pi, n + 1)[1:]
    return (1.0 - np.cos(th)) / 2.0


def _fine_grid(K: int, per: int = 64, floor: int = 4000) -> np.ndarray:
    n = max(floor, per * (K + 2))
    tiny = np.geomspace(1e-14, min(1e-3, 1.0 / (K + 1) ** 2), 300)
    return np.unique(np.concatenate([[0.0], tiny, _cheb_grid(n)]))


def _local_max_brackets(vals: np.ndarray) -> np.ndarray:
    """Indices i of grid local maxima (ends included)."""
    n = vals.size
    if n < 3:
        return np.array([int(np.argmax(vals))])
    inner = np.flatnonzero((vals[1:-1] >= vals[:-2]) & (vals[1:-1] >= vals[2:])) + 1
    idx = list(inner)
    if vals[0] >= vals[1]:
        idx.insert(0, 0)
    if vals[-1] >= vals[-2]:
        idx.append(n - 1)
    return np.asarray(idx, dtype=int)


def _refine_maxima(fun, grid: np.ndarray, vals: np.ndarray, keep: float = 0.0,
                   iters: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of ``fun`` (vectorised) near the grid maxima with value >= keep*max.

    Each maximum is polished by a vectorised golden-section search on its bracket
    [grid[i-1], grid[i+1]]; returns (points, values) with the better of grid/refined.
    """
    idx = _local_max_brackets(vals)
    idx = idx[vals[idx] >= keep * vals.max()]
    lo = grid[np.maximum(idx - 1, 0)].astype(float)
    hi = grid[np.minimum(idx + 1, grid.size - 1)].astype(float)
    x1 = hi - _GOLDEN * (hi - lo)
    x2 = lo + _GOLDEN * (hi - lo)
    f1, f2 = fun(x1), fun(x2)
    for _ in range(iters):
        left = f1 >= f2  # maximum in [lo, x2]
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
        nx1 = hi - _GOLDEN * (hi - lo)
        nx2 = lo + _GOLDEN * (hi - lo)
        x2n = np.where(left, x1, nx2)
        x1n = np.where(left, nx1, x2)
        f2n = np.where(left, f1, np.nan)
        f1n = np.where(left, np.nan, f2)
        need1, need2 = np.isnan(f1n), np.isnan(f2n)
        if need1.any():
            f1n[need1] = fun(x1n[need1])
        if need2.any():
            f2n[need2] = fun(x2n[need2])
        x1, x2, f1, f2 = x1n, x2n, f1n, f2n
    xr = np.where(f1 >= f2, x1, x2)
    fr = np.maximum(f1, f2)
    better = fr > vals[idx]
    return np.where(better, xr, grid[idx]), np.where(better, fr, vals[idx])


def _cheb_design(p: np.ndarray, K: int) -> np.ndarray:
    return p[:, None] * _cheb.chebvander(2.0 * p - 1.0, K)


def _cheb_error(a: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p * _cheb.chebval(2.0 * p - 1.0, a) - _plogp(p)


@functools.lru_cache(maxsize=None)
def _minimax_cheb(K: int, tol: float = 1e-8, max_iter: int = 60) -> tuple[tuple[float, ...], float, float]:
    """Chebyshev coefficients a of Q (p*Q(p) ~ p log p), the LP value and the true max error.

    Exchange method for min_a max_p |p*sum_j a_j T_j(2p-1) - p log p| (beta = 1).
    """
    scale = 3.0 * (K + 2) ** 2  # the optimum is ~0.33/(K+1)^2: make t ~ 1 for HiGHS
    grid = _cheb_grid(max(4 * (K + 2), 64))
    fine = _fine_grid(K, per=200, floor=8000)
    n = K + 1
    cost = np.zeros(n + 1)
    cost[-1] = 1.0
    a = np.zeros(n)
    t = emax = np.inf
    for _ in range(max_iter):
        A = _cheb_design(grid, K) * scale
        y = _plogp(grid) * scale
        ones = np.ones((grid.size, 1))
        res = linprog(
            cost,
            A_ub=np.vstack([np.hstack([A, -ones]), np.hstack([-A, -ones])]),
            b_ub=np.concatenate([y, -y]),
            bounds=[(None, None)] * (n + 1),
            method="highs",
            options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
        )
        if res.status != 0:  # pragma: no cover - HiGHS failure
            raise RuntimeError(f"minimax LP (K={K}) failed: {res.message}")
        a, t = res.x[:n], res.x[-1] / scale
        fun = lambda p, a=a: np.abs(_cheb_error(a, p))  # noqa: E731
        xs, vs = _refine_maxima(fun, fine, fun(fine))
        emax = float(vs.max())
        if emax <= t * (1.0 + tol):
            break
        grid = np.unique(np.concatenate([grid, xs[vs > t]]))
    else:  # pragma: no cover - not observed for K <= 256
        warnings.warn(f"minimax LP exchange for K={K} stopped at gap {emax / t - 1:.2e}", stacklevel=2)
    return tuple(float(v) for v in a), float(t), emax


def minimax_value(K: int, beta: float = 1.0) -> float:
    """min_c max_p |p P_c(p) - beta p log p| (the optimal worst-case weighted bias).

    Computed in the Chebyshev basis (well conditioned), valid for K <= 256; it is the
    bias floor below which :func:`aqp` is infeasible.
    """
    K = _check_K(K)
    beta = _check_beta(beta)
    if K > MINIMAX_VALUE_MAX_K:
        raise ValueError(f"minimax_value supports K <= {MINIMAX_VALUE_MAX_K}, got {K}")
    return beta * _minimax_cheb(K)[2]


def _cheb_to_bernstein(a: Sequence[float], K: int) -> list[Fraction]:
    """Exact Bernstein coefficients (degree K) of Q(p) = sum_j a_j T_j(2p-1)."""
    # Shifted Chebyshev polynomials in monomials of p (integer coefficients):
    # T_0 = 1, T_1 = 2p - 1, T_j = 2(2p-1) T_{j-1} - T_{j-2}.
    polys: list[list[int]] = [[1], [-1, 2]]
    for j in range(2, K + 1):
        new = [0] * (j + 1)
        for i, v in enumerate(polys[-1]):
            new[i] -= 2 * v
            new[i + 1] += 4 * v
        for i, v in enumerate(polys[-2]):
            new[i] -= v
        polys.append(new)
    mono = [Fraction(0)] * (K + 1)
    for j, aj in enumerate(a):
        fa = Fraction(aj)
        for i, v in enumerate(polys[j]):
            mono[i] += fa * v
    # monomial -> Bernstein: c_k = sum_{i<=k} C(k,i)/C(K,i) m_i
    return [sum((Fraction(comb(k, i), comb(K, i)) * mono[i] for i in range(k + 1)), Fraction(0))
            for k in range(K + 1)]


@functools.lru_cache(maxsize=None)
def _minimax_table(K: int) -> tuple[float, ...]:
    a, _, _ = _minimax_cheb(K)
    if K == 0:  # pragma: no cover - guarded by _check_K
        return (a[0],)
    return tuple(float(v) for v in _cheb_to_bernstein(a, K))


def minimax_lp(K: int, beta: float = 1.0, *, allow_large: bool = False) -> np.ndarray:
    """Minimax table c* = argmin_c max_{p in [0,1]} |p P_c(p) - beta p log p| (slides, Solution 2).

    Exact to the LP's optimum (exchange method in the Chebyshev basis, rational
    conversion to the table; see the module docstring). Refuses K > MINIMAX_LP_MAX_K
    (=32) because the float64 table then loses its own accuracy and its variance is
    absurd; ``allow_large=True`` computes it anyway with a warning. The solution is
    linear in beta: c*(beta) = beta c*(1).
    """
    K = _check_K(K)
    beta = _check_beta(beta)
    if K > MINIMAX_LP_MAX_K:
        reason = (
            f"the minimax LP table for K={K} > {MINIMAX_LP_MAX_K} has exponentially large "
            f"alternating coefficients (max |c_X| ~ 6e8 at K=40, 1e11 at K=48): float64 can no "
            f"longer represent it to its own bias level and its second moment is astronomical; "
            f"use aqp(K, eps) for large K"
        )
        if not allow_large:
            raise ValueError(reason)
        if K > MINIMAX_VALUE_MAX_K:
            raise ValueError(f"minimax_lp supports K <= {MINIMAX_VALUE_MAX_K}")
        warnings.warn(reason, RuntimeWarning, stacklevel=2)
    return beta * np.array(_minimax_table(K))


# ------------------------------------------------------------------------------- AQP

def _merge_points(grid: np.ndarray, new: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Add ``new`` points to ``grid``, skipping near-duplicates (they make the KKT degenerate)."""
    out = np.unique(np.concatenate([grid, new]))
    keep = np.concatenate([[True], np.diff(out) > rtol * np.maximum(out[1:], 1e-300)])
    return out[keep]


def _aqp_conic(K: int, eps: float, eps_in: float, grid_b: np.ndarray,
               grid_v: np.ndarray) -> tuple[str, np.ndarray | None, float]:
    """One AQP solve on fixed grids, straight through Clarabel (no modelling layer).

    Variables x = (c_0..c_K, s_0..s_K, v); minimise v subject to
    |p (B c)(p) - p log p| / eps <= eps_in / eps on grid_b (two linear rows each),
    (B s)(p) <= v on grid_v and s_k >= c_k^2 (3-dim second-order cones
    ||(2 c_k, s_k - 1)|| <= s_k + 1). Since B >= 0 this equals the slides' AQP.
    """
    import clarabel
    from scipy import sparse

    n = K + 1
    nx = 2 * n + 1
    # Entries below 1e-18 are dropped: they change no constraint by more than ~1e-16
    # of its budget, make the KKT system sparse, and avoid subnormal floats (p^K at
    # small p), which slowed Clarabel down 30x at K=128.
    wb = (grid_b / eps)[:, None] * _pmf_matrix(K, grid_b)
    wb[np.abs(wb) < 1e-18] = 0.0
    yb = _plogp(grid_b) / eps
    bound = eps_in / eps
    Bv = _pmf_matrix(K, grid_v)
    Bv[Bv < 1e-18] = 0.0
    nb, nv = grid_b.size, grid_v.size
    z_b = np.zeros((nb, n + 1))
    rows_lin = np.vstack([
        np.hstack([wb, z_b]),
        np.hstack([-wb, z_b]),
        np.hstack([np.zeros((nv, n)), Bv, -np.ones((nv, 1))]),
    ])
    b_lin = np.concatenate([yb + bound, bound - yb, np.zeros(nv)])
    # second-order cones: b - A x = (s_k + 1, s_k - 1, 2 c_k)
    ri, ci, vals = [], [], []
    b_soc = np.zeros(3 * n)
    for k in range(n):
        r = 3 * k
        ri += [r, r + 1, r + 2]
        ci += [n + k, n + k, k]
        vals += [-1.0, -1.0, -2.0]
        b_soc[r], b_soc[r + 1] = 1.0, -1.0
    A = sparse.vstack([sparse.csc_matrix(rows_lin),
                       sparse.csc_matrix((vals, (ri, ci)), shape=(3 * n, nx))]).tocsc()
    b = np.concatenate([b_lin, b_soc])
    q = np.zeros(nx)
    q[-1] = 1.0
    P = sparse.csc_matrix((nx, nx))
    cones = [clarabel.NonnegativeConeT(rows_lin.shape[0])] + [clarabel.SecondOrderConeT(3)] * n
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.max_iter = 300
    sol = clarabel.DefaultSolver(P, q, A, b, cones, settings).solve()
    status = str(sol.status)
    if "Solved" not in status:
        return status, None, np.inf
    x = np.asarray(sol.x)
    return status, x[:n], float(x[-1])


@functools.lru_cache(maxsize=None)
def _aqp_unit(K: int, eps: float, max_iter: int = 30) -> tuple[float, ...]:
    floor = _minimax_cheb(K)[2]
    if eps <= floor * (1.0 + 1e-9):
        raise ValueError(
            f"AQP infeasible: eps={eps:.6g} is not above the minimax bias {floor:.6g} for K={K} "
            f"(no table of K+1 coefficients has a smaller worst-case weighted bias)"
        )
    fine = _fine_grid(K, per=32, floor=2000)
    Bf = _pmf_matrix(K, fine)
    grid_b = _cheb_grid(max(K + 2, 32))
    grid_v = np.concatenate([[0.0], grid_b])
    eps_in = eps * (1.0 - 1e-6)
    c_val: np.ndarray | None = None
    for _ in range(max_iter):
        status, c_new, v_val = _aqp_conic(K, eps, eps_in, grid_b, grid_v)
        if c_new is None:
            raise ValueError(
                f"AQP for K={K}, eps={eps:.6g} is infeasible or numerically unsolvable in float64 "
                f"(Clarabel: {status}); the minimax bias is {floor:.6g}, and budgets close to it need "
                f"exponentially large coefficients: use a larger eps"
            )
        c_val = c_new

        def bias_fun(p: np.ndarray, c: np.ndarray = c_val) -> np.ndarray:
            return np.abs(p * (_pmf_matrix(K, p) @ c) - _plogp(p))

        def mom_fun(p: np.ndarray, c: np.ndarray = c_val) -> np.ndarray:
            return _pmf_matrix(K, p) @ (c**2)

        xb, vb = _refine_maxima(bias_fun, fine, np.abs(fine * (Bf @ c_val) - _plogp(fine)), keep=0.5)
        xv, vv = _refine_maxima(mom_fun, fine, Bf @ (c_val**2), keep=0.5)
        add_b = xb[vb > eps * (1.0 - 1e-3)]  # near-active points too: fewer rounds
        add_v = xv[vv > v_val * (1.0 + 1e-4)]
        if vb.max() <= eps and add_v.size == 0:
            break
        grid_b = _merge_points(grid_b, add_b)
        grid_v = _merge_points(grid_v, add_v)
    else:
        if worst_case_bias(c_val, K) > eps:
            raise ValueError(f"AQP for K={K}, eps={eps:.6g}: grid exchange did not converge; use a larger eps")
    return tuple(float(x) for x in c_val)


def aqp(K: int, eps: float, beta: float = 1.0) -> np.ndarray:
    """Variance-optimal table (slides, backup "AQP formulation").

    min_c max_p sum_k c_k^2 C(K,k)p^k(1-p)^(K-k)  s.t.  |p P_c(p) - beta p log p| <= eps
    for all p in [0,1], solved as a convex program (Clarabel) with grid exchange for both
    constraint families (so the bias budget holds on the evaluator's fine grid, not just
    the optimisation grid). Sweeping eps in (minimax_value(K), inf) traces the
    bias-variance Pareto frontier. eps at or below the minimax bias raises ValueError.
    Scales exactly in beta: aqp(K, eps, beta) = beta * aqp(K, eps/beta, 1).
    """
    K = _check_K(K)
    beta = _check_beta(beta)
    eps = float(eps)
    if not np.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a positive bias budget, got {eps}")
    if K > MINIMAX_VALUE_MAX_K:
        raise ValueError(f"aqp supports K <= {MINIMAX_VALUE_MAX_K}, got {K}")
    return beta * np.array(_aqp_unit(K, eps / beta))


# ------------------------------------------------------------------------ evaluators

def worst_case_bias(coefs: Sequence[float] | np.ndarray, K: int, beta: float = 1.0,
                    target: str = "log") -> float:
    """max_{p in [0,1]} p * |P_c(p) - target(p)| (weighted bias, see module docstring).

    target "log": beta*log p (so p*target = beta p log p, 0 at p=0); "euclidean":
    beta*(1-p). Grid of >= 4000 Chebyshev-clustered points (plus a geometric tail
    down to 1e-14) and golden-section refinement of every local maximum within 50% of
    the largest; de Casteljau evaluation. Accurate to ~1e-7 relative for tables with
    coefficients up to ~1e7 (the K=32 minimax table).
    """
    K = _check_K(K)
    beta = _check_beta(beta)
    c = _check_coefs(coefs, K)
    if target == "log":
        def fun(p: np.ndarray) -> np.ndarray:
            return np.abs(p * _de_casteljau(c, p) - beta * _plogp(p))
    elif target == "euclidean":
        def fun(p: np.ndarray) -> np.ndarray:
            return np.abs(p * (_de_casteljau(c, p) - beta * (1.0 - p)))
    else:
        raise ValueError(f"unknown target {target!r}; expected 'log' or 'euclidean'")
    grid = _fine_grid(K)
    vals = fun(grid)
    if vals.max() == 0.0:
        return 0.0
    _, vs = _refine_maxima(fun, grid, vals, keep=0.5)
    return float(max(vs.max(), vals.max()))


def worst_case_second_moment(coefs: Sequence[float] | np.ndarray, K: int) -> float:
    """max_{p in [0,1]} E[c_X^2] = max_p sum_k c_k^2 C(K,k) p^k (1-p)^(K-k).

    All terms are non-negative, so the Binomial-pmf evaluation has no cancellation;
    fine grid plus golden-section refinement as in :func:`worst_case_bias`.
    """
    K = _check_K(K)
    c2 = _check_coefs(coefs, K) ** 2

    def fun(p: np.ndarray) -> np.ndarray:
        return _pmf_matrix(K, p) @ c2

    grid = _fine_grid(K)
    vals = fun(grid)
    if vals.max() == 0.0:
        return 0.0
    _, vs = _refine_maxima(fun, grid, vals, keep=0.5)
    return float(max(vs.max(), vals.max()))


# ---------------------------------------------------------------- lookup and dispatch

def rewards_from_counts(coefs: Sequence[float] | np.ndarray, counts: np.ndarray | Sequence[int]) -> np.ndarray:
    """Vectorised lookup: reward c[X] for every count X in ``counts`` (any shape).

    Counts must be integers in 0..K where K = len(coefs) - 1.
    """
    c = np.asarray(coefs, dtype=float)
    if c.ndim != 1 or c.size < 2:
        raise ValueError("coefs must be a 1-D table c_0..c_K with K >= 1")
    x = np.asarray(counts)
    if x.size and not np.issubdtype(x.dtype, np.integer):
        xi = np.rint(x).astype(np.int64) if np.issubdtype(x.dtype, np.number) else None
        if xi is None or not np.array_equal(xi, x):
            raise ValueError("counts must be integers")
        x = xi
    K = c.size - 1
    if x.size and (x.min() < 0 or x.max() > K):
        raise ValueError(f"counts must lie in 0..{K} (the table has K+1={K + 1} entries)")
    return c[x.astype(np.int64, copy=False)]


def estimator_table(method: str, K: int, beta: float = 1.0, eps: float | None = None) -> np.ndarray:
    """Reward table c_0..c_K estimating beta*log q ("euclidean": beta*(1 - q)) from X of K.

    method: "plugin", "taylor", "minimax_lp", "aqp" (needs eps) or "euclidean".
    """
    if method not in METHODS:
        raise ValueError(f"unknown estimator method {method!r}; expected one of {list(METHODS)}")
    if method == "aqp":
        if eps is None:
            raise ValueError("method 'aqp' needs a bias budget eps")
        return aqp(K, eps, beta)
    if eps is not None:
        raise ValueError(f"eps applies only to method 'aqp', not {method!r}")
    if method == "plugin":
        return plugin_table(K, beta)
    if method == "taylor":
        return taylor_table(K, beta)
    if method == "minimax_lp":
        return minimax_lp(K, beta)
    return euclidean_table(K, beta)
