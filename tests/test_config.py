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
