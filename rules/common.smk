# Shared helpers: result paths, input functions and the default targets.
import alft

RESULTS = f"results/{config['experiment']}"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
DATA = f"{RESULTS}/data"
ALFT_ENV = "../workflow/envs/alft.yaml"  # conda env for --use-conda (relative to rules/)
VERSION = alft.__version__  # in params: a new package version reruns the stages


wildcard_constraints:
    r=r"\d+",
    method=r"[a-z][a-z0-9_]*",


def vllm_args():
    """vLLM engine flags shared by the sampling and evaluation rules."""
    v = config["vllm"]
    return (
        f"--gpu-memory-utilization {v['gpu_memory_utilization']} "
        f"--max-model-len {v['max_model_len']} --dtype {v['dtype']} "
        f"--tensor-parallel-size {v['tensor_parallel_size']}"
    )


def policy_dir(wildcards):
    """The policy π_r of a method: round 0 is the base model for every method."""
    if int(wildcards.r) == 0:
        return f"{RESULTS}/models/base"
    return f"{RESULTS}/models/{wildcards.method}/r{wildcards.r}"


def run_methods():
    """The methods of `rounds.methods`, each checked to be defined in `methods`."""
    methods = config["rounds"]["methods"]
    unknown = [m for m in methods if m not in config["methods"]]
    if unknown:
        raise ValueError(
            f"config key rounds.methods names {unknown}, which are not defined under `methods` "
            f"(defined: {sorted(config['methods'])})"
        )
    return methods


def samples_of(wildcards):
    """Samples of π_r for method m (round 0: the base model's samples)."""
    if int(wildcards.r) == 0:
        return f"{RESULTS}/samples/base/r0.parquet"
    return f"{RESULTS}/samples/{wildcards.method}/r{wildcards.r}.parquet"


def method_cfg(wildcards):
    return config["methods"][wildcards.method]


def previous_round(wildcards):
    """Inputs of the policy step producing π_r: π_{r-1} and the targets of round r-1."""
    r = int(wildcards.r)
    prev = f"{RESULTS}/models/base" if r == 1 else f"{RESULTS}/models/{wildcards.method}/r{r - 1}"
    return {
        "policy": prev,
        "targets": f"{RESULTS}/targets/{wildcards.method}/r{r - 1}.parquet",
    }


def guard_for(wildcards):
    """Collapse-guard thresholds of a method: label-free strategies only (a supervised
    target is meant to concentrate on one answer)."""
    guard = dict(config["guard"])
    if config["methods"][wildcards.method]["strategy"] == "rlvr":
        guard.update(max_mode_share=None, max_no_answer_share=None)
    return guard


def evaluated_models():
    """(method, round) pairs in the results table: the base model, then every method's
    policies π_1 … π_R (π_r is the policy after r policy steps)."""
    R = config["rounds"]["R"]
    return [("base", 0)] + [(m, r) for m in run_methods() for r in range(1, R + 1)]


def all_targets():
    """Final outputs of the default run (`rule all`)."""
    return [
        f"{RESULTS}/tables/results.parquet",
        f"{RESULTS}/tables/results.md",
        f"{RESULTS}/tables/accuracy_vs_round.png",
        f"{RESULTS}/tables/rounds.parquet",
        f"{RESULTS}/samples/base/r0.parquet",
    ]
