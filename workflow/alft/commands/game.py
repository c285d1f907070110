"""``alft game-solve``: the equilibrium of the game on an enumerable instance."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from alft import io
from alft.errors import ConfigError, DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "game-solve",
        help="solve the distributional alignment game on an enumerable instance (JSON)",
        description="Solve min_π max_q G(π, q) exactly (answer-space reduction) or by "
                    "no-regret / alternating best-response dynamics; writes π, q, J per "
                    "prompt, iterations and the duality gap.")
    p.add_argument("--instance", required=True, type=Path, help="instance JSON file")
    p.add_argument("--out", required=True, type=Path, help="output JSON file")
    p.add_argument("--method", default="exact", choices=["exact", "no_regret", "alternating"],
                   help="solver (default: exact, gap ≤ 1e-10)")
    p.add_argument("--iters", type=int, default=2000,
                   help="iterations for no_regret / alternating")
    p.set_defaults(func=run_game_solve)

    d = subparsers.add_parser(
        "game-instance", help="write a random enumerable game instance (JSON) for game-solve")
    d.add_argument("--prompts", type=int, default=10)
    d.add_argument("--traces", type=int, default=10_000)
    d.add_argument("--answers", type=int, default=10)
    d.add_argument("--beta", type=float, default=0.7)
    d.add_argument("--objective", default="rlvr")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", required=True, type=Path)
    d.set_defaults(func=run_game_instance)


def run_game_instance(args: argparse.Namespace) -> int:
    import numpy as np

    from alft import game

    if min(args.prompts, args.traces, args.answers) < 1 or args.traces < args.answers:
        raise ConfigError("game-instance: need prompts, answers ≥ 1 and traces ≥ answers")
    inst = game.random_instance(args.objective, args.prompts, args.traces, args.answers,
                                args.beta, np.random.default_rng(args.seed))
    io.write_json({"beta": inst.beta, "objective": inst.objective, "pi0": inst.pi0,
                   "answer_of_trace": inst.answer_of_trace, "num_answers": inst.num_answers,
                   "ground_truth": inst.ground_truth, "reward": inst.reward}, args.out)
    print(f"game-instance: {args.prompts} x {args.traces}, objective={args.objective} -> {args.out}")
    return 0


def run_game_solve(args: argparse.Namespace) -> int:
    from alft import game

    path: Path = args.instance
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from err
    try:
        inst = game.instance_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    t0 = time.perf_counter()
    kwargs = {} if args.method == "exact" else {"iters": args.iters}
    sol = game.solve(inst, args.method, **kwargs)
    elapsed = time.perf_counter() - t0
    io.write_json(sol.to_json(), args.out)
    print(f"game-solve: {inst.num_prompts} prompts x {inst.num_traces} traces, "
          f"objective={inst.objective}, method={args.method}, gap={sol.gap:.3e}, "
          f"iterations={sol.iterations}, solve {elapsed:.3f}s")
    return 0
