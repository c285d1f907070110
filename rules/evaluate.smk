# Sampling (vLLM), greedy evaluation and the results table.

# The builtin task reads its policy from the input (a pipeline directory); the real
# tasks read it from params (round 0 is model.base, possibly a hub name) and pass
# --task and the chat-template switch.
REAL_MODEL_PARAMS = (
    {}
    if BUILTIN
    else {
        "policy": policy_arg,
        "chat": "--chat-template" if config["model"]["chat_template"] else "",
    }
)
SAMPLE_SHELL = (
    (
        "OMP_NUM_THREADS={threads} alft sample --policy {input.policy:q} --orbits {input.orbits:q}"
        " --task builtin --k {params.s[k]} --temperature {params.s[temperature]}"
        " --top-p {params.s[top_p]} --max-tokens {params.s[max_tokens]} --seed {params.seed}"
        " {params.vllm} --out {output:q} > {log:q} 2>&1"
    )
    if BUILTIN
    else (
        "OMP_NUM_THREADS={threads} alft sample --policy {params.policy:q} --orbits {input.orbits:q}"
        f" --task {TASK} {{params.chat}} --k {{params.s[k]}} --temperature {{params.s[temperature]}}"
        " --top-p {params.s[top_p]} --max-tokens {params.s[max_tokens]} --seed {params.seed}"
        " {params.vllm} --out {output:q} > {log:q} 2>&1"
    )
)
EVALUATE_SHELL = (
    (
        "OMP_NUM_THREADS={threads} alft evaluate --policy {input.policy:q} --split {input.test:q}"
        " --task builtin --method {wildcards.method} --round {wildcards.r} --seed {params.seed}"
        " --max-tokens {params.e[max_tokens]} {params.vllm}"
        " --out {output.predictions:q} --summary {output.summary:q} > {log:q} 2>&1"
    )
    if BUILTIN
    else (
        "OMP_NUM_THREADS={threads} alft evaluate --policy {params.policy:q} --split {input.test:q}"
        f" --task {TASK} {{params.chat}} --method {{wildcards.method}} --round {{wildcards.r}}"
        " --seed {params.seed} --max-tokens {params.e[max_tokens]} {params.vllm}"
        " --out {output.predictions:q} --summary {output.summary:q} > {log:q} 2>&1"
    )
)


rule sample:
    input:
        policy=policy_dir,
        orbits=round_orbits,
    output:
        f"{RESULTS}/samples/{{method}}/r{{r}}.parquet",
    params:
        s=config["sampling"],
        seed=round_seed,
        vllm=vllm_args(),
        version=VERSION,
        **REAL_MODEL_PARAMS,
    threads: vllm_threads()
    # The rounds' chain (sample -> target -> policy) goes before evaluations, which
    # nothing else waits for: evaluations then fill the cores a policy step leaves idle.
    priority: 1
    resources:
        gpu=1,
    conda:
        ALFT_ENV
    log:
        f"{LOGS}/sample/{{method}}_r{{r}}.log",
    benchmark:
        f"{BENCH}/sample/{{method}}_r{{r}}.tsv"
    shell:
        SAMPLE_SHELL


rule evaluate:
    input:
        policy=policy_dir,
        test=rules.data.output.test,
    output:
        predictions=f"{RESULTS}/eval/{{method}}/r{{r}}/predictions.parquet",
        summary=f"{RESULTS}/eval/{{method}}/r{{r}}/summary.parquet",
    params:
        e=config["evaluate"],
        seed=method_seed,
        vllm=vllm_args(),
        version=VERSION,
        **REAL_MODEL_PARAMS,
    threads: vllm_threads()
    resources:
        gpu=1,
    conda:
        ALFT_ENV
    log:
        f"{LOGS}/evaluate/{{method}}_r{{r}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{method}}_r{{r}}.tsv"
    shell:
        EVALUATE_SHELL


rule results:
    input:
        [f"{RESULTS}/eval/{m}/r{r}/summary.parquet" for m, r in evaluated_models()],
    output:
        parquet=f"{TABLES}/results.parquet",
        markdown=f"{TABLES}/results.md",
        csv=f"{TABLES}/results.csv",
        plot=f"{TABLES}/accuracy_vs_round.png",
        summary=f"{TABLES}/results_by_method.parquet",
        summary_md=f"{TABLES}/results_by_method.md",
    conda:
        ALFT_ENV
    log:
        f"{TABLE_LOGS}/results.log",
    benchmark:
        f"{TABLE_BENCH}/results.tsv"
    shell:
        "alft results --summaries {input:q} --out {output.parquet:q}"
        " --markdown {output.markdown:q} --csv {output.csv:q} --plot {output.plot:q}"
        " --summary {output.summary:q} > {log:q} 2>&1"
