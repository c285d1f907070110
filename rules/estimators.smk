# Estimator tables (Part II of the slides): plug-in, Taylor, Euclidean U-statistic,
# minimax LP and AQP reward tables c_X, their worst-case bias / second moment, and
# the bias-rate and Pareto figures. Library: alft.estimators; CLI: alft lp-table / lp-figures.
EST = config["estimators"]
EST_DIR = f"{RESULTS}/estimators"


rule estimators_lp_table:
    output:
        tables=f"{EST_DIR}/lp_tables.parquet",
        summary=f"{EST_DIR}/lp_summary.parquet",
        summary_md=f"{EST_DIR}/lp_summary.md",
    params:
        beta=EST["beta"],
        K=",".join(map(str, EST["K"])),
        methods=",".join(map(str, EST["methods"])),
        aqp_K=",".join(map(str, EST["aqp_K"])),
        aqp_fracs=",".join(map(str, EST["aqp_eps_fractions"])),
    conda:
        ALFT_ENV
    log:
        f"{LOGS}/estimators/lp_table.log",
    benchmark:
        f"{BENCH}/estimators/lp_table.tsv"
    shell:
        "alft lp-table --beta {params.beta} --K {params.K:q} --methods {params.methods:q}"
        " --aqp-K {params.aqp_K:q} --aqp-eps-fractions {params.aqp_fracs:q}"
        " --tables {output.tables:q} --summary {output.summary:q}"
        " --summary-md {output.summary_md:q} > {log:q} 2>&1"


rule estimators_lp_figures:
    output:
        bias_png=f"{EST_DIR}/bias_vs_K.png",
        bias_data=f"{EST_DIR}/bias_vs_K.parquet",
        pareto_png=f"{EST_DIR}/aqp_pareto.png",
        pareto_data=f"{EST_DIR}/aqp_pareto.parquet",
    params:
        beta=EST["beta"],
        K=",".join(map(str, EST["figures"]["K"])),
        aqp_fraction=EST["figures"]["aqp_fraction"],
        pareto_K=EST["figures"]["pareto_K"],
        pareto_fracs=",".join(map(str, EST["figures"]["pareto_fractions"])),
    conda:
        ALFT_ENV
    log:
        f"{LOGS}/estimators/lp_figures.log",
    benchmark:
        f"{BENCH}/estimators/lp_figures.tsv"
    shell:
        "alft lp-figures --beta {params.beta} --K {params.K:q}"
        " --aqp-fraction {params.aqp_fraction} --pareto-K {params.pareto_K}"
        " --pareto-fractions {params.pareto_fracs:q}"
        " --bias-png {output.bias_png:q} --bias-data {output.bias_data:q}"
        " --pareto-png {output.pareto_png:q} --pareto-data {output.pareto_data:q} > {log:q} 2>&1"


ESTIMATOR_TARGETS = [
    f"{EST_DIR}/lp_tables.parquet",
    f"{EST_DIR}/lp_summary.parquet",
    f"{EST_DIR}/lp_summary.md",
    f"{EST_DIR}/bias_vs_K.png",
    f"{EST_DIR}/bias_vs_K.parquet",
    f"{EST_DIR}/aqp_pareto.png",
    f"{EST_DIR}/aqp_pareto.parquet",
]
