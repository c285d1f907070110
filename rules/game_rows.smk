# The Safety and Diversity rows of the slides' "Instantiations" table as pipeline rounds
# (run by listing such methods in rounds.methods, e.g. config/game_rows.yaml).
#
# Safety-GRPO (strategy safety; R = 𝕀_C(ν), C = {ν : E_ν[c] ≤ τ}, q* = Proj_C(ν_π)),
# per method m and round r (π_0 = the base model):
#   samples of π_r -> safety_dual r: cost c per sample, Ê_r[c], λ_r = max(0, λ_{r-1} + η(Ê_r[c] − τ)),
#                     dual state r (JSON; read by safety_dual r+1), metrics row r
#                  -> safety_target r: q ∝ ν̂ e^{−λ_r c}, reward −β λ_r c(z) -> policy step -> π_{r+1}
# safety_dual also runs on π_R (metrics of the last policy); safety_table gathers the rows.
#
# Diversity-GRPO (strategy diversity; R = −H(ν), q* ∝ 1/ν_π) uses the generic target rule;
# diversity_metrics summarises the samples of every π_r and diversity_table compares the
# methods (plug-in vs minimax-LP estimator of −log ν) across rounds.
import json

SAFETY = config["safety"]
SAFETY_METHODS_RE = method_regex(methods_with("safety", only_run=False))


# The safety methods' targets come from safety_target; every other method's from target.
ruleorder: safety_target > target


rule safety_dual:
    input:
        unpack(safety_dual_inputs),
    output:
        scored=f"{RESULTS}/safety/{{method}}/r{{r}}_scored.parquet",
        state=f"{RESULTS}/safety/{{method}}/r{{r}}_state.json",
        metrics=f"{RESULTS}/safety/{{method}}/r{{r}}_metrics.parquet",
    wildcard_constraints:
        method=SAFETY_METHODS_RE,
    params:
        s=SAFETY,
        scorer_options=json.dumps(SAFETY["scorer_options"], sort_keys=True),
        flags=safety_dual_flags,
        version=VERSION,
    resources:
        gpu=1 if SAFETY["gpu"] else 0,
    conda:
        ALFT_ENV
    log:
        f"{LOGS}/safety_dual/{{method}}_r{{r}}.log",
    benchmark:
        f"{BENCH}/safety_dual/{{method}}_r{{r}}.tsv"
    shell:
        f"alft safety-dual --samples {{input.samples:q}} --orbits {{input.orbits:q}} --task {TASK}"
        " --scorer {params.s[scorer]:q} --scorer-options {params.scorer_options:q}"
        " --tau {params.s[tau]} --dual-lr {params.s[dual_lr]} --lambda0 {params.s[lambda0]}"
        " --lambda-max {params.s[lambda_max]} --threshold {params.s[threshold]} {params.flags}"
        " --round {wildcards.r} --method {wildcards.method}"
        " --scored {output.scored:q} --state {output.state:q} --metrics {output.metrics:q}"
        " > {log:q} 2>&1"


rule safety_target:
    input:
        scored=f"{RESULTS}/safety/{{method}}/r{{r}}_scored.parquet",
        state=f"{RESULTS}/safety/{{method}}/r{{r}}_state.json",
        orbits=rules.orbits.output.orbits,
    output:
        targets=f"{RESULTS}/targets/{{method}}/r{{r}}.parquet",
        stats=f"{RESULTS}/targets/{{method}}/r{{r}}_stats.parquet",
    wildcard_constraints:
        method=SAFETY_METHODS_RE,
    params:
        m=method_cfg,
        reward=SAFETY["reward"],
        beta=config["game"]["beta"],
        guard=guard_for,
        version=VERSION,
    conda:
        ALFT_ENV
    log:
        f"{LOGS}/target/{{method}}_r{{r}}.log",
    benchmark:
        f"{BENCH}/target/{{method}}_r{{r}}.tsv"
    shell:
        f"alft target --samples {{input.scored:q}} --orbits {{input.orbits:q}} --task {TASK}"
        " --strategy safety --safety-state {input.state:q} --safety-reward {params.reward}"
        " --estimator {params.m[estimator]} --beta {params.beta}"
        " --round {wildcards.r} --method {wildcards.method}"
        " --max-mode-share {params.guard[max_mode_share]}"
        " --max-no-answer-share {params.guard[max_no_answer_share]}"
        " --on-collapse {params.guard[on_collapse]}"
        " --out {output.targets:q} --stats {output.stats:q} > {log:q} 2>&1"


rule safety_table:
    input:
        [
            f"{RESULTS}/safety/{m}/r{r}_metrics.parquet"
            for m in methods_with("safety")
            for r in rounds_through_R()
        ],
    output:
        parquet=f"{TABLES}/safety.parquet",
        markdown=f"{TABLES}/safety.md",
        csv=f"{TABLES}/safety.csv",
        plot=f"{TABLES}/safety_vs_round.png",
    conda:
        ALFT_ENV
    log:
        f"{TABLE_LOGS}/safety_table.log",
    benchmark:
        f"{TABLE_BENCH}/safety_table.tsv"
    shell:
        "alft safety-table --inputs {input:q} --out {output.parquet:q}"
        " --markdown {output.markdown:q} --csv {output.csv:q} --plot {output.plot:q}"
        " > {log:q} 2>&1"


rule diversity_metrics:
    input:
        samples=samples_of,
        orbits=rules.orbits.output.orbits,
        summary=eval_summary_of,
    output:
        f"{RESULTS}/diversity/{{method}}/r{{r}}.parquet",
    params:
        m=method_cfg,
        k=" ".join(str(k) for k in config["diversity"]["pass_k"]),
        version=VERSION,
    conda:
        ALFT_ENV
    log:
        f"{LOGS}/diversity_metrics/{{method}}_r{{r}}.log",
    benchmark:
        f"{BENCH}/diversity_metrics/{{method}}_r{{r}}.tsv"
    shell:
        f"alft diversity-metrics --samples {{input.samples:q}} --orbits {{input.orbits:q}}"
        f" --task {TASK} --k {{params.k}} --summary {{input.summary:q}}"
        " --method {wildcards.method} --estimator {params.m[estimator]} --round {wildcards.r}"
        " --out {output:q} > {log:q} 2>&1"


rule diversity_table:
    input:
        [
            f"{RESULTS}/diversity/{m}/r{r}.parquet"
            for m in methods_with("diversity")
            for r in rounds_through_R()
        ],
    output:
        parquet=f"{TABLES}/diversity.parquet",
        markdown=f"{TABLES}/diversity.md",
        csv=f"{TABLES}/diversity.csv",
        plot=f"{TABLES}/diversity_vs_round.png",
    conda:
        ALFT_ENV
    log:
        f"{TABLE_LOGS}/diversity_table.log",
    benchmark:
        f"{TABLE_BENCH}/diversity_table.tsv"
    shell:
        "alft diversity-table --inputs {input:q} --out {output.parquet:q}"
        " --markdown {output.markdown:q} --csv {output.csv:q} --plot {output.plot:q}"
        " > {log:q} 2>&1"
