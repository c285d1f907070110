"""Argument helpers shared by the stage commands."""

from __future__ import annotations

import argparse
import logging
import sys

from alft.sampling import VLLMSettings


def add_vllm_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("vLLM engine")
    g.add_argument("--gpu-memory-utilization", type=float, default=0.3,
                   help="share of GPU memory vLLM may use (on CPU: share of the NUMA node's "
                        "RAM, less what the process holds, for the KV cache)")
    g.add_argument("--kv-cache-gib", type=float, default=None,
                   help="KV cache size in GiB; overrides --gpu-memory-utilization "
                        "(use it on CPU, where a share of a small NUMA node can be too little)")
    g.add_argument("--max-model-len", type=int, default=512)
    g.add_argument("--dtype", default="auto")
    g.add_argument("--tensor-parallel-size", type=int, default=1)


def vllm_settings(args: argparse.Namespace) -> VLLMSettings:
    return VLLMSettings(gpu_memory_utilization=args.gpu_memory_utilization,
                        kv_cache_gib=args.kv_cache_gib,
                        max_model_len=args.max_model_len, dtype=args.dtype,
                        tensor_parallel_size=args.tensor_parallel_size)


def log_host(log: logging.Logger) -> None:
    """Log what a training stage's floating-point results depend on beyond its inputs:
    the same seed on another CPU (another vector instruction set) trains another model."""
    import platform

    import torch

    log.info("host: torch %s, CPU capability %s, %s, %d threads", torch.__version__,
             torch.backends.cpu.get_cpu_capability(), platform.processor() or platform.machine(),
             torch.get_num_threads())


def stage_logger(name: str) -> logging.Logger:
    """A logger writing plain lines to stderr (Snakemake redirects it to the rule's log)."""
    logger = logging.getLogger(f"alft.{name}")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def publish_per_round(table, what: str, args, plot) -> None:
    """Write a per-round metrics table (``args.out``, ``.markdown``, ``.csv``) sorted by
    method and round, and ``plot(table, args.plot)`` when asked; DataError if a
    (method, round) occurs twice."""
    from alft.errors import DataError
    from alft.io import write_table

    table = table.sort_values(["method", "round"]).reset_index(drop=True)
    dup = table.duplicated(["method", "round"])
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        raise DataError(f"{what}: method {table.loc[i, 'method']!r} round "
                        f"{table.loc[i, 'round']} occurs twice among --inputs")
    write_table(table, args.out, args.markdown, args.csv)
    if args.plot is not None:
        plot(table, args.plot)
    print(table.to_string(index=False))
