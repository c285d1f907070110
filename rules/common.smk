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


def evaluated_models():
    """(method, round) pairs in the results table: the base model, then each method's rounds."""
    return [("base", 0)]


def all_targets():
    """Final outputs of the default run (`rule all`)."""
    return [
        f"{RESULTS}/tables/results.parquet",
        f"{RESULTS}/tables/results.md",
        f"{RESULTS}/samples/base/r0.parquet",
    ]
