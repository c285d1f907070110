"""File I/O at the edges: atomic writes, Parquet schemas, small tables.

Every stage writes its outputs through these helpers, so a killed or failed stage
never leaves a file (or model directory) that looks finished: data goes to a
temporary sibling first and is moved into place with an atomic ``os.replace``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alft.errors import DataError

PathLike = str | os.PathLike[str]


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; rename it into place on success.

    An existing directory at ``path`` is replaced. On failure (or Ctrl-C) the
    temporary directory is removed and ``path`` is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_parquet(df: pd.DataFrame, path: PathLike, schema: pa.Schema | None = None) -> None:
    """Write ``df`` to ``path`` atomically (optionally cast to ``schema``)."""
    table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet(path: PathLike, required: Mapping[str, str] | Sequence[str] = ()) -> pd.DataFrame:
    """Read a Parquet file, checking that the ``required`` columns exist.

    ``required`` is a list of column names or a mapping name -> kind, where kind is
    one of ``"int"``, ``"float"``, ``"str"``, ``"bool"`` or ``"any"``.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found")
    try:
        df = pq.read_table(p).to_pandas()
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise DataError(f"{p}: not a readable Parquet file ({err})") from err
    kinds = dict(required) if isinstance(required, Mapping) else {c: "any" for c in required}
    missing = [c for c in kinds if c not in df.columns]
    if missing:
        raise DataError(f"{p}: missing column(s) {missing}; found {list(df.columns)}")
    for col, kind in kinds.items():
        check_column_kind(df, col, kind, p)
    return df


_KIND_CHECKS = {
    "int": pd.api.types.is_integer_dtype,
    "float": pd.api.types.is_numeric_dtype,
    "bool": pd.api.types.is_bool_dtype,
}


def check_column_kind(df: pd.DataFrame, col: str, kind: str, source: PathLike) -> None:
    """Raise a :class:`DataError` naming the file and first bad row if ``col`` is not ``kind``."""
    if kind == "any":
        return
    series = df[col]
    if kind == "str":
        bad = series.map(lambda v: not (v is None or isinstance(v, str)))
    elif kind in _KIND_CHECKS:
        if _KIND_CHECKS[kind](series.dtype):
            return
        bad = pd.Series(True, index=series.index)
    else:  # pragma: no cover - programming error
        raise ValueError(f"unknown column kind {kind!r}")
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise DataError(
            f"{source}: column {col!r} must be {kind}, row {row} holds {series.iloc[row]!r}"
        )


def write_json(obj: Any, path: PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_text(text: str, path: PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def markdown_table(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """Render ``df`` as a GitHub Markdown table (no extra dependency)."""
    cols = [str(c) for c in df.columns]

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return format(v, floatfmt)
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_table(df: pd.DataFrame, parquet_path: PathLike, markdown_path: PathLike | None = None,
                csv_path: PathLike | None = None) -> None:
    """Write a result table as Parquet plus optional Markdown and CSV copies."""
    write_parquet(df, parquet_path)
    if markdown_path is not None:
        write_text(markdown_table(df), markdown_path)
    if csv_path is not None:
        with atomic_path(csv_path) as tmp:
            df.to_csv(tmp, index=False)
