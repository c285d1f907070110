"""Exact tests for alft.targets and `alft target` on hand-built samples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alft import estimators as est
from alft.cli import main
from alft.errors import ConfigError, DataError
from alft.rewards import lookup_rewards
from alft.targets import (SHARED, TARGET_COLUMNS, TargetConfig, compute_targets, consensus_answers,
                          gold_answers, mode_answer, reward_table, target_stats)

# orbit 0: member 0 votes "1" (3 of 4) but the orbit's pooled mode is "2" (5 of 12);
# orbit 1: no extractable answer at all; orbit 2: one member without answers.
DATA = {
    0: {0: ["1", "1", "1", "2"], 1: ["2", "2", "3", "4"], 2: ["2", "5", None, "2"]},
    1: {0: [None, None, None, None], 1: [None, None, None, None]},
    2: {0: ["7", "7", "8", None], 1: [None, None, None, None]},
}
GOLD = {0: "2", 1: "3", 2: "7"}


def make_samples(data=DATA) -> pd.DataFrame:
    rows = []
    for o, members in data.items():
        for m, answers in members.items():
            for i, a in enumerate(answers):
                rows.append({"orbit_id": o, "member": m, "sample_idx": i, "prompt": f"Q{o}.{m}",
                             "completion": "" if a is None else f" The answer is {a}.", "answer": a,
                             "n_tokens": 5, "finish_reason": "stop"})
    return pd.DataFrame(rows)


def make_orbits(data=DATA, gold=GOLD) -> pd.DataFrame:
    rows = [{"orbit_id": o, "member": m, "prompt": f"Q{o}.{m}", "source": "t", "question": "q",
             "question_id": f"id{o}", "answer": gold[o]} for o, ms in data.items() for m in ms]
    return pd.DataFrame(rows)


def group(t: pd.DataFrame, o: int, m: int) -> pd.DataFrame:
    return t[(t.orbit_id == o) & (t.member == m)]


def as_dict(g: pd.DataFrame, col: str) -> dict:
    return dict(zip(g["answer"], g[col]))


def check_invariants(t: pd.DataFrame) -> None:
    assert list(t.columns) == TARGET_COLUMNS
    assert np.isfinite(t["reward"]).all() and np.isfinite(t["q"]).all()
    for _, g in t.groupby(["orbit_id", "member"]):
        assert g["answer"].isna().sum() == 1
        assert g["q"].sum() == pytest.approx(1.0, abs=1e-12)
        assert (g["q"] >= 0).all()


def test_global_mode_differs_from_per_prompt_mode():
    s = make_samples()
    coh, rep = compute_targets(s, TargetConfig("coherence", "mode"))
    maj, _ = compute_targets(s, TargetConfig("majority", "mode"))
    check_invariants(coh)
    check_invariants(maj)
    g = group(coh, 0, SHARED)
    assert as_dict(g, "q")["2"] == 1.0 and as_dict(g, "reward") == {"2": 1.0, "1": 0.0, "3": 0.0,
                                                                   "4": 0.0, "5": 0.0, None: 0.0}
    assert as_dict(g, "count")["2"] == 5 and as_dict(g, "count")[None] == 1
    assert as_dict(group(maj, 0, 0), "reward") == {"1": 1.0, "2": 0.0, None: 0.0}
    # the same completion ("1" from member 0) is rewarded by majority, not by coherence
    assert lookup_rewards(coh, [0], [0], ["1"]) == [0.0]
    assert lookup_rewards(maj, [0], [0], ["1"]) == [1.0]
    assert set(coh["member"]) == {SHARED} and set(maj["member"]) == {0, 1, 2}
    assert rep.skipped == [(1, SHARED)]


def test_mode_ties_are_deterministic():
    assert mode_answer({"9": 2, "10": 2, "3": 1}) == "10"
    assert mode_answer({}) is None and mode_answer({"a": 0}) is None


def test_am_and_gm_formulas():
    s = make_samples()
    am, _ = compute_targets(s, TargetConfig("coherence", "am", "plugin", beta=2.0))
    gm, _ = compute_targets(s, TargetConfig("coherence", "gm", "plugin", beta=2.0))
    check_invariants(am)
    check_invariants(gm)
    # q_AM = mean_m X_m/K_m over answers, renormalised: "2" -> (1/4+2/4+2/4)/3 / (11/12) = 5/11
    qa = as_dict(group(am, 0, SHARED), "q")
    assert qa["2"] == pytest.approx(5 / 11) and qa["1"] == pytest.approx(3 / 11)
    assert qa["5"] == pytest.approx(1 / 11) and qa[None] == 0.0
    # reward: plug-in table on the pooled count, N = 12
    ra = as_dict(group(am, 0, SHARED), "reward")
    assert ra["2"] == pytest.approx(2.0 * math.log(5 / 12))
    assert ra[None] == pytest.approx(2.0 * math.log(0.5 / 12))  # c_0, below every listed reward
    # q_GM ∝ prod_m (X_m + 0.5)^(1/3)
    w = {"1": (3.5 * 0.5 * 0.5), "2": (1.5 * 2.5 * 2.5), "3": (0.5 * 1.5 * 0.5),
         "4": (0.5 * 1.5 * 0.5), "5": (0.5 * 0.5 * 1.5)}
    w = {z: v ** (1 / 3) for z, v in w.items()}
    tot = sum(w.values())
    qg = as_dict(group(gm, 0, SHARED), "q")
    for z, v in w.items():
        assert qg[z] == pytest.approx(v / tot)
    # reward: mean over members of the member's K=4 table at its count (c_0 for a zero)
    c = est.estimator_table("plugin", 4, 2.0)
    rg = as_dict(group(gm, 0, SHARED), "reward")
    assert rg["2"] == pytest.approx((c[1] + c[2] + c[2]) / 3)
    assert rg["1"] == pytest.approx((c[3] + c[0] + c[0]) / 3)
    assert rg[None] == pytest.approx(c[0])
    # consensus: AM and GM both pick the global mode "2" here
    assert consensus_answers(am)[(0, SHARED)] == consensus_answers(gm)[(0, SHARED)] == "2"


@pytest.mark.parametrize("method,eps", [("plugin", None), ("taylor", None), ("minimax_lp", None),
                                        ("aqp", 0.05), ("euclidean", None)])
def test_estimator_rewards_equal_the_table_at_the_counts(method, eps):
    s = make_samples()
    t, _ = compute_targets(s, TargetConfig("majority", "am", method, beta=0.5, aqp_eps=eps))
    check_invariants(t)
    c = est.estimator_table(method, 4, 0.5, eps)
    if method == "euclidean":  # reward β(q − 1): the negative of the cost table β(1 − q)
        c = -c
        np.testing.assert_allclose(c, 0.5 * (np.arange(5) / 4 - 1))
    np.testing.assert_allclose(reward_table(method, 4, 0.5, eps), c)
    listed = t[t["answer"].notna() & (t["count"] > 0)]
    skipped = {(1, 0), (1, 1), (2, 1)}
    for row in listed.itertuples():
        assert (row.orbit_id, row.member) not in skipped
        assert row.reward == pytest.approx(c[row.count], rel=1e-12, abs=1e-12)
    for (o, m), g in t.groupby(["orbit_id", "member"]):
        null = g[g["answer"].isna()]["reward"].item()
        if (o, m) in skipped:
            assert null == 0.0
        else:
            assert null == pytest.approx(min(c[0], g[g["answer"].notna()]["reward"].min()))


def test_diversity_inverse_frequency():
    s = make_samples()
    t, _ = compute_targets(s, TargetConfig("diversity", estimator="plugin", beta=0.5))
    check_invariants(t)
    g = group(t, 0, 0)  # "1" x3, "2" x1 of K=4: q ∝ ν^(-2)
    q = as_dict(g, "q")
    assert q["2"] == pytest.approx((1 / 4) ** -2 / ((1 / 4) ** -2 + (3 / 4) ** -2))
    r = as_dict(g, "reward")  # β log q* = −log ν + const
    assert r["1"] == pytest.approx(-math.log(3 / 4)) and r["2"] == pytest.approx(-math.log(1 / 4))
    assert r[None] == pytest.approx(r["1"])  # no answer never beats an answer
    with pytest.raises(ConfigError, match="diversity"):
        TargetConfig("diversity", estimator="euclidean")


def test_reward_strategy_softmax():
    s = make_samples()
    t, _ = compute_targets(s, TargetConfig("reward", beta=0.5), reward_fn=lambda z: float(z == "2"))
    check_invariants(t)
    q = as_dict(group(t, 0, 1), "q")
    e = math.exp(1 / 0.5)
    assert q["2"] == pytest.approx(e / (e + 2)) and q["3"] == pytest.approx(1 / (e + 2))
    with pytest.raises(ConfigError, match="reward function"):
        compute_targets(s, TargetConfig("reward"))


def test_rlvr_delta_target_and_label_errors():
    s = make_samples()
    t, rep = compute_targets(s, TargetConfig("rlvr"), gold=GOLD)
    check_invariants(t)
    assert rep.skipped == []  # δ_g needs no samples
    assert as_dict(group(t, 0, SHARED), "reward") == {"2": 1.0, "1": 0.0, "3": 0.0, "4": 0.0,
                                                     "5": 0.0, None: 0.0}
    g1 = group(t, 1, SHARED)  # gold "3" never sampled: listed with count 0
    assert as_dict(g1, "count") == {"3": 0, None: 8} and as_dict(g1, "q") == {"3": 1.0, None: 0.0}
    with pytest.raises(ConfigError, match="'answer'"):
        compute_targets(s, TargetConfig("rlvr"), gold=None)
    with pytest.raises(ConfigError, match="orbit 2"):
        compute_targets(s, TargetConfig("rlvr"), gold={0: "2", 1: "3"})
    assert gold_answers(make_orbits().drop(columns="answer")) is None
    assert gold_answers(make_orbits()) == GOLD
    bad = make_orbits()
    bad.loc[0, "answer"] = "99"
    with pytest.raises(DataError, match="orbit 0"):
        gold_answers(bad)


def test_errors_k_and_unknown_strategy():
    s = make_samples({0: {0: ["1"], 1: ["1", "2"]}})
    with pytest.raises(ConfigError, match="orbit 0 member 0 has K=1"):
        compute_targets(s, TargetConfig("coherence"))
    for kw in ({"strategy": "nope"}, {"strategy": "coherence", "consensus": "median"},
               {"strategy": "coherence", "estimator": "mle"},
               {"strategy": "coherence", "consensus": "am", "estimator": "aqp"},
               {"strategy": "coherence", "beta": 0.0}):
        with pytest.raises(ConfigError):
            TargetConfig(**kw)
    with pytest.raises(ConfigError, match="K=36"):  # minimax LP refuses pooled N > 32
        big = make_samples({0: {m: ["1"] * 12 for m in range(3)}})
        compute_targets(big, TargetConfig("coherence", "am", "minimax_lp"))
    with pytest.raises(DataError, match="member"):
        compute_targets(make_samples().drop(columns="member"), TargetConfig("coherence"))


def test_skip_orbit_without_answers_never_nan(caplog):
    s = make_samples()
    for cfg in (TargetConfig("coherence", c, "taylor") for c in ("mode", "am", "gm")):
        with caplog.at_level("WARNING", logger="alft.targets"):
            t, rep = compute_targets(s, cfg)
        check_invariants(t)
        g = group(t, 1, SHARED)
        assert len(g) == 1 and g["answer"].isna().all()
        assert g["reward"].item() == 0.0 and g["q"].item() == 1.0 and g["count"].item() == 8
        assert rep.skipped == [(1, SHARED)]
    assert "skipped 1 of 3 group(s)" in caplog.text and "orbit 1" in caplog.text


def test_stats():
    s = make_samples()
    t, rep = compute_targets(s, TargetConfig("coherence"))
    st = target_stats(s, t, rep, GOLD)
    assert st["no_answer_share"] == pytest.approx(14 / 28)
    assert st["groups_skipped"] == 1 and st["n_groups"] == 3 and st["n_prompts"] == 7
    # per-prompt mode shares: 3/4, 2/4, 2/4, 0, 0, 2/4, 0
    assert st["mode_share"] == pytest.approx((0.75 + 0.5 + 0.5 + 0.5) / 7)
    h = lambda ps: -sum(p * math.log(p) for p in ps)  # noqa: E731
    ents = [h([3 / 4, 1 / 4]), h([1 / 2, 1 / 4, 1 / 4]), h([2 / 3, 1 / 3]), h([2 / 3, 1 / 3])]
    assert st["answer_entropy"] == pytest.approx(np.mean(ents))
    assert st["consensus_accuracy"] == pytest.approx(2 / 3)  # orbits 0, 2 right; 1 skipped
    assert st["orbit_mode_accuracy"] == pytest.approx(2 / 3)
    assert st["prompt_mode_accuracy"] == pytest.approx(3 / 7)  # (0,1), (0,2), (2,0)
    assert st["sample_accuracy"] == pytest.approx((5 + 2) / 28)
    nolab = target_stats(s, t, rep, None)
    assert math.isnan(nolab["consensus_accuracy"]) and nolab["mode_share"] == st["mode_share"]


def test_cli_round_trip(tmp_path, capsys):
    s, o = tmp_path / "samples.parquet", tmp_path / "orbits.parquet"
    make_samples().to_parquet(s)
    make_orbits().to_parquet(o)
    out, stats = tmp_path / "t" / "targets.parquet", tmp_path / "t" / "stats.parquet"
    base = ["target", "--samples", str(s), "--orbits", str(o), "--round", "1", "--method", "coh",
            "--task", "builtin", "--out", str(out), "--stats", str(stats)]
    assert main(base + ["--strategy", "coherence", "--consensus", "gm", "--estimator", "taylor",
                        "--beta", "0.5"]) == 0
    t = pd.read_parquet(out)
    check_invariants(t)
    expected, _ = compute_targets(make_samples(), TargetConfig("coherence", "gm", "taylor", 0.5))
    pd.testing.assert_frame_equal(t, expected, check_dtype=False)
    row = pd.read_parquet(stats)
    assert len(row) == 1 and row["round"].item() == 1 and row["method"].item() == "coh"
    assert row["consensus"].item() == "gm" and row["groups_skipped"].item() == 1
    for col in ("mode_share", "answer_entropy", "no_answer_share", "consensus_accuracy"):
        assert col in row.columns
    # rlvr without labels: a clear error naming the column, no output written
    make_orbits().drop(columns="answer").to_parquet(o)
    out2 = tmp_path / "t2.parquet"
    rc = main(base[:-4] + ["--out", str(out2), "--stats", str(tmp_path / "s2.parquet"),
                           "--strategy", "rlvr"])
    assert rc == 2 and not out2.exists()
    assert "'answer'" in capsys.readouterr().err
    # K < 2: a ConfigError naming the file
    make_samples({0: {0: ["1"]}}).to_parquet(s)
    assert main(base[:-4] + ["--out", str(out2), "--stats", str(tmp_path / "s2.parquet"),
                             "--strategy", "majority"]) == 2
    err = capsys.readouterr().err
    assert str(s) in err and "K=1" in err


def test_cli_collapse_guard(tmp_path, capsys):
    s, o = tmp_path / "samples.parquet", tmp_path / "orbits.parquet"
    make_samples().to_parquet(s)
    make_orbits().to_parquet(o)
    out, stats = tmp_path / "targets.parquet", tmp_path / "stats.parquet"
    base = ["target", "--samples", str(s), "--orbits", str(o), "--strategy", "coherence",
            "--round", "0", "--method", "coh", "--out", str(out), "--stats", str(stats)]
    # no-answer share is 0.5, mean mode share 2.25/7
    assert main(base + ["--max-mode-share", "0.9", "--max-no-answer-share", "none"]) == 0
    assert not pd.read_parquet(stats)["collapsed"].item()
    out.unlink()
    assert main(base + ["--max-no-answer-share", "0.4"]) == 2
    assert "collapse guard" in capsys.readouterr().err and not out.exists()
    assert main(base + ["--max-mode-share", "0.2", "--on-collapse", "warn"]) == 0
    row = pd.read_parquet(stats)
    assert row["collapsed"].item() and "mode share" in row["collapse_reason"].item()


def test_rlvr_triviaqa_aliases_all_count_as_the_gold():
    from alft.targets import gold_aliases

    data = {0: {0: ["the beatles", "beatles", "rolling stones", None],
                1: ["fab four", "beatles", "the who", "the who"]}}
    s = make_samples(data)
    orbits = make_orbits(data, {0: "The Beatles"})
    orbits["aliases"] = [np.array(["The Beatles", "Fab Four"]), np.array(["Beatles"])]
    aliases = gold_aliases(orbits)
    assert aliases == {0: ["The Beatles", "Fab Four", "Beatles"]}
    t, _ = compute_targets(s, TargetConfig("rlvr", task="triviaqa"), gold={0: "The Beatles"},
                           aliases=aliases)
    check_invariants(t)
    r = as_dict(group(t, 0, SHARED), "reward")
    assert r["fab four"] == 1.0 and r["the beatles"] == 1.0 and r["beatles"] == 1.0
    assert r["rolling stones"] == 0.0 and r["the who"] == 0.0 and r[None] == 0.0
    t0, _ = compute_targets(s, TargetConfig("rlvr", task="triviaqa"), gold={0: "The Beatles"})
    assert as_dict(group(t0, 0, SHARED), "reward")["fab four"] == 0.0  # without the aliases
    assert gold_aliases(orbits.drop(columns="aliases")) is None
