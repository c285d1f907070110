"""Probe: the policy best response by rejection sampling, measured on the development set.

For a mode target q = δ_{z*}, the game's policy best response is
π*(y|x) ∝ π0(y|x)·1[E(y) = z*(x)] (slides, "Solving the Game": π* ∝ π0·q(E(y))): π0
conditioned, **per prompt**, on answering the orbit's consensus. A round's own samples
are draws from π0, so keeping the samples whose answer is the consensus is exact
rejection sampling from π*. This script fine-tunes π0 on those samples (cross-entropy on
the completion tokens, each prompt weighted equally whatever its number of accepted
samples) and reports the greedy accuracy of the result on the development set of
``benchmarks/tune_policy.py`` (the test split is never read). Labels are not used:
z* is the round's coherence target.

    python benchmarks/best_response_sft.py --results results/default --lr 1e-4 --epochs 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from tune_policy import DEV_SEED, N_FRESH, append_row, dev_accuracy, dev_set
from transformers import AutoModelForCausalLM, AutoTokenizer

from alft.basemodel import collate, encode_examples
from alft.extract import answers_match


def accepted_samples(samples: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """Samples whose answer is their orbit's consensus z* (the mode target's answer)."""
    z = targets[(targets["q"] > 0) & targets["answer"].notna()].set_index("orbit_id")["answer"]
    s = samples[samples["orbit_id"].isin(z.index)].copy()
    s["z_star"] = s["orbit_id"].map(z)
    ok = [a is not None and answers_match(a, g, "builtin") for a, g in zip(s["answer"], s["z_star"])]
    s = s[ok].copy()
    s["weight"] = 1.0 / s.groupby(["orbit_id", "member"])["completion"].transform("size")
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=Path("results/default"))
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/best_response_sft.tsv"))
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    base = str(args.results / "models" / "base")
    samples = pd.read_parquet(args.results / "samples" / "base" / "r0.parquet")
    targets = pd.read_parquet(args.results / "targets" / "coherence" / "r0.parquet")
    acc = accepted_samples(samples, targets)
    print(f"accepted {len(acc)} of {len(samples)} samples; prompts with one or more: "
          f"{acc.groupby(['orbit_id', 'member']).ngroups}")
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    rows = acc.sample(frac=1.0, random_state=args.seed).reset_index(drop=True)
    t0 = time.time()
    model.train()
    for _ in range(args.epochs):
        for i in range(0, len(rows), args.batch_size):
            b = rows.iloc[i: i + args.batch_size]
            ids, attn, labels = collate(encode_examples(tok, b["prompt"].tolist(), b["completion"].tolist()),
                                        tok.pad_token_id)
            logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]
            target = labels[:, 1:]
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
            m = (target != -100).float()
            per_seq = (nll * m).sum(1) / m.sum(1).clamp(min=1)
            w = torch.tensor(b["weight"].to_numpy(), dtype=torch.float32)
            loss = (per_seq * w).sum() / w.sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    seconds = time.time() - t0
    dev = dev_set(args.results / "data", N_FRESH, DEV_SEED)
    with tempfile.TemporaryDirectory(prefix="alft-brsft-") as work:
        model.save_pretrained(work)
        tok.save_pretrained(work)
        acc1, per1 = dev_accuracy(work, dev)
    acc0, per0 = dev_accuracy(base, dev)
    row = {"lr": args.lr, "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
           "n_accepted": len(acc), "dev_acc_base": round(acc0, 4), "dev_acc_pi1": round(acc1, 4),
           "gain": round(acc1 - acc0, 4), "per_template_pi1": per1, "per_template_base": per0,
           "seconds": round(seconds, 1)}
    append_row(row, args.out)


if __name__ == "__main__":
    main()
