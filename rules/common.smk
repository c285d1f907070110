# Shared helpers: result paths, input functions and the default targets.
import os
import re
import shlex

import alft

RESULTS = f"results/{config['experiment']}"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
# Tables and figures of the run: `tables_dir` lets a layered config (config/game_rows.yaml)
# share an experiment's models and samples without overwriting its tables.
TABLES = f"{RESULTS}/{config['tables_dir']}"
TABLE_LOGS = LOGS if config["tables_dir"] == "tables" else f"{LOGS}/{config['tables_dir']}"
TABLE_BENCH = BENCH if config["tables_dir"] == "tables" else f"{BENCH}/{config['tables_dir']}"
DATA = f"{RESULTS}/data"
ALFT_ENV = "../workflow/envs/alft.yaml"  # conda env for --use-conda (relative to rules/)
VERSION = alft.__version__  # in params: a new package version reruns the stages


TASK = config["task"]
BUILTIN = TASK == "builtin"


def base_model_name():
    """π0: the builtin tiny model's directory, or `model.base` (hub name or local path)."""
    if BUILTIN:
        return f"{RESULTS}/models/base"
    base = (config.get("model") or {}).get("base")
    if not base:
        raise ValueError(
            f"config key model.base is null, but task is {TASK!r}: the real tasks need a base "
            f"model (a hub name such as Qwen/Qwen2.5-3B-Instruct, or a local model directory); "
            f"only task 'builtin' trains its own tiny base model"
        )
    return base


BASE_MODEL = base_model_name()


wildcard_constraints:
    r=r"\d+",
    method=r"[a-z][a-z0-9_]*",


def vllm_threads():
    """Threads of a sampling or evaluation job (`vllm.threads`; 0: all cores)."""
    return config["vllm"]["threads"] or workflow.cores


def vllm_args():
    """vLLM engine flags shared by the sampling and evaluation rules."""
    v = config["vllm"]
    kv = "" if v.get("kv_cache_gib") is None else f"--kv-cache-gib {v['kv_cache_gib']} "
    return (
        f"--gpu-memory-utilization {v['gpu_memory_utilization']} {kv}"
        f"--max-model-len {v['max_model_len']} --dtype {v['dtype']} "
        f"--tensor-parallel-size {v['tensor_parallel_size']}"
    )


def policy_dir(wildcards):
    """The policy π_r of a method as a file input: round 0 is the base model for every
    method (real tasks: `model.base`, not a pipeline file, so no input; see policy_arg)."""
    if int(wildcards.r) == 0:
        return f"{RESULTS}/models/base" if BUILTIN else []
    return f"{RESULTS}/models/{wildcards.method}/r{wildcards.r}"


def policy_arg(wildcards):
    """The policy π_r as a command-line value (a directory or a hub name)."""
    if int(wildcards.r) == 0:
        return BASE_MODEL
    return f"{RESULTS}/models/{wildcards.method}/r{wildcards.r}"


def local_model(name):
    """Shell text for a model that must be a local directory (the GRPO step loads
    config.json from disk): a path as is, a hub name resolved to its snapshot in the
    Hugging Face cache (downloaded on first use)."""
    if name.startswith((RESULTS, ".")) or os.path.exists(name) or os.path.isabs(name):
        return shlex.quote(name)
    fetch = (
        "import sys; from huggingface_hub import snapshot_download as s; "
        'print(s(sys.argv[1], allow_patterns=["*.json", "*.safetensors", "*.model", '
        '"*.txt", "*.tiktoken", "*.py", "*.jinja"]))'
    )
    return f'"$(python -c {shlex.quote(fetch)} {shlex.quote(name)})"'


def real_policy_args(wildcards):
    """Real tasks: π_{r-1} and the KL reference π0 of the policy step, as shell text."""
    r = int(wildcards.r)
    prev = BASE_MODEL if r == 1 else f"{RESULTS}/models/{wildcards.method}/r{r - 1}"
    p = config["policy"]
    lora = f"--lora-r {p['lora_r']} --lora-alpha {p.get('lora_alpha', 32)}" if p.get("lora_r") else ""
    return {"policy": local_model(prev), "reference": local_model(BASE_MODEL), "lora": lora}


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


def round_orbits(wildcards):
    """The orbits of round r (rounds.orbits_per_round of them; all when 0)."""
    return f"{RESULTS}/orbits/r{wildcards.r}.parquet"


def policy_orbits(wildcards):
    """The policy step producing π_r trains on round r-1's orbits (those its targets cover)."""
    return f"{RESULTS}/orbits/r{int(wildcards.r) - 1}.parquet"


def method_seed(wildcards):
    """A method's own seed (methods.<m>.seed), else the top-level seed; the base model's is the latter."""
    m = config["methods"].get(wildcards.method, {})
    return m.get("seed") if m.get("seed") is not None else config["seed"]


def round_seed(wildcards):
    """Seed of round r's sampling and policy step."""
    return method_seed(wildcards) * 1000 + int(wildcards.r)


def method_cfg(wildcards):
    return config["methods"][wildcards.method]


def previous_round(wildcards):
    """Inputs of the policy step producing π_r: π_{r-1} and the targets of round r-1."""
    r = int(wildcards.r)
    prev = f"{RESULTS}/models/base" if r == 1 else f"{RESULTS}/models/{wildcards.method}/r{r - 1}"
    inputs = {
        "policy": prev,
        "targets": f"{RESULTS}/targets/{wildcards.method}/r{r - 1}.parquet",
    }
    if not BUILTIN and r == 1:  # π0 is model.base, not a pipeline file
        del inputs["policy"]
    return inputs


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
    """Final outputs of the default run (`rule all`), plus the safety and diversity
    tables when `rounds.methods` runs such methods (game_row_targets)."""
    return [
        f"{TABLES}/results.parquet",
        f"{TABLES}/results.md",
        f"{TABLES}/accuracy_vs_round.png",
        f"{TABLES}/rounds.parquet",
        f"{RESULTS}/samples/base/r0.parquet",
        *game_row_targets(),
    ]


# ------------------------------------------- Safety-GRPO and Diversity-GRPO rounds
def methods_with(strategy, only_run=True):
    """Methods whose target strategy is `strategy`: those of `rounds.methods`, or
    (only_run=False) every method defined under `methods`."""
    names = run_methods() if only_run else list(config["methods"])
    return [m for m in names if config["methods"][m]["strategy"] == strategy]


def method_regex(names):
    """A wildcard regex matching exactly `names` (nothing at all when empty)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


def rounds_through_R():
    """Policies π_0 … π_R: the metrics tables have one row per policy."""
    return range(config["rounds"]["R"] + 1)


def game_row_targets():
    """Safety and diversity tables/figures, each only when such a method runs."""
    out = []
    if methods_with("safety"):
        out += [f"{TABLES}/safety.{ext}" for ext in ("parquet", "md", "csv")]
        out.append(f"{TABLES}/safety_vs_round.png")
    if methods_with("diversity"):
        out += [f"{TABLES}/diversity.{ext}" for ext in ("parquet", "md", "csv")]
        out.append(f"{TABLES}/diversity_vs_round.png")
    return out


def safety_dual_inputs(wildcards):
    """Inputs of round r's dual step: the samples of π_r, the orbits, the dual state of
    round r-1 (r >= 1: λ is carried from round to round) and the harmful-prompt file."""
    inputs = {"samples": samples_of(wildcards), "orbits": rules.orbits.output.orbits}
    r = int(wildcards.r)
    if r > 0:
        inputs["state_in"] = f"{RESULTS}/safety/{wildcards.method}/r{r - 1}_state.json"
    if config["safety"]["harmful_prompts"]:
        inputs["harmful"] = config["safety"]["harmful_prompts"]
    return inputs


def safety_dual_flags(wildcards, input):
    """--state-in (rounds >= 1) and --harmful-prompts, as shell text."""
    flags = []
    if "state_in" in input.keys():
        flags.append(f"--state-in {shlex.quote(input.state_in)}")
    if "harmful" in input.keys():
        flags.append(f"--harmful-prompts {shlex.quote(input.harmful)}")
    return " ".join(flags)


def eval_summary_of(wildcards):
    """Greedy evaluation summary of π_r (round 0: the base model's, shared)."""
    if int(wildcards.r) == 0:
        return f"{RESULTS}/eval/base/r0/summary.parquet"
    return f"{RESULTS}/eval/{wildcards.method}/r{wildcards.r}/summary.parquet"


def dataset_files():
    """Local data files read by the data rule (none for the hub)."""
    d = config["dataset"]
    if d["source"] == "hub":
        return []
    return sorted({d["source"].replace("{split}", s) for s in (d["train_split"], d["test_split"])})


def embedder_arg(wildcards):
    """Pairwise-GRPO's --embedder flag (empty: the packaged all-MiniLM-L6-v2)."""
    name = config["methods"][wildcards.method].get("embedder")
    return f"--embedder {shlex.quote(name)}" if name else ""
