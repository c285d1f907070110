# Alternating best response as pipeline rounds (per method m, round r = 0 … R-1):
#   samples of π_r  ->  target step q*_r  ->  policy step (GRPO)  ->  π_{r+1}
# Round 0 samples the base model, shared by every method. Raising rounds.R adds
# only the new rounds; changing a method's settings reruns that method's rounds.

# The builtin task's shell commands stay as they were; the real tasks pass --task,
# Pairwise-GRPO's embedder, and (policy step) π_{r-1} and π0 = model.base as params.
TARGET_SHELL = (
    (
        "alft target --samples {input.samples:q} --orbits {input.orbits:q} --task builtin"
        " --strategy {params.m[strategy]} --consensus {params.m[consensus]}"
        " --estimator {params.m[estimator]} --beta {params.beta}"
        " --round {wildcards.r} --method {wildcards.method}"
        " --max-mode-share {params.guard[max_mode_share]}"
        " --max-no-answer-share {params.guard[max_no_answer_share]}"
        " --on-collapse {params.guard[on_collapse]}"
        " --out {output.targets:q} --stats {output.stats:q} > {log:q} 2>&1"
    )
    if BUILTIN
    else (
        f"alft target --samples {{input.samples:q}} --orbits {{input.orbits:q}} --task {TASK}"
        " --strategy {params.m[strategy]} --consensus {params.m[consensus]}"
        " --estimator {params.m[estimator]} --beta {params.beta} {params.embedder}"
        " --round {wildcards.r} --method {wildcards.method}"
        " --max-mode-share {params.guard[max_mode_share]}"
        " --max-no-answer-share {params.guard[max_no_answer_share]}"
        " --on-collapse {params.guard[on_collapse]}"
        " --out {output.targets:q} --stats {output.stats:q} > {log:q} 2>&1"
    )
)
REAL_TARGET_PARAMS = {} if BUILTIN else {"embedder": embedder_arg}
REFERENCE_INPUT = {"reference": rules.base_model.output.model} if BUILTIN else {}
REAL_POLICY_PARAMS = {} if BUILTIN else {"models": real_policy_args}
POLICY_SHELL = (
    (
        "OMP_NUM_THREADS={threads} alft policy --policy {input.policy:q}"
        " --reference {input.reference:q} --orbits {input.orbits:q}"
        " --targets {input.targets:q} --reward {params.m[reward]} --task builtin"
        " --lr {params.p[lr]} --steps {params.p[steps]}"
        " --num-generations {params.p[num_generations]} --batch-size {params.p[batch_size]}"
        " --max-completion-length {params.p[max_completion_length]}"
        " --temperature {params.p[temperature]} --kl-coef {params.p[kl_coef]}"
        " --seed {params.seed} --threads {threads}"
        " --out {output.model:q} --log {output.log:q} > {log:q} 2>&1"
    )
    if BUILTIN
    else (
        "OMP_NUM_THREADS={threads} alft policy --policy {params.models[policy]}"
        " --reference {params.models[reference]} {params.models[lora]} --orbits {input.orbits:q}"
        f" --targets {{input.targets:q}} --reward {{params.m[reward]}} --task {TASK}"
        " --lr {params.p[lr]} --steps {params.p[steps]}"
        " --num-generations {params.p[num_generations]} --batch-size {params.p[batch_size]}"
        " --max-completion-length {params.p[max_completion_length]}"
        " --temperature {params.p[temperature]} --kl-coef {params.p[kl_coef]}"
        " --seed {params.seed} --threads {threads}"
        " --out {output.model:q} --log {output.log:q} > {log:q} 2>&1"
    )
)



rule round_orbits:
    input:
        orbits=rules.orbits.output.orbits,
    output:
        f"{RESULTS}/orbits/r{{r}}.parquet",
    params:
        per_round=config["rounds"]["orbits_per_round"],
        version=VERSION,
    conda:
        ALFT_ENV
    log:
        f"{LOGS}/round_orbits/r{{r}}.log",
    benchmark:
        f"{BENCH}/round_orbits/r{{r}}.tsv"
    shell:
        "alft round-orbits --orbits {input.orbits:q} --round {wildcards.r}"
        " --per-round {params.per_round} --out {output:q} > {log:q} 2>&1"


rule target:
    input:
        samples=samples_of,
        orbits=round_orbits,
    output:
        targets=f"{RESULTS}/targets/{{method}}/r{{r}}.parquet",
        stats=f"{RESULTS}/targets/{{method}}/r{{r}}_stats.parquet",
    params:
        m=method_cfg,
        beta=config["game"]["beta"],
        guard=guard_for,
        version=VERSION,
        **REAL_TARGET_PARAMS,
    conda:
        ALFT_ENV
    log:
        f"{LOGS}/target/{{method}}_r{{r}}.log",
    benchmark:
        f"{BENCH}/target/{{method}}_r{{r}}.tsv"
    priority: 1
    shell:
        TARGET_SHELL


rule policy:
    input:
        unpack(previous_round),
        **REFERENCE_INPUT,
        orbits=policy_orbits,
    output:
        model=directory(f"{RESULTS}/models/{{method}}/r{{r}}"),
        log=f"{RESULTS}/train_logs/{{method}}/r{{r}}.parquet",
    params:
        m=method_cfg,
        p=config["policy"],
        seed=round_seed,
        version=VERSION,
        **REAL_POLICY_PARAMS,
    # One torch thread per policy step: on CPU, generation-bound GRPO steps of a tiny
    # model ran ~4x faster with 1 thread than with 2 on a busy 2-core machine, and
    # two steps then run side by side.
    threads: 1
    priority: 1
    resources:
        gpu=1,
    conda:
        ALFT_ENV
    log:
        f"{LOGS}/policy/{{method}}_r{{r}}.log",
    benchmark:
        f"{BENCH}/policy/{{method}}_r{{r}}.tsv"
    shell:
        POLICY_SHELL


rule rounds_table:
    input:
        [
            f"{RESULTS}/targets/{m}/r{r}_stats.parquet"
            for m in run_methods()
            for r in range(config["rounds"]["R"])
        ],
    output:
        parquet=f"{TABLES}/rounds.parquet",
        markdown=f"{TABLES}/rounds.md",
    conda:
        ALFT_ENV
    log:
        f"{TABLE_LOGS}/rounds_table.log",
    benchmark:
        f"{TABLE_BENCH}/rounds_table.tsv"
    shell:
        "alft collect --inputs {input:q} --out {output.parquet:q}"
        " --markdown {output.markdown:q} > {log:q} 2>&1"
