"""Safety-GRPO and Diversity-GRPO as pipeline rounds: the dual step and its state file,
the safety target, the per-round metrics and tables, config errors, and the plan of
config/game_rows.yaml. Expected values are recomputed here from the synthetic tables
with plain loops, independently of the library code under test."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from alft import safety as S
from alft.cli import main
from alft.diversity import round_metrics

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GAME_ROWS = ROOT / "config" / "game_rows.yaml"

# Builtin stand-in: an answer that is a multiple of 7 is "unsafe"; orbits 0 and 3 have
# such gold answers, so they are the "harmful" prompts of the report.
GOLD = {0: "14", 1: "5", 2: "9", 3: "21"}
HARMFUL = {0, 3}
ROUND0 = {  # (orbit, member) -> the K = 4 extracted answers (None: no answer)
    (0, 0): ["14", "14", "13", None], (0, 1): ["14", "7", "14", "14"],
    (1, 0): ["5", "5", "6", "35"], (1, 1): ["5", "4", "5", "5"],
    (2, 0): ["9", "9", "9", "9"], (2, 1): ["9", "8", "0", "9"],
    (3, 0): ["21", "20", "21", "22"], (3, 1): ["21", "21", "21", "21"],
}
ROUND1 = {  # a safer policy: fewer multiples of 7
    (0, 0): ["13", "15", "13", None], (0, 1): ["14", "13", "15", "13"],
    (1, 0): ["5", "5", "6", "5"], (1, 1): ["5", "4", "5", "5"],
    (2, 0): ["9", "9", "9", "9"], (2, 1): ["9", "8", "9", "9"],
    (3, 0): ["20", "20", "22", "22"], (3, 1): ["21", "20", "22", "22"],
}


def unsafe(a: str | None) -> float:
    return float(a is not None and int(a) % 7 == 0)


def completion(a: str | None) -> str:
    return " I cannot tell." if a is None else f" 3+4=7. 7*2=14. The answer is {a}."


def write_samples(path: Path, answers: dict) -> Path:
    rows = [{"orbit_id": o, "member": m, "sample_idx": i, "prompt": f"Q{o}.{m}\nA:",
             "completion": completion(a), "answer": a}
            for (o, m), ans in answers.items() for i, a in enumerate(ans)]
    pd.DataFrame(rows).to_parquet(path)
    return path


def write_orbits(path: Path) -> Path:
    rows = [{"orbit_id": o, "member": m, "prompt": f"Q{o}.{m}\nA:", "source": "t",
             "question": f"Q{o}", "question_id": f"train-{o:06d}", "answer": GOLD[o]}
            for o in GOLD for m in (0, 1)]
    pd.DataFrame(rows).to_parquet(path)
    return path


def expected_constraint(answers: dict) -> float:
    """Ê[c]: mean over prompts of the per-prompt mean cost."""
    return float(np.mean([np.mean([unsafe(a) for a in ans]) for ans in answers.values()]))


@pytest.fixture
def files(tmp_path):
    return {"orbits": write_orbits(tmp_path / "orbits.parquet"),
            "s0": write_samples(tmp_path / "s0.parquet", ROUND0),
            "s1": write_samples(tmp_path / "s1.parquet", ROUND1), "dir": tmp_path}


def dual(files, r, samples, *extra, tau=0.1, eta=2.0, lambda0=0.5, method="safety"):
    d = files["dir"]
    args = ["safety-dual", "--samples", str(samples), "--orbits", str(files["orbits"]),
            "--task", "builtin", "--tau", str(tau), "--dual-lr", str(eta),
            "--lambda0", str(lambda0), "--round", str(r), "--method", method,
            "--scored", str(d / f"r{r}_scored.parquet"), "--state", str(d / f"r{r}_state.json"),
            "--metrics", str(d / f"r{r}_metrics.parquet"), *extra]
    return main(args)


# ------------------------------------------------------------- dual step and state
def test_dual_update_and_state_round_trip_through_cli(files):
    d, tau, eta, lam0 = files["dir"], 0.1, 2.0, 0.5
    assert dual(files, 0, files["s0"], tau=tau, eta=eta, lambda0=lam0) == 0
    s0 = json.loads((d / "r0_state.json").read_text())
    m0 = expected_constraint(ROUND0)
    assert s0["round"] == 0 and s0["method"] == "safety"
    assert s0["measured"] == pytest.approx(m0, abs=1e-12)
    assert s0["lam_prev"] == lam0
    assert s0["lam"] == pytest.approx(max(0.0, lam0 + eta * (m0 - tau)), abs=1e-12)
    scored = pd.read_parquet(d / "r0_scored.parquet")
    assert scored["cost"].tolist() == [unsafe(a) for ans in ROUND0.values() for a in ans]

    # round 1 reads round 0's state: λ1 = max(0, λ0 + η(Ê1 − τ)), carried, not restarted
    assert dual(files, 1, files["s1"], "--state-in", str(d / "r0_state.json"),
                tau=tau, eta=eta, lambda0=lam0) == 0
    s1 = json.loads((d / "r1_state.json").read_text())
    m1 = expected_constraint(ROUND1)
    assert m1 < m0
    assert s1["lam_prev"] == pytest.approx(s0["lam"], abs=1e-15)
    assert s1["lam"] == pytest.approx(max(0.0, s0["lam"] + eta * (m1 - tau)), abs=1e-12)
    assert [h["measured"] for h in s1["history"]] == pytest.approx([m0, m1])
    row = pd.read_parquet(d / "r1_metrics.parquet").iloc[0]
    assert row["lambda_prev"] == pytest.approx(s0["lam"]) and row["lambda"] == pytest.approx(s1["lam"])
    assert row["constraint_value"] == pytest.approx(m1) and bool(row["feasible"]) == (m1 <= tau)
    assert not list(d.glob("*.part"))


def test_dual_step_projects_lambda_onto_nonnegative(files):
    """A feasible round (Ê[c] < τ) with a small λ drives λ to exactly 0, not below."""
    m0 = expected_constraint(ROUND0)
    tau = m0 + 0.2
    assert dual(files, 0, files["s0"], tau=tau, eta=2.0, lambda0=0.1) == 0
    s0 = json.loads((files["dir"] / "r0_state.json").read_text())
    assert 0.1 + 2.0 * (m0 - tau) < 0 and s0["lam"] == 0.0


def test_dual_state_errors_name_the_file_and_key(files, capsys):
    d = files["dir"]
    assert dual(files, 1, files["s1"]) == 2  # round 1 without --state-in
    assert "--state-in" in capsys.readouterr().err
    assert dual(files, 0, files["s0"], "--state-in", str(d / "x.json")) == 2
    assert "safety.lambda0" in capsys.readouterr().err
    assert dual(files, 0, files["s0"], tau=0.1) == 0
    state = d / "r0_state.json"
    # the state of round 0 is not the state of round 1 (for round 2)
    assert dual(files, 2, files["s1"], "--state-in", str(state)) == 2
    err = capsys.readouterr().err
    assert str(state) in err and "'round'" in err
    # a changed budget would continue a multiplier learned for another τ
    assert dual(files, 1, files["s1"], "--state-in", str(state), tau=0.2) == 2
    err = capsys.readouterr().err
    assert str(state) in err and "safety.tau" in err
    assert dual(files, 1, files["s1"], "--state-in", str(state), eta=1.0) == 2
    assert "safety.dual_lr" in capsys.readouterr().err
    assert dual(files, 1, files["s1"], "--state-in", str(state), method="other") == 2
    assert "'method'" in capsys.readouterr().err
    broken = d / "broken.json"
    broken.write_text(json.dumps({"round": 0, "method": "safety"}))
    assert dual(files, 1, files["s1"], "--state-in", str(broken)) == 2
    assert str(broken) in capsys.readouterr().err
    assert dual(files, 0, files["s0"], "--scorer-options", "[1]") == 2
    assert "safety.scorer_options" in capsys.readouterr().err
    assert dual(files, 0, files["s0"], tau=1.5) == 2
    assert "safety.tau" in capsys.readouterr().err
    assert dual(files, 0, files["s0"], eta=0.0) == 2
    assert "safety.dual_lr" in capsys.readouterr().err


def test_safety_target_uses_the_rounds_lambda(files):
    d, beta = files["dir"], 0.5
    assert dual(files, 0, files["s0"], tau=0.05, lambda0=1.0) == 0
    lam = json.loads((d / "r0_state.json").read_text())["lam"]
    assert lam > 0
    out, stats = d / "t0.parquet", d / "t0_stats.parquet"
    assert main(["target", "--samples", str(d / "r0_scored.parquet"), "--orbits",
                 str(files["orbits"]), "--strategy", "safety", "--safety-state",
                 str(d / "r0_state.json"), "--beta", str(beta), "--round", "0", "--method",
                 "safety", "--out", str(out), "--stats", str(stats)]) == 0
    t = pd.read_parquet(out)
    for (o, m), ans in ROUND0.items():
        g = t[(t["orbit_id"] == o) & (t["member"] == m)]
        listed = sorted({a for a in ans if a is not None})
        w = {a: sum(x == a for x in ans) / len(ans) * math.exp(-lam * unsafe(a)) for a in listed}
        for a in listed:
            row = g[g["answer"] == a].iloc[0]
            assert row["q"] == pytest.approx(w[a] / sum(w.values()), abs=1e-12)
            assert row["reward"] == pytest.approx(-beta * lam * unsafe(a), abs=1e-12)
        null = g[g["answer"].isna()].iloc[0]
        # the no-answer completions cost 0 (a "refusal"); without any, unseen = unsafe
        assert null["reward"] == pytest.approx(-beta * lam * (0.0 if None in ans else 1.0))
    st = pd.read_parquet(stats).iloc[0]
    assert st["strategy"] == "safety" and st["lambda"] == pytest.approx(lam)
    assert st["constraint_value"] == pytest.approx(expected_constraint(ROUND0))


def test_safety_target_needs_the_state_of_its_round(files, capsys):
    d = files["dir"]
    assert dual(files, 0, files["s0"]) == 0
    base = ["target", "--samples", str(d / "r0_scored.parquet"), "--orbits", str(files["orbits"]),
            "--strategy", "safety", "--method", "safety", "--out", str(d / "t.parquet"),
            "--stats", str(d / "ts.parquet")]
    assert main(base + ["--round", "0"]) == 2
    assert "--safety-state" in capsys.readouterr().err
    assert main(base + ["--round", "1", "--safety-state", str(d / "r0_state.json")]) == 2
    assert "'round'" in capsys.readouterr().err
    assert not (d / "t.parquet").exists()


# ------------------------------------------------------------------ safety metrics
def test_safety_metrics_split_costs_and_accuracy():
    rows = [{"orbit_id": o, "member": m, "answer": a, "cost": unsafe(a)}
            for (o, m), ans in ROUND0.items() for a in ans]
    df = pd.DataFrame(rows)
    harmful = S.harmful_orbits_from_gold(GOLD)
    assert harmful == HARMFUL
    got = S.safety_metrics(df, harmful, GOLD, "builtin")

    def part(orbits):
        return {k: v for k, v in ROUND0.items() if k[0] in orbits}

    benign = part(set(GOLD) - HARMFUL)
    harm = part(HARMFUL)
    flat_b = [(o, a) for (o, _), ans in benign.items() for a in ans]
    flat_h = [(o, a) for (o, _), ans in harm.items() for a in ans]
    assert got["constraint_value"] == pytest.approx(expected_constraint(ROUND0))
    assert got["harmful_cost"] == pytest.approx(expected_constraint(harm))
    assert got["benign_cost"] == pytest.approx(expected_constraint(benign))
    assert got["harmful_unsafe_share"] == pytest.approx(np.mean([unsafe(a) for _, a in flat_h]))
    assert got["benign_accuracy"] == pytest.approx(np.mean([a == GOLD[o] for o, a in flat_b]))
    assert got["harmful_accuracy"] == pytest.approx(np.mean([a == GOLD[o] for o, a in flat_h]))
    assert got["benign_non_refusal"] == pytest.approx(np.mean([a is not None for _, a in flat_b]))
    assert (got["n_prompts"], got["n_harmful_prompts"], got["n_benign_prompts"]) == (8, 4, 4)

    # no split (a real task without safety.harmful_prompts): every prompt is benign
    nosplit = S.safety_metrics(df, None, None, "builtin")
    assert math.isnan(nosplit["harmful_cost"]) and math.isnan(nosplit["benign_accuracy"])
    assert nosplit["benign_cost"] == pytest.approx(got["constraint_value"])
    # the threshold counts graded costs
    graded = df.assign(cost=np.where(df["cost"] > 0, 0.4, 0.0))
    assert S.safety_metrics(graded, harmful, GOLD, threshold=0.5)["harmful_unsafe_share"] == 0.0
    assert S.safety_metrics(graded, harmful, GOLD, threshold=0.3)["harmful_unsafe_share"] > 0


def test_harmful_prompts_file_sets_the_split(files):
    d = files["dir"]
    ids = d / "harmful.txt"
    ids.write_text("train-000002\n")
    assert dual(files, 0, files["s0"], "--harmful-prompts", str(ids)) == 0
    row = pd.read_parquet(d / "r0_metrics.parquet").iloc[0]
    assert row["n_harmful_prompts"] == 2 and row["split"].startswith("file:")
    assert row["harmful_cost"] == pytest.approx(
        expected_constraint({k: v for k, v in ROUND0.items() if k[0] == 2}))


def test_safety_table_and_plot(files):
    d = files["dir"]
    assert dual(files, 0, files["s0"]) == 0
    assert dual(files, 1, files["s1"], "--state-in", str(d / "r0_state.json")) == 0
    out = d / "safety.parquet"
    args = ["safety-table", "--inputs", str(d / "r1_metrics.parquet"), str(d / "r0_metrics.parquet"),
            "--out", str(out), "--markdown", str(d / "safety.md"), "--csv", str(d / "safety.csv"),
            "--plot", str(d / "safety.png")]
    assert main(args) == 0
    t = pd.read_parquet(out)
    assert t["round"].tolist() == [0, 1]
    assert t["lambda"].iloc[0] == t["lambda_prev"].iloc[1]
    assert t["constraint_value"].tolist() == pytest.approx(
        [expected_constraint(ROUND0), expected_constraint(ROUND1)])
    assert (d / "safety.md").read_text().startswith("| method | round |")
    assert (d / "safety.png").stat().st_size > 1000
    dup = args.copy()
    dup[2] = str(d / "r0_metrics.parquet")
    assert main(dup) == 2


# --------------------------------------------------------------- diversity metrics
def pass_at_k(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def test_diversity_metrics_cli(files):
    d = files["dir"]
    summary = d / "summary.parquet"
    pd.DataFrame([{"model": "m", "method": "diversity_lp", "round": 1, "seed": 0,
                   "accuracy": 0.625, "n": 8}]).to_parquet(summary)
    out = d / "div.parquet"
    assert main(["diversity-metrics", "--samples", str(files["s0"]), "--orbits", str(files["orbits"]),
                 "--k", "2", "4", "--summary", str(summary), "--method", "diversity_lp",
                 "--estimator", "minimax_lp", "--round", "1", "--out", str(out)]) == 0
    row = pd.read_parquet(out).iloc[0]
    ents, dist, acc, p2, p4 = [], [], [], [], []
    for (o, _m), ans in ROUND0.items():
        got = [a for a in ans if a is not None]
        cnt = pd.Series(got).value_counts().to_numpy() / len(got)
        ents.append(float(-(cnt * np.log(cnt)).sum()))
        dist.append(len(set(got)))
        c = sum(a == GOLD[o] for a in ans)
        acc.append(c / len(ans))
        p2.append(pass_at_k(len(ans), c, 2))
        p4.append(pass_at_k(len(ans), c, 4))
    assert row["entropy"] == pytest.approx(np.mean(ents))
    assert row["distinct"] == pytest.approx(np.mean(dist))
    assert row["accuracy"] == pytest.approx(np.mean(acc))
    assert row["pass@1"] == pytest.approx(np.mean(acc))
    assert row["pass@2"] == pytest.approx(np.mean(p2)) and row["pass@4"] == pytest.approx(np.mean(p4))
    assert row["test_accuracy"] == 0.625 and row["estimator"] == "minimax_lp"
    assert row["no_answer_share"] == pytest.approx(1 / 32)


def test_diversity_pass_k_beyond_the_samples_names_the_key(files, capsys):
    out = files["dir"] / "div.parquet"
    rc = main(["diversity-metrics", "--samples", str(files["s0"]), "--orbits", str(files["orbits"]),
               "--k", "1", "8", "--method", "d", "--round", "0", "--out", str(out)])
    assert rc == 2 and "diversity.pass_k" in capsys.readouterr().err and not out.exists()
    with pytest.raises(ValueError, match="k=8"):
        round_metrics(pd.read_parquet(files["s0"]), GOLD, [8])


def test_diversity_table_and_plot(files):
    d = files["dir"]
    inputs = []
    for method, est, samples in (("diversity_plugin", "plugin", "s0"), ("diversity_lp", "minimax_lp", "s1")):
        for r, s in ((0, "s0"), (1, samples)):
            p = d / f"{method}_r{r}.parquet"
            assert main(["diversity-metrics", "--samples", str(files[s]), "--orbits",
                         str(files["orbits"]), "--k", "2", "--method", method, "--estimator", est,
                         "--round", str(r), "--out", str(p)]) == 0
            inputs.append(str(p))
    out = d / "diversity.parquet"
    assert main(["diversity-table", "--inputs", *inputs, "--out", str(out), "--markdown",
                 str(d / "d.md"), "--csv", str(d / "d.csv"), "--plot", str(d / "d.png")]) == 0
    t = pd.read_parquet(out)
    assert list(zip(t["method"], t["round"])) == [("diversity_lp", 0), ("diversity_lp", 1),
                                                  ("diversity_plugin", 0), ("diversity_plugin", 1)]
    assert t.loc[t["method"] == "diversity_lp", "estimator"].eq("minimax_lp").all()
    assert "pass@2" in t.columns and math.isnan(t["test_accuracy"].iloc[0])
    assert (d / "d.png").stat().st_size > 1000


# ---------------------------------------------------------- workflow plan and config
def snakemake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(cwd),
                           "--workflow-profile", str(ROOT / "profiles" / "default"), *args],
                          capture_output=True, text=True, env=env, cwd=cwd)


def test_game_rows_config_plans_safety_and_diversity_rounds(tmp_path):
    cfg = yaml.safe_load(GAME_ROWS.read_text())
    assert cfg["experiment"] == "default" and "R" not in cfg["rounds"]
    proc = snakemake("-n", "-p", "--cores", "1", "--configfile", str(GAME_ROWS), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    R = 2  # config/config.yaml's rounds.R, kept by the layered config
    for rule in ("safety_dual", "safety_target", "safety_table", "diversity_metrics",
                 "diversity_table", "target", "policy"):
        assert f"rule {rule}:" in out, rule
    tables = "results/default/tables/game_rows"
    for f in ("safety.parquet", "safety.md", "safety_vs_round.png", "diversity.parquet",
              "diversity.csv", "diversity_vs_round.png", "results.parquet"):
        assert f"{tables}/{f}" in out, f
    assert "results/default/tables/results.parquet" not in out  # the default tables stay
    # λ is carried: round r's dual step reads round r-1's state, for r = 1 … R
    for r in range(1, R + 1):
        assert (f"--state-in results/default/safety/safety/r{r - 1}_state.json --round {r}"
                in out), r
    assert "--strategy safety --safety-state results/default/safety/safety/r0_state.json" in out
    for est in ("plugin", "minimax_lp"):
        assert f"--strategy diversity --consensus mode --estimator {est}" in out
    assert out.count("rule safety_dual:") == R + 1 and out.count("rule safety_target:") == R


def test_default_config_plans_no_game_rows(tmp_path):
    proc = snakemake("-n", "--cores", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rule in ("safety_dual", "safety_target", "safety_table", "diversity_metrics",
                 "diversity_table"):
        assert f"rule {rule}:" not in proc.stdout, rule


@pytest.mark.parametrize("override, key", [
    ({"safety": {"tau": 1.5}}, "tau"),
    ({"safety": {"dual_lr": 0}}, "dual_lr"),
    ({"safety": {"reward": "exp"}}, "reward"),
    ({"diversity": {"pass_k": [0]}}, "pass_k"),
    ({"safety": {"taus": 0.1}}, "taus"),
])
def test_bad_game_row_config_names_the_key(tmp_path, override, key):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    proc = snakemake("-n", "--cores", "1", "--configfile", str(GAME_ROWS), "--configfile", str(bad),
                     cwd=tmp_path)
    assert proc.returncode != 0
    assert f"'{key}'" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_game_row_rules_run_on_round0(tmp_path, files):
    """Snakemake runs the cheap round-0 jobs of both rows (dual step, safety target,
    diversity target and metrics) from a prepared round 0, so the rules' shell commands
    are exercised, not only planned."""
    work = tmp_path / "work"
    res = work / "results" / "gr"
    stamp = time.time() - 1000
    for rel in ("data/pretrain.parquet", "data/train.parquet", "data/val.parquet",
                "data/test.parquet", "models/base/config.json", "orbits/orbits.parquet",
                "orbits/orbits_report.parquet", "samples/base/r0.parquet",
                "eval/base/r0/summary.parquet", "eval/base/r0/predictions.parquet"):
        p = res / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"stub")
    (res / "orbits" / "orbits.parquet").write_bytes(files["orbits"].read_bytes())
    (res / "samples" / "base" / "r0.parquet").write_bytes(files["s0"].read_bytes())
    pd.DataFrame([{"model": "b", "method": "base", "round": 0, "seed": 0, "accuracy": 0.5,
                   "n": 8}]).to_parquet(res / "eval" / "base" / "r0" / "summary.parquet")
    order = ["data", "models", "orbits", "samples", "eval"]  # upstream first: nothing reruns
    for i, top in enumerate(order):
        for p in [res / top, *(res / top).rglob("*")]:
            os.utime(p, (stamp + 10 * i, stamp + 10 * i))
    cfg = tmp_path / "gr.yaml"
    cfg.write_text(yaml.safe_dump({
        "experiment": "gr",
        "rounds": {"R": 1, "orbits_per_round": 0, "methods": ["safety", "diversity_plugin"]},
        "sampling": {"k": 4}, "diversity": {"pass_k": [1, 2]},
        "safety": {"tau": 0.1, "lambda0": 0.5}, "guard": {"on_collapse": "warn"}}))
    targets = ["results/gr/targets/safety/r0.parquet", "results/gr/safety/safety/r0_metrics.parquet",
               "results/gr/targets/diversity_plugin/r0.parquet",
               "results/gr/diversity/diversity_plugin/r0.parquet"]
    proc = snakemake(*targets, "--cores", "1", "--configfile", str(GAME_ROWS), "--configfile",
                     str(cfg), "--allowed-rules", "safety_dual", "safety_target", "target", "round_orbits",
                     "diversity_metrics", cwd=work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    state = json.loads((res / "safety" / "safety" / "r0_state.json").read_text())
    m0 = expected_constraint(ROUND0)
    assert state["lam"] == pytest.approx(max(0.0, 0.5 + 2.0 * (m0 - 0.1)))
    t = pd.read_parquet(res / "targets" / "safety" / "r0.parquet")
    assert set(t["reward"].round(12)) <= {0.0, round(-state["lam"], 12)}
    div = pd.read_parquet(res / "diversity" / "diversity_plugin" / "r0.parquet").iloc[0]
    assert div["test_accuracy"] == 0.5 and "pass@2" in div.index
    dt = pd.read_parquet(res / "targets" / "diversity_plugin" / "r0.parquet")
    assert (dt["member"] >= 0).all()  # per-prompt inverse-frequency targets
