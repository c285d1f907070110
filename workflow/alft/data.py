"""Loading and validating question splits (``id, question, answer``)."""

from __future__ import annotations

import pandas as pd

from alft.errors import DataError
from alft.io import PathLike, read_parquet

SPLIT_COLUMNS = {"id": "str", "question": "str", "answer": "str"}


def validate_split(df: pd.DataFrame, source: PathLike) -> pd.DataFrame:
    """Check that every row has a non-empty id, question and answer, and ids are unique.

    Raises :class:`DataError` naming ``source`` and the first bad row.
    """
    for col in SPLIT_COLUMNS:
        if col not in df.columns:
            raise DataError(f"{source}: missing column {col!r}; found {list(df.columns)}")
    for col in SPLIT_COLUMNS:
        values = df[col]
        bad = values.map(lambda v: not isinstance(v, str) or not v.strip())
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise DataError(f"{source}: row {row}: column {col!r} must be a non-empty string, "
                            f"got {values.iloc[row]!r}")
    dup = df["id"].duplicated()
    if dup.any():
        row = int(dup.to_numpy().nonzero()[0][0])
        raise DataError(f"{source}: row {row}: duplicate id {df['id'].iloc[row]!r}")
    return df


def load_split(path: PathLike) -> pd.DataFrame:
    """Read a split Parquet file and validate it (see :func:`validate_split`)."""
    return validate_split(read_parquet(path), path)
