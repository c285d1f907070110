"""Safety row of the game: R(ν) = 𝕀_C(ν), C = {ν : E_ν[c(z)] ≤ τ} (slides, "Safety-GRPO").

Cost c(z) ∈ [0, 1] (the probability that answer/completion z is unsafe when c is an
indicator or a classifier's probability), budget τ.

I-projection (:func:`i_projection`). Proj_C(ν) = argmin_{q ∈ C} KL(q ‖ ν) is the
exponential tilt q_λ ∝ ν·exp(−λ c) with λ ≥ 0 the root of E_{q_λ}[c] = τ (or λ = 0 when
ν ∈ C already). λ is the maximiser of the concave dual D(λ) = −log Σ ν e^{−λc} − λτ,
whose derivative E_{q_λ}[c] − τ decreases strictly in λ (D'' = −Var_{q_λ}(c)). The
root is found by :func:`scipy.optimize.brentq` in s = log λ after bracketing by
doubling steps; q is computed from log ν − λ(c − c_min) with logsumexp, so λ up to
~1e300 is safe. Edge cases: ν ∈ C → (ν, 0); τ below min_{supp ν} c → ValueError
(C ∩ {q ≪ ν} is empty); τ equal to that minimum → the limit λ → ∞: ν restricted to
its minimum-cost answers (λ = inf); zeros of ν stay zero.

Exact solution of the enumerable game (:func:`solve_constrained`). Per prompt
min_π β KL(π‖π0) s.t. E_{ν_π}[c] ≤ τ reduces to answer space exactly as in
:mod:`alft.game` (KL(π‖π0) ≥ KL(ν_π‖m), equality for the lift π = π0 ν(E(y))/m(E(y))):
ν* = Proj_C(m) with m = ν_{π0}, and π* = π0 ν*(E(y))/m(E(y)) ∝ π0 exp(−λ* c(E(y))).
β does not move the argmin (R is an indicator); the multiplier of the constraint in
units of J is β λ*.

Game view and the primal–dual update (:class:`PrimalDual`). R*(u) = sup_{ν∈C} ⟨ν, u⟩,
and the target's best response u ∈ ∂R(ν) is the normal cone of C:
u = −β log q with q ∝ exp(−λ c), λ ≥ 0 the Lagrange multiplier (complementary
slackness: λ > 0 only on an active constraint). The policy's best response is
π ∝ π0 exp(−λ c(E(y))); its answer marginal is Proj_C(ν_{π0}) at λ = λ*, which is the
slides' "q* = Proj_C(ν_π)". λ is not known in advance: projected dual ascent on the
measured constraint value Ê[c] of the current policy,

    λ ← max(0, λ + η (Ê[c] − τ)),

is gradient ascent on the dual D (Lipschitz gradient, L = max Var(c) ≤ 1/4, so any
η < 8 converges for exact Ê; the default η = 2 is safe) and is the "Lagrange
multipliers as dynamic penalty weights" of the slides.

Which reward (decision). Two are offered by :func:`safety_targets`:

* ``"tilt"`` (default): reward = β log(q*/ν̂)(z) = −β λ c(z) + const, with
  q* = Proj ν̂ ∝ ν̂ e^{−λc}. This is the game's target best response u = βλc (the
  normal-cone element above); GRPO with a KL term to π0 then targets
  π ∝ π0 e^{−λc}, whose fixed point under the dual update is the constrained optimum
  (verified exactly by :func:`primal_dual_game` and the tests). It needs no estimate
  of log ν̂: the only estimated quantity is Ê[c], an unbiased sample mean.
* ``"projection"``: the slides' literal reward β log q*(z) = β(log ν̂(z) − λ c(z)) +
  const with q* = Proj_C(ν̂), log ν̂ estimated by a table of :mod:`alft.estimators`
  (plug-in, taylor, minimax_lp, aqp; the plug-in log has the O(1/K) bias that punishes
  rare answers, slides Part II). Beware: the log ν̂ term rewards frequent answers; a
  policy step anchored at π0 (or at the previous policy) against it computes
  ν ← m·ν·e^{−λc}/Z, which is mode-seeking and does *not* converge to the
  constrained optimum (a test demonstrates the collapse). Use it to reproduce the
  slides' wording, not as the default.

Note for GRPO: with group-standardised advantages (TRL ``scale_rewards="group"``)
the tilt reward −βλc becomes −standardise(c) for every λ > 0, so λ only switches the
push on and off; use ``scale_rewards="none"`` (or "batch") with TRL's KL weight equal to
β for λ to act as a penalty weight, or add a task reward (``SafetyReward(base=...)``).

Scorers. A scorer maps completion texts to costs in [0, 1] (:class:`Scorer`):
:class:`ProfanityScorer` (offline: alt-profanity-check's packaged linear SVM),
:class:`DetoxifyScorer` (detoxify; weights from the hub), :class:`AnswerSetScorer`
(the builtin task's stand-in: see :func:`builtin_unsafe`), and :func:`load_scorer` for
a short name or a ``"module:attr"`` entry point named in the config.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import logsumexp

from alft.errors import ConfigError, DataError

__all__ = [
    "i_projection", "tilt", "dual_value", "PrimalDual", "ConstrainedSolution",
    "solve_constrained", "primal_dual_game", "safety_targets", "constraint_value",
    "SafetyReward", "Scorer", "ScorerUnavailable", "ProfanityScorer", "DetoxifyScorer",
    "AnswerSetScorer", "builtin_unsafe", "BUILTIN_UNSAFE_MODULUS", "SCORERS", "load_scorer",
    "check_scores", "harmful_orbits_from_gold", "safety_metrics",
]

_LOG_LAMBDA_MIN = -700.0  # λ = e^-700 ≈ 1e-304: below this the tilt is the identity
_LOG_LAMBDA_MAX = 700.0   # λ = e^700 ≈ 1e304
TAU_ATOL = 1e-12  # τ within this of min cost counts as "equal" (limit case)


# ----------------------------------------------------------------- I-projection
def _check_dist(nu: Any, name: str = "nu") -> np.ndarray:
    v = np.asarray(nu, dtype=float)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {v.shape}")
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError(f"{name} must hold finite non-negative numbers")
    s = v.sum()
    if s <= 0:
        raise ValueError(f"{name} has no mass")
    return v / s


def _check_cost(cost: Any, n: int) -> np.ndarray:
    c = np.asarray(cost, dtype=float)
    if c.shape != (n,):
        raise ValueError(f"cost must have shape ({n},) like nu, got {c.shape}")
    if not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c > 1):
        raise ValueError("cost must lie in [0, 1]")
    return c


def _check_tau(tau: Any) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(tau)):
        raise ValueError(f"tau must be a finite number, got {tau!r}")
    return float(tau)


def tilt(nu: Any, cost: Any, lam: float) -> np.ndarray:
    """q_λ ∝ ν·exp(−λ c), computed in log space (λ = inf: ν on its minimum-cost answers)."""
    v = _check_dist(nu)
    c = _check_cost(cost, v.size)
    return _tilt(v, c, float(lam))


def _tilt(v: np.ndarray, c: np.ndarray, lam: float) -> np.ndarray:
    sup = v > 0
    cmin = c[sup].min()
    if lam == 0:
        return v.copy()
    if math.isinf(lam):
        keep = sup & (c <= cmin)
        out = np.where(keep, v, 0.0)
        return out / out.sum()
    with np.errstate(divide="ignore"):
        lv = np.where(sup, np.log(np.where(sup, v, 1.0)) - lam * (c - cmin), -np.inf)
    return np.exp(lv - logsumexp(lv))


def _excess(v: np.ndarray, c: np.ndarray, lam: float, slack: float) -> float:
    """E_{q_λ}[c − c_min] − (τ − c_min): decreasing in λ."""
    q = _tilt(v, c, lam)
    cmin = c[v > 0].min()
    return float(np.dot(q, c - cmin) - slack)


def dual_value(nu: Any, cost: Any, tau: float, lam: float) -> float:
    """D(λ) = −log Σ ν e^{−λc} − λτ = min_q KL(q‖ν) + λ(E_q c − τ); max_λ≥0 D = KL(Proj ν ‖ ν)."""
    v = _check_dist(nu)
    c = _check_cost(cost, v.size)
    sup = v > 0
    return float(-logsumexp(np.log(v[sup]) - lam * c[sup]) - lam * float(tau))


def i_projection(nu: Any, cost: Any, tau: float, *, xtol: float = 1e-14) -> tuple[np.ndarray, float]:
    """Proj_C(ν) = argmin_{q: E_q[c] ≤ τ} KL(q ‖ ν) and its tilt λ (q ∝ ν e^{−λc}).

    ``nu`` is a distribution over answers (normalised here; zeros allowed, they stay
    zero), ``cost`` c(z) ∈ [0, 1] of the same shape, ``tau`` the budget. Returns
    ``(q, lam)``: ``lam = 0.0`` when ν is feasible (q = ν), ``lam = inf`` when τ equals
    the minimum cost over ν's support (q = ν restricted to the minimum-cost answers).
    Raises ValueError when τ is below that minimum (no q ≪ ν is feasible).
    """
    v = _check_dist(nu)
    c = _check_cost(cost, v.size)
    tau = _check_tau(tau)
    sup = v > 0
    mean = float(np.dot(v, c))
    if mean <= tau:
        return v.copy(), 0.0
    cmin = float(c[sup].min())
    if tau < cmin - TAU_ATOL:
        raise ValueError(f"safety budget tau={tau!r} is infeasible: every answer with positive "
                         f"probability costs at least {cmin!r} (min over the support of nu), so "
                         f"no distribution q << nu has E_q[c] <= tau")
    if tau <= cmin + TAU_ATOL:
        return _tilt(v, c, math.inf), math.inf
    slack = tau - cmin

    def f(s: float) -> float:
        return _excess(v, c, math.exp(s), slack)

    # bracket in s = log λ: f(s) > 0 at lo, < 0 at hi
    lo, hi = 0.0, 0.0
    if f(0.0) > 0:
        step = 1.0
        hi = step
        while f(hi) > 0:
            lo = hi
            step *= 2
            hi = min(hi + step, _LOG_LAMBDA_MAX)
            if hi >= _LOG_LAMBDA_MAX and f(hi) > 0:  # numerically the limit case
                return _tilt(v, c, math.inf), math.inf
    else:
        step = 1.0
        lo = -step
        while f(lo) <= 0:
            hi = lo
            step *= 2
            lo = max(lo - step, _LOG_LAMBDA_MIN)
            if lo <= _LOG_LAMBDA_MIN and f(lo) <= 0:  # τ a hair below E_ν[c]
                lam = math.exp(_LOG_LAMBDA_MIN)
                return _tilt(v, c, lam), lam
    if f(hi) == 0:
        s = hi
    else:
        s = brentq(f, lo, hi, xtol=xtol, rtol=4 * np.finfo(float).eps, maxiter=500)
    lam = math.exp(s)
    return _tilt(v, c, lam), lam


# ------------------------------------------------------------------ primal–dual
@dataclass
class PrimalDual:
    """Lagrange multiplier(s) carried from round to round (projected dual ascent).

    ``lam`` is the tilt exponent (target q ∝ ν̂ e^{−λc}); a float for one global
    constraint, or an array (e.g. one λ per prompt, as in the per-prompt game). The
    multiplier in units of the objective J is β λ. ``history`` records
    (measured Ê[c], λ after the update) per call of :meth:`update`.
    """

    tau: float
    eta: float = 2.0
    lam: Any = 0.0
    lam_max: float = 1e6
    history: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        tau = np.asarray(self.tau, dtype=float)
        if not np.all(np.isfinite(tau)):
            raise ConfigError(f"safety budget tau must be finite, got {self.tau!r}")
        self.tau = float(tau) if tau.ndim == 0 else tau
        if not (isinstance(self.eta, (int, float)) and self.eta > 0 and math.isfinite(self.eta)):
            raise ConfigError(f"safety dual step eta must be a positive number, got {self.eta!r}")
        lam = np.asarray(self.lam, dtype=float)
        if not np.all(np.isfinite(lam)) or np.any(lam < 0):
            raise ConfigError(f"safety multiplier lambda must be finite and >= 0, got {self.lam!r}")
        self.lam = float(lam) if lam.ndim == 0 else lam

    def update(self, measured: Any) -> Any:
        """λ ← clip(λ + η(Ê[c] − τ), 0, lam_max) on the measured constraint value(s)."""
        m = np.asarray(measured, dtype=float)
        if not np.all(np.isfinite(m)):
            raise DataError(f"measured constraint value must be finite, got {measured!r}")
        new = np.clip(np.asarray(self.lam) + self.eta * (m - self.tau), 0.0, self.lam_max)
        self.lam = float(new) if new.ndim == 0 else new
        self.history.append({"measured": m.tolist(), "lam": np.asarray(self.lam).tolist()})
        return self.lam

    def target(self, nu_hat: Any, cost: Any) -> np.ndarray:
        """q* ∝ ν̂ e^{−λc} (the tilt at the current λ; the I-projection when λ = λ*)."""
        return tilt(nu_hat, cost, float(self.lam))

    def reward(self, cost: Any, beta: float = 1.0) -> np.ndarray:
        """The tilt reward β log(q*/ν̂) = −β λ c (+ const), per answer or completion.

        With one λ per row (array ``lam`` of shape (P,)) and a (P, Z) cost, row i uses λ_i.
        """
        lam = np.asarray(self.lam, dtype=float)
        c = np.asarray(cost, dtype=float)
        if lam.ndim == 1 and c.ndim == 2:
            lam = lam[:, None]
        return -beta * lam * c

    def to_dict(self) -> dict[str, Any]:
        return {"tau": np.asarray(self.tau).tolist(), "eta": self.eta, "lam": np.asarray(self.lam).tolist(),
                "lam_max": self.lam_max, "history": list(self.history)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PrimalDual:
        try:
            return cls(tau=d["tau"], eta=d["eta"], lam=d.get("lam", 0.0),
                       lam_max=d.get("lam_max", 1e6), history=list(d.get("history", [])))
        except KeyError as err:
            raise ConfigError(f"safety dual state: missing key {err.args[0]!r}") from err


# ------------------------------------------------------------- enumerable game
@dataclass
class ConstrainedSolution:
    pi: np.ndarray        # (P, Y) policy
    nu: np.ndarray        # (P, Z) answer marginal
    lam: np.ndarray       # (P,) tilt exponents (inf in the limit case); J-multiplier = β·lam
    log_q: np.ndarray     # (P, Z) target q ∝ exp(−λ c) on reachable answers (−inf elsewhere)
    objective: np.ndarray  # (P,) β KL(π‖π0)
    constraint: np.ndarray  # (P,) E_{ν}[c]
    iterations: int = 0
    lam_history: list[np.ndarray] = field(default_factory=list)


def _setup(pi0: Any, answer_of_trace: Any, cost: Any, tau: Any, beta: float):
    from alft.game import make_instance

    p = np.atleast_2d(np.asarray(pi0, dtype=float))
    a = np.asarray(answer_of_trace)
    c = np.atleast_1d(np.asarray(cost, dtype=float))
    nz = c.shape[-1]
    # objective "expected_reward" with r = 0: R = 0 plus the constraint handled here
    inst = make_instance(beta, "expected_reward", p, a, int(nz), reward=np.zeros((p.shape[0], nz)))
    c = np.broadcast_to(c, inst.m.shape).astype(float)
    if not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c > 1):
        raise ValueError("cost must lie in [0, 1]")
    t = np.broadcast_to(np.asarray(tau, dtype=float), (p.shape[0],))
    return inst, c, t


def _lift(inst, nu: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(inst.m > 0, nu / inst.m, 0.0)
    return inst.pi0 * ratio[:, inst.answer_of_trace]


def _tilt_log_q(inst, c: np.ndarray, lam: np.ndarray) -> np.ndarray:
    lam = np.asarray(lam, dtype=float)[:, None]
    with np.errstate(invalid="ignore"):
        lq = np.where(np.isinf(lam), np.where(c <= np.where(inst.reachable, c, np.inf).min(
            axis=1, keepdims=True), 0.0, -np.inf), -lam * c)
    lq = np.where(inst.reachable, lq, -np.inf)
    return lq - logsumexp(lq, axis=1, keepdims=True)


def solve_constrained(pi0: Any, answer_of_trace: Any, cost: Any, tau: Any,
                      beta: float) -> ConstrainedSolution:
    """Exact argmin_π β KL(π‖π0) s.t. E_{ν_π}[c] ≤ τ, per prompt (module docstring).

    ``pi0``: (P, Y) or (Y,) positive rows summing to 1; ``answer_of_trace``: (Y,) ints in
    [0, Z); ``cost``: (Z,) or (P, Z) in [0, 1]; ``tau``: scalar or (P,). ν* = Proj_C(m),
    π* = π0 ν*(E(y))/m(E(y)).
    """
    from alft.game import kl_rows

    inst, c, t = _setup(pi0, answer_of_trace, cost, tau, beta)
    nus, lams = [], []
    for i in range(inst.num_prompts):
        try:
            q, lam = i_projection(inst.m[i], c[i], float(t[i]))
        except ValueError as err:
            raise ValueError(f"prompt {i}: {err}") from err
        nus.append(q)
        lams.append(lam)
    nu = np.array(nus)
    pi = _lift(inst, nu)
    lam = np.array(lams)
    return ConstrainedSolution(pi, nu, lam, _tilt_log_q(inst, c, lam), beta * kl_rows(pi, inst),
                               (nu * c).sum(axis=1), 1)


def primal_dual_game(pi0: Any, answer_of_trace: Any, cost: Any, tau: Any, beta: float,
                     eta: float = 2.0, iters: int = 5000, tol: float = 1e-13,
                     reward: str = "tilt") -> ConstrainedSolution:
    """The primal–dual game iteration on the enumerable game (exact expectations).

    Each round, with a :class:`PrimalDual` state holding one λ per prompt:
    target step q ∝ exp(−λc) (``reward="tilt"``: reward −βλc) — or the literal
    q ∝ ν_π e^{−λc} (``reward="projection"``: reward β(log ν_π − λc)); policy step
    = the policy best response to the reward with KL to π0,
    π ∝ π0 exp(reward(E(y))/β) (:func:`alft.game.policy_best_response`); then the
    dual step λ ← max(0, λ + η(E_{ν_π}[c] − τ)). Stops when λ moves by < tol.
    """
    from alft.game import answer_marginal, kl_rows, policy_best_response

    if reward not in ("tilt", "projection"):
        raise ConfigError(f"safety reward {reward!r} unknown; choose 'tilt' or 'projection'")
    inst, c, t = _setup(pi0, answer_of_trace, cost, tau, beta)
    state = PrimalDual(tau=t, eta=eta, lam=np.zeros(inst.num_prompts))
    pi = inst.pi0.copy()
    nu = answer_marginal(pi, inst)
    history = []
    it = 0
    for it in range(1, iters + 1):
        r = state.reward(c, beta) / beta  # (P, Z) log-weights −λc
        if reward == "projection":
            with np.errstate(divide="ignore"):
                r = r + np.log(nu)
        lq = np.where(inst.reachable, r, -np.inf)
        lq = lq - logsumexp(lq, axis=1, keepdims=True)
        pi = policy_best_response(inst, log_q=lq)
        nu = answer_marginal(pi, inst)
        old = np.array(state.lam, copy=True)
        state.update((nu * c).sum(axis=1))
        history.append(np.array(state.lam, copy=True))
        if np.max(np.abs(state.lam - old)) < tol:
            break
    lam = np.asarray(state.lam, dtype=float)
    r = -lam[:, None] * c
    lq = np.where(inst.reachable, r, -np.inf)
    lq = lq - logsumexp(lq, axis=1, keepdims=True)
    return ConstrainedSolution(pi, nu, lam, lq, beta * kl_rows(pi, inst), (nu * c).sum(axis=1),
                               it, history)


# ------------------------------------------------------------ pipeline helpers
def constraint_value(samples: pd.DataFrame, cost_col: str = "cost") -> float:
    """Ê[c]: mean over prompts (orbit_id, member) of the per-prompt mean cost."""
    for col in ("orbit_id", "member", cost_col):
        if col not in samples.columns:
            raise DataError(f"samples: missing column {col!r}; found {list(samples.columns)}")
    c = pd.to_numeric(samples[cost_col], errors="coerce")
    if not np.all(np.isfinite(c)):
        raise DataError(f"samples: column {cost_col!r} has a non-numeric or non-finite value")
    return float(c.groupby([samples["orbit_id"], samples["member"]]).mean().mean())


def harmful_orbits_from_gold(gold: Mapping[int, str],
                             unsafe: Callable[[str | None], bool] | None = None) -> set[int]:
    """The builtin task's STAND-IN harmful prompt set: orbits whose gold answer is unsafe.

    With :func:`builtin_unsafe` these are the problems whose correct answer is a
    multiple of 7, i.e. those where a *correct* completion is an "unsafe" output. Only
    the safety metrics read it (harmful vs benign reporting); the target step and the
    dual update never see the split or the gold answers. Not a notion of harm.
    ``unsafe`` defaults to :func:`builtin_unsafe`.
    """
    pred = builtin_unsafe if unsafe is None else unsafe
    return {int(o) for o, g in gold.items() if pred(g)}


def safety_metrics(scored: pd.DataFrame, harmful: Iterable[int] | None = None,
                   gold: Mapping[int, str] | None = None, task: str = "builtin",
                   threshold: float = 0.5, cost_col: str = "cost") -> dict[str, float]:
    """The slides' Safety-GRPO table for one policy, from its scored samples.

    ``scored``: orbit_id, member, answer (str or null) and ``cost_col`` c ∈ [0, 1] per
    sample. ``harmful``: the orbit ids of the harmful prompts (reporting only; None: no
    split, every prompt counts as benign and the harmful columns are NaN). ``gold``:
    orbit_id -> answer for the accuracies (NaN without). Returned (prompt = (orbit,
    member); sample shares are over samples):

    * ``constraint_value`` — Ê[c] over all prompts (:func:`constraint_value`), the
      measured E_ν[c] of C = {ν : E_ν[c] ≤ τ} that the dual update λ ← max(0, λ + η(Ê[c] − τ))
      reads;
    * ``harmful_cost`` — Ê[c] on the harmful prompts ("harmful toxicity");
      ``harmful_unsafe_share`` — share of their samples with c ≥ ``threshold``
      ("toxic @0.5"); ``harmful_accuracy`` — share of their samples that are correct;
    * ``benign_cost``, ``benign_non_refusal`` (share of benign samples with an
      extractable answer: a completion without one is the builtin task's "refusal"),
      ``benign_accuracy`` (share of benign samples that are correct);
    * counts ``n_samples``, ``n_prompts``, ``n_harmful_prompts``, ``n_benign_prompts``.
    """
    from alft.diversity import mark_correct

    for col in ("orbit_id", "member", "answer", cost_col):
        if col not in scored.columns:
            raise DataError(f"scored samples: missing column {col!r}; found {list(scored.columns)}")
    if not 0 <= threshold <= 1:
        raise ConfigError(f"safety threshold must lie in [0, 1], got {threshold!r}")
    df = scored[["orbit_id", "member", "answer", cost_col]].rename(columns={cost_col: "cost"})
    df["answer"] = df["answer"].map(lambda v: v if isinstance(v, str) and v != "" else None)
    cost = pd.to_numeric(df["cost"], errors="coerce").to_numpy(float)
    if not np.all(np.isfinite(cost)) or np.any(cost < 0) or np.any(cost > 1):
        row = int(np.flatnonzero(~(np.isfinite(cost) & (cost >= 0) & (cost <= 1)))[0])
        raise DataError(f"scored samples: row {row}: cost {df['cost'].iloc[row]!r} is not in [0, 1]")
    df["cost"] = cost
    orbit = df["orbit_id"].astype(int)
    if gold:
        df = mark_correct(df, gold, task)
    nan = float("nan")
    is_harm = orbit.isin(set(int(o) for o in harmful)) if harmful is not None \
        else pd.Series(False, index=df.index)

    def n_prompts(part: pd.DataFrame) -> int:
        return int(part.groupby(["orbit_id", "member"]).ngroups)

    def mean_cost(part: pd.DataFrame) -> float:
        return constraint_value(part) if len(part) else nan

    def acc(part: pd.DataFrame) -> float:
        return float(part["correct"].mean()) if gold and len(part) else nan

    harm, benign = df[is_harm.to_numpy()], df[~is_harm.to_numpy()]
    no_split = harmful is None
    return {
        "n_samples": int(len(df)),
        "n_prompts": n_prompts(df),
        "n_harmful_prompts": 0 if no_split else n_prompts(harm),
        "n_benign_prompts": n_prompts(benign),
        "constraint_value": mean_cost(df),
        "harmful_cost": nan if no_split else mean_cost(harm),
        "harmful_unsafe_share": (float((harm["cost"] >= threshold).mean())
                                 if len(harm) and not no_split else nan),
        "harmful_accuracy": nan if no_split else acc(harm),
        "benign_cost": mean_cost(benign),
        "benign_non_refusal": float(benign["answer"].notna().mean()) if len(benign) else nan,
        "benign_accuracy": acc(benign),
    }


def safety_targets(samples: pd.DataFrame, state: PrimalDual, beta: float = 1.0,
                   cost_col: str = "cost", reward: str = "tilt", estimator: str = "plugin",
                   aqp_eps: float | None = None, null_cost: float | None = None) -> pd.DataFrame:
    """Per-prompt target table (alft.targets.TARGET_COLUMNS + ``cost``) at the current λ.

    ``samples``: orbit_id, member, answer (str or null), ``cost_col`` (the scorer's cost
    of each completion). Per prompt, c(z) is the mean cost of the samples with answer z;
    q = ν̂ e^{−λc}/Z (listed answers; null row q = 0). Reward: ``"tilt"`` −βλc(z);
    ``"projection"`` table_X(z) − βλc(z) with table = alft.estimators.estimator_table
    (estimator, K, β) estimating β log ν̂. Null row (no answer or an unlisted answer):
    cost = ``null_cost`` if given, else the mean cost of the prompt's no-answer samples,
    else 1.0 (an unseen answer is assumed unsafe); its reward is capped by the lowest
    listed reward in projection mode. Call ``state.update(constraint_value(...))``
    before this to use the round's λ. For costs that vary within an answer (text
    classifiers), prefer :class:`SafetyReward` on fresh completions.
    """
    from alft import estimators
    from alft.targets import TARGET_COLUMNS

    if reward not in ("tilt", "projection"):
        raise ConfigError(f"safety reward {reward!r} unknown; choose 'tilt' or 'projection'")
    for col in ("orbit_id", "member", "answer", cost_col):
        if col not in samples.columns:
            raise DataError(f"samples: missing column {col!r}; found {list(samples.columns)}")
    lam_arr = np.asarray(state.lam, dtype=float)
    if lam_arr.ndim != 0:
        raise ConfigError("safety_targets needs one global lambda (a float)")
    lam = float(lam_arr)
    rows = []
    df = samples[["orbit_id", "member", "answer", cost_col]].copy()
    df["answer"] = df["answer"].map(lambda v: v if isinstance(v, str) else None)
    for (o, m), sub in df.groupby(["orbit_id", "member"], sort=True):
        k = len(sub)
        has = sub[sub["answer"].notna()]
        none = sub[sub["answer"].isna()]
        cnt = has.groupby("answer").size()
        cz = has.groupby("answer")[cost_col].mean()
        c_null = float(null_cost) if null_cost is not None else (
            float(none[cost_col].mean()) if len(none) else 1.0)
        answers = list(cnt.index)
        if answers:
            nu = cnt.to_numpy(float) / k
            cvec = cz.loc[answers].to_numpy(float)
            q = _tilt(nu / nu.sum(), np.clip(cvec, 0, 1), lam) if lam > 0 else nu / nu.sum()
        else:
            cvec, q = np.zeros(0), np.zeros(0)
        if reward == "tilt":  # (+ 0.0: a zero-cost answer's reward is 0.0, not -0.0)
            rew = -beta * lam * cvec + 0.0
            r_null = -beta * lam * c_null + 0.0
        else:
            table = estimators.estimator_table(estimator, k, beta,
                                               aqp_eps if estimator == "aqp" else None)
            rew = table[cnt.to_numpy()] - beta * lam * cvec if answers else np.zeros(0)
            r_null = min([float(table[0]) - beta * lam * c_null, *rew.tolist()])
        order = sorted(range(len(answers)), key=lambda i: (-q[i], -int(cnt.iloc[i]), answers[i]))
        for i in order:
            rows.append({"orbit_id": int(o), "member": int(m), "answer": answers[i],
                         "count": int(cnt.iloc[i]), "q": float(q[i]), "reward": float(rew[i]),
                         "cost": float(cvec[i])})
        rows.append({"orbit_id": int(o), "member": int(m), "answer": None, "count": len(none),
                     "q": 0.0 if answers else 1.0, "reward": float(r_null), "cost": c_null})
    out = pd.DataFrame(rows, columns=[*TARGET_COLUMNS, "cost"])
    out["answer"] = out["answer"].astype(object)
    return out


class SafetyReward:
    """TRL reward callable: −β λ c(completion) from a scorer (+ an optional base reward).

    ``base`` is another TRL reward callable whose values are added (e.g. a
    :class:`alft.rewards.TargetTableReward` built from a "projection" table, or a task
    reward). Costs are scored on the fresh completions, so no table lookup is needed.
    """

    def __init__(self, scorer: Callable[[list[str]], np.ndarray], lam: float, beta: float = 1.0,
                 base: Callable[..., list] | None = None, name: str = "safety_reward"):
        self.scorer = scorer if isinstance(scorer, CheckedScorer) else CheckedScorer(scorer)
        self.lam = float(lam)
        self.beta = float(beta)
        self.base = base
        self.__name__ = name

    def __call__(self, prompts=None, completions=None, completion_ids=None, **kwargs) -> list[float]:
        from alft.rewards import completion_text

        texts = [completion_text(c) for c in completions]
        out = -self.beta * self.lam * self.scorer(texts)
        if self.base is not None:
            b = self.base(prompts=prompts, completions=completions,
                          completion_ids=completion_ids, **kwargs)
            out = out + np.asarray([np.nan if v is None else v for v in b], dtype=float)
        return [None if not np.isfinite(v) else float(v) for v in out]


# ------------------------------------------------------------------- scorers
@runtime_checkable
class Scorer(Protocol):
    """Maps completion texts to costs in [0, 1] (one per text)."""

    def __call__(self, texts: list[str]) -> np.ndarray: ...


class ScorerUnavailable(ConfigError):
    """A scorer's package or weights are not available on this machine."""


def check_scores(scores: Any, n: int, name: str = "scorer") -> np.ndarray:
    """Validate a scorer's output: n finite values in [0, 1] (rounding slack 1e-9 is clipped)."""
    s = np.asarray(scores, dtype=float).reshape(-1) if np.ndim(scores) else np.asarray([scores], float)
    if s.shape != (n,):
        raise DataError(f"{name} returned {s.size} scores for {n} texts")
    if not np.all(np.isfinite(s)):
        raise DataError(f"{name} returned a non-finite score")
    if np.any(s < -1e-9) or np.any(s > 1 + 1e-9):
        i = int(np.flatnonzero((s < -1e-9) | (s > 1 + 1e-9))[0])
        raise DataError(f"{name} returned {s[i]!r} for text {i}; costs must lie in [0, 1]")
    return np.clip(s, 0.0, 1.0)


class CheckedScorer:
    """Wraps any scorer: texts normalised to str, output validated by :func:`check_scores`."""

    def __init__(self, scorer: Callable[[list[str]], Any], name: str | None = None):
        if not callable(scorer):
            raise ConfigError(f"scorer {scorer!r} is not callable")
        self.scorer = scorer
        self.name = name or getattr(scorer, "__name__", type(scorer).__name__)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = ["" if t is None else str(t) for t in texts]
        if not texts:
            return np.zeros(0)
        return check_scores(self.scorer(texts), len(texts), self.name)


class ProfanityScorer:
    """Offline toxicity stand-in: alt-profanity-check's packaged classifier, P(profane).

    The trained linear SVM + vectoriser ship inside the PyPI package (no download).
    Install: ``pip install alt-profanity-check==1.9.1`` (scikit-learn 1.9.1 here).
    """

    def __init__(self) -> None:
        try:
            from profanity_check import predict_prob
        except ImportError as err:
            raise ScorerUnavailable(
                "scorer 'profanity' needs the package alt-profanity-check "
                f"(pip install alt-profanity-check==1.9.1): {err}") from err
        self._predict = predict_prob

    def __call__(self, texts: list[str]) -> np.ndarray:
        texts = ["" if t is None else str(t) for t in texts]
        if not texts:
            return np.zeros(0)
        return check_scores(self._predict(texts), len(texts), "profanity")


class DetoxifyScorer:
    """Detoxify's toxicity probability (Unitary; "original" = Jigsaw toxic comments).

    Needs the ``detoxify`` package and its checkpoint from the hub (downloaded on
    first use), so only where the hub is reachable; ScorerUnavailable otherwise.
    """

    def __init__(self, model: str = "original", device: str = "cpu", key: str = "toxicity",
                 batch_size: int = 64):
        try:
            from detoxify import Detoxify
        except ImportError as err:
            raise ScorerUnavailable(
                "scorer 'detoxify' needs the package detoxify (pip install detoxify) and its "
                f"weights from the hub; use scorer 'profanity' offline: {err}") from err
        try:
            self._model = Detoxify(model, device=device)
        except Exception as err:  # download/checkpoint failures surface as many types
            raise ScorerUnavailable(f"scorer 'detoxify': could not load model {model!r} "
                                    f"(weights come from the hub): {err}") from err
        self.key = key
        self.batch_size = int(batch_size)

    def __call__(self, texts: list[str]) -> np.ndarray:
        texts = ["" if t is None else str(t) for t in texts]
        out = []
        for i in range(0, len(texts), self.batch_size):
            res = self._model.predict(texts[i:i + self.batch_size])
            if self.key not in res:
                raise ConfigError(f"detoxify output has no key {self.key!r}; keys: {sorted(res)}")
            out.append(np.atleast_1d(np.asarray(res[self.key], dtype=float)))
        return check_scores(np.concatenate(out) if out else np.zeros(0), len(texts), "detoxify")


BUILTIN_UNSAFE_MODULUS = 7


def builtin_unsafe(answer: str | None) -> bool:
    """The builtin task's STAND-IN for "unsafe": an integer answer divisible by 7 (0 included).

    Not a notion of harm: it only designates a set of answers (0, 7, …, 56 among the
    builtin range 0..60, ~15% of problems' gold answers) so that the safety mechanism
    (constraint, λ, I-projection) runs end to end on CPU. "Harmful prompts" are then
    the problems whose gold answer is in the set, "benign" the rest; a completion
    without an extractable answer (a "refusal") costs 0.
    """
    if answer is None:
        return False
    s = str(answer).strip()
    try:
        v = int(s)
    except ValueError:
        return False
    return v % BUILTIN_UNSAFE_MODULUS == 0


class AnswerSetScorer:
    """Cost 1 if the completion's extracted answer is unsafe, else 0 (no answer: 0).

    ``unsafe_answers``: an iterable of answers (canonicalised like the sampler's
    answers) or a predicate on the canonical answer string; default
    :func:`builtin_unsafe` (the builtin task's stand-in).
    """

    def __init__(self, unsafe_answers: Iterable[str] | Callable[[str], bool] | None = None,
                 task: str = "builtin"):
        from alft.targets import canonical_answer

        self.task = task
        if unsafe_answers is None:
            self._pred: Callable[[str], bool] = builtin_unsafe
        elif callable(unsafe_answers):
            self._pred = unsafe_answers
        elif isinstance(unsafe_answers, str):
            raise ConfigError("unsafe_answers must be a list of answers or a predicate, "
                              f"not the string {unsafe_answers!r}")
        else:
            canon = {canonical_answer(a) for a in unsafe_answers} - {None}
            self._pred = canon.__contains__

    def answer_cost(self, answers: Sequence[str | None]) -> np.ndarray:
        """c(z) for extracted answers (None = no answer: cost 0)."""
        from alft.targets import canonical_answer

        out = []
        for a in answers:
            z = canonical_answer(a)
            out.append(0.0 if z is None else float(bool(self._pred(z))))
        return np.asarray(out, dtype=float)

    def __call__(self, texts: list[str]) -> np.ndarray:
        from alft.extract import extract_answer

        return self.answer_cost([extract_answer("" if t is None else str(t), self.task)
                                 for t in texts])


SCORERS: dict[str, Callable[..., Any]] = {
    "profanity": ProfanityScorer,
    "detoxify": DetoxifyScorer,
    "answer_set": AnswerSetScorer,
}


def load_scorer(spec: str, **kwargs: Any) -> CheckedScorer:
    """A scorer from a short name (``profanity``, ``detoxify``, ``answer_set``) or an
    entry point ``"package.module:attr"`` (attr may be dotted).

    A class (or a short name) is instantiated with ``kwargs``; any other callable is
    used as is (then ``kwargs`` must be empty). The result validates every output
    (:class:`CheckedScorer`). ConfigError (ScorerUnavailable for missing packages or
    weights) names the spec.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"scorer: expected a short name {sorted(SCORERS)} or 'module:attr', "
                          f"got {spec!r}")
    spec = spec.strip()
    if spec in SCORERS:
        return CheckedScorer(SCORERS[spec](**kwargs), spec)
    if ":" not in spec:
        raise ConfigError(f"scorer {spec!r}: unknown short name (choose from {sorted(SCORERS)}) "
                          f"and not an entry point 'module:attr'")
    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise ConfigError(f"scorer {spec!r}: an entry point needs both parts, 'module:attr'")
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as err:
        raise ConfigError(f"scorer {spec!r}: cannot import module {mod_name!r}: {err}") from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"scorer {spec!r}: module {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, type):
        try:
            obj = obj(**kwargs)
        except TypeError as err:
            raise ConfigError(f"scorer {spec!r}: cannot construct with {kwargs}: {err}") from err
    elif kwargs:
        raise ConfigError(f"scorer {spec!r} is not a class; options {sorted(kwargs)} cannot be "
                          f"passed to it")
    if not callable(obj):
        raise ConfigError(f"scorer {spec!r} resolves to a non-callable {type(obj).__name__}")
    return CheckedScorer(obj, spec)
