"""Tune the policy step on a development set, never on the test split.

One run = one policy step (``alft.policy.run_policy_step``, TRL's GRPOTrainer)
from the base model against a round-0 target table of a finished pipeline run,
then greedy accuracy of π_1 on a **development set**: the validation split plus
fresh builtin questions drawn with a different seed (problems that occur in any
pipeline split are excluded, so the test split is never read for scoring).

    python benchmarks/tune_policy.py --results results/default --method coherence \
        --lr 1e-4 --steps 60 --batch-size 64 --out benchmarks/results/tune_policy.tsv

Each run appends a row (settings, dev accuracy of π0 and π_1, per-template
accuracies, seconds) to ``--out``; the figures quoted in the README come from it.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from alft.basemodel import greedy_complete
from alft.extract import answers_match, extract_answer
from alft.policy import PolicyStepConfig, run_policy_step
from alft.rewards import GroundTruthReward, TargetTableReward
from alft.tasks import format_prompt
from alft.tasks.builtin import make_splits

KEY = ["name", "items", "a", "op1", "b", "op2", "c"]
N_FRESH = 750      # fresh questions added to the validation split in the development set
DEV_SEED = 424242  # seed that draws them


def dev_set(data_dir: Path, n_fresh: int, seed: int) -> pd.DataFrame:
    """Validation split + ``n_fresh`` new questions disjoint from every pipeline split."""
    val = pd.read_parquet(data_dir / "val.parquet")
    fresh = make_splits(seed, 0, 0, n_fresh * 2, 0)["val"]
    used = set()
    for split in ("pretrain", "train", "val", "test"):
        df = pd.read_parquet(data_dir / f"{split}.parquet", columns=KEY)
        used.update(map(tuple, df[KEY].itertuples(index=False)))
    fresh = fresh[[tuple(r) not in used for r in fresh[KEY].itertuples(index=False)]].head(n_fresh)
    return pd.concat([val, fresh], ignore_index=True)


def dev_accuracy(model_dir: str, dev: pd.DataFrame) -> tuple[float, list[float]]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    outs = greedy_complete(model, tok, [format_prompt(q) for q in dev["question"]], 48)
    ok = [answers_match(extract_answer(o, "builtin"), g, "builtin") for o, g in zip(outs, dev["answer"])]
    dev = dev.assign(ok=ok)
    return float(dev["ok"].mean()), dev.groupby("template")["ok"].mean().round(3).tolist()


def append_row(row: dict, out: Path) -> None:
    """Print one result row and append it to the TSV ``out`` (header when the file is new)."""
    print("\t".join(f"{k}={v}" for k, v in row.items()), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = not out.exists()
    with out.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row), delimiter="\t")
        if new:
            w.writeheader()
        w.writerow(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=Path("results/default"))
    ap.add_argument("--method", default="coherence", help="targets/<method>/r0.parquet to train against")
    ap.add_argument("--train", choices=["orbits", "fresh"], default="orbits",
                    help="orbits: the run's orbit table (first --n-orbits orbits, all members); fresh: "
                         "steps x batch / K new questions, one prompt each, ground-truth reward "
                         "(--method rlvr only): no problem is seen twice")
    ap.add_argument("--n-orbits", type=int, default=0, help="orbits: use orbit ids < N (0: all)")
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=40)
    ap.add_argument("--num-generations", type=int, default=8)
    ap.add_argument("--kl-coef", type=float, default=0.02)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--num-iterations", type=int, default=1)
    ap.add_argument("--loss-type", default="dapo")
    ap.add_argument("--scale-rewards", default="group")
    ap.add_argument("--extra", default="{}", help="JSON: more GRPOConfig arguments (e.g. adam_epsilon, optim)")
    ap.add_argument("--lora-r", type=int, default=0, help="> 0: train a LoRA adapter of this rank")
    ap.add_argument("--lora-alpha", type=int, default=32)
    ap.add_argument("--keep", type=Path, default=None, help="also save π_1 here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-fresh", type=int, default=N_FRESH)
    ap.add_argument("--dev-seed", type=int, default=DEV_SEED)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/tune_policy.tsv"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    dev = dev_set(args.results / "data", args.n_fresh, args.dev_seed)
    base = str(args.results / "models" / "base")
    if args.train == "fresh":
        if args.method != "rlvr":
            ap.error("--train fresh has labels only: use --method rlvr")
        n = args.steps * args.batch_size // args.num_generations
        fresh = make_splits(args.dev_seed + 1, 0, 0, 2 * n + 100, 0)["val"]
        seen = set(map(tuple, dev[KEY].itertuples(index=False)))
        fresh = fresh[[tuple(r) not in seen for r in fresh[KEY].itertuples(index=False)]].head(n)
        orbits = pd.DataFrame({"orbit_id": range(len(fresh)), "member": 0,
                               "prompt": [format_prompt(q) for q in fresh["question"]],
                               "answer": fresh["answer"].tolist()})
        reward = GroundTruthReward("builtin")
    else:
        orbits = pd.read_parquet(args.results / "orbits" / "orbits.parquet")
        if args.n_orbits > 0:
            orbits = orbits[orbits["orbit_id"] < args.n_orbits]
        if args.method != "rlvr":
            orbits = orbits.drop(columns=["answer"], errors="ignore")
        reward = TargetTableReward.from_parquet(args.results / "targets" / args.method / "r0.parquet")
    cfg = PolicyStepConfig(learning_rate=args.lr, max_steps=args.steps, batch_size=args.batch_size,
                           num_generations=args.num_generations, kl_coef=args.kl_coef,
                           temperature=args.temperature, num_iterations=args.num_iterations,
                           loss_type=args.loss_type, scale_rewards=args.scale_rewards, seed=args.seed,
                           lora_r=args.lora_r, lora_alpha=args.lora_alpha, disable_tqdm=True, extra_trl_args=json.loads(args.extra))
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="alft-tune-") as work:
        hist = run_policy_step(base, base, orbits, reward, cfg, f"{work}/pi1", f"{work}/log.parquet")
        seconds = time.time() - t0
        acc1, per1 = dev_accuracy(f"{work}/pi1", dev)
        if args.keep:
            import shutil
            shutil.copytree(f"{work}/pi1", args.keep, dirs_exist_ok=True)
    acc0, per0 = dev_accuracy(base, dev)
    row = {**{k: v for k, v in vars(args).items() if k not in ("results", "out")},
           "n_dev": len(dev), "dev_acc_base": round(acc0, 4), "dev_acc_pi1": round(acc1, 4),
           "gain": round(acc1 - acc0, 4), "per_template_pi1": per1, "per_template_base": per0,
           "reward_first10": round(float(hist["reward"].head(10).mean()), 3),
           "reward_last10": round(float(hist["reward"].tail(10).mean()), 3),
           "kl_last": round(float(hist["kl"].iloc[-1]), 4) if "kl" in hist else None,
           "seconds": round(seconds, 1)}
    append_row(row, args.out)


if __name__ == "__main__":
    main()
