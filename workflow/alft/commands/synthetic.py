"""``alft synthetic``: the slides' synthetic validation (Game-GRPO vs REINFORCE)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from alft import io
from alft.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synthetic",
        help="synthetic validation: Game-GRPO vs trace-level REINFORCE on |Y|=10,000",
        description="Runs every method × seed of the synthetic experiment "
                    "(see alft.synthetic for the exact setup) and writes curves "
                    "(Parquet), a summary table (Parquet + Markdown) and a figure (PNG).")
    p.add_argument("--config-json", default=None,
                   help="the config's `synthetic:` section as a JSON object "
                        "(keys of alft.synthetic.SyntheticConfig); defaults otherwise")
    p.add_argument("--quick", action="store_true",
                   help="tiny setting for tests (< 60 s): 16 prompts, 2,000 traces, "
                        "120 steps, 3 seeds")
    p.add_argument("--curves", required=True, type=Path, help="output Parquet of curves")
    p.add_argument("--summary", required=True, type=Path, help="output Parquet summary")
    p.add_argument("--summary-md", type=Path, default=None, help="output Markdown summary")
    p.add_argument("--figure", type=Path, default=None, help="output PNG figure")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bar")
    p.set_defaults(func=run_synthetic)


def run_synthetic(args: argparse.Namespace) -> int:
    from alft import synthetic

    section = {}
    if args.config_json:
        try:
            section = json.loads(args.config_json)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--config-json: not valid JSON ({err})") from err
        if not isinstance(section, dict):
            raise ConfigError("--config-json: must be a JSON object")
    cfg = synthetic.config_from_mapping(section, quick=args.quick)
    curves, seconds = synthetic.timed_run(cfg, progress=not args.no_progress)
    summary = synthetic.summarise(curves)
    io.write_parquet(curves, args.curves)
    io.write_table(summary, args.summary, args.summary_md)
    if args.figure is not None:
        with io.atomic_path(args.figure) as tmp:
            synthetic.plot(curves, tmp.with_suffix(".png"),
                           title=f"{cfg.prompts} prompts, |Y|={cfg.traces}, |Z|={cfg.answers}, "
                                 f"K={cfg.K}, lr={cfg.lr}, β={cfg.beta}, "
                                 f"{len(cfg.seeds)} seeds (band: ±1 sd; light: min–max)")
            tmp.with_suffix(".png").replace(tmp)
    print(io.markdown_table(summary[["method", "K", "final_accuracy_mean", "final_accuracy_sd",
                                     "steps_to_95_mean", "seeds_reaching_95"]]))
    print(f"synthetic: {len(cfg.methods())} methods x {len(cfg.seeds)} seeds, "
          f"{cfg.steps} steps in {seconds:.1f}s")
    return 0
