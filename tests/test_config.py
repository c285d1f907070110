"""Config validation: a bad key or type fails naming the key; the default run plans fully."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def snakemake(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(cwd),
                           "--workflow-profile", str(ROOT / "profiles" / "default"), *args],
                          capture_output=True, text=True, env=env, cwd=cwd)


def test_unknown_key_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"sampling": {"k": 4, "temprature": 0.7}}))
    proc = snakemake("-n", "--cores", "1", "--configfile", str(bad), cwd=tmp_path)
    assert proc.returncode != 0
    assert "temprature" in proc.stdout + proc.stderr


def test_wrong_type_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"seed": "zero"}))
    proc = snakemake("-n", "--cores", "1", "--configfile", str(bad), cwd=tmp_path)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "instance['seed']" in out and "'zero' is not of type 'integer'" in out


def test_default_config_plans_the_whole_run(tmp_path):
    proc = snakemake("-n", "--cores", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for rule in ("data", "orbits", "base_model", "sample", "evaluate", "results",
                 "estimators_lp_table", "synthetic"):
        assert f"rule {rule}:" in out or f"\n{rule} " in out, rule


def test_lint_is_clean():
    proc = snakemake("--lint")
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, proc.stdout[-3000:]


def _merged(*files: Path) -> dict:
    """config/config.yaml with layered files on top, merged by Snakemake's own update_config."""
    from snakemake.utils import update_config
    cfg: dict = {}
    for f in (ROOT / "config" / "config.yaml", *files):
        update_config(cfg, yaml.safe_load(f.read_text()))
    return cfg


def test_seeds_study_gives_every_round_a_fresh_orbit_block():
    from alft.orbits import round_orbit_ids
    cfg = _merged(ROOT / "config" / "seeds.yaml")
    b, rounds = cfg["builtin"], cfg["rounds"]
    n_orbits = b["n_train"] + b.get("n_train_more", 0)  # orbits.max_orbits 0: one per question
    assert cfg["orbits"]["max_orbits"] == 0
    blocks = [round_orbit_ids(range(n_orbits), r, rounds["orbits_per_round"]) for r in range(rounds["R"])]
    seen = [o for block in blocks for o in block]
    assert len(seen) == len(set(seen)) == rounds["R"] * rounds["orbits_per_round"]
    # the default run's rounds are the seeds study's first rounds: same blocks, same order
    default = _merged()
    assert default["builtin"] == b and default["rounds"]["R"] <= rounds["R"]


def test_seeds_config_plans_every_chain_and_round(tmp_path):
    cfg = _merged(ROOT / "config" / "seeds.yaml")
    R, methods = cfg["rounds"]["R"], cfg["rounds"]["methods"]
    proc = snakemake("-n", "-p", "--cores", "1", "--configfile", str(ROOT / "config" / "seeds.yaml"),
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.count("rule policy:") == len(methods) * R
    for m in methods:
        for r in range(1, R + 1):
            assert f"results/default/models/{m}/r{r}" in out, (m, r)
    for r in range(R):
        assert f"alft round-orbits --orbits results/default/orbits/orbits.parquet --round {r}" in out, r
