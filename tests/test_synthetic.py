"""The synthetic validation: setup, --quick CLI run, and Game-GRPO vs REINFORCE."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alft import synthetic
from alft.cli import main
from alft.errors import ConfigError


def test_problem_setup_matches_the_spec():
    cfg = synthetic.SyntheticConfig(prompts=200, traces=10_000, answers=10)
    prob = synthetic.make_problem(cfg, np.random.default_rng(0))
    assert prob.log_pi0.shape == (200, 10_000)
    assert np.all(np.bincount(prob.answer) == 1000)  # 1000:1 redundancy
    pi0 = np.exp(prob.log_pi0)
    np.testing.assert_allclose(pi0.sum(axis=1), 1.0)
    acc = (pi0 * prob.correct).sum(axis=1)
    assert 0.3 < prob.easy.mean() < 0.7
    assert acc[prob.easy].min() > 0.99  # bias 8.0
    assert abs(acc[~prob.easy].mean() - 0.1) < 0.01  # bias 0.0: chance


def test_sampler_is_unbiased():
    rng = np.random.default_rng(1)
    pi = rng.dirichlet(np.ones(5), size=3)
    ys = synthetic._sample(pi, 40_000, rng)
    freq = np.stack([np.bincount(row, minlength=5) / 40_000 for row in ys])
    np.testing.assert_allclose(freq, pi, atol=0.01)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="synthetic.lr"):
        synthetic.config_from_mapping({"lr": -1})
    with pytest.raises(ConfigError, match="synthetic.estimators"):
        synthetic.config_from_mapping({"estimators": ["median"]})
    with pytest.raises(ConfigError, match="synthetic.bogus"):
        synthetic.config_from_mapping({"bogus": 1})


def test_quick_cli_and_game_grpo_beats_reinforce(tmp_path):
    out = {k: tmp_path / f"{k}" for k in ("curves.parquet", "summary.parquet", "summary.md",
                                          "fig.png")}
    rc = main(["synthetic", "--quick", "--no-progress", "--config-json", json.dumps({"K": 8}),
               "--curves", str(out["curves.parquet"]), "--summary", str(out["summary.parquet"]),
               "--summary-md", str(out["summary.md"]), "--figure", str(out["fig.png"])])
    assert rc == 0
    curves = pd.read_parquet(out["curves.parquet"])
    assert {"method", "seed", "step", "accuracy"} <= set(curves.columns)
    cfg = synthetic.config_from_mapping({}, quick=True)
    assert set(curves["method"]) == set(cfg.methods())
    assert curves.groupby("method")["seed"].nunique().min() == len(cfg.seeds)
    assert out["fig.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "game_grpo" in out["summary.md"].read_text()
    summary = pd.read_parquet(out["summary.parquet"]).set_index("method")
    # both start at π0's accuracy; Game-GRPO reaches 95% in every seed, and sooner
    first = curves.loc[curves["step"] == 0].groupby("method")["accuracy"].mean()
    assert first.max() - first.min() < 1e-12
    game, rf = summary.loc["game_grpo"], summary.loc["reinforce"]
    assert game["seeds_reaching_95"] == len(cfg.seeds)
    assert game["final_accuracy_mean"] > 0.99
    assert game["steps_to_95_mean"] < 0.6 * (rf["steps_to_95_mean"] if rf["seeds_reaching_95"]
                                             == len(cfg.seeds) else cfg.steps)
    # at matched steps, per seed, Game-GRPO is ahead early in training
    mid = curves.loc[curves["step"] == 20].set_index(["method", "seed"])["accuracy"]
    assert np.all(mid.loc["game_grpo"].to_numpy() > mid.loc["reinforce"].to_numpy())
