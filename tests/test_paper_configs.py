"""The paper's GPU configs (config/paper/*.yaml): each plans here (dry-run), and a SLURM
submission through profiles/slurm carries GPU, memory and time requests (fake sbatch)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAPER = sorted((ROOT / "config" / "paper").glob("*.yaml"))


def _env(extra_path: Path | None = None) -> dict:
    path = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    if extra_path is not None:
        path = f"{extra_path}{os.pathsep}{path}"
    return dict(os.environ, PATH=path)


def test_paper_configs_exist():
    names = {p.stem for p in PAPER}
    for task in ("gsm8k", "triviaqa"):
        for model in ("qwen2.5-3b", "llama3.2-3b", "phi3-mini"):
            assert f"grpo_{task}_{model}" in names
    for task in ("gsm8k", "mathqa"):
        for model in ("qwen2.5-7b", "llama3.1-8b"):
            assert f"minimax_lp_{task}_{model}" in names
    assert "safety_detoxify_triviaqa_qwen2.5-3b" in names


@pytest.mark.parametrize("cfg", PAPER, ids=[p.stem for p in PAPER])
def test_paper_config_dry_run(cfg, tmp_path):
    c = yaml.safe_load(cfg.read_text())
    assert c["task"] != "builtin" and c["model"]["base"]
    assert c["vllm"]["dtype"] == "bfloat16" and c["experiment"] == cfg.stem
    proc = subprocess.run([str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
                           "--workflow-profile", str(ROOT / "profiles" / "default"),
                           "-n", "-p", "--cores", "3", "--configfile", str(cfg)],
                          capture_output=True, text=True, env=_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "base_model" not in out  # π0 is model.base, not trained here
    # vllm.threads: 0 -- sampling and evaluation get every core (the builtin default's 1 is not inherited)
    assert "OMP_NUM_THREADS=3 alft sample" in out and "OMP_NUM_THREADS=3 alft evaluate" in out
    # GPU memory share sizes the KV cache (the builtin default's 1 GiB is not inherited)
    assert "--gpu-memory-utilization 0.8 --max-model-len 4096" in out and "--kv-cache-gib" not in out
    strategies = {c["methods"][m]["strategy"] for m in c["rounds"]["methods"]}
    rules = ["data", "orbits", "sample", "policy", "evaluate", "results"]
    if strategies - {"safety"}:
        rules.append("target")
    if "safety" in strategies:  # Safety-GRPO: dual step, its target step, the safety table
        rules += ["safety_dual", "safety_target", "safety_table"]
        assert f"--scorer {c['safety']['scorer']}" in out
    for rule in rules:
        assert f"rule {rule}:" in out or f"\n{rule} " in out, rule
    assert f"--task {c['task']}" in out and "--paraphraser llm" in out
    assert f"alft evaluate --policy {c['model']['base']}" in out
    for m in c["rounds"]["methods"]:
        strat = c["methods"][m]["strategy"]
        assert f"--strategy {strat}" in out
        if c["methods"][m].get("estimator") == "minimax_lp":
            assert "--estimator minimax_lp" in out


def test_builtin_default_samples_and_evaluates_on_one_thread(tmp_path):
    """The builtin default's vllm.threads: 1, so a 1-thread evaluation fits beside a policy step."""
    proc = subprocess.run([str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
                           "--workflow-profile", str(ROOT / "profiles" / "default"),
                           "-n", "-p", "--cores", "3"],
                          capture_output=True, text=True, env=_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OMP_NUM_THREADS=1 alft sample" in proc.stdout and "OMP_NUM_THREADS=1 alft evaluate" in proc.stdout
    assert "OMP_NUM_THREADS=3 alft sample" not in proc.stdout


def test_missing_base_model_is_named(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"task": "gsm8k"}))
    proc = subprocess.run([str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
                           "-n", "--cores", "1", "--configfile", str(cfg)],
                          capture_output=True, text=True, env=_env(), cwd=tmp_path)
    assert proc.returncode != 0 and "model.base" in proc.stdout + proc.stderr


FAKE_SBATCH = """#!/bin/sh
echo "$@" >> "{log}"
cat > /dev/null
echo "Submitted batch job 1"
"""
FAKE_QUIET = """#!/bin/sh
echo "$0 $@" >> "{log}"
exit 0
"""


def test_slurm_submission_requests_gpu_memory_time(tmp_path):
    """Submit the orbits job (the LLM paraphraser, a GPU rule) of a paper config through
    profiles/slurm with a fake sbatch, then stop: the sbatch line must carry the GPU,
    memory and time requests of the profile."""
    fake = tmp_path / "bin"
    fake.mkdir()
    record = tmp_path / "sbatch.log"
    other = tmp_path / "other.log"
    (fake / "sbatch").write_text(FAKE_SBATCH.format(log=record))
    for tool in ("squeue", "sacct", "scontrol", "sinfo", "scancel", "sacctmgr"):
        (fake / tool).write_text(FAKE_QUIET.format(log=other))
    for f in fake.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    cfg = ROOT / "config" / "paper" / "grpo_gsm8k_qwen2.5-3b.yaml"
    exp = yaml.safe_load(cfg.read_text())["experiment"]
    work = tmp_path / "work"
    data = work / "results" / exp / "data"
    data.mkdir(parents=True)
    for split in ("train", "val", "test"):  # inputs present: the GPU job is submitted first
        (data / f"{split}.parquet").write_bytes(b"stub")
    target = f"results/{exp}/orbits/orbits.parquet"
    proc = subprocess.Popen(
        [str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(work), target,
         "--workflow-profile", str(ROOT / "profiles" / "slurm"), "--slurm-no-account",
         "--configfile", str(cfg), "--jobs", "1", "--latency-wait", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(fake), cwd=work,
        start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if record.exists() and record.read_text().strip():
                break
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    out = proc.stdout.read() if proc.stdout else ""
    assert record.exists(), out[-3000:]
    line = record.read_text().splitlines()[0]
    print(line)
    assert "--gpus=a100:1" in line or "--gres=gpu:a100:1" in line, line
    assert "--mem 64000" in line, line
    assert "-t 120" in line, line
    assert "-p gpu" in line or "--partition gpu" in line or "--partition=gpu" in line, line
    assert "rule_orbits" in line or "orbits" in line, line
