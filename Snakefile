# alft: Distributional Alignment Games for Answer-Level Fine-Tuning.
# Every rule calls the package CLI (`alft <stage> ...`) with a log and a benchmark,
# so each stage also runs on its own. See README.md for the stage table.
import os

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config/config.yaml")


validate(config, "config/schema.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/evaluate.smk"
include: "rules/rounds.smk"
include: "rules/game_rows.smk"
include: "rules/estimators.smk"
include: "rules/synthetic.smk"


rule all:
    default_target: True
    input:
        all_targets(),
        ESTIMATOR_TARGETS,
        SYNTHETIC_TARGETS,
