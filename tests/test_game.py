"""The exact check of issue 5: the game's equilibrium = the direct ALFT optimum.

The reference optimum is computed with no game at all: J(π) = R(ν_π) + β KL(π‖π0) is
minimised over trace-space softmax logits with scipy's L-BFGS, marginalising ν_π
directly (ν = Σ over each answer's traces).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import logsumexp

from alft import game
from alft.cli import main
from alft.errors import ConfigError


def _direct_objective(theta_flat, inst):
    """J(π) summed over prompts and its gradient, π = softmax(log π0 + θ)."""
    p, y = inst.pi0.shape
    theta = theta_flat.reshape(p, y)
    logits = inst.log_pi0 + theta
    lpi = logits - logsumexp(logits, axis=1, keepdims=True)
    pi = np.exp(lpi)
    onehot = np.eye(inst.num_answers)[inst.answer_of_trace]  # (traces, answers)
    nu = pi @ onehot  # direct marginalisation over each answer's traces
    kl = (pi * (lpi - inst.log_pi0)).sum(axis=1)
    rows = np.arange(p)
    if inst.objective == "rlvr":
        r_val = -np.log(nu[rows, inst.ground_truth])
        dr = np.zeros_like(nu)
        dr[rows, inst.ground_truth] = -1.0 / nu[rows, inst.ground_truth]
    elif inst.objective == "neg_entropy":
        r_val = (nu * np.log(nu)).sum(axis=1)
        dr = np.log(nu) + 1.0
    else:
        r_val = -(nu * inst.reward).sum(axis=1)
        dr = -inst.reward
    g = dr[:, inst.answer_of_trace] + inst.beta * (lpi - inst.log_pi0 + 1.0)
    grad = pi * (g - (pi * g).sum(axis=1, keepdims=True))
    return float((r_val + inst.beta * kl).sum()), grad.ravel()


def direct_optimum(inst):
    x0 = np.zeros(inst.pi0.size)
    res = minimize(_direct_objective, x0, args=(inst,), jac=True, method="L-BFGS-B",
                   options={"maxiter": 20000, "maxcor": 50, "ftol": 1e-16, "gtol": 1e-13})
    logits = inst.log_pi0 + res.x.reshape(inst.pi0.shape)
    return np.exp(logits - logsumexp(logits, axis=1, keepdims=True))


CASES = [(obj, beta, seed) for obj in game.OBJECTIVES for beta, seed in ((0.4, 1), (1.0, 2), (4.0, 3))]


@pytest.mark.parametrize("objective,beta,seed", CASES)
def test_equilibrium_equals_direct_optimum(objective, beta, seed):
    rng = np.random.default_rng(seed)
    inst = game.random_instance(objective, prompts=3, traces=40, answers=5, beta=beta,
                                rng=rng, spread=1.5)
    sol = game.solve_exact(inst)
    assert sol.gap <= 1e-10
    assert sol.gap >= -1e-12  # weak duality
    direct = direct_optimum(inst)
    tv = 0.5 * np.abs(sol.pi - direct).sum(axis=1).max()
    assert tv <= 1e-6, tv
    j_direct = game.J_value(direct, inst)
    np.testing.assert_allclose(sol.objective, j_direct, rtol=0, atol=1e-9)
    # the equilibrium is no worse than the direct optimum, and no policy nearby is better
    assert np.all(sol.objective <= j_direct + 1e-12)
    # game value at the equilibrium equals J (Fenchel–Moreau at the target best response)
    np.testing.assert_allclose(game.game_value(sol.pi, inst, log_q=sol.log_q), sol.objective,
                               atol=1e-9)


@pytest.mark.parametrize("objective", game.OBJECTIVES)
def test_target_best_response_attains_J(objective):
    """max_q G(π, q) = J(π) for an arbitrary π, and no other q does better."""
    rng = np.random.default_rng(7)
    inst = game.random_instance(objective, prompts=2, traces=30, answers=4, beta=0.6, rng=rng)
    logits = rng.normal(size=inst.pi0.shape)
    pi = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    nu = game.answer_marginal(pi, inst)
    lq = game.target_best_response_log(nu, inst)
    best = game.game_value(pi, inst, log_q=lq)
    np.testing.assert_allclose(best, game.J_value(pi, inst), atol=1e-12)
    for _ in range(200):
        q = rng.dirichlet(np.ones(inst.num_answers), size=inst.num_prompts)
        assert np.all(game.game_value(pi, inst, q=q) <= best + 1e-12)


def test_rlvr_target_is_not_dirac():
    """The exact RLVR best response is q* ∝ exp(1[z=g]/(β ν(g))), not δ_g."""
    rng = np.random.default_rng(3)
    inst = game.random_instance("rlvr", prompts=2, traces=30, answers=4, beta=1.0, rng=rng)
    sol = game.solve_exact(inst)
    assert np.all(sol.q > 1e-3)
    nu = game.answer_marginal(sol.pi, inst)
    rows = np.arange(2)
    g = inst.ground_truth
    ratio = sol.q[rows, g] / sol.q[rows, (g + 1) % 4]
    np.testing.assert_allclose(np.log(ratio), 1.0 / (inst.beta * nu[rows, g]), rtol=1e-10)


@pytest.mark.parametrize("objective", game.OBJECTIVES)
def test_epsilon_equilibrium_is_epsilon_optimal(objective):
    """Slides' proposition: gap(π̂, q̂) ≤ ε ⇒ J(π̂) ≤ J(π*) + ε, on no-regret iterates
    and on random perturbations of the equilibrium."""
    rng = np.random.default_rng(11)
    inst = game.random_instance(objective, prompts=3, traces=50, answers=5, beta=0.8, rng=rng)
    j_star = game.solve_exact(inst).objective.mean()
    sols = [game.solve_no_regret(inst, iters=n) for n in (5, 30, 200)]
    exact = game.solve_exact(inst)
    pairs = [(s.pi, s.log_q) for s in sols]
    for scale in (1e-3, 1e-2, 1e-1, 1.0):
        lp = np.log(exact.pi) + scale * rng.normal(size=exact.pi.shape)
        lq = exact.log_q + scale * rng.normal(size=exact.log_q.shape)
        pairs.append((np.exp(lp - logsumexp(lp, axis=1, keepdims=True)), lq))
    excesses = []
    for pi, lq in pairs:
        eps = game.duality_gap(pi, inst, log_q=lq)
        excess = game.J_value(pi, inst).mean() - j_star
        assert eps >= -1e-12
        assert -1e-12 <= excess <= eps + 1e-12, (excess, eps)
        excesses.append(excess)
    assert max(excesses) > 1e-4  # the check is not vacuous


def test_no_regret_and_damped_alternation_converge():
    rng = np.random.default_rng(5)
    inst = game.random_instance("neg_entropy", prompts=3, traces=40, answers=5, beta=0.5, rng=rng)
    exact = game.solve_exact(inst)
    nr = game.solve_no_regret(inst, iters=3000)
    assert nr.gap < 1e-5
    assert 0.5 * np.abs(nr.pi - exact.pi).sum(axis=1).max() < 1e-2
    # undamped alternation oscillates for β < 1; damping fixes it
    undamped = game.alternating_best_response(inst, iters=200, damping=1.0)
    damped = game.alternating_best_response(inst, iters=300, damping=0.3, tol=0.0)
    assert undamped.gap > 1e-3
    assert damped.gap <= 1e-10  # the gap is quadratic in the distance: run on to TV 1e-8
    assert 0.5 * np.abs(damped.pi - exact.pi).sum(axis=1).max() < 1e-8


def test_unreachable_answer_and_degenerate_gt():
    pi0 = np.full((2, 4), 0.25)
    inst = game.make_instance(0.5, "neg_entropy", pi0, [0, 0, 1, 2], 5)  # answer 3, 4 unused
    sol = game.solve_exact(inst)
    assert sol.gap <= 1e-10
    assert np.all(sol.q[:, 3:] == 0)
    inst = game.make_instance(0.5, "rlvr", pi0, [1, 1, 1, 1], 3, ground_truth=[1, 1])
    sol = game.solve_exact(inst)  # every trace is correct: π* = π0, J = 0
    np.testing.assert_allclose(sol.pi, pi0)
    np.testing.assert_allclose(sol.objective, 0.0, atol=1e-12)


def _valid():
    return {"beta": 0.7, "objective": "rlvr", "pi0": [[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]],
            "answer_of_trace": [0, 1, 1], "num_answers": 2, "ground_truth": [1, 0],
            "reward": [[0.0, 1.0], [1.0, 0.0]]}


@pytest.mark.parametrize("field,value", [
    ("pi0", [[0.5, 0.25, 0.2], [0.2, 0.3, 0.5]]),  # row 0 sums to 0.95
    ("pi0", [[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]]),  # zero entry
    ("pi0", [0.5, 0.25, 0.25]),  # wrong shape
    ("answer_of_trace", [0, 1, 2]),  # out of range
    ("answer_of_trace", [0, 1]),  # wrong length
    ("beta", 0.0),
    ("beta", -1),
    ("objective", "rlhf"),
    ("ground_truth", [1, 5]),
    ("ground_truth", [1]),
    ("num_answers", 0),
])
def test_malformed_instance_names_field(field, value):
    d = _valid()
    d[field] = value
    with pytest.raises(ConfigError, match=repr(field)):
        game.instance_from_dict(d)


def test_missing_and_unknown_fields():
    d = _valid()
    del d["ground_truth"]
    with pytest.raises(ConfigError, match="'ground_truth'"):
        game.instance_from_dict(d)
    d = _valid()
    d["objective"] = "expected_reward"
    d["reward"] = [[0.0, 1.0]]
    with pytest.raises(ConfigError, match="'reward'"):
        game.instance_from_dict(d)
    d = _valid()
    d["gamma"] = 1
    with pytest.raises(ConfigError, match="'gamma'"):
        game.instance_from_dict(d)


def test_cli_round_trip(tmp_path, capsys):
    rng = np.random.default_rng(0)
    pi0 = rng.dirichlet(np.ones(60), size=4)
    inst = {"beta": 0.7, "objective": "rlvr", "pi0": pi0.tolist(),
            "answer_of_trace": (np.arange(60) % 6).tolist(), "num_answers": 6,
            "ground_truth": [2, 0, 5, 1], "reward": rng.normal(size=(4, 6)).tolist()}
    src, out = tmp_path / "inst.json", tmp_path / "out.json"
    src.write_text(json.dumps(inst))
    assert main(["game-solve", "--instance", str(src), "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res) == {"pi", "q", "objective", "iterations", "gap"}
    pi, q = np.array(res["pi"]), np.array(res["q"])
    assert pi.shape == (4, 60) and q.shape == (4, 6)
    np.testing.assert_allclose(pi.sum(axis=1), 1.0)
    np.testing.assert_allclose(q.sum(axis=1), 1.0)
    assert res["gap"] <= 1e-10 and isinstance(res["iterations"], int)
    parsed = game.instance_from_dict(inst)
    np.testing.assert_allclose(res["objective"], game.J_value(pi, parsed), atol=1e-9)
    np.testing.assert_allclose(pi, game.policy_best_response(parsed, q=q), atol=1e-12)
    # malformed instance: exit code 2, message names the field, no output written
    inst["beta"] = -0.5
    src.write_text(json.dumps(inst))
    bad_out = tmp_path / "bad.json"
    assert main(["game-solve", "--instance", str(src), "--out", str(bad_out)]) == 2
    assert "'beta'" in capsys.readouterr().err
    assert not bad_out.exists()
