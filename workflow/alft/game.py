"""The distributional alignment game on enumerable problems (slides, Part I).

Notation (slides, "The ALFT Problem: Formal Setup"): prompts x (rows), traces y
(columns), answers z = E(y) given by ``answer_of_trace``; a policy is a row-stochastic
matrix π (prompts × traces) with answer marginal

    ν_π(z|x) = Σ_{y ∈ E⁻¹(z)} π(y|x).

ALFT problem ("ALFT Optimization Problem"), per prompt and averaged uniformly over
prompts:  J(π) = R(ν_π) + β KL(π ‖ π0).

Game ("The Distributional Alignment Game"), with u = −β log q, q ∈ Δ(Z):

    G(π, q) = β KL(π‖π0) − β E_{y∼π}[log q(E(y))] − R*(−β log q)
            = β KL(π‖π0) + ⟨ν_π, u⟩ − R*(u).

G is convex in π and concave in u = −β log q (not in q itself). Policy best response
("Consistency" theorem, item 2): π*(y|x) ∝ π0(y|x) q(E(y)|x).

Objectives, their conjugates on the simplex of *reachable* answers
Z_x = {z : m(z) > 0} (m(z) = Σ_{E(y)=z} π0(y|x); every π ≪ π0 has ν_π(z) = 0 off Z_x,
so R is taken on Δ(Z_x) and q is reported as 0 off Z_x), and the target best
responses derived from u ∈ ∂R(ν) (Fenchel–Young equality):

* ``expected_reward`` R(ν) = −Σ ν r:  R*(u) = max_z (u(z) + r(z));
  best response u = −r + c, i.e. q* ∝ exp(r/β) (independent of ν) — the slides' row.
* ``neg_entropy`` R(ν) = Σ ν log ν:  R*(u) = log Σ_z exp u(z);
  best response u = log ν + c, i.e. q* ∝ ν^{−1/β} (slides: "∝ 1/ν" is the β = 1 case).
* ``rlvr`` R(ν) = −log ν(g) = KL(δ_g‖ν):  with M = max_{z≠g} u(z), d = M − u(g),
  R*(u) = M − 1 − log d if d ≥ 1, else u(g);
  best response u(z) = c (z ≠ g), u(g) = c − 1/ν(g), i.e.
  q*(z) ∝ exp(1[z = g] / (β ν(g))) — a tilt towards g, not the slides' δ_g
  (δ_g is its limit as β ν(g) → 0).

Exact solution via the answer-space reduction: for a fixed marginal ν the KL-closest π
is π(y) = π0(y) ν(E(y)) / m(E(y)), with KL(π‖π0) = KL(ν‖m), so
J = min_ν R(ν) + β KL(ν‖m):

* expected_reward: ν* ∝ m exp(r/β);
* neg_entropy:     ν* ∝ m^{β/(1+β)};
* rlvr:            ν*(z) = (1−a) m(z)/(1−m(g)) for z ≠ g, ν*(g) = a with
                   logit(a) = logit(m(g)) + 1/(β a)  (1-D root, Newton in logit space).

The duality gap of a pair (π̂, q̂) is max_q G(π̂, q) − min_π G(π, q̂), both evaluated
at the exact best responses (the first equals J(π̂) by Fenchel–Moreau; the second is
−β log Σ_z m(z) q̂(z) − R*(−β log q̂)). Proposition ("ε-approximate equilibrium"):
if the gap is ≤ ε then J(π̂) ≤ J(π*) + ε.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from scipy.special import logsumexp

from alft.errors import ConfigError

OBJECTIVES = ("rlvr", "neg_entropy", "expected_reward")
ROW_SUM_TOL = 1e-6
_INSTANCE_KEYS = {"beta", "objective", "pi0", "answer_of_trace", "num_answers",
                  "ground_truth", "reward"}


# ----------------------------------------------------------------------------------
# Instances
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instance:
    """An enumerable ALFT problem (validated; build with :func:`make_instance`)."""

    beta: float
    objective: str
    pi0: np.ndarray  # (P, Y), rows sum to 1, entries > 0
    answer_of_trace: np.ndarray  # (Y,), ints in [0, num_answers)
    num_answers: int
    ground_truth: np.ndarray | None = None  # (P,), rlvr
    reward: np.ndarray | None = None  # (P, Z), expected_reward
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_prompts(self) -> int:
        return self.pi0.shape[0]

    @property
    def num_traces(self) -> int:
        return self.pi0.shape[1]

    @property
    def E(self) -> sparse.csr_matrix:
        """One-hot answer map as a sparse (traces × answers) matrix: ν = π @ E."""
        if "E" not in self._cache:
            y = self.num_traces
            self._cache["E"] = sparse.csr_matrix(
                (np.ones(y), (np.arange(y), self.answer_of_trace)),
                shape=(y, self.num_answers))
        return self._cache["E"]

    @property
    def log_pi0(self) -> np.ndarray:
        if "log_pi0" not in self._cache:
            self._cache["log_pi0"] = np.log(self.pi0)
        return self._cache["log_pi0"]

    @property
    def m(self) -> np.ndarray:
        """Answer masses of π0, m(z|x) = Σ_{E(y)=z} π0(y|x) (prompts × answers)."""
        if "m" not in self._cache:
            self._cache["m"] = answer_marginal(self.pi0, self)
        return self._cache["m"]

    @property
    def reachable(self) -> np.ndarray:
        """Answers produced by at least one trace (prompts × answers, bool)."""
        if "reach" not in self._cache:
            counts = np.bincount(self.answer_of_trace, minlength=self.num_answers)
            self._cache["reach"] = np.broadcast_to(counts > 0, self.m.shape).copy()
        return self._cache["reach"]


def _fail(field_name: str, msg: str) -> ConfigError:
    return ConfigError(f"instance field {field_name!r}: {msg}")


def _as_array(value: Any, name: str, ndim: int, dtype: type) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise _fail(name, f"must be a {ndim}-D array of numbers ({err})") from err
    if arr.ndim != ndim:
        raise _fail(name, f"must be {ndim}-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise _fail(name, "contains a non-finite value")
    if dtype is int:
        if np.any(arr != np.round(arr)):
            raise _fail(name, "must hold integers")
        return arr.astype(np.int64)
    return arr


def make_instance(beta: Any, objective: Any, pi0: Any, answer_of_trace: Any,
                  num_answers: Any, ground_truth: Any = None, reward: Any = None) -> Instance:
    """Validate and build an :class:`Instance`; errors name the offending field."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.floating, np.integer)):
        raise _fail("beta", f"must be a number, got {beta!r}")
    beta = float(beta)
    if not math.isfinite(beta) or beta <= 0:
        raise _fail("beta", f"must be > 0, got {beta}")
    if objective not in OBJECTIVES:
        raise _fail("objective", f"unknown objective {objective!r}; choose from {list(OBJECTIVES)}")
    if isinstance(num_answers, bool) or not isinstance(num_answers, (int, np.integer)) \
            or num_answers < 1:
        raise _fail("num_answers", f"must be a positive integer, got {num_answers!r}")
    num_answers = int(num_answers)
    p = _as_array(pi0, "pi0", 2, float)
    if p.shape[0] < 1 or p.shape[1] < 1:
        raise _fail("pi0", f"must have at least one prompt and one trace, got shape {p.shape}")
    if np.any(p <= 0):
        r, c = np.argwhere(p <= 0)[0]
        raise _fail("pi0", f"entries must be > 0 (row {r}, column {c} holds {p[r, c]!r})")
    sums = p.sum(axis=1)
    bad = np.abs(sums - 1.0) > ROW_SUM_TOL
    if np.any(bad):
        r = int(np.argmax(bad))
        raise _fail("pi0", f"row {r} sums to {sums[r]!r}, not 1")
    p = p / sums[:, None]
    a = _as_array(answer_of_trace, "answer_of_trace", 1, int)
    if a.shape[0] != p.shape[1]:
        raise _fail("answer_of_trace",
                    f"length {a.shape[0]} does not match the {p.shape[1]} traces of pi0")
    if np.any((a < 0) | (a >= num_answers)):
        i = int(np.argmax((a < 0) | (a >= num_answers)))
        raise _fail("answer_of_trace",
                    f"entry {i} = {a[i]} is out of range [0, {num_answers})")
    gt = rw = None
    if objective == "rlvr":
        if ground_truth is None:
            raise _fail("ground_truth", "is required by objective 'rlvr'")
        gt = _as_array(ground_truth, "ground_truth", 1, int)
        if gt.shape[0] != p.shape[0]:
            raise _fail("ground_truth",
                        f"length {gt.shape[0]} does not match the {p.shape[0]} prompts of pi0")
        if np.any((gt < 0) | (gt >= num_answers)):
            i = int(np.argmax((gt < 0) | (gt >= num_answers)))
            raise _fail("ground_truth", f"entry {i} = {gt[i]} is out of range [0, {num_answers})")
        produced = np.bincount(a, minlength=num_answers) > 0
        if not np.all(produced[gt]):
            i = int(np.argmax(~produced[gt]))
            raise _fail("ground_truth", f"entry {i} = {gt[i]} is produced by no trace "
                        "(−log ν(gt) would be infinite for every policy)")
    elif ground_truth is not None:
        gt = _as_array(ground_truth, "ground_truth", 1, int)
    if objective == "expected_reward":
        if reward is None:
            raise _fail("reward", "is required by objective 'expected_reward'")
        rw = _as_array(reward, "reward", 2, float)
        if rw.shape != (p.shape[0], num_answers):
            raise _fail("reward", f"must have shape (prompts, num_answers) = "
                        f"{(p.shape[0], num_answers)}, got {rw.shape}")
    elif reward is not None:
        rw = _as_array(reward, "reward", 2, float)
    return Instance(beta, objective, p, a, num_answers, gt, rw)


def instance_from_dict(d: Mapping[str, Any]) -> Instance:
    """Build an instance from the JSON object of ``alft game-solve --instance``."""
    if not isinstance(d, Mapping):
        raise ConfigError("instance: must be a JSON object")
    unknown = sorted(set(d) - _INSTANCE_KEYS)
    if unknown:
        raise _fail(unknown[0], f"unknown field; allowed: {sorted(_INSTANCE_KEYS)}")
    for key in ("beta", "objective", "pi0", "answer_of_trace", "num_answers"):
        if key not in d:
            raise _fail(key, "is missing")
    return make_instance(d["beta"], d["objective"], d["pi0"], d["answer_of_trace"],
                         d["num_answers"], d.get("ground_truth"), d.get("reward"))


# ----------------------------------------------------------------------------------
# Basic quantities
# ----------------------------------------------------------------------------------
def answer_marginal(pi: np.ndarray, inst: Instance) -> np.ndarray:
    """ν_π(z|x) = Σ_{y ∈ E⁻¹(z)} π(y|x)  (slides, "Formal Setup")."""
    return np.asarray((inst.E.T @ np.asarray(pi).T).T)


def kl_rows(pi: np.ndarray, inst: Instance) -> np.ndarray:
    """KL(π(·|x) ‖ π0(·|x)) per prompt (0 log 0 = 0)."""
    pi = np.asarray(pi, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(pi > 0, pi * (np.log(pi) - inst.log_pi0), 0.0)
    return t.sum(axis=1)


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(x > 0, y, 1.0)), 0.0)


def R_value(nu: np.ndarray, inst: Instance) -> np.ndarray:
    """R(ν) per prompt for the instance's objective."""
    if inst.objective == "rlvr":
        with np.errstate(divide="ignore"):
            return -np.log(nu[np.arange(nu.shape[0]), inst.ground_truth])
    if inst.objective == "neg_entropy":
        return _xlogy(nu, nu).sum(axis=1)
    return -(nu * inst.reward).sum(axis=1)


def J_value(pi: np.ndarray, inst: Instance) -> np.ndarray:
    """ALFT objective per prompt: R(ν_π) + β KL(π‖π0)."""
    return R_value(answer_marginal(pi, inst), inst) + inst.beta * kl_rows(pi, inst)


def R_conjugate(u: np.ndarray, inst: Instance) -> np.ndarray:
    """R*(u) per prompt, the conjugate over Δ(reachable answers) (module docstring)."""
    reach = inst.reachable
    neg = np.where(reach, u, -np.inf)
    if inst.objective == "neg_entropy":
        return logsumexp(neg, axis=1)
    if inst.objective == "expected_reward":
        return np.max(neg + inst.reward, axis=1)
    rows = np.arange(u.shape[0])
    g = inst.ground_truth
    ug = u[rows, g]
    others = neg.copy()
    others[rows, g] = -np.inf
    big_m = others.max(axis=1)
    d = big_m - ug
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(d >= 1.0, big_m - 1.0 - np.log(np.where(d >= 1.0, d, 1.0)), ug)
    return np.where(np.isfinite(big_m), out, ug)


def _log_q_to_u(log_q: np.ndarray, inst: Instance) -> np.ndarray:
    return np.where(inst.reachable, -inst.beta * log_q, 0.0)


def _log_q(q: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(q, dtype=float))


def game_value(pi: np.ndarray, inst: Instance, q: np.ndarray | None = None,
               log_q: np.ndarray | None = None) -> np.ndarray:
    """G(π, q) per prompt (slides, "The Distributional Alignment Game").

    G = β KL(π‖π0) − β E_{y∼π}[log q(E(y))] − R*(−β log q); pass ``log_q`` for
    stability (q is only read on reachable answers).
    """
    lq = _log_q(q) if log_q is None else np.asarray(log_q, dtype=float)
    u = _log_q_to_u(lq, inst)
    nu = answer_marginal(pi, inst)
    lin = np.where(nu > 0, nu * u, 0.0).sum(axis=1)  # ⟨ν_π, −β log q⟩
    return inst.beta * kl_rows(pi, inst) + lin - R_conjugate(u, inst)


def _normalise_log(lq: np.ndarray, inst: Instance) -> np.ndarray:
    lq = np.where(inst.reachable, lq, -np.inf)
    return lq - logsumexp(lq, axis=1, keepdims=True)


# ----------------------------------------------------------------------------------
# Best responses
# ----------------------------------------------------------------------------------
def policy_best_response(inst: Instance, q: np.ndarray | None = None,
                         log_q: np.ndarray | None = None) -> np.ndarray:
    """π*(y|x) ∝ π0(y|x) q(E(y)|x)  (slides, Consistency theorem, item 2), in log space."""
    lq = _log_q(q) if log_q is None else np.asarray(log_q, dtype=float)
    logits = inst.log_pi0 + lq[:, inst.answer_of_trace]
    logits -= logsumexp(logits, axis=1, keepdims=True)
    return np.exp(logits)


def policy_best_response_value(inst: Instance, q: np.ndarray | None = None,
                               log_q: np.ndarray | None = None) -> np.ndarray:
    """min_π G(π, q) = −β log Σ_z m(z) q(z) − R*(−β log q), per prompt (dual function)."""
    lq = _log_q(q) if log_q is None else np.asarray(log_q, dtype=float)
    with np.errstate(divide="ignore"):
        lm = np.log(inst.m)
    lse = logsumexp(np.where(inst.reachable, lm + lq, -np.inf), axis=1)
    return -inst.beta * lse - R_conjugate(_log_q_to_u(lq, inst), inst)


def target_best_response_log(nu: np.ndarray, inst: Instance) -> np.ndarray:
    """log q*(·|x) = argmax_q G(π, q) given ν = ν_π (module docstring), normalised.

    rlvr: q* ∝ exp(1[z=g]/(β ν(g)));  neg_entropy: q* ∝ ν^{−1/β};
    expected_reward: q* ∝ exp(r/β).
    """
    beta = inst.beta
    if inst.objective == "expected_reward":
        lq = inst.reward / beta
    elif inst.objective == "neg_entropy":
        with np.errstate(divide="ignore"):
            lq = -np.log(nu) / beta
        lq = np.where(np.isfinite(lq), lq, 0.0)  # ν(z) = 0 only off-support: unused
    else:
        rows = np.arange(nu.shape[0])
        lq = np.zeros_like(nu)
        with np.errstate(divide="ignore"):
            lq[rows, inst.ground_truth] = 1.0 / (beta * nu[rows, inst.ground_truth])
    return _normalise_log(lq, inst)


def target_best_response(nu: np.ndarray, inst: Instance) -> np.ndarray:
    return np.exp(target_best_response_log(nu, inst))


def duality_gap(pi: np.ndarray, inst: Instance, q: np.ndarray | None = None,
                log_q: np.ndarray | None = None) -> float:
    """max_q G(π̂, q) − min_π G(π, q̂), with G averaged uniformly over prompts."""
    lq = _log_q(q) if log_q is None else np.asarray(log_q, dtype=float)
    nu = answer_marginal(pi, inst)
    upper = game_value(pi, inst, log_q=target_best_response_log(nu, inst))
    lower = policy_best_response_value(inst, log_q=lq)
    return float(np.mean(upper) - np.mean(lower))


# ----------------------------------------------------------------------------------
# Solvers
# ----------------------------------------------------------------------------------
@dataclass
class Solution:
    pi: np.ndarray
    log_q: np.ndarray
    objective: np.ndarray  # J per prompt
    iterations: int
    gap: float
    gap_history: list[float] = field(default_factory=list)

    @property
    def q(self) -> np.ndarray:
        return np.exp(self.log_q)

    def to_json(self) -> dict[str, Any]:
        return {"pi": self.pi, "q": self.q, "objective": self.objective,
                "iterations": int(self.iterations), "gap": float(self.gap)}


def _finish(inst: Instance, pi: np.ndarray, log_q: np.ndarray, iterations: int,
            history: list[float] | None = None) -> Solution:
    return Solution(pi, log_q, J_value(pi, inst), iterations,
                    duality_gap(pi, inst, log_q=log_q), history or [])


def _lift(inst: Instance, nu: np.ndarray) -> np.ndarray:
    """π(y) = π0(y) ν(E(y)) / m(E(y)): the KL-closest policy with marginal ν."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(inst.m > 0, nu / inst.m, 0.0)
    return inst.pi0 * ratio[:, inst.answer_of_trace]


def _rlvr_mass(m_g: np.ndarray, beta: float, tol: float = 1e-15,
               max_iter: int = 200) -> tuple[np.ndarray, int]:
    """Root a of logit(a) = logit(m_g) + 1/(β a), by Newton in t = logit(a).

    h(t) = β (t − t0) − 1 − e^{−t} is increasing and convex, so Newton started right
    of the root (t = t0 + (1 + e^{−t0})/β) decreases monotonically to it.
    """
    one = m_g >= 1.0
    mg = np.clip(m_g, 1e-300, 1 - 1e-16)
    t0 = np.log(mg) - np.log1p(-mg)
    t = t0 + (1.0 + np.exp(-t0)) / beta
    it = 0
    for it in range(1, max_iter + 1):
        e = np.exp(-t)
        step = (beta * (t - t0) - 1.0 - e) / (beta + e)
        t = t - step
        if np.all(np.abs(step) <= tol * (1.0 + np.abs(t))):
            break
    a = 1.0 / (1.0 + np.exp(-t))
    return np.where(one, 1.0, a), it


def optimal_marginal(inst: Instance) -> tuple[np.ndarray, int]:
    """ν* = argmin_ν R(ν) + β KL(ν‖m) in closed form / 1-D root (module docstring)."""
    m, beta, reach = inst.m, inst.beta, inst.reachable
    with np.errstate(divide="ignore"):
        lm = np.where(reach, np.log(m), -np.inf)
    if inst.objective == "expected_reward":
        lv = lm + inst.reward / beta
        return np.exp(lv - logsumexp(lv, axis=1, keepdims=True)), 1
    if inst.objective == "neg_entropy":
        lv = lm * (beta / (1.0 + beta))
        return np.exp(lv - logsumexp(lv, axis=1, keepdims=True)), 1
    rows = np.arange(m.shape[0])
    g = inst.ground_truth
    m_g = m[rows, g]
    a, iters = _rlvr_mass(m_g, beta)
    rest = np.maximum(1.0 - m_g, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(rest > 0, (1.0 - a) / rest, 0.0)
    nu = m * scale[:, None]
    nu[rows, g] = a
    return nu, iters


def solve_exact(inst: Instance) -> Solution:
    """The unique Nash equilibrium: ν* in answer space, q* = BR(ν*), π* = BR(q*)."""
    nu, iters = optimal_marginal(inst)
    log_q = target_best_response_log(nu, inst)
    pi = policy_best_response(inst, log_q=log_q)
    return _finish(inst, pi, log_q, iters)


def alternating_best_response(inst: Instance, iters: int = 1000, damping: float = 1.0,
                              tol: float = 1e-10) -> Solution:
    """Alternate q ← BR(π), π ← BR(q) (slides, "Alternating Best Response").

    ``damping`` λ ∈ (0, 1] averages in u = −β log q space: u ← (1−λ) u + λ u_BR.
    Undamped it need not converge: for neg_entropy the iteration is
    log ν ← log m − (1/β) log ν + c, which oscillates for β ≤ 1.
    """
    pi = inst.pi0.copy()
    lq = target_best_response_log(answer_marginal(pi, inst), inst)
    history = []
    it = 0
    for it in range(1, iters + 1):
        pi = policy_best_response(inst, log_q=lq)
        new = target_best_response_log(answer_marginal(pi, inst), inst)
        lq = _normalise_log(np.where(inst.reachable, (1 - damping) * lq + damping * new, 0.0),
                            inst)
        history.append(duality_gap(pi, inst, log_q=lq))
        if history[-1] <= tol:
            break
    return _finish(inst, pi, lq, it, history)


def solve_no_regret(inst: Instance, iters: int = 2000, eta: float | None = None,
                    optimistic: bool = True, tol: float = 0.0) -> Solution:
    """No-regret dynamics on G: entropic mirror descent for π, gradient ascent for u.

    Policy (minimiser, trace space): log π_{t+1} = log π_t − η ∇_π G, with
    ∇_π G(y) = β(log π/π0 + 1) + u(E(y)) (multiplicative weights / Hedge).
    Target (maximiser, concave in u = −β log q): u_{t+1} = u_t + η ∂_u G with
    ∂_u G = ν_π − ∂R*(u); q = softmax(−u/β). ``optimistic`` uses the extrapolated
    gradient 2 g_t − g_{t−1} (optimistic mirror descent). Returns the averaged
    iterates (O(1/√T) gap for plain no-regret play; faster in practice).
    """
    beta = inst.beta
    eta = min(0.5 / beta, 0.5) if eta is None else eta
    reach = inst.reachable
    lpi = inst.log_pi0.copy()
    u = np.zeros_like(inst.m)
    g_pi_prev = None
    g_u_prev = None
    sum_pi = np.zeros_like(inst.pi0)
    sum_u = np.zeros_like(u)
    history = []
    it = 0
    for it in range(1, iters + 1):
        pi = np.exp(lpi)
        nu = answer_marginal(pi, inst)
        g_pi = beta * (lpi - inst.log_pi0) + u[:, inst.answer_of_trace]
        g_u = np.where(reach, nu - _conjugate_grad(u, inst), 0.0)
        d_pi = 2 * g_pi - g_pi_prev if (optimistic and g_pi_prev is not None) else g_pi
        d_u = 2 * g_u - g_u_prev if (optimistic and g_u_prev is not None) else g_u
        g_pi_prev, g_u_prev = g_pi, g_u
        lpi = lpi - eta * d_pi
        lpi -= logsumexp(lpi, axis=1, keepdims=True)
        u = u + eta * d_u
        sum_pi += np.exp(lpi)
        sum_u += u
        if tol > 0 or it == iters:
            pbar, ubar = sum_pi / it, sum_u / it
            lq = _normalise_log(np.where(reach, -ubar / beta, 0.0), inst)
            history.append(duality_gap(pbar, inst, log_q=lq))
            if history[-1] <= tol:
                break
    pbar, ubar = sum_pi / it, sum_u / it
    lq = _normalise_log(np.where(reach, -ubar / beta, 0.0), inst)
    return _finish(inst, pbar, lq, it, history)


def _conjugate_grad(u: np.ndarray, inst: Instance) -> np.ndarray:
    """A (sub)gradient of R*(u), i.e. the ν maximising ⟨ν,u⟩ − R(ν)."""
    reach = inst.reachable
    neg = np.where(reach, u, -np.inf)
    if inst.objective == "neg_entropy":
        return np.exp(neg - logsumexp(neg, axis=1, keepdims=True))
    if inst.objective == "expected_reward":
        s = neg + inst.reward
        out = (s == s.max(axis=1, keepdims=True)).astype(float)
        return out / out.sum(axis=1, keepdims=True)
    rows = np.arange(u.shape[0])
    g = inst.ground_truth
    others = neg.copy()
    others[rows, g] = -np.inf
    arg = np.argmax(others, axis=1)
    big_m = others[rows, arg]
    d = big_m - u[rows, g]
    a = np.where(np.isfinite(big_m) & (d >= 1.0), 1.0 / np.where(d >= 1.0, d, 1.0), 1.0)
    out = np.zeros_like(u)
    has_other = np.isfinite(big_m)
    out[rows[has_other], arg[has_other]] = 1.0 - a[has_other]
    out[rows, g] = a
    return out


SOLVERS = {"exact": solve_exact, "alternating": alternating_best_response,
           "no_regret": solve_no_regret}


def solve(inst: Instance, method: str = "exact", **kwargs: Any) -> Solution:
    if method not in SOLVERS:
        raise ConfigError(f"solver method {method!r} unknown; choose from {sorted(SOLVERS)}")
    return SOLVERS[method](inst, **kwargs)


def random_instance(objective: str, prompts: int, traces: int, answers: int, beta: float,
                    rng: np.random.Generator, spread: float = 1.0) -> Instance:
    """A random instance with every answer reachable (for tests and demos)."""
    logits = rng.normal(scale=spread, size=(prompts, traces))
    pi0 = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    a = np.concatenate([np.arange(answers), rng.integers(0, answers, traces - answers)])
    rng.shuffle(a)
    gt = rng.integers(0, answers, prompts)
    rw = rng.normal(size=(prompts, answers))
    return make_instance(beta, objective, pi0, a, answers, gt, rw)
