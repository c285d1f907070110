"""Task loaders: local files (fixtures written here) and the hub path (datasets.load_dataset faked)."""

import json

import pandas as pd
import pytest

from alft.errors import ConfigError, DataError
from alft.tasks import loaders
from alft.tasks.loaders import OPTIONS_MARKER, load_task, parse_options, split_options

GSM8K_ROWS = [
    {"question": "Natalia sold 48 clips in April and half as many in May. How many in total?",
     "answer": "In May she sold 48/2 = <<48/2=24>>24.\n48+24 = <<48+24=72>>72\n#### 72"},
    {"question": "A shirt costs $1,200 and is 10% off. What is the price?",
     "answer": "10% of 1,200 is 120.\n#### 1,080"},
]
TRIVIA_ROWS = [
    {"question": "Which city is called the Big Apple?", "answer": "New York City",
     "aliases": ["NYC", "New York", "The Big Apple"]},
    {"question": "Capital of France?", "answer": "Paris", "aliases": []},
]
MATHQA_ROWS = [
    {"Problem": "a train runs 60 km in 2 hours . find its speed .", "correct": "c",
     "options": "a ) 20 , b ) 25 , c ) 30 , d ) 40 , e ) none of these"},
    {"Problem": "what is 1,200 / 3 ?", "correct": "a",
     "options": "a ) 400 , b ) 300 , c ) 200 , d ) 100 , e ) 3 / ( 2 + e )"},
]


def write(rows, path):
    df = pd.DataFrame(rows)
    suffix = path.suffix
    if suffix == ".parquet":
        df.to_parquet(path)
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    elif suffix == ".csv":
        df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".json", ".csv"])
def test_gsm8k_local_files(tmp_path, suffix):
    path = write(GSM8K_ROWS, tmp_path / f"gsm8k{suffix}")
    df = load_task("gsm8k", path, "train")
    assert list(df.columns) == ["id", "question", "answer"]
    assert df["answer"].tolist() == ["72", "1080"]
    assert df["id"].tolist() == ["gsm8k-train-0", "gsm8k-train-1"]
    assert df["question"].iloc[1].startswith("A shirt costs $1,200")


def test_column_mapping_and_limit(tmp_path):
    rows = [{"qid": f"q{i}", "q": r["question"], "sol": r["answer"]} for i, r in enumerate(GSM8K_ROWS)]
    path = write(rows, tmp_path / "mine.jsonl")
    df = load_task("gsm8k", path, "test", columns={"id": "qid", "question": "q", "answer": "sol"}, limit=1)
    assert df.to_dict("records") == [{"id": "q0", "question": GSM8K_ROWS[0]["question"], "answer": "72"}]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".csv"])
def test_triviaqa_aliases(tmp_path, suffix):
    rows = TRIVIA_ROWS if suffix != ".csv" else [{**r, "aliases": json.dumps(r["aliases"])} for r in TRIVIA_ROWS]
    df = load_task("triviaqa", write(rows, tmp_path / f"tqa{suffix}"), "validation")
    assert list(df.columns) == ["id", "question", "answer", "aliases"]
    assert df["answer"].tolist() == ["New York City", "Paris"]
    assert list(df["aliases"].iloc[0]) == ["New York City", "NYC", "New York", "The Big Apple"]
    assert list(df["aliases"].iloc[1]) == ["Paris"]


def test_triviaqa_csv_pipe_aliases(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("question,answer,aliases\nWho?,Bob,Robert|Bobby\n")
    df = load_task("triviaqa", path, "train")
    assert list(df["aliases"].iloc[0]) == ["Bob", "Robert", "Bobby"]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_mathqa_options(tmp_path, suffix):
    df = load_task("mathqa", write(MATHQA_ROWS, tmp_path / f"mqa{suffix}"), "train")
    assert list(df.columns) == ["id", "question", "answer", "options"]
    assert df["answer"].tolist() == ["c", "a"]
    assert df["options"].iloc[0] == "a) 20, b) 25, c) 30, d) 40, e) none of these"
    assert df["question"].iloc[0] == MATHQA_ROWS[0]["Problem"] + OPTIONS_MARKER + df["options"].iloc[0]
    assert split_options(df["question"].iloc[0]) == (MATHQA_ROWS[0]["Problem"],
                                                     OPTIONS_MARKER + df["options"].iloc[0])
    assert parse_options(df["options"].iloc[1])["e"] == "3 / ( 2 + e )"


def test_mathqa_option_list():
    assert parse_options(["a ) 1", "b ) 2", "c ) 3"]) == {"a": "1", "b": "2", "c": "3"}
    with pytest.raises(ValueError):
        parse_options("no options here")


# ------------------------------------------------------------------------ errors
def test_missing_column_names_file(tmp_path):
    path = write([{"q": "x", "answer": "#### 1"}], tmp_path / "bad.jsonl")
    with pytest.raises(DataError, match=r"bad\.jsonl: missing column 'question'"):
        load_task("gsm8k", path, "train")
    with pytest.raises(DataError, match=r"missing column 'ident'"):
        load_task("gsm8k", path, "train", columns={"question": "q", "id": "ident"})


def test_empty_question_names_file_and_row(tmp_path):
    rows = [GSM8K_ROWS[0], {"question": "   ", "answer": "#### 3"}]
    path = write(rows, tmp_path / "empty.parquet")
    with pytest.raises(DataError, match=r"empty\.parquet: row 1: empty question"):
        load_task("gsm8k", path, "train")


def test_empty_question_csv(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("question,answer\nok?,#### 1\n,#### 2\n")
    with pytest.raises(DataError, match=r"e\.csv: row 1: empty question"):
        load_task("gsm8k", path, "train")


def test_bad_gold_names_row(tmp_path):
    path = write([GSM8K_ROWS[0], {"question": "q", "answer": "no marker"}], tmp_path / "g.jsonl")
    with pytest.raises(DataError, match=r"g\.jsonl: row 1: answer 'no marker' has no gold"):
        load_task("gsm8k", path, "train")
    rows = [{**MATHQA_ROWS[0], "correct": "z"}]
    with pytest.raises(DataError, match=r"row 0: answer 'z' has no gold"):
        load_task("mathqa", write(rows, tmp_path / "m.jsonl"), "train")
    rows = [{**MATHQA_ROWS[0], "options": "a ) 1 , b ) 2"}]
    with pytest.raises(DataError, match=r"row 0: answer 'c' is not one of the options"):
        load_task("mathqa", write(rows, tmp_path / "m2.jsonl"), "train")


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"broken\.parquet: not a readable parquet file"):
        load_task("gsm8k", bad, "train")
    bad_json = tmp_path / "broken.jsonl"
    bad_json.write_text('{"question": "x", "answer": \n')
    with pytest.raises(DataError, match=r"broken\.jsonl: not a readable jsonl file"):
        load_task("gsm8k", bad_json, "train")
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        load_task("gsm8k", tmp_path / "nope.csv", "train")
    other = tmp_path / "data.txt"
    other.write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        load_task("gsm8k", other, "train")


def test_duplicate_ids(tmp_path):
    rows = [{"id": "a", **GSM8K_ROWS[0]}, {"id": "a", **GSM8K_ROWS[1]}]
    with pytest.raises(DataError, match=r"d\.jsonl: row 1: duplicate id 'a'"):
        load_task("gsm8k", write(rows, tmp_path / "d.jsonl"), "train")


def test_config_errors(tmp_path):
    path = write(GSM8K_ROWS, tmp_path / "g.jsonl")
    with pytest.raises(ConfigError, match="unknown task"):
        load_task("builtin", path, "train")
    with pytest.raises(ConfigError, match="unknown column mapping key"):
        load_task("gsm8k", path, "train", columns={"questoin": "question"})


# --------------------------------------------------------------------------- hub
@pytest.fixture
def fake_hub(monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls = []
    tables = {
        ("openai/gsm8k", "main"): GSM8K_ROWS,
        ("mandarjoshi/trivia_qa", "rc.nocontext"): [
            {"question": "Which city is called the Big Apple?", "question_id": "tc_1",
             "answer": {"value": "New York City", "aliases": ["NYC", "New York City"],
                        "normalized_aliases": ["nyc", "new york city"], "type": "WikipediaEntity"}},
            {"question": "Capital of France?", "question_id": "tc_2",
             "answer": {"value": "Paris", "aliases": ["Paris"], "normalized_aliases": ["paris"]}}],
        ("allenai/math_qa", None): MATHQA_ROWS,
    }

    def load_dataset(name, config=None, split=None, **kwargs):
        calls.append((name, config, split))
        return datasets.Dataset.from_list(tables[(name, config)])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_hub_gsm8k(fake_hub):
    df = load_task("gsm8k", "hub", "test", limit=1)
    assert fake_hub == [("openai/gsm8k", "main", "test")]
    assert df.to_dict("records") == [{"id": "gsm8k-test-0", "question": GSM8K_ROWS[0]["question"],
                                      "answer": "72"}]


def test_hub_triviaqa(fake_hub):
    df = load_task("triviaqa", "hub", "validation")
    assert fake_hub == [("mandarjoshi/trivia_qa", "rc.nocontext", "validation")]
    assert df["id"].tolist() == ["tc_1", "tc_2"]
    assert df["answer"].tolist() == ["New York City", "Paris"]
    assert list(df["aliases"].iloc[0]) == ["New York City", "NYC"]


def test_hub_mathqa(fake_hub):
    df = load_task("mathqa", "hub", "train")
    assert fake_hub == [("allenai/math_qa", None, "train")]
    assert df["answer"].tolist() == ["c", "a"]
    assert df["question"].iloc[0].endswith("c) 30, d) 40, e) none of these")


def test_hub_failure_is_a_data_error(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def load_dataset(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    with pytest.raises(DataError, match=r"hub:openai/gsm8k\[main\]/train: cannot load"):
        loaders.load_task("gsm8k", "hub", "train")
