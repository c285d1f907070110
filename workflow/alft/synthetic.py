"""The slides' synthetic validation ("Synthetic Validation: Variance Reduction").

The paper does not publish its setup; this module fixes one, precisely:

Problem. ``prompts`` prompts, |Y| = ``traces`` (10,000) traces, |Z| = ``answers`` (10)
answers, answer map E(y) = y mod |Z| (1000:1 redundancy), the same for every prompt.
Each prompt x has a ground-truth answer g_x ~ Uniform(Z) and a difficulty: easy with
probability ``easy_fraction`` (else hard). Reference logits
ℓ0(y|x) = σ·ξ(y,x) + b_x·1[E(y) = g_x], ξ ~ N(0,1), σ = ``logit_scale``, b_x =
``easy_bias`` (8.0) for easy prompts and ``hard_bias`` (0.0) for hard ones;
π0 = softmax(ℓ0) per prompt. (Easy prompts start ≈ 99.7% correct, hard ≈ 10%.)

Policy. Tabular softmax over traces per prompt, π_θ = softmax(θ), θ initialised to ℓ0.
Every method draws ``K`` traces per prompt per step from the current policy
(the same number of sampled traces for every method) and takes one plain
gradient-ascent step of size ``lr`` on the on-policy surrogate
(1/K) Σ_i A_i log π_θ(y_i|x) − kl_coef·KL(π_θ‖π0) (at the sampling policy the GRPO
ratio equals 1, so clipping is inactive and the GRPO gradient is this one; the KL term
is exact since Y is enumerable). Gradient w.r.t. the logits: (1/K) Σ_i A_i (e_{y_i} − π).

Methods (r(z) = 1[z = g_x] is the verifier):

* ``reinforce``: trace-level REINFORCE, A_i = r(E(y_i)) (no baseline, no normalisation).
* ``game_grpo``: Game-GRPO with the ground-truth target of the expected-reward game,
  q*(z) ∝ exp(r(z)/β) (game.py: the target best response for R(ν) = −⟨ν, r⟩). Reward
  R_i = β log q*(E(y_i)) = r(E(y_i)) − β log Σ_z e^{r(z)/β}, group-normalised
  A_i = (R_i − mean_j R_j)/(std_j R_j + ε). (The exact RLVR target
  q* ∝ exp(1[z=g]/(β ν(g))) gives the same advantages: both rewards are affine in
  1[z = g] within a group, and the normalisation removes scale and shift.)
* ``game_grpo_<estimator>_k<K>`` (estimator ∈ plugin, taylor, minimax_lp): a target
  that must be *estimated* from the K samples. q*_t(z) ∝ ν_t(z) e^{r(z)/β}, the answer
  marginal of the policy best response of the expected-reward game with the current
  policy π_t as reference (one mirror-descent / proximal step in answer space). Its
  reward β log q*_t(z) = r(z) + β log ν_t(z) − const needs log ν_t(z), estimated from
  the count X_z of answer z among the K samples by the estimator table c_X
  (``alft.estimators.estimator_table``: plug-in log(X/K), Taylor-corrected, minimax LP):
  R_i = r(E(y_i)) + β c_{X_{E(y_i)}}, then group-normalised as above.

Metric. accuracy = mean over prompts of ν_π(g_x|x), computed exactly (no sampling),
every ``eval_every`` steps; steps-to-95% is the first evaluated step with
accuracy ≥ 0.95 (NaN if never reached).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from alft.errors import ConfigError

ESTIMATOR_METHODS = ("plugin", "taylor", "minimax_lp")


@dataclass
class SyntheticConfig:
    prompts: int = 32
    traces: int = 10_000
    answers: int = 10
    easy_fraction: float = 0.5
    easy_bias: float = 8.0
    hard_bias: float = 0.0
    logit_scale: float = 1.0
    beta: float = 0.25
    K: int = 8
    estimator_K: list[int] = field(default_factory=lambda: [4, 8])
    estimators: list[str] = field(default_factory=lambda: list(ESTIMATOR_METHODS))
    steps: int = 200
    lr: float = 5.0
    kl_coef: float = 0.0
    adv_eps: float = 1e-6
    eval_every: int = 5
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])

    def validate(self) -> SyntheticConfig:
        def need(cond: bool, key: str, msg: str) -> None:
            if not cond:
                raise ConfigError(f"synthetic.{key}: {msg}")

        need(self.prompts >= 1, "prompts", "must be ≥ 1")
        need(self.answers >= 2, "answers", "must be ≥ 2")
        need(self.traces >= self.answers, "traces", "must be ≥ answers")
        need(0.0 <= self.easy_fraction <= 1.0, "easy_fraction", "must be in [0, 1]")
        need(self.beta > 0, "beta", "must be > 0")
        need(self.K >= 2, "K", "must be ≥ 2")
        need(all(k >= 2 for k in self.estimator_K), "estimator_K", "entries must be ≥ 2")
        for e in self.estimators:
            need(e in ESTIMATOR_METHODS, "estimators",
                 f"unknown estimator {e!r}; choose from {list(ESTIMATOR_METHODS)}")
        need(self.steps >= 1, "steps", "must be ≥ 1")
        need(self.lr > 0, "lr", "must be > 0")
        need(self.kl_coef >= 0, "kl_coef", "must be ≥ 0")
        need(self.eval_every >= 1, "eval_every", "must be ≥ 1")
        need(len(self.seeds) >= 1, "seeds", "needs at least one seed")
        return self

    def methods(self) -> list[str]:
        out = ["reinforce", "game_grpo"]
        out += [f"game_grpo_{e}_k{k}" for e in self.estimators for k in self.estimator_K]
        return out


QUICK = dict(prompts=16, traces=2000, steps=120, seeds=[0, 1, 2], eval_every=5,
             estimator_K=[4, 8])


def estimator_table(method: str, K: int, beta: float) -> np.ndarray:
    """c_X ≈ β log(X/K) for X = 0..K, from :mod:`alft.estimators`."""
    from alft.estimators import estimator_table as table

    return np.asarray(table(method, K, beta=beta), dtype=float)


@dataclass
class Problem:
    log_pi0: np.ndarray  # (P, Y)
    answer: np.ndarray  # (Y,)
    gt: np.ndarray  # (P,)
    easy: np.ndarray  # (P,) bool
    correct: np.ndarray  # (P, Y) bool: E(y) = g_x


def make_problem(cfg: SyntheticConfig, rng: np.random.Generator) -> Problem:
    """π0 with stochastic difficulty (module docstring, "Problem")."""
    p, y, z = cfg.prompts, cfg.traces, cfg.answers
    answer = np.arange(y) % z
    gt = rng.integers(0, z, size=p)
    easy = rng.random(p) < cfg.easy_fraction
    correct = answer[None, :] == gt[:, None]
    bias = np.where(easy, cfg.easy_bias, cfg.hard_bias)
    logits = cfg.logit_scale * rng.standard_normal((p, y)) + bias[:, None] * correct
    return Problem(logits - logsumexp(logits, axis=1, keepdims=True), answer, gt, easy, correct)


def _sample(pi: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """K i.i.d. traces per row by inverse CDF (vectorised searchsorted), shape (P, K)."""
    p, y = pi.shape
    cdf = np.cumsum(pi, axis=1)
    cdf /= cdf[:, -1:]
    offs = np.arange(p)[:, None]
    flat = (cdf + offs).ravel()
    u = rng.random((p, k)) + offs
    idx = np.searchsorted(flat, u.ravel(), side="right").reshape(p, k) - offs * y
    return np.clip(idx, 0, y - 1)


def _group_normalise(r: np.ndarray, eps: float) -> np.ndarray:
    return (r - r.mean(axis=1, keepdims=True)) / (r.std(axis=1, keepdims=True) + eps)


def advantage_fn(method: str, cfg: SyntheticConfig) -> tuple[int, Callable]:
    """(K, f(answers (P,K), gt (P,)) → advantages (P,K)) for a method name."""
    beta = cfg.beta
    if method == "reinforce":
        return cfg.K, lambda z, gt: (z == gt[:, None]).astype(float)
    if method == "game_grpo":
        log_norm = beta * np.log(np.exp(1.0 / beta) + cfg.answers - 1)

        def game(z: np.ndarray, gt: np.ndarray) -> np.ndarray:
            reward = (z == gt[:, None]).astype(float) - log_norm  # β log q*(E(y))
            return _group_normalise(reward, cfg.adv_eps)

        return cfg.K, game
    for est in ESTIMATOR_METHODS:
        prefix = f"game_grpo_{est}_k"
        if method.startswith(prefix):
            k = int(method[len(prefix):])
            table = estimator_table(est, k, beta)

            def tilted(z: np.ndarray, gt: np.ndarray, table=table) -> np.ndarray:
                counts = (z[:, :, None] == z[:, None, :]).sum(axis=2)  # X_{E(y_i)}
                reward = (z == gt[:, None]).astype(float) + table[counts]
                return _group_normalise(reward, cfg.adv_eps)

            return k, tilted
    raise ConfigError(f"synthetic: unknown method {method!r}")


def run_one(cfg: SyntheticConfig, method: str, seed: int) -> pd.DataFrame:
    """Train one method from π0 for ``cfg.steps`` steps; returns its accuracy curve."""
    prob = make_problem(cfg, np.random.default_rng([seed, 0]))
    rng = np.random.default_rng([seed, 1, sum(map(ord, method))])
    k, adv = advantage_fn(method, cfg)
    theta = prob.log_pi0.copy()
    p, y = theta.shape
    rows = np.repeat(np.arange(p), k)
    records = []

    def evaluate(step: int, pi: np.ndarray) -> None:
        acc = (pi * prob.correct).sum(axis=1)
        records.append((step, acc.mean(),
                        acc[prob.easy].mean() if prob.easy.any() else np.nan,
                        acc[~prob.easy].mean() if (~prob.easy).any() else np.nan))

    for step in range(cfg.steps + 1):
        pi = np.exp(theta - theta.max(axis=1, keepdims=True))
        pi /= pi.sum(axis=1, keepdims=True)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            evaluate(step, pi)
        if step == cfg.steps:
            break
        ys = _sample(pi, k, rng)
        a = adv(prob.answer[ys], prob.gt)
        a_sum = a.sum(axis=1, keepdims=True)
        if np.any(np.abs(a_sum) > 1e-12):  # zero for group-normalised advantages
            grad = -(a_sum / k) * pi
        else:
            grad = np.zeros_like(pi)
        np.add.at(grad, (rows, ys.ravel()), a.ravel() / k)
        if cfg.kl_coef > 0:
            lr_kl = np.log(pi) - prob.log_pi0
            grad -= cfg.kl_coef * pi * (lr_kl - (pi * lr_kl).sum(axis=1, keepdims=True))
        theta += cfg.lr * grad
    df = pd.DataFrame(records, columns=["step", "accuracy", "accuracy_easy", "accuracy_hard"])
    df.insert(0, "seed", seed)
    df.insert(0, "method", method)
    df["K"] = k
    return df


def run(cfg: SyntheticConfig, methods: Sequence[str] | None = None,
        progress: bool = True) -> pd.DataFrame:
    """All methods × seeds; returns the long table of curves."""
    cfg.validate()
    methods = list(methods or cfg.methods())
    jobs = [(m, s) for m in methods for s in cfg.seeds]
    try:
        from tqdm import tqdm
        it = tqdm(jobs, desc="synthetic", disable=not progress)
    except ImportError:  # pragma: no cover
        it = jobs
    frames = []
    for m, s in it:
        frames.append(run_one(cfg, m, s))
    return pd.concat(frames, ignore_index=True)


def steps_to(curves: pd.DataFrame, threshold: float = 0.95) -> pd.DataFrame:
    """First evaluated step with accuracy ≥ threshold, per method and seed (NaN: never)."""
    def first(g: pd.DataFrame) -> float:
        hit = g.loc[g["accuracy"] >= threshold, "step"]
        return float(hit.iloc[0]) if len(hit) else float("nan")

    return (curves.groupby(["method", "seed"], sort=False)[["step", "accuracy"]]
            .apply(first).rename("steps_to_95").reset_index())


def summarise(curves: pd.DataFrame, threshold: float = 0.95) -> pd.DataFrame:
    """Final accuracy mean ± sd over seeds and steps to the threshold, per method."""
    last = curves.loc[curves.groupby(["method", "seed"], sort=False)["step"].idxmax()]
    st = steps_to(curves, threshold)
    rows = []
    for method in dict.fromkeys(curves["method"]):
        fin = last.loc[last["method"] == method]
        s = st.loc[st["method"] == method, "steps_to_95"]
        reached = s.notna()
        rows.append({
            "method": method,
            "K": int(fin["K"].iloc[0]),
            "seeds": int(len(fin)),
            "final_accuracy_mean": float(fin["accuracy"].mean()),
            "final_accuracy_sd": float(fin["accuracy"].std(ddof=1)) if len(fin) > 1 else 0.0,
            "final_accuracy_hard_mean": float(fin["accuracy_hard"].mean()),
            "steps_to_95_mean": float(s[reached].mean()) if reached.any() else float("nan"),
            "steps_to_95_sd": float(s[reached].std(ddof=1)) if reached.sum() > 1 else float("nan"),
            "seeds_reaching_95": int(reached.sum()),
        })
    return pd.DataFrame(rows)


def plot(curves: pd.DataFrame, path, title: str = "") -> None:
    """Mean accuracy per method with a ±1 sd band (and min–max as a lighter band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    main = [m for m in dict.fromkeys(curves["method"]) if not m.startswith("game_grpo_")]
    est = [m for m in dict.fromkeys(curves["method"]) if m.startswith("game_grpo_")]
    for ax, group, name in ((axes[0], main, "Game-GRPO vs REINFORCE"),
                            (axes[1], est, "Game-GRPO, estimated target (plug-in / Taylor / LP)")):
        for m in group:
            g = curves.loc[curves["method"] == m].groupby("step")["accuracy"]
            mean, sd = g.mean(), g.std(ddof=1).fillna(0.0)
            lo, hi = g.min(), g.max()
            line, = ax.plot(mean.index, mean.values, label=m)
            ax.fill_between(mean.index, (mean - sd).values, (mean + sd).values,
                            color=line.get_color(), alpha=0.25)
            ax.fill_between(mean.index, lo.values, hi.values, color=line.get_color(), alpha=0.08)
        ax.axhline(0.95, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("step")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy  E_x ν_π(g_x|x)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def config_from_mapping(d: dict | None, quick: bool = False) -> SyntheticConfig:
    """Build a config from the ``synthetic:`` config section (unknown keys rejected)."""
    d = dict(d or {})
    known = set(SyntheticConfig.__dataclass_fields__)
    for key in d:
        if key not in known:
            raise ConfigError(f"synthetic.{key}: unknown key; allowed: {sorted(known)}")
    cfg = SyntheticConfig(**d)
    if quick:
        for key, value in QUICK.items():
            setattr(cfg, key, value)
    return cfg.validate()


def describe(cfg: SyntheticConfig) -> dict:
    return asdict(cfg)


def timed_run(cfg: SyntheticConfig, progress: bool = True) -> tuple[pd.DataFrame, float]:
    t0 = time.perf_counter()
    curves = run(cfg, progress=progress)
    return curves, time.perf_counter() - t0
