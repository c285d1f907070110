"""The target step of the alternating best response: q*_r from round r's samples.

Slides, "Solving the Game": 1. *Target step* — estimate q* from the sampled group;
2. *Policy step* — rewards R_i = β log q*(E(y_i)), GRPO. This module is step 1: pure
functions from a samples table (``orbit_id, member, sample_idx, answer, ...``; the
``answer`` column is E(y), a canonical string or null) to a **target table**

    orbit_id, member, answer, count, q, reward

with one row per (group, answer). A *group* is an orbit (``member = -1``, the target
shared by every member: coherence, rlvr) or one prompt (``member = m``: majority,
diversity, reward). ``answer = null`` is the group's *null row*: "any answer not
listed, including no extractable answer"; every group has exactly one. ``q`` is the
target distribution (it sums to 1 over the group's rows) and ``reward`` the GRPO
reward of a completion whose extracted answer is ``answer`` (lookup rule:
:func:`alft.rewards.lookup_rewards`).

Strategies (slides, "Instantiations: One Game, Many Alignment Goals"):

* ``coherence`` — pool the orbit O_x's members ("Consensus Targets"), consensus
  ``mode`` (Coherence-GRPO: global mode z*, q = δ_{z*}, reward 1[E(y) = z*]),
  ``am`` (q_AM(z) = (1/|O|) Σ_{x'} ν̂(z|x')) or ``gm`` (q_GM ∝ Π_{x'} ν̂(z|x')^{1/|O|}).
* ``majority`` — the same per prompt, no paraphrases (TTRL-style baseline).
* ``rlvr`` — ground truth g (the only strategy that reads labels): q = δ_g, reward
  1[E(y) = g] (see :func:`_rlvr_rows` for why this is also the exact best response's
  reward for GRPO).
* ``diversity`` — R = −H(ν): q* ∝ ν̂^{−1/β} (:mod:`alft.game`, ``neg_entropy``).
* ``reward`` — R = −E_ν[r]: q* ∝ exp(r(z)/β) for an answer-level reward r.

Log rewards and estimators (slides, Part II). For am/gm/diversity the reward
β log q*(z) is estimated from counts with a table c_0..c_K of :mod:`alft.estimators`
(plugin, taylor, minimax_lp, aqp): a completion whose answer occurred X times among
the K samples scores c_X. ``euclidean`` is the Bregman alternative with reward
β(q − 1), estimated without bias by β(X/K − 1) (the negative of
``estimators.euclidean_table``, whose β(1 − q) is the *cost* u, the analogue of
−β log q; −log q ≈ 1 − q near q = 1). Counts are taken out of *all* K samples of a
member (format failures included), so a reward estimates β ψ(ν(z)) with ν the
marginal over answers ∪ {no answer}; q is reported renormalised over extractable
answers. The two differ by a per-group constant (log) or a positive per-group affine
map (Euclidean), which GRPO's group-standardised advantage removes; likewise the
log-normalisers β log Z of q_GM, diversity and reward targets are dropped. Rewards
are therefore "β log q* up to a per-group constant".

* am: pooled count X(z) = Σ_m X_m(z) out of N = Σ_m K_m (for equal K_m,
  X/N = q_AM over all outcomes): reward c^{(N)}_{X(z)}. minimax_lp supports
  N ≤ 32 only (estimators.MINIMAX_LP_MAX_K).
* gm: β log q_GM = (1/|O|) Σ_m β log ν_m(z) + const: reward (1/|O|) Σ_m c^{(K_m)}_{X_m(z)}
  (the estimator's own finite c_0 handles a member that never gave z). Reported
  q_GM uses additive smoothing: q_GM(z) ∝ Π_m (X_m(z) + α)^{1/|O|} with α =
  :data:`GM_SMOOTHING` = 0.5 (the plug-in estimator's X = 0 rule), so one member's
  zero does not zero the product. For ``euclidean`` the gm reward is the mean of
  the members' unbiased β(ν_m − 1), i.e. the AM reward (the Euclidean consensus).
* diversity: β log q* = −log ν + const: reward −ĉ_X with ĉ the β = 1 table.

Null-row rewards: 0 for indicator rewards (mode, rlvr). For estimator rewards:
min(value at count 0, lowest listed reward in the group): an unlisted answer is one
nobody in the group gave, and a completion without an answer never scores above one
with an answer (diversity would otherwise reward format failures as "rare").
``q`` of the null row is 0.

Skips. A group whose samples contain no extractable answer at all has no consensus:
it is skipped (logged and counted): its only row is the null row with count = its
samples, q = 1 (all mass on "anything") and reward 0, so every completion of the
group gets the same reward and zero advantage. rlvr is never skipped (δ_g does not
depend on the samples). Rewards and q are never NaN.

Mode ties are broken deterministically by :func:`mode_answer` (largest count, then
the smallest answer string).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from alft import estimators
from alft.errors import ConfigError, DataError
from alft.extract import answers_match, canonical_number

STRATEGIES = ("coherence", "majority", "rlvr", "diversity", "reward")
CONSENSUS = ("mode", "am", "gm")
ESTIMATORS = ("plugin", "taylor", "minimax_lp", "aqp", "euclidean")
TARGET_COLUMNS = ["orbit_id", "member", "answer", "count", "q", "reward"]
SAMPLE_REQUIRED = ("orbit_id", "member", "answer")
SHARED = -1  # member value of a row shared by the whole orbit
GM_SMOOTHING = 0.5
GOLD_COLUMN = "answer"  # gold answer column of orbits.parquet

_log = logging.getLogger("alft.targets")


# ------------------------------------------------------------------------- config
@dataclass(frozen=True)
class TargetConfig:
    """Settings of the target step (validated on construction; ConfigError on bad values)."""

    strategy: str
    consensus: str = "mode"
    estimator: str = "plugin"
    beta: float = 1.0
    aqp_eps: float | None = None
    gm_smoothing: float = GM_SMOOTHING
    task: str = "builtin"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown target strategy {self.strategy!r}; expected one of {list(STRATEGIES)}")
        if self.consensus not in CONSENSUS:
            raise ConfigError(f"unknown consensus {self.consensus!r}; expected one of {list(CONSENSUS)}")
        if self.estimator not in ESTIMATORS:
            raise ConfigError(f"unknown estimator {self.estimator!r}; expected one of {list(ESTIMATORS)}")
        if not (isinstance(self.beta, (int, float)) and math.isfinite(self.beta) and self.beta > 0):
            raise ConfigError(f"beta must be a positive number, got {self.beta!r}")
        if self.estimator == "aqp" and self.aqp_eps is None and self.uses_estimator:
            raise ConfigError("estimator 'aqp' needs a bias budget (aqp_eps / --aqp-eps)")
        if not self.gm_smoothing > 0:
            raise ConfigError(f"gm_smoothing must be > 0, got {self.gm_smoothing!r}")
        if self.strategy == "diversity" and self.estimator == "euclidean":
            raise ConfigError("strategy 'diversity' (q* ∝ ν^(-1/β)) has no polynomial estimator; "
                              "use a KL estimator (plugin, taylor, minimax_lp, aqp)")

    @property
    def uses_estimator(self) -> bool:
        """Whether rewards come from an estimator table (log / Euclidean rewards)."""
        if self.strategy in ("coherence", "majority"):
            return self.consensus in ("am", "gm")
        return self.strategy == "diversity"

    @property
    def shared(self) -> bool:
        """Whether groups are whole orbits (member = -1) rather than single prompts."""
        return self.strategy in ("coherence", "rlvr")


@dataclass
class TargetReport:
    """What the target step did besides the table: groups built and skipped."""

    n_groups: int = 0
    skipped: list[tuple[int, int]] = field(default_factory=list)  # (orbit_id, member)


# ------------------------------------------------------------------------ helpers
def mode_answer(counts: Mapping[str, int]) -> str | None:
    """The mode of answer counts (largest count, ties -> smallest string); None if empty."""
    best = None
    for z, c in counts.items():
        if c > 0 and (best is None or c > counts[best] or (c == counts[best] and z < best)):
            best = z
    return best


def canonical_answer(value) -> str | None:
    """An answer as the canonical string the sampler stores (None for null/NaN/empty)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    s = str(value).strip()
    if not s:
        return None
    return canonical_number(s) or s


@lru_cache(maxsize=256)
def _estimator_table(method: str, K: int, beta: float, eps: float | None) -> np.ndarray:
    try:
        return estimators.estimator_table(method, K, beta, eps if method == "aqp" else None)
    except ValueError as err:
        raise ConfigError(f"estimator {method!r} with K={K}: {err}") from err


def reward_table(method: str, K: int, beta: float = 1.0, eps: float | None = None) -> np.ndarray:
    """Table c_0..c_K whose entry c_X estimates the GRPO reward of an answer seen X of K times.

    KL estimators: β log q; ``euclidean``: β(q − 1) = −estimators.euclidean_table.
    """
    t = _estimator_table(method, int(K), float(beta), eps)
    return -t if method == "euclidean" else t.copy()


@dataclass
class _Group:
    orbit_id: int
    member: int
    sizes: list[int]  # K_m of every member in the group
    counts: list[Counter]  # answer counts per member (extractable answers only)
    n_none: int

    @property
    def pooled(self) -> Counter:
        out: Counter = Counter()
        for c in self.counts:
            out.update(c)
        return out


def _prepare_samples(samples: pd.DataFrame, source: str = "samples") -> pd.DataFrame:
    missing = [c for c in SAMPLE_REQUIRED if c not in samples.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; found {list(samples.columns)}")
    df = samples[list(SAMPLE_REQUIRED)].copy()
    for col in ("orbit_id", "member"):
        if not pd.api.types.is_integer_dtype(df[col]):
            raise DataError(f"{source}: column {col!r} must be int, found {df[col].dtype}")
    bad = df["answer"].map(lambda v: not (v is None or isinstance(v, str)
                                          or (isinstance(v, float) and math.isnan(v))))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{source}: column 'answer' must be a string or null, row {row} holds "
                        f"{df['answer'].iloc[row]!r}")
    df["answer"] = df["answer"].map(lambda v: v if isinstance(v, str) else None)
    if (df["member"] < 0).any():
        row = int(np.flatnonzero((df["member"] < 0).to_numpy())[0])
        raise DataError(f"{source}: row {row}: member must be >= 0 (-1 is reserved for shared targets)")
    return df


def _check_k(df: pd.DataFrame, source: str) -> None:
    sizes = df.groupby(["orbit_id", "member"]).size()
    if len(sizes) == 0:
        raise DataError(f"{source}: no samples")
    small = sizes[sizes < 2]
    if len(small):
        (o, m), k = small.index[0], int(small.iloc[0])
        raise ConfigError(f"{source}: orbit {o} member {m} has K={k} sample(s); the target step "
                          f"estimates answer frequencies and needs K >= 2 samples per prompt "
                          f"({len(small)} prompt(s) affected)")


def _groups(df: pd.DataFrame, shared: bool) -> Iterable[_Group]:
    per_member = {}
    for (o, m), sub in df.groupby(["orbit_id", "member"], sort=True):
        answers = [a for a in sub["answer"] if a is not None]
        per_member[(int(o), int(m))] = (len(sub), Counter(answers), len(sub) - len(answers))
    if not shared:
        for (o, m), (k, c, n0) in per_member.items():
            yield _Group(o, m, [k], [c], n0)
        return
    by_orbit: dict[int, list] = {}
    for (o, _m), v in per_member.items():
        by_orbit.setdefault(o, []).append(v)
    for o, vs in by_orbit.items():
        yield _Group(o, SHARED, [v[0] for v in vs], [v[1] for v in vs], sum(v[2] for v in vs))


def _row(g: _Group, answer: str | None, count: int, q: float, reward: float) -> dict:
    return {"orbit_id": g.orbit_id, "member": g.member, "answer": answer, "count": int(count),
            "q": float(q), "reward": float(reward)}


def _ordered(pooled: Counter, q: Mapping[str, float]) -> list[str]:
    return sorted(pooled, key=lambda z: (-q.get(z, 0.0), -pooled[z], z))


# ----------------------------------------------------------------- per strategy
def _mode_rows(g: _Group) -> list[dict]:
    """Coherence-GRPO (slides): z* = mode of the pooled answers, q = δ_{z*}, R = 1[E(y) = z*]."""
    pooled = g.pooled
    z_star = mode_answer(pooled)
    q = {z: float(z == z_star) for z in pooled}
    rows = [_row(g, z, pooled[z], q[z], q[z]) for z in _ordered(pooled, q)]
    return rows + [_row(g, None, g.n_none, 0.0, 0.0)]


def _null_reward(table_at_zero: float, listed: Iterable[float]) -> float:
    return float(min([table_at_zero, *listed]))


def _am_rows(g: _Group, cfg: TargetConfig) -> list[dict]:
    """q_AM(z) = (1/|O|) Σ_m ν̂_m(z) (slides, "Practical relaxation"); reward c^{(N)}_{X(z)} on pooled counts."""
    pooled = g.pooled
    nu = {z: sum(c[z] / k for c, k in zip(g.counts, g.sizes)) for z in pooled}
    tot = sum(nu.values())
    q = {z: v / tot for z, v in nu.items()}
    table = reward_table(cfg.estimator, sum(g.sizes), cfg.beta, cfg.aqp_eps)
    rew = {z: float(table[pooled[z]]) for z in pooled}
    rows = [_row(g, z, pooled[z], q[z], rew[z]) for z in _ordered(pooled, q)]
    return rows + [_row(g, None, g.n_none, 0.0, _null_reward(table[0], rew.values()))]


def _gm_rows(g: _Group, cfg: TargetConfig) -> list[dict]:
    """q_GM ∝ Π_m ν̂_m^{1/|O|} (slides, "Ideal target"), smoothed by α; reward mean_m c^{(K_m)}_{X_m(z)}."""
    pooled = g.pooled
    M = len(g.counts)
    a = cfg.gm_smoothing
    logq = {z: sum(math.log(c[z] + a) for c in g.counts) / M for z in pooled}
    mx = max(logq.values())
    w = {z: math.exp(v - mx) for z, v in logq.items()}
    tot = sum(w.values())
    q = {z: v / tot for z, v in w.items()}
    tables = [reward_table(cfg.estimator, k, cfg.beta, cfg.aqp_eps) for k in g.sizes]
    rew = {z: float(np.mean([t[c[z]] for t, c in zip(tables, g.counts)])) for z in pooled}
    zero = float(np.mean([t[0] for t in tables]))
    rows = [_row(g, z, pooled[z], q[z], rew[z]) for z in _ordered(pooled, q)]
    return rows + [_row(g, None, g.n_none, 0.0, _null_reward(zero, rew.values()))]


def _diversity_rows(g: _Group, cfg: TargetConfig) -> list[dict]:
    """R = −H(ν): q* ∝ ν̂^{−1/β} (alft.game neg_entropy); β log q* = −log ν + const, reward −ĉ_X (β = 1 table)."""
    (k,), (counts,) = g.sizes, g.counts
    logw = {z: -math.log(counts[z] / k) / cfg.beta for z in counts}
    mx = max(logw.values())
    w = {z: math.exp(v - mx) for z, v in logw.items()}
    tot = sum(w.values())
    q = {z: v / tot for z, v in w.items()}
    table = -reward_table(cfg.estimator, k, 1.0, cfg.aqp_eps)
    rew = {z: float(table[counts[z]]) for z in counts}
    rows = [_row(g, z, counts[z], q[z], rew[z]) for z in _ordered(counts, q)]
    return rows + [_row(g, None, g.n_none, 0.0, _null_reward(table[0], rew.values()))]


def _reward_rows(g: _Group, cfg: TargetConfig, reward_fn: Callable[[str], float]) -> list[dict]:
    """R = −E_ν[r]: q* ∝ exp(r(z)/β) over the listed answers; β log q* = r(z) + const, reward r(z)."""
    pooled = g.pooled
    r = {}
    for z in pooled:
        v = float(reward_fn(z))
        if not math.isfinite(v):
            raise DataError(f"reward function returned {v!r} for answer {z!r} (orbit {g.orbit_id})")
        r[z] = v
    mx = max(r.values())
    w = {z: math.exp((v - mx) / cfg.beta) for z, v in r.items()}
    tot = sum(w.values())
    q = {z: v / tot for z, v in w.items()}
    rows = [_row(g, z, pooled[z], q[z], r[z]) for z in _ordered(pooled, q)]
    return rows + [_row(g, None, g.n_none, 0.0, min(r.values()))]


def _rlvr_rows(g: _Group, gold: str, task: str, aliases: list[str] | None = None) -> list[dict]:
    """RLVR: q = δ_g (slides' table), reward 1[E(y) = g].

    The exact best response q* ∝ exp(1[z = g]/(β ν(g))) (alft.game) has
    β log q* = 1[z = g]/ν(g) + const: within a group a positive multiple of the
    indicator plus a constant, so GRPO's group-standardised advantages are the same
    as with 1[z = g] whenever ν̂(g) > 0 (and all-equal otherwise). Its q would spread
    mass over every unseen answer, which a finite table cannot list; δ_g can.
    """
    pooled = g.pooled
    accepted = [gold, *aliases] if aliases else gold  # TriviaQA: every alias of the answer counts
    matched = [z for z in pooled if answers_match(z, accepted, task)]
    listed = dict(pooled)
    if gold not in listed and not matched:
        listed[gold] = 0
    hits = set(matched) | ({gold} if gold in listed else set())
    q = {z: (1.0 / len(hits) if z in hits else 0.0) for z in listed}
    rows = [_row(g, z, listed[z], q[z], float(z in hits)) for z in _ordered(Counter(listed), q)]
    return rows + [_row(g, None, g.n_none, 0.0, 0.0)]


def _skip_rows(g: _Group) -> list[dict]:
    return [_row(g, None, g.n_none, 1.0, 0.0)]


# ------------------------------------------------------------------------ public
def gold_answers(orbits: pd.DataFrame | None, source: str = "orbits",
                 column: str = GOLD_COLUMN) -> dict[int, str] | None:
    """Gold answer per orbit from orbits.parquet (None if the column is absent or all null).

    Monitoring and ``rlvr`` only. DataError if an orbit's members disagree.
    """
    if orbits is None or column not in orbits.columns or "orbit_id" not in orbits.columns:
        return None
    gold: dict[int, str] = {}
    for o, vals in orbits.groupby("orbit_id")[column]:
        canon = {canonical_answer(v) for v in vals} - {None}
        if len(canon) > 1:
            raise DataError(f"{source}: orbit {o} has conflicting gold {column!r} values {sorted(canon)}")
        if canon:
            gold[int(o)] = canon.pop()
    return gold or None


def gold_aliases(orbits: pd.DataFrame | None, column: str = "aliases") -> dict[int, list[str]] | None:
    """Accepted answer aliases per orbit (TriviaQA's ``aliases`` list column), for ``rlvr`` only."""
    if orbits is None or column not in orbits.columns:
        return None
    out: dict[int, list[str]] = {}
    for o, vals in orbits.groupby("orbit_id")[column]:
        merged: list[str] = []
        for v in vals:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            merged += [str(a) for a in (v if isinstance(v, (list, tuple, np.ndarray)) else [v])]
        if merged:
            out[int(o)] = list(dict.fromkeys(merged))
    return out or None


def compute_targets(samples: pd.DataFrame, config: TargetConfig,
                    gold: Mapping[int, str] | None = None,
                    reward_fn: Callable[[str], float] | None = None,
                    source: str = "samples",
                    aliases: Mapping[int, list[str]] | None = None,
                    logger: logging.Logger | None = None) -> tuple[pd.DataFrame, TargetReport]:
    """The target table (``TARGET_COLUMNS``) for ``samples`` under ``config``.

    ``gold`` (orbit_id -> answer) is read by ``rlvr`` only; ``reward_fn`` (answer ->
    float) is needed by ``reward`` only. ``source`` names the input in error messages.
    """
    log = logger or _log
    df = _prepare_samples(samples, source)
    _check_k(df, source)
    if config.strategy == "rlvr":
        if not gold:
            raise ConfigError(f"strategy 'rlvr' needs gold labels: the orbits table has no non-null "
                              f"{GOLD_COLUMN!r} column")
        lacking = sorted(set(df["orbit_id"].astype(int)) - set(gold))
        if lacking:
            raise ConfigError(f"strategy 'rlvr' needs gold labels: orbit {lacking[0]} has no "
                              f"{GOLD_COLUMN!r} value in the orbits table ({len(lacking)} orbit(s))")
    if config.strategy == "reward" and reward_fn is None:
        raise ConfigError("strategy 'reward' needs an answer-level reward function (reward_fn)")
    report = TargetReport()
    rows: list[dict] = []
    for g in _groups(df, config.shared):
        report.n_groups += 1
        s = config.strategy
        if s == "rlvr":
            rows += _rlvr_rows(g, gold[g.orbit_id], config.task,
                               (aliases or {}).get(g.orbit_id))
            continue
        if not g.pooled:
            report.skipped.append((g.orbit_id, g.member))
            rows += _skip_rows(g)
        elif s == "coherence" or s == "majority":
            rows += {"mode": _mode_rows, "am": lambda g: _am_rows(g, config),
                     "gm": lambda g: _gm_rows(g, config)}[config.consensus](g)
        elif s == "diversity":
            rows += _diversity_rows(g, config)
        else:
            rows += _reward_rows(g, config, reward_fn)
    if report.skipped:
        shown = ", ".join(f"orbit {o}" + ("" if m == SHARED else f" member {m}")
                          for o, m in report.skipped[:10])
        log.warning("skipped %d of %d group(s) with no extractable answer (reward 0 for all their "
                    "completions): %s%s", len(report.skipped), report.n_groups, shown,
                    ", ..." if len(report.skipped) > 10 else "")
    out = pd.DataFrame(rows, columns=TARGET_COLUMNS)
    out = out.astype({"orbit_id": "int64", "member": "int64", "count": "int64",
                      "q": "float64", "reward": "float64"})
    out["answer"] = out["answer"].astype(object)
    if not (np.isfinite(out["reward"]).all() and np.isfinite(out["q"]).all()):
        raise RuntimeError("internal error: non-finite reward or q in the target table")
    return out, report


def consensus_answers(targets: pd.DataFrame) -> dict[tuple[int, int], str | None]:
    """Each group's consensus: its listed answer with the largest q (ties: count, then string)."""
    out: dict[tuple[int, int], str | None] = {}
    for (o, m), sub in targets.groupby(["orbit_id", "member"], sort=True):
        listed = sub[sub["answer"].notna()]
        if listed.empty or listed["q"].max() <= 0:
            out[(int(o), int(m))] = None
            continue
        top = listed[listed["q"] == listed["q"].max()]
        best = sorted(zip(-top["count"], top["answer"]))[0]
        out[(int(o), int(m))] = best[1]
    return out


def _entropy(c: Counter) -> float:
    n = sum(c.values())
    return float(-sum(v / n * math.log(v / n) for v in c.values()))


def target_stats(samples: pd.DataFrame, targets: pd.DataFrame, report: TargetReport | None = None,
                 gold: Mapping[int, str] | None = None, task: str = "builtin") -> dict:
    """Label-free round statistics (and, where gold exists, monitoring accuracies).

    Per prompt (orbit, member), averaged over prompts: ``mode_share`` (share of its K
    samples giving its mode), ``answer_entropy`` (nats, over extractable answers;
    prompts without any are left out). ``orbit_mode_share``: the same on pooled
    orbits. ``no_answer_share``: share of all samples without an extractable answer.
    With gold labels (monitoring only, never fed back): ``consensus_accuracy``
    (the target's argmax-q answer per group; skipped groups count as wrong),
    ``orbit_mode_accuracy`` (global mode per orbit), ``prompt_mode_accuracy``
    (per-prompt mode) and ``sample_accuracy``; NaN without labels.
    """
    df = _prepare_samples(samples)
    nan = float("nan")
    prompt_groups = list(_groups(df, shared=False))
    orbit_groups = list(_groups(df, shared=True))
    shares = [g.pooled[mode_answer(g.pooled)] / g.sizes[0] if g.pooled else 0.0 for g in prompt_groups]
    ents = [_entropy(g.pooled) for g in prompt_groups if g.pooled]
    oshares = [g.pooled[mode_answer(g.pooled)] / sum(g.sizes) if g.pooled else 0.0 for g in orbit_groups]
    stats = {
        "n_samples": int(len(df)),
        "n_prompts": len(prompt_groups),
        "n_orbits": len(orbit_groups),
        "n_groups": int(targets.groupby(["orbit_id", "member"]).ngroups),
        "groups_skipped": len(report.skipped) if report is not None else 0,
        "no_answer_share": float(df["answer"].isna().mean()),
        "mode_share": float(np.mean(shares)),
        "orbit_mode_share": float(np.mean(oshares)),
        "answer_entropy": float(np.mean(ents)) if ents else nan,
        "consensus_accuracy": nan, "orbit_mode_accuracy": nan,
        "prompt_mode_accuracy": nan, "sample_accuracy": nan,
    }
    if gold:
        def acc(pairs: list[tuple[int, str | None]]) -> float:
            hits = [z is not None and answers_match(z, gold[o], task) for o, z in pairs if o in gold]
            return float(np.mean(hits)) if hits else nan

        stats["consensus_accuracy"] = acc([(o, z) for (o, _m), z in consensus_answers(targets).items()])
        stats["orbit_mode_accuracy"] = acc([(g.orbit_id, mode_answer(g.pooled)) for g in orbit_groups])
        stats["prompt_mode_accuracy"] = acc([(g.orbit_id, mode_answer(g.pooled)) for g in prompt_groups])
        cache: dict[tuple[int, str], bool] = {}
        hits = []
        for o, z in zip(df["orbit_id"].astype(int), df["answer"]):
            if o in gold:
                if z is None:
                    hits.append(False)
                else:
                    key = (o, z)
                    if key not in cache:
                        cache[key] = answers_match(z, gold[o], task)
                    hits.append(cache[key])
        stats["sample_accuracy"] = float(np.mean(hits)) if hits else nan
    return stats
