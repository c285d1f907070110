"""The whole default pipeline on a tiny config, in a temporary directory.

Runs real Snakemake, real vLLM (CPU), real training: minutes, marked slow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
BIN = Path(sys.executable).parent


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    cmd = [str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--workflow-profile", str(ROOT / "profiles" / "default"), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def columns(path: Path) -> list[str]:
    return pq.read_schema(path).names


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("tiny_run")
    snakemake(work, "--configfile", str(TINY))
    return work / "results" / "tiny"


@pytest.mark.slow
def test_every_artifact_has_its_schema(tiny_run: Path):
    data = tiny_run / "data"
    for split in ("pretrain", "train", "val", "test"):
        assert {"id", "question", "answer", "template"} <= set(columns(data / f"{split}.parquet"))
    assert len(pd.read_parquet(data / "test.parquet")) == 20
    orbits = pd.read_parquet(tiny_run / "orbits" / "orbits.parquet")
    assert list(orbits.columns[:4]) == ["orbit_id", "member", "prompt", "source"]
    assert orbits.groupby("orbit_id")["member"].apply(list).map(lambda m: m == [0, 1, 2]).all()
    model = tiny_run / "models" / "base"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in model.iterdir()}
    samples = pd.read_parquet(tiny_run / "samples" / "base" / "r0.parquet")
    assert list(samples.columns) == ["orbit_id", "member", "sample_idx", "prompt", "completion",
                                     "answer", "n_tokens", "finish_reason"]
    r0 = pd.read_parquet(tiny_run / "orbits" / "r0.parquet")  # rounds.orbits_per_round: 3 of 6
    assert sorted(r0["orbit_id"].unique()) == [0, 1, 2] and len(r0) == 9
    assert len(samples) == len(r0) * 2 and set(samples["orbit_id"]) == {0, 1, 2}
    preds = pd.read_parquet(tiny_run / "eval" / "base" / "r0" / "predictions.parquet")
    assert {"id", "prediction", "answer", "correct"} <= set(preds.columns) and len(preds) == 20
    results = pd.read_parquet(tiny_run / "tables" / "results.parquet")
    assert list(results.columns) == ["model", "method", "round", "seed", "accuracy", "n"]
    assert results.loc[0, "method"] == "base" and results.loc[0, "round"] == 0
    assert results.loc[0, "accuracy"] == preds["correct"].mean()
    assert set(zip(results["method"], results["round"])) == {
        ("base", 0), ("coherence", 1), ("majority", 1), ("rlvr", 1)}
    by_method = pd.read_parquet(tiny_run / "tables" / "results_by_method.parquet")
    assert set(zip(by_method["method"], by_method["round"])) == set(zip(results["method"], results["round"]))
    assert (by_method["n_seeds"] == 1).all()
    for method in ("coherence", "majority", "rlvr"):
        targets = pd.read_parquet(tiny_run / "targets" / method / "r0.parquet")
        assert list(targets.columns[:6]) == ["orbit_id", "member", "answer", "count", "q", "reward"]
        assert targets["reward"].notna().all()
        policy = tiny_run / "models" / method / "r1"
        assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in policy.iterdir()}
        log = pd.read_parquet(tiny_run / "train_logs" / method / "r1.parquet")
        assert len(log) >= 1 and "reward" in log.columns
    rounds = pd.read_parquet(tiny_run / "tables" / "rounds.parquet")
    assert set(rounds["method"]) == {"coherence", "majority", "rlvr"}
    assert (tiny_run / "tables" / "accuracy_vs_round.png").stat().st_size > 1000
    assert (tiny_run / "tables" / "results.md").read_text().startswith("| model | method |")
    assert (tiny_run / "estimators" / "lp_tables.parquet").exists()
    assert (tiny_run / "synthetic" / "accuracy.png").stat().st_size > 1000
    for bench in (tiny_run / "benchmarks").rglob("*.tsv"):
        assert bench.read_text().startswith("s\t")
    leftovers = [p for p in tiny_run.rglob("*.part")]
    assert not leftovers


@pytest.mark.slow
def test_second_dry_run_has_nothing_to_do(tiny_run: Path):
    work = tiny_run.parents[1]
    proc = snakemake(work, "-n", "--configfile", str(TINY))
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_rerunning_one_stage(tiny_run: Path):
    """Forcing one stage reruns it and what depends on it, nothing upstream."""
    work = tiny_run.parents[1]
    proc = snakemake(work, "-n", "--configfile", str(TINY), "--forcerun", "orbits")
    out = proc.stdout + proc.stderr
    assert "orbits" in out and "sample" in out
    assert "base_model " not in out and "rule data:" not in out


@pytest.mark.slow
def test_sampling_is_reproducible_from_run_to_run(tiny_run: Path, tmp_path: Path):
    """Same policy, orbits and seed: the same completions, even with two jobs side by side."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", OMP_NUM_THREADS="1")
    env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
    outs = [tmp_path / f"s{i}.parquet" for i in range(3)]
    cmd = [str(BIN / "alft"), "sample", "--policy", str(tiny_run / "models" / "base"),
           "--orbits", str(tiny_run / "orbits" / "r0.parquet"), "--task", "builtin", "--k", "8",
           "--temperature", "1.0", "--max-tokens", "24", "--seed", "7",
           "--kv-cache-gib", "0.25", "--max-model-len", "256", "--dtype", "float32"]
    first = subprocess.run([*cmd, "--out", str(outs[0])], capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    side_by_side = [subprocess.Popen([*cmd, "--out", str(o)], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True) for o in outs[1:]]
    for proc in side_by_side:
        assert proc.wait() == 0, proc.stderr.read()[-3000:]
    runs = [pd.read_parquet(o) for o in outs]
    assert len(runs[0]) == 9 * 8 and runs[0]["completion"].nunique() > 1  # sampled, not greedy
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0], other)


@pytest.mark.slow
def test_a_kv_cache_too_large_for_ram_names_the_config_key(tiny_run: Path, tmp_path: Path):
    """vLLM's KV sizing failure (on CPU: more than the NUMA node's free RAM) is reported
    as a configuration error naming `vllm.kv_cache_gib`, and nothing is written."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", OMP_NUM_THREADS="1")
    out = tmp_path / "s.parquet"
    proc = subprocess.run(
        [str(BIN / "alft"), "sample", "--policy", str(tiny_run / "models" / "base"),
         "--orbits", str(tiny_run / "orbits" / "r0.parquet"), "--task", "builtin", "--k", "2", "--seed", "0",
         "--kv-cache-gib", "100000", "--max-model-len", "256", "--dtype", "float32",
         "--out", str(out)], capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert "vllm.kv_cache_gib = 100000.0" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr[-2000:]
    assert not out.exists()
