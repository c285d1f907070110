"""Atomic writes and clear errors for bad input files."""

import pandas as pd
import pytest

from alft.data import load_split
from alft.errors import DataError
from alft.io import atomic_dir, markdown_table, read_parquet, write_parquet


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.parquet"
    df = pd.DataFrame({"a": [1, 2]})

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with pytest.MonkeyPatch.context() as mp:
            def fail(*args, **kwargs):
                raise Boom
            mp.setattr("pyarrow.parquet.write_table", fail)
            write_parquet(df, target)
    assert list(tmp_path.iterdir()) == []
    write_parquet(df, target)
    assert read_parquet(target).equals(df)
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_atomic_dir_keeps_old_content_on_failure(tmp_path):
    final = tmp_path / "model"
    with atomic_dir(final) as d:
        (d / "weights").write_text("v1")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(final) as d:
            (d / "weights").write_text("half")
            raise KeyboardInterrupt
    assert (final / "weights").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_read_parquet_names_file_and_column(tmp_path):
    path = tmp_path / "x.parquet"
    write_parquet(pd.DataFrame({"a": [1]}), path)
    with pytest.raises(DataError, match=r"x\.parquet: missing column\(s\) \['b'\]"):
        read_parquet(path, ["b"])
    with pytest.raises(DataError, match="file not found"):
        read_parquet(tmp_path / "nope.parquet")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="bad.parquet: not a readable Parquet file"):
        read_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="column 'a' must be str, row 0"):
        read_parquet(path, {"a": "str"})


def test_malformed_split_row_is_named(tmp_path):
    path = tmp_path / "test.parquet"
    write_parquet(pd.DataFrame({"id": ["q1", "q2", "q3"], "question": ["a?", " ", "c?"],
                                "answer": ["1", "2", "3"]}), path)
    with pytest.raises(DataError, match=r"test\.parquet: row 1: column 'question' must be a non-empty"):
        load_split(path)
    write_parquet(pd.DataFrame({"id": ["q1", "q1"], "question": ["a?", "b?"],
                                "answer": ["1", "2"]}), path)
    with pytest.raises(DataError, match="row 1: duplicate id 'q1'"):
        load_split(path)


def test_markdown_table():
    md = markdown_table(pd.DataFrame({"method": ["base"], "accuracy": [0.123456]}))
    assert md.splitlines() == ["| method | accuracy |", "|---|---|", "| base | 0.1235 |"]
