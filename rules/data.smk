# Data, orbits and the builtin base model.
import json
import os


if BUILTIN:

    rule data:
        output:
            pretrain=f"{DATA}/pretrain.parquet",
            train=f"{DATA}/train.parquet",
            val=f"{DATA}/val.parquet",
            test=f"{DATA}/test.parquet",
        params:
            b=config["builtin"],
            seed=config["seed"],
            mix=" ".join(str(w) for w in config["builtin"]["mix"]),
            out_dir=lambda wildcards, output: os.path.dirname(output.train),
            version=VERSION,
        conda:
            ALFT_ENV
        log:
            f"{LOGS}/data.log",
        benchmark:
            f"{BENCH}/data.tsv"
        shell:
            "alft data --task builtin --seed {params.seed}"
            " --n-pretrain {params.b[n_pretrain]} --n-train {params.b[n_train]}"
            " --n-train-more {params.b[n_train_more]}"
            " --n-val {params.b[n_val]} --n-test {params.b[n_test]} --mix {params.mix}"
            " --out-dir {params.out_dir:q} > {log:q} 2>&1"

    rule orbits:
        input:
            train=rules.data.output.train,
        output:
            orbits=f"{RESULTS}/orbits/orbits.parquet",
            report=f"{RESULTS}/orbits/orbits_report.parquet",
        params:
            o=config["orbits"],
            seed=config["seed"],
            version=VERSION,
        conda:
            ALFT_ENV
        log:
            f"{LOGS}/orbits.log",
        benchmark:
            f"{BENCH}/orbits.tsv"
        shell:
            "alft orbits --split {input.train:q} --task builtin --size {params.o[size]}"
            " --max-orbits {params.o[max_orbits]} --seed {params.seed}"
            " --out {output.orbits:q} --report {output.report:q} > {log:q} 2>&1"

    rule base_model:
        input:
            pretrain=rules.data.output.pretrain,
            val=rules.data.output.val,
        output:
            model=directory(f"{RESULTS}/models/base"),
            history=f"{RESULTS}/models/base_history.parquet",
        params:
            m=config["base_model"],
            seed=config["seed"],
            version=VERSION,
        threads: workflow.cores
        conda:
            ALFT_ENV
        log:
            f"{LOGS}/base_model.log",
        benchmark:
            f"{BENCH}/base_model.tsv"
        shell:
            "alft base-model --pretrain {input.pretrain:q} --val {input.val:q} --seed {params.seed}"
            " --hidden-size {params.m[hidden_size]} --num-layers {params.m[num_layers]}"
            " --num-heads {params.m[num_heads]} --intermediate-size {params.m[intermediate_size]}"
            " --lr {params.m[lr]} --batch-size {params.m[batch_size]}"
            " --max-steps {params.m[max_steps]} --max-minutes {params.m[max_minutes]}"
            " --eval-every {params.m[eval_every]} --threads {threads}"
            " --out {output.model:q} --log-parquet {output.history:q} > {log:q} 2>&1"

else:

    # Real tasks (gsm8k, triviaqa, mathqa): splits from the hub or a local file; π0 is
    # model.base (no base_model job); orbits from an LLM paraphraser (vLLM).
    rule data:
        input:
            dataset_files(),
        output:
            train=f"{DATA}/train.parquet",
            val=f"{DATA}/val.parquet",
            test=f"{DATA}/test.parquet",
        params:
            d=config["dataset"],
            seed=config["seed"],
            columns=json.dumps(config["dataset"]["columns"]),
            out_dir=lambda wildcards, output: os.path.dirname(output.train),
            version=VERSION,
        conda:
            ALFT_ENV
        log:
            f"{LOGS}/data.log",
        benchmark:
            f"{BENCH}/data.tsv"
        shell:
            f"alft data --task {TASK} --seed {{params.seed}} --source {{params.d[source]:q}}"
            " --columns {params.columns:q} --train-split {params.d[train_split]:q}"
            " --test-split {params.d[test_split]:q} --n-train {params.d[n_train]}"
            " --n-val {params.d[n_val]} --n-test {params.d[n_test]}"
            " --out-dir {params.out_dir:q} > {log:q} 2>&1"


    rule orbits:
        input:
            train=rules.data.output.train,
        output:
            orbits=f"{RESULTS}/orbits/orbits.parquet",
            report=f"{RESULTS}/orbits/orbits_report.parquet",
        params:
            o=config["orbits"],
            p=config["paraphrase"],
            model=config["paraphrase"]["model"] or BASE_MODEL,
            chat="--chat-template" if config["paraphrase"]["chat_template"] else "",
            seed=config["seed"],
            vllm=vllm_args(),
            version=VERSION,
        threads: workflow.cores
        resources:
            gpu=1,
        conda:
            ALFT_ENV
        log:
            f"{LOGS}/orbits.log",
        benchmark:
            f"{BENCH}/orbits.tsv"
        shell:
            f"alft orbits --split {{input.train:q}} --task {TASK} --paraphraser llm"
            " --model {params.model:q} --size {params.o[size]} --max-orbits {params.o[max_orbits]}"
            " --temperature {params.p[temperature]} --max-tokens {params.p[max_tokens]}"
            " --min-ratio {params.p[min_ratio]} --max-ratio {params.p[max_ratio]} {params.chat}"
            " --seed {params.seed} {params.vllm}"
            " --out {output.orbits:q} --report {output.report:q} > {log:q} 2>&1"
