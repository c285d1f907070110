"""alft: Distributional Alignment Games for Answer-Level Fine-Tuning.

The library is free of Snakemake and of file paths except in :mod:`alft.io` and the
command modules under :mod:`alft.commands` (the CLI edge).
"""

__version__ = "0.1.0"
