"""``alft policy``: the policy step — GRPO from π_r against the round's target -> π_{r+1}."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from alft.commands._common import log_host, stage_logger
from alft.errors import ConfigError
from alft.io import read_parquet

REWARDS = ("target", "online_coherence", "online_majority", "ground_truth")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "policy", help="GRPO policy step (TRL): pi_r -> pi_{r+1}, KL to the base model pi0",
        description="GRPO policy step. KL is always to --reference (pi0), whatever --policy is. "
                    "--batch-size counts completions per optimizer step (TRL's per-device batch); "
                    "prompts per step = batch / num-generations. Online rewards need the batch to be a "
                    "multiple of orbit_size x num-generations.")
    p.add_argument("--policy", type=Path, required=True, help="pi_r: model directory to start from")
    p.add_argument("--reference", type=Path, required=True, help="pi0: the base model (KL reference)")
    p.add_argument("--orbits", type=Path, required=True, help="orbits.parquet (orbit_id, member, prompt)")
    p.add_argument("--targets", type=Path, default=None,
                   help="targets.parquet of this round (needed by --reward target; ignored by the others)")
    p.add_argument("--reward", choices=REWARDS, required=True,
                   help="target: the round's target table (offline); online_coherence: mode of each "
                        "orbit's completions in the batch; online_majority: the same per prompt "
                        "(same orbit-grouped batches); "
                        "ground_truth: gold answers (supervised upper bound)")
    p.add_argument("--consensus", default="mode", help="online_coherence consensus (default: mode)")
    p.add_argument("--task", default="builtin")
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--steps", type=int, default=20, help="optimizer steps (<= 0: use --epochs)")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the orbit members if --steps <= 0")
    p.add_argument("--num-generations", type=int, default=8, help="K, completions per prompt (GRPO group)")
    p.add_argument("--batch-size", type=int, default=48, help="completions per optimizer step")
    p.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    p.add_argument("--max-completion-length", type=int, default=48)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--paper-beta", type=float, default=1.0,
                   help="the paper's beta: multiplies the reward callable (R = beta*log q*). The target "
                        "table's reward already holds beta*log q* (alft target --beta): keep 1 there. "
                        "Cancels from TRL's group-scaled advantages either way")
    p.add_argument("--kl-coef", type=float, default=0.04,
                   help="TRL's beta: weight of KL(pi || pi0) in the GRPO loss (0: no reference model)")
    p.add_argument("--num-iterations", type=int, default=1, help="GRPO updates per generation batch (mu)")
    p.add_argument("--lora-r", type=int, default=0,
                   help="> 0: train a LoRA adapter of this rank on pi0 instead of every weight (PEFT); "
                        "--policy is then pi0 or a LoRA round's output (its adapter/ is continued)")
    p.add_argument("--lora-alpha", type=int, default=32, help="LoRA scaling alpha")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--use-vllm", action="store_true",
                   help="GPU only: TRL's colocated vLLM generation (TRL 1.16 supports vllm 0.22-0.31)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (0: torch's default). Tiny models on a busy 2-core machine: 1 thread "
                        "was ~4x faster per step than 2 (OpenMP oversubscription)")
    p.add_argument("--no-progress", action="store_true", help="disable the tqdm progress bar")
    p.add_argument("--out", type=Path, required=True, help="model directory for pi_{r+1}")
    p.add_argument("--log", type=Path, required=True, help="training log Parquet (TRL metrics per step)")
    p.set_defaults(func=run)


def make_reward(args: argparse.Namespace):
    """The reward callable for ``--reward`` (imported lazily: alft.rewards pulls in the targets)."""
    from alft import rewards

    if args.reward == "target":
        if args.targets is None:
            raise ConfigError("--reward target needs --targets targets.parquet")
        return rewards.TargetTableReward.from_parquet(args.targets, task=args.task)
    if args.reward == "ground_truth":
        return rewards.GroundTruthReward(args.task)
    if args.reward == "online_majority":
        return rewards.MajorityReward(task=args.task)
    return rewards.OnlineCoherenceReward(task=args.task, consensus=args.consensus)


def run(args: argparse.Namespace) -> int:
    from alft.policy import PolicyStepConfig, run_policy_step

    log = stage_logger("policy")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    log_host(log)
    orbits = read_parquet(args.orbits, {"orbit_id": "int", "member": "int", "prompt": "str"})
    if args.reward == "ground_truth":
        if "answer" not in orbits or orbits["answer"].isna().all():
            raise ConfigError(f"--reward ground_truth needs gold answers: {args.orbits} has no 'answer' values")
    else:  # label-free (and target) rewards must not see the labels
        orbits = orbits.drop(columns=[c for c in ("answer",) if c in orbits])
    # online rewards: whole orbits per generation batch (majority too, so that it sees the same
    # batches as coherence and the reward is the only difference)
    mode = "online" if args.reward.startswith("online_") else "offline"
    cfg = PolicyStepConfig(
        learning_rate=args.lr, max_steps=args.steps, num_epochs=args.epochs,
        num_generations=args.num_generations, batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum, max_completion_length=args.max_completion_length,
        temperature=args.temperature, paper_beta=args.paper_beta, kl_coef=args.kl_coef,
        num_iterations=args.num_iterations, seed=args.seed, mode=mode, use_vllm=args.use_vllm,
        lora_r=args.lora_r, lora_alpha=args.lora_alpha,
        disable_tqdm=args.no_progress)
    reward = make_reward(args)
    history = run_policy_step(args.policy, args.reference, orbits, reward, cfg, args.out, args.log)
    last = history.tail(1).to_dict("records")[0] if len(history) else {}
    log.info("wrote %s and %s: %d steps; last reward %.4g, kl %.4g", args.out, args.log, len(history),
             last.get("reward", float("nan")), last.get("kl", float("nan")))
    return 0
