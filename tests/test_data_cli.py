"""``alft data`` on local GSM8K / TriviaQA / MathQA fixture files (no hub)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from alft.cli import main
from alft.commands.evaluate import score


def _gsm8k_rows(n: int) -> list[dict]:
    return [{"question": f"Tom has {i} apples and buys 2 more. How many now?",
             "answer": f"He has {i} + 2 = {i + 2} apples.\n#### {i + 2}"} for i in range(n)]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _data(tmp_path, task, source, *extra, n_train=0, n_val=3, n_test=0):
    out = tmp_path / "out"
    rc = main(["data", "--task", task, "--source", str(source), "--seed", "0",
               "--n-train", str(n_train), "--n-val", str(n_val), "--n-test", str(n_test),
               "--out-dir", str(out), *extra])
    return rc, out


def test_gsm8k_local_split_placeholder(tmp_path):
    _write_jsonl(tmp_path / "gsm8k_train.jsonl", _gsm8k_rows(20))
    _write_jsonl(tmp_path / "gsm8k_test.jsonl", _gsm8k_rows(5))
    rc, out = _data(tmp_path, "gsm8k", tmp_path / "gsm8k_{split}.jsonl", n_train=10, n_val=4)
    assert rc == 0
    train, val, test = (pd.read_parquet(out / f"{s}.parquet") for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (10, 4, 5)
    assert not set(train["id"]) & set(val["id"])
    assert set(test["answer"]) == {"2", "3", "4", "5", "6"}
    assert not (out / "pretrain.parquet").exists()
    # seeded: the same seed carves the same validation split
    rc2, out2 = _data(tmp_path / "again", "gsm8k", tmp_path / "gsm8k_{split}.jsonl",
                      n_train=10, n_val=4)
    assert rc2 == 0 and list(pd.read_parquet(out2 / "val.parquet")["id"]) == list(val["id"])


def test_gsm8k_malformed_row_names_file_and_row(tmp_path, capsys):
    rows = _gsm8k_rows(6)
    rows[3]["answer"] = "no final answer marker"
    src = tmp_path / "bad.jsonl"
    _write_jsonl(src, rows)
    rc, _ = _data(tmp_path, "gsm8k", src)
    err = capsys.readouterr().err
    assert rc == 2 and str(src) in err and "row 3" in err


def test_empty_question_names_file_and_row(tmp_path, capsys):
    rows = _gsm8k_rows(6)
    rows[2]["question"] = "  "
    src = tmp_path / "bad.jsonl"
    _write_jsonl(src, rows)
    rc, _ = _data(tmp_path, "gsm8k", src)
    err = capsys.readouterr().err
    assert rc == 2 and str(src) in err and "row 2" in err and "empty question" in err


def test_triviaqa_csv_with_column_mapping(tmp_path):
    rows = [{"qid": f"t{i}", "q": f"Which city is capital number {i}?", "a": "Paris",
             "alts": json.dumps(["Paris", "City of Light"])} for i in range(8)]
    src = tmp_path / "trivia.csv"
    pd.DataFrame(rows).to_csv(src, index=False)
    cols = json.dumps({"id": "qid", "question": "q", "answer": "a", "aliases": "alts"})
    rc, out = _data(tmp_path, "triviaqa", src, "--columns", cols, n_val=2, n_test=3)
    assert rc == 0
    test = pd.read_parquet(out / "test.parquet")
    assert len(test) == 3 and list(test["aliases"].iloc[0]) == ["Paris", "City of Light"]
    # evaluation matches any alias after the official normalisation
    df, acc = score(["The answer is the city of light.", "The answer is London.",
                     "The answer is Paris."], test, "triviaqa")
    assert list(df["correct"]) == [True, False, True]
    assert acc["accuracy"] == pytest.approx(2 / 3) and "accuracy_strict" in acc


def test_triviaqa_missing_column_names_file(tmp_path, capsys):
    src = tmp_path / "trivia.csv"
    pd.DataFrame([{"q": "Who?", "a": "Me"}]).to_csv(src, index=False)
    rc, _ = _data(tmp_path, "triviaqa", src, "--columns", json.dumps({"question": "q"}), n_val=0)
    err = capsys.readouterr().err
    assert rc == 2 and str(src) in err and "'answer'" in err


def test_unreadable_file_and_bad_columns_json(tmp_path, capsys):
    src = tmp_path / "broken.parquet"
    src.write_bytes(b"not parquet")
    rc, _ = _data(tmp_path, "gsm8k", src)
    assert rc == 2 and str(src) in capsys.readouterr().err
    rc, _ = _data(tmp_path, "gsm8k", src, "--columns", "{oops")
    assert rc == 2 and "--columns" in capsys.readouterr().err


def test_gsm8k_strict_and_flexible_scores(tmp_path):
    test = pd.DataFrame({"id": ["a", "b", "c"], "question": ["q1", "q2", "q3"],
                         "answer": ["18", "3", "1000"]})
    comps = ["So 9 * 2 = 18. The answer is 18.", "She has 3 left", "#### 1,000"]
    df, acc = score(comps, test, "gsm8k")
    assert acc["accuracy_flexible"] == pytest.approx(1.0)
    assert acc["accuracy_strict"] == pytest.approx(2 / 3)
    assert acc["accuracy"] == pytest.approx(1.0)


def test_builtin_n_train_more_grows_train_only(tmp_path, capsys):
    def run(out, *extra):
        rc = main(["data", "--task", "builtin", "--seed", "0", "--n-pretrain", "200",
                   "--n-train", "10", "--n-val", "5", "--n-test", "5", "--out-dir", str(out), *extra])
        assert rc == 0
        return {s: pd.read_parquet(out / f"{s}.parquet") for s in ("pretrain", "train", "val", "test")}

    base = run(tmp_path / "a")
    more = run(tmp_path / "b", "--n-train-more", "5")
    for split in ("pretrain", "val", "test"):
        assert more[split].equals(base[split]), split
    assert len(more["train"]) == 15 and more["train"].iloc[:10].equals(base["train"])
    rc = main(["data", "--task", "builtin", "--seed", "0", "--n-pretrain", "20", "--n-train", "2",
               "--n-val", "2", "--n-test", "2", "--n-train-more", "-1", "--out-dir", str(tmp_path / "c")])
    assert rc != 0
    assert "builtin.n_train_more" in capsys.readouterr().err
    assert not (tmp_path / "c" / "train.parquet").exists()
