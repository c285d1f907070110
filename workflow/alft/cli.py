"""The ``alft`` command line: one subcommand per pipeline stage.

Each module in :mod:`alft.commands` defines ``register(subparsers)``, which adds its
subcommand(s) and sets ``func`` on the parser; modules are discovered automatically,
so a new stage is a new file. Commands do argument parsing and file I/O only; the
maths lives in the library modules.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from alft import __version__
from alft.errors import AlftError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alft", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"alft {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    import alft.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # shared helpers, not commands
            continue
        module = importlib.import_module(f"alft.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except AlftError as err:  # clear, user-facing errors: no traceback
        print(f"alft {args.command}: error: {err}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
