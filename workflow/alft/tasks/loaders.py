"""Loaders for the real tasks (GSM8K, TriviaQA, MathQA): the hub or a local file.

``load_task(task, source, split, columns=None, limit=None)`` returns a split table

    id, question, answer            (all tasks; ``answer`` canonical, see alft.extract.gold_answer)
    aliases                         (triviaqa: list of every accepted answer string)
    options                         (mathqa: "a) ..., b) ..., ..." as one string)

``source`` is ``"hub"`` (``datasets.load_dataset`` with the task's data set and
config, :data:`HUB`) or the path of a local ``.parquet`` / ``.jsonl`` / ``.json``
/ ``.csv`` file. ``columns`` maps the output fields to the file's (or hub row's)
field names, e.g. ``{"question": "q", "answer": "a"}``; fields left out default
to the hub data set's names (:data:`DEFAULT_COLUMNS`), so a local dump of the hub
data set needs no mapping. An ``id`` field that is neither mapped nor present is
generated as ``{task}-{split}-{row}``.

Per task:

* gsm8k — ``answer`` is the reference solution; the gold is the number after
  its last ``####`` (a bare number is accepted too), canonicalised.
* triviaqa — ``answer`` is a string or the hub's struct ``{value, aliases, ...}``;
  ``aliases`` (a list, or in CSV a JSON list or ``|``-separated string) is merged
  with the answer value into the ``aliases`` column; ``answer`` holds the value
  as written (matching normalises both sides).
* mathqa — ``answer`` is the correct option letter (``correct``); ``options`` is
  MathQA's ``"a ) 38 , b ) 27.675 , ..."`` string (or a list of ``"a ) 38"``).
  The options are appended to the question text after :data:`OPTIONS_MARKER`,
  so every stage that sees the question (prompts, paraphrases) sees the options.

Errors (a missing file or column, an unreadable file, an empty question, an
unparsable gold answer, a duplicate id) raise :class:`~alft.errors.DataError`
naming the file (or hub data set) and the row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from itertools import islice
from pathlib import Path
from typing import Any

import pandas as pd

from alft.errors import ConfigError, DataError
from alft.extract import gold_answer

REAL_TASKS = ("gsm8k", "triviaqa", "mathqa")
HUB = {  # task -> (data set, config)
    "gsm8k": ("openai/gsm8k", "main"),
    "triviaqa": ("mandarjoshi/trivia_qa", "rc.nocontext"),
    "mathqa": ("allenai/math_qa", None),
}
DEFAULT_COLUMNS = {
    "gsm8k": {"id": "id", "question": "question", "answer": "answer"},
    "triviaqa": {"id": "question_id", "question": "question", "answer": "answer", "aliases": "aliases"},
    "mathqa": {"id": "id", "question": "Problem", "answer": "correct", "options": "options"},
}
OUTPUT_COLUMNS = {"gsm8k": ["id", "question", "answer"],
                  "triviaqa": ["id", "question", "answer", "aliases"],
                  "mathqa": ["id", "question", "answer", "options"]}
OPTIONS_MARKER = "\nOptions: "
FILE_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")


# --------------------------------------------------------------------- parsing
def parse_options(options: Any) -> dict[str, str]:
    """MathQA options as {letter: text}: from "a ) 38 , b ) 27.675 , ..." or a list of "a ) 38".

    The letters are found in order (a, then b after it, ...), so an option text
    such as "3 / ( 2 + e )" does not split the list. ValueError if "a )" does not
    start the text or fewer than two options are found.
    """
    if isinstance(options, str):
        text = options.strip()
    elif isinstance(options, Iterable):
        text = " , ".join(str(o).strip() for o in options)
    else:
        raise ValueError(f"options must be a string or a list, got {type(options).__name__}")
    marks = []
    pos = 0
    for letter in "abcde":
        m = re.compile(rf"(?:^|,|\s)\s*\(?[{letter}{letter.upper()}]\s*\)\s*").search(text, pos)
        if m is None:
            break
        marks.append((letter, m))
        pos = m.end()
    if len(marks) < 2 or marks[0][1].start() != 0:
        raise ValueError(f"cannot parse options {text!r}")
    out = {}
    for i, (letter, m) in enumerate(marks):
        end = marks[i + 1][1].start() if i + 1 < len(marks) else len(text)
        out[letter] = text[m.end():end].strip().rstrip(",").strip()
    return out


def format_options(options: Mapping[str, str]) -> str:
    """{"a": "38", "b": "27.675"} -> "a) 38, b) 27.675"."""
    return ", ".join(f"{k}) {v}" for k, v in options.items())


def split_options(question: str) -> tuple[str, str]:
    """(stem, options suffix) of a question; the suffix is "" when it has no options block."""
    i = question.rfind(OPTIONS_MARKER)
    return (question, "") if i < 0 else (question[:i], question[i:])


def _aliases(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            try:
                parsed = json.loads(s)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list):
                return [str(a) for a in parsed]
        return [a.strip() for a in s.split("|")] if s else []
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return [str(a) for a in value if a is not None]
    return [str(value)]


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or not str(value).strip()


# ---------------------------------------------------------------------- reading
def read_table(path: str | Path) -> pd.DataFrame:
    """A local .parquet / .jsonl / .json / .csv file as a DataFrame (DataError if unreadable)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found")
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(p)
        if suffix == ".jsonl":
            return pd.read_json(p, lines=True, dtype=False)
        if suffix == ".json":
            return pd.read_json(p, dtype=False)
        if suffix == ".csv":
            return pd.read_csv(p, dtype=str, keep_default_na=False)
    except Exception as err:  # pandas/pyarrow raise many types for corrupt files
        raise DataError(f"{p}: not a readable {suffix[1:]} file ({type(err).__name__}: {err})") from err
    raise DataError(f"{p}: unsupported file type {suffix!r}; expected one of {list(FILE_SUFFIXES)}")


def _hub_rows(task: str, split: str, limit: int | None) -> list[dict]:
    name, config = HUB[task]
    try:
        from datasets import load_dataset
    except ImportError as err:  # pragma: no cover - datasets is a dependency
        raise ConfigError(f"loading {task} from the hub needs the 'datasets' package ({err})") from err
    try:
        ds = load_dataset(name, config, split=split) if config else load_dataset(name, split=split)
    except Exception as err:
        raise DataError(f"hub:{name}[{config or 'default'}]/{split}: cannot load "
                        f"({type(err).__name__}: {err})") from err
    return [dict(r) for r in islice(iter(ds), limit)]


# ---------------------------------------------------------------------- public
def load_task(task: str, source: str | Path, split: str = "train",
              columns: Mapping[str, str] | None = None, limit: int | None = None) -> pd.DataFrame:
    """The ``split`` of ``task`` from the hub (``source="hub"``) or a local file; see the module doc."""
    if task not in REAL_TASKS:
        raise ConfigError(f"unknown task {task!r} for load_task; expected one of {list(REAL_TASKS)}")
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ConfigError(f"limit must be a non-negative integer, got {limit!r}")
    mapping = dict(DEFAULT_COLUMNS[task])
    explicit = set()
    for key, col in (columns or {}).items():
        if key not in mapping:
            raise ConfigError(f"unknown column mapping key {key!r} for task {task}; expected one of "
                              f"{sorted(mapping)}")
        mapping[key] = col
        explicit.add(key)

    if str(source) == "hub":
        name, config = HUB[task]
        where = f"hub:{name}[{config or 'default'}]/{split}"
        rows = _hub_rows(task, split, limit)
        present = set(rows[0]) if rows else set(mapping.values())
    else:
        where = str(source)
        df = read_table(source)
        if limit is not None:
            df = df.iloc[:limit]
        present = set(df.columns)
        rows = df.to_dict("records")

    required = {"question", "answer"} | explicit
    if task == "mathqa" and "options" in explicit:
        required.add("options")
    for key in sorted(required):
        if mapping[key] not in present:
            raise DataError(f"{where}: missing column {mapping[key]!r} (for {key!r}); "
                            f"found {sorted(map(str, present))}")
    optional = {k for k in mapping if k not in required and mapping[k] in present}
    use = required | optional

    out = [_convert_row(task, i, row, mapping, use, split, where) for i, row in enumerate(rows)]
    result = pd.DataFrame(out, columns=OUTPUT_COLUMNS[task])
    dup = result["id"].duplicated()
    if dup.any():
        row = int(dup.to_numpy().nonzero()[0][0])
        raise DataError(f"{where}: row {row}: duplicate id {result['id'].iloc[row]!r}")
    return result


def _convert_row(task: str, i: int, row: Mapping[str, Any], mapping: Mapping[str, str],
                 use: set[str], split: str, where: str) -> dict:
    def get(key: str) -> Any:
        return row.get(mapping[key]) if key in use else None

    question = get("question")
    if _is_empty(question):
        raise DataError(f"{where}: row {i}: empty question (column {mapping['question']!r})")
    question = str(question).strip()
    rid = get("id")
    rid = f"{task}-{split}-{i}" if _is_empty(rid) else str(rid).strip()
    raw = get("answer")
    aliases: list[str] = []
    if task == "triviaqa" and isinstance(raw, Mapping):  # the hub's answer struct
        aliases = _aliases(raw.get("aliases")) or _aliases(raw.get("normalized_aliases"))
        raw = raw.get("value")
    if _is_empty(raw):
        raise DataError(f"{where}: row {i}: empty answer (column {mapping['answer']!r})")
    raw = str(raw).strip()
    out = {"id": rid, "question": question}
    if task == "triviaqa":
        aliases = _aliases(get("aliases")) + aliases
        merged = list(dict.fromkeys([raw, *(a.strip() for a in aliases if a and a.strip())]))
        out.update(answer=raw, aliases=merged)
        return out
    gold = gold_answer(raw, task)
    if gold is None:
        what = "a number after '####'" if task == "gsm8k" else "an option letter a-e"
        raise DataError(f"{where}: row {i}: answer {raw[-80:]!r} has no gold answer ({what}; "
                        f"column {mapping['answer']!r})")
    out["answer"] = gold
    if task == "mathqa":
        opts = get("options")
        text = ""
        if opts is not None and not (isinstance(opts, (str, float)) and _is_empty(opts)):
            try:
                parsed = parse_options(opts)
            except ValueError as err:
                raise DataError(f"{where}: row {i}: column {mapping['options']!r}: {err}") from err
            if gold not in parsed:
                raise DataError(f"{where}: row {i}: answer {gold!r} is not one of the options "
                                f"{sorted(parsed)}")
            text = format_options(parsed)
            question = question + OPTIONS_MARKER + text
        out.update(question=question, options=text)
    return out
