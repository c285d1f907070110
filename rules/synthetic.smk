# Synthetic validation (issue 5): Game-GRPO vs trace-level REINFORCE on an
# enumerable problem (|Y| = 10,000, |Z| = 10), plus an exact game-solve demo.
import json


rule synthetic:
    output:
        curves=f"{RESULTS}/synthetic/curves.parquet",
        summary=f"{RESULTS}/synthetic/summary.parquet",
        summary_md=f"{RESULTS}/synthetic/summary.md",
        figure=f"{RESULTS}/synthetic/accuracy.png",
    params:
        cfg=lambda wildcards: json.dumps(config.get("synthetic", {})),
    conda:
        ALFT_ENV
    log:
        f"{LOGS}/synthetic/synthetic.log",
    benchmark:
        f"{BENCH}/synthetic/synthetic.tsv"
    shell:
        "alft synthetic --config-json {params.cfg:q} --no-progress"
        " --curves {output.curves:q} --summary {output.summary:q}"
        " --summary-md {output.summary_md:q} --figure {output.figure:q} > {log:q} 2>&1"


rule game_demo_instance:
    output:
        f"{RESULTS}/synthetic/game_demo/instance.json",
    params:
        seed=config["seed"],
    conda:
        ALFT_ENV
    log:
        f"{LOGS}/synthetic/game_demo_instance.log",
    benchmark:
        f"{BENCH}/synthetic/game_demo_instance.tsv"
    shell:
        "alft game-instance --prompts 10 --traces 10000 --answers 10 --beta 0.7"
        " --objective rlvr --seed {params.seed} --out {output:q} > {log:q} 2>&1"


rule game_demo_solve:
    input:
        f"{RESULTS}/synthetic/game_demo/instance.json",
    output:
        f"{RESULTS}/synthetic/game_demo/solution.json",
    conda:
        ALFT_ENV
    log:
        f"{LOGS}/synthetic/game_demo_solve.log",
    benchmark:
        f"{BENCH}/synthetic/game_demo_solve.tsv"
    shell:
        "alft game-solve --instance {input:q} --out {output:q} > {log:q} 2>&1"


SYNTHETIC_TARGETS = [
    f"{RESULTS}/synthetic/curves.parquet",
    f"{RESULTS}/synthetic/summary.parquet",
    f"{RESULTS}/synthetic/summary.md",
    f"{RESULTS}/synthetic/accuracy.png",
    f"{RESULTS}/synthetic/game_demo/solution.json",
]
