"""Exact checks for alft.safety: I-projection, primal–dual game, target table, scorers."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pandas as pd
import pytest

from alft import safety as S
from alft.errors import ConfigError, DataError
from alft.game import kl_rows, random_instance
from alft.rewards import lookup_rewards
from alft.targets import TARGET_COLUMNS

cp = pytest.importorskip("cvxpy")

CLARABEL = dict(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12,
                tol_ktratio=1e-10, max_iter=500)


def cvx_projection(nu: np.ndarray, c: np.ndarray, tau: float) -> np.ndarray:
    """argmin KL(q‖ν) s.t. E_q[c] ≤ τ by a conic solver (independent of i_projection)."""
    sup = nu > 0
    x = cp.Variable(int(sup.sum()), nonneg=True)
    prob = cp.Problem(cp.Minimize(cp.sum(cp.kl_div(x, nu[sup]))),
                      [cp.sum(x) == 1, c[sup] @ x <= tau])
    prob.solve(**CLARABEL)
    assert prob.status == "optimal"
    out = np.zeros_like(nu)
    out[sup] = x.value
    return out


def kl(q, nu):
    m = q > 0
    return float(np.sum(q[m] * np.log(q[m] / nu[m])))


# ------------------------------------------------------------------ I-projection
@pytest.mark.parametrize("seed", range(6))
def test_i_projection_matches_conic_solver(seed):
    rng = np.random.default_rng(seed)
    Z = int(rng.integers(3, 12))
    nu = rng.dirichlet(np.ones(Z))
    c = rng.uniform(size=Z) if seed % 2 else (rng.uniform(size=Z) < 0.4).astype(float)
    c[0] = 0.0  # a safe answer exists
    nu = 0.9 * nu + 0.1 / Z
    tau = 0.25 * float(nu @ c)
    q, lam = S.i_projection(nu, c, tau)
    ref = cvx_projection(nu, c, tau)
    assert np.max(np.abs(q - ref)) < 1e-8
    # KKT / strong duality certify optimality to machine precision
    assert lam > 0 and abs(q @ c - tau) < 1e-12
    assert abs(kl(q, nu) - S.dual_value(nu, c, tau, lam)) < 1e-12
    np.testing.assert_allclose(q, S.tilt(nu, c, lam), rtol=0, atol=1e-15)


def test_i_projection_feasible_is_identity():
    nu = np.array([0.2, 0.3, 0.5])
    c = np.array([0.0, 1.0, 0.2])
    q, lam = S.i_projection(nu, c, float(nu @ c))  # boundary: feasible
    assert lam == 0.0 and np.array_equal(q, nu)
    q, lam = S.i_projection(nu * 4, c, 0.9)  # unnormalised input is normalised
    assert lam == 0.0 and np.allclose(q, nu)


def test_i_projection_infeasible_names_tau():
    nu = np.array([0.0, 0.5, 0.5])
    c = np.array([0.0, 0.3, 1.0])  # min over the support is 0.3, not 0.0
    with pytest.raises(ValueError, match=r"tau=0\.2 is infeasible.*0\.3"):
        S.i_projection(nu, c, 0.2)


def test_i_projection_tau_at_minimum_is_the_limit():
    nu = np.array([0.1, 0.2, 0.3, 0.4])
    c = np.array([0.5, 0.2, 0.2, 0.9])
    q, lam = S.i_projection(nu, c, 0.2)
    assert math.isinf(lam)
    np.testing.assert_allclose(q, [0, 0.4, 0.6, 0])
    # approaching the limit continuously
    q2, lam2 = S.i_projection(nu, c, 0.2 + 1e-9)
    assert 30 < lam2 < math.inf and np.max(np.abs(q2 - q)) < 1e-8  # λ ~ log(1/gap)/Δc


def test_i_projection_zeros_stay_zero_and_tiny_gaps():
    nu = np.array([0.0, 0.25, 0.0, 0.75])
    c = np.array([0.0, 0.1, 1.0, 1.0])
    q, lam = S.i_projection(nu, c, 0.5)
    assert q[0] == 0 and q[2] == 0
    np.testing.assert_allclose(q, cvx_projection(nu, c, 0.5), atol=1e-8)
    mean = float(nu @ c)
    q, lam = S.i_projection(nu, c, mean - 1e-13)  # barely infeasible: tiny λ
    assert 0 < lam < 1e-9 and abs(q @ c - (mean - 1e-13)) < 1e-15


def test_i_projection_input_errors():
    with pytest.raises(ValueError, match="cost must lie"):
        S.i_projection([0.5, 0.5], [0.0, 1.5], 0.1)
    with pytest.raises(ValueError, match="shape"):
        S.i_projection([0.5, 0.5], [0.0], 0.1)
    with pytest.raises(ValueError, match="no mass"):
        S.i_projection([0.0, 0.0], [0.0, 1.0], 0.1)
    with pytest.raises(ValueError, match="tau"):
        S.i_projection([0.5, 0.5], [0.0, 1.0], float("nan"))


# ---------------------------------------------------------------- enumerable game
def cvx_trace_space(pi0: np.ndarray, a: np.ndarray, c: np.ndarray, tau: float, beta: float):
    """min_π β KL(π‖π0) s.t. E_{ν_π}[c] ≤ τ directly over traces (one prompt)."""
    x = cp.Variable(pi0.size, nonneg=True)
    prob = cp.Problem(cp.Minimize(beta * cp.sum(cp.kl_div(x, pi0))),
                      [cp.sum(x) == 1, c[a] @ x <= tau])
    prob.solve(**CLARABEL)
    assert prob.status == "optimal"
    return x.value


@pytest.mark.parametrize("seed", range(4))
def test_primal_dual_game_converges_to_constrained_optimum(seed):
    rng = np.random.default_rng(100 + seed)
    Z, Y, P = 6, 40, 3
    beta = float(rng.uniform(0.3, 2.0))
    inst = random_instance("expected_reward", P, Y, Z, beta, rng, spread=1.5)
    unsafe = rng.choice(Z, size=2, replace=False)  # designated unsafe answer set
    c = np.zeros(Z)
    c[unsafe] = 1.0
    base = inst.m @ c
    tau = 0.4 * base  # active constraint on every prompt
    exact = S.solve_constrained(inst.pi0, inst.answer_of_trace, c, tau, beta)
    game = S.primal_dual_game(inst.pi0, inst.answer_of_trace, c, tau, beta, eta=2.0)
    # meets the budget, λ converges (to the exact multiplier), policies agree
    assert np.all(game.constraint <= tau + 1e-10)
    np.testing.assert_allclose(exact.constraint, tau, atol=1e-12)
    np.testing.assert_allclose(game.lam, exact.lam, rtol=1e-9)
    steps = np.abs(np.diff(np.array(game.lam_history), axis=0)).max(axis=1)
    assert steps[-1] < 1e-12 and game.iterations < 5000
    tv = 0.5 * np.abs(game.pi - exact.pi).sum(axis=1)
    assert tv.max() < 1e-9
    for i in range(P):
        direct = cvx_trace_space(inst.pi0[i], inst.answer_of_trace, c, float(tau[i]), beta)
        assert 0.5 * np.abs(direct - exact.pi[i]).sum() < 1e-6
        assert 0.5 * np.abs(direct - game.pi[i]).sum() < 1e-6
    # the solution is the policy best response to q ∝ exp(−λc), and β KL(π‖π0) = β KL(ν‖m)
    from alft.game import policy_best_response
    np.testing.assert_allclose(policy_best_response(inst, log_q=exact.log_q), exact.pi, atol=1e-14)
    nu_kl = np.array([kl(exact.nu[i], inst.m[i]) for i in range(P)])
    np.testing.assert_allclose(exact.objective, beta * nu_kl, atol=1e-12)
    np.testing.assert_allclose(exact.objective, beta * kl_rows(exact.pi, inst), atol=1e-14)


def test_solve_constrained_feasible_prompt_keeps_pi0_and_infeasible_raises():
    pi0 = np.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]])
    a = np.array([0, 1, 1, 2])
    c = np.array([0.0, 1.0, 0.5])
    sol = S.solve_constrained(pi0, a, c, tau=np.array([0.9, 0.2]), beta=1.0)
    assert sol.lam[0] == 0 and np.allclose(sol.pi[0], pi0[0]) and sol.objective[0] == 0
    assert sol.lam[1] > 0 and abs(sol.constraint[1] - 0.2) < 1e-12
    game = S.primal_dual_game(pi0, a, c, np.array([0.9, 0.2]), 1.0)
    assert game.lam[0] == 0 and np.abs(game.pi - sol.pi).max() < 1e-9
    with pytest.raises(ValueError, match=r"prompt 0: .*tau=-0\.1"):
        S.solve_constrained(pi0, a, c, -0.1, 1.0)
    # every answer unsafe except one that no trace produces: infeasible below cost 1
    with pytest.raises(ValueError, match="infeasible"):
        S.solve_constrained(pi0, a, np.array([1.0, 1.0, 1.0, 0.0]), 0.5, 1.0)


def test_projection_reward_is_mode_seeking():
    """The literal β log Proj_C(ν_π) reward does not reach the constrained optimum."""
    rng = np.random.default_rng(7)
    inst = random_instance("expected_reward", 2, 30, 5, 1.0, rng)
    c = np.array([1.0, 0, 0, 0, 0])
    tau = 0.5 * inst.m @ c
    exact = S.solve_constrained(inst.pi0, inst.answer_of_trace, c, tau, 1.0)
    lit = S.primal_dual_game(inst.pi0, inst.answer_of_trace, c, tau, 1.0, reward="projection",
                             iters=300)
    assert (0.5 * np.abs(lit.nu - exact.nu).sum(axis=1)).max() > 0.1
    assert lit.nu.max(axis=1).min() > exact.nu.max(axis=1).max()  # sharper than the optimum


def test_primal_dual_state():
    st = S.PrimalDual(tau=0.1, eta=2.0)
    assert st.update(0.3) == pytest.approx(0.4)
    assert st.update(0.0) == pytest.approx(0.2)
    assert st.update(0.0) == 0.0  # projected onto λ ≥ 0
    back = S.PrimalDual.from_dict(st.to_dict())
    assert back.lam == st.lam and back.history == st.history
    np.testing.assert_allclose(S.PrimalDual(0.1, lam=2.0).reward([0.0, 1.0, 0.5], beta=0.5),
                               [0.0, -1.0, -0.5])
    np.testing.assert_allclose(S.PrimalDual(0.1, lam=1.0).target([0.5, 0.5], [0.0, 1.0]),
                               [1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1))])
    with pytest.raises(ConfigError, match="eta"):
        S.PrimalDual(0.1, eta=0)
    with pytest.raises(ConfigError, match="lambda"):
        S.PrimalDual(0.1, lam=-1)
    with pytest.raises(ConfigError, match="tau"):
        S.PrimalDual.from_dict({"eta": 1.0})


# ------------------------------------------------------------- pipeline helpers
def _samples():
    rows = []
    answers = {(0, 0): ["7", "7", "3", None], (0, 1): ["14", "2", "2", "2"], (1, 0): [None] * 4}
    scorer = S.AnswerSetScorer()
    for (o, m), zs in answers.items():
        cost = scorer.answer_cost(zs)
        for i, (z, cz) in enumerate(zip(zs, cost)):
            rows.append({"orbit_id": o, "member": m, "sample_idx": i, "answer": z, "cost": cz})
    return pd.DataFrame(rows)


def test_safety_targets_tilt_and_projection():
    df = _samples()
    assert S.constraint_value(df) == pytest.approx((0.5 + 0.25 + 0.0) / 3)
    st = S.PrimalDual(tau=0.0, lam=1.5)
    t = S.safety_targets(df, st, beta=2.0)
    assert list(t.columns) == [*TARGET_COLUMNS, "cost"]
    g = t[(t.orbit_id == 0) & (t.member == 0)].set_index(t[(t.orbit_id == 0) & (t.member == 0)]
                                                          ["answer"].fillna("<null>"))
    assert g.loc["7", "reward"] == -3.0 and g.loc["3", "reward"] == 0.0
    assert g.loc["<null>", "reward"] == 0.0 and g.loc["<null>", "count"] == 1
    nu = np.array([2 / 3, 1 / 3])  # "7", "3" renormalised over answers
    q = nu * np.exp(-1.5 * np.array([1.0, 0.0]))
    assert g.loc["7", "q"] == pytest.approx(q[0] / q.sum())
    assert t.groupby(["orbit_id", "member"])["q"].sum().tolist() == pytest.approx([1, 1, 1])
    # lookup rule applies; no-answer group: only its null row
    r = lookup_rewards(t[TARGET_COLUMNS], [0, 0, 1], [1, 1, 0], ["14", "99", None])
    assert r == [-3.0, -3.0, 0.0]  # unlisted answer: null row, cost 1 (no no-answer samples)
    tp = S.safety_targets(df, st, beta=2.0, reward="projection", estimator="plugin")
    from alft.estimators import plugin_table
    tab = plugin_table(4, 2.0)
    gp = tp[(tp.orbit_id == 0) & (tp.member == 1)].set_index("answer")
    assert gp.loc["2", "reward"] == pytest.approx(tab[3])
    assert gp.loc["14", "reward"] == pytest.approx(tab[1] - 3.0)
    with pytest.raises(ConfigError, match="reward"):
        S.safety_targets(df, st, reward="nope")
    with pytest.raises(DataError, match="cost"):
        S.safety_targets(df.drop(columns="cost"), st)


def test_safety_reward_callable():
    base = lambda prompts=None, completions=None, completion_ids=None, **kw: [1.0] * len(completions)  # noqa: E731
    rw = S.SafetyReward(S.AnswerSetScorer(), lam=0.5, beta=2.0, base=base)
    out = rw(prompts=["p"] * 3, completions=["The answer is 21.", "The answer is 5.", "no"])
    assert out == [0.0, 1.0, 1.0]
    assert rw.__name__ == "safety_reward"


# ----------------------------------------------------------------------- scorers
def test_answer_set_scorer():
    s = S.AnswerSetScorer()
    texts = ["2+5=7. The answer is 7.", "The answer is 8.", "nothing", "The answer is 0.",
             "The answer is 56.", "The answer is 1,400."]
    np.testing.assert_array_equal(s(texts), [1, 0, 0, 1, 1, 1])
    assert isinstance(s, S.Scorer)
    s2 = S.AnswerSetScorer(["8", "9.0"])
    np.testing.assert_array_equal(s2(["The answer is 8.", "The answer is 9.", "The answer is 7."]),
                                  [1, 1, 0])
    assert S.builtin_unsafe("-14") and not S.builtin_unsafe("x") and not S.builtin_unsafe(None)
    with pytest.raises(ConfigError, match="string"):
        S.AnswerSetScorer("7")


def test_profanity_scorer():
    pytest.importorskip("profanity_check")
    s = S.load_scorer("profanity")
    out = s(["have a lovely day", "you are a fucking idiot"])
    assert out.shape == (2,) and np.all((out >= 0) & (out <= 1))
    assert out[1] > 0.5 > out[0]
    assert s([]).shape == (0,)


def test_detoxify_unavailable_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "detoxify", None)  # import fails
    with pytest.raises(S.ScorerUnavailable, match="detoxify"):
        S.DetoxifyScorer()
    with pytest.raises(ConfigError, match="hub"):
        S.load_scorer("detoxify")


def test_detoxify_wraps_a_fake_model(monkeypatch):
    fake = types.ModuleType("detoxify")

    class Detoxify:
        def __init__(self, model, device="cpu"):
            if model != "original":
                raise RuntimeError("404 from the hub")

        def predict(self, texts):
            return {"toxicity": [0.9 if "bad" in t else 0.1 for t in texts]}

    fake.Detoxify = Detoxify
    monkeypatch.setitem(sys.modules, "detoxify", fake)
    s = S.DetoxifyScorer(batch_size=2)
    np.testing.assert_allclose(s(["bad", "ok", "bad word"]), [0.9, 0.1, 0.9])
    with pytest.raises(S.ScorerUnavailable, match="404"):
        S.DetoxifyScorer(model="unbiased")


def test_load_scorer_entry_points_and_errors(monkeypatch):
    mod = types.ModuleType("my_scorers")
    mod.length = lambda texts: np.array([min(len(t), 10) / 10 for t in texts])

    class Const:
        def __init__(self, value=0.5):
            self.value = value

        def __call__(self, texts):
            return np.full(len(texts), self.value)

    mod.Const = Const
    mod.bad = lambda texts: np.array([2.0] * len(texts))
    mod.short = lambda texts: np.zeros(1)
    mod.not_callable = 3
    mod.ns = types.SimpleNamespace(inner=Const)
    monkeypatch.setitem(sys.modules, "my_scorers", mod)
    np.testing.assert_allclose(S.load_scorer("my_scorers:length")(["abcde", ""]), [0.5, 0.0])
    np.testing.assert_allclose(S.load_scorer("my_scorers:Const", value=0.25)(["a"]), [0.25])
    np.testing.assert_allclose(S.load_scorer("my_scorers:ns.inner")(["a"]), [0.5])
    np.testing.assert_array_equal(S.load_scorer("answer_set")(["The answer is 7."]), [1.0])
    with pytest.raises(ConfigError, match="unknown short name"):
        S.load_scorer("toxic")
    with pytest.raises(ConfigError, match="cannot import module 'no_such_mod'"):
        S.load_scorer("no_such_mod:x")
    with pytest.raises(ConfigError, match="no attribute 'nope'"):
        S.load_scorer("my_scorers:nope")
    with pytest.raises(ConfigError, match="non-callable"):
        S.load_scorer("my_scorers:not_callable")
    with pytest.raises(ConfigError, match="not a class"):
        S.load_scorer("my_scorers:length", value=1)
    with pytest.raises(ConfigError, match="cannot construct"):
        S.load_scorer("my_scorers:Const", nope=1)
    with pytest.raises(ConfigError, match="both parts"):
        S.load_scorer("my_scorers:")
    with pytest.raises(DataError, match=r"costs must lie in \[0, 1\]"):
        S.load_scorer("my_scorers:bad")(["a"])
    with pytest.raises(DataError, match="1 scores for 2 texts"):
        S.load_scorer("my_scorers:short")(["a", "b"])
