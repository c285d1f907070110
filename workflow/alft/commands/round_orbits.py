"""``alft round-orbits``: the orbits round r samples, targets and trains on -> orbits/r<r>.parquet."""

from __future__ import annotations

import argparse
from pathlib import Path

from alft.commands._common import stage_logger
from alft.errors import ConfigError
from alft.io import read_parquet, write_parquet
from alft.orbits import round_orbit_ids


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("round-orbits", help="the block of orbits one round works on",
                       description="Round r takes block r mod B of --per-round orbits (B = orbits // "
                                   "per-round), in orbit_id order, so consecutive rounds see fresh "
                                   "prompts. --per-round 0 keeps every orbit.")
    p.add_argument("--orbits", type=Path, required=True, help="orbits.parquet")
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--per-round", type=int, required=True, help="orbits per round (0: all)")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    log = stage_logger("round-orbits")
    orbits = read_parquet(args.orbits, {"orbit_id": "int", "member": "int", "prompt": "str"})
    try:
        keep = set(round_orbit_ids(orbits["orbit_id"], args.round, args.per_round))
    except ValueError as e:
        raise ConfigError(f"{args.orbits}: {e}") from None
    out = orbits[orbits["orbit_id"].isin(keep)].reset_index(drop=True)
    write_parquet(out, args.out)
    log.info("round %d: %d of %d orbits (%d prompts) -> %s", args.round, len(keep),
             orbits["orbit_id"].nunique(), len(out), args.out)
    return 0
