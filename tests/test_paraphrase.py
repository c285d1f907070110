"""LLM paraphrase orbits: prompt, parsing, validation, orbit building (the LLM itself is faked)."""

import pandas as pd
import pytest

from alft.errors import ConfigError, DataError
from alft.orbits import ORBIT_COLUMNS, OrbitReport
from alft.paraphrase import (REASONS, llm_orbits, paraphrase_prompt, parse_paraphrases,
                             validate_paraphrase)
from alft.tasks import format_prompt
from alft.tasks.loaders import OPTIONS_MARKER

Q = "Natalia sold 48 clips in April and half as many in May. How many clips did she sell?"


def test_prompt_mentions_n_and_question():
    p = paraphrase_prompt("What is  2 +\n2?", 3)
    assert "3 different ways" in p and "numbered 1. to 3." in p
    assert "Question: What is 2 + 2?" in p and p.endswith("Rewrites:\n")
    with pytest.raises(ConfigError):
        paraphrase_prompt(Q, 0)


@pytest.mark.parametrize("completion,expected", [
    ("1. First one?\n2) Second one?\n3: Third?", ["First one?", "Second one?", "Third?"]),
    ("Here are the rewrites:\n1. \"Quoted?\"\n   continued here\n2. Next?", ["Quoted? continued here", "Next?"]),
    ("- dash item\n* star item\n- dash item", ["dash item", "star item", "dash item"]),
    ("Rewrite 1: A?\nRewrite 2: B?", ["A?", "B?"]),
    ("plain line one\n\nplain line two", ["plain line one", "plain line two"]),
    ("preamble text\n1. A?", ["A?"]),
    ("", []), (None, []), ("1.   \n2. \"\"", []),
])
def test_parse_paraphrases(completion, expected):
    assert parse_paraphrases(completion) == expected


@pytest.mark.parametrize("candidate,task,reason", [
    ("", "gsm8k", "empty"), (None, "gsm8k", "empty"),
    ("  natalia SOLD 48 clips in April and half as many in May.   How many clips did she sell?", "gsm8k",
     "identical"),
    ("48 clips?", "gsm8k", "too_short"),
    (Q + " " + Q + " Please explain every step in detail.", "gsm8k", "too_long"),
    ("In April Natalia sold 50 clips, and in May half as many. What is her total?", "gsm8k", "numbers_changed"),
    ("In April Natalia sold forty-eight clips, and in May half as many. What is her total?", "gsm8k",
     "numbers_changed"),
    ("In April Natalia sold 48 clips, and in May only half that many. What is her total?", "gsm8k", None),
    ("In April Natalia sold 50 clips, and in May half as many. What is her total?", "triviaqa", None),
])
def test_validate_paraphrase(candidate, task, reason):
    assert validate_paraphrase(Q, candidate, task, min_ratio=0.5, max_ratio=2.0) == reason


def test_validate_numbers_are_canonical():
    assert validate_paraphrase("It costs $1,000 and 2.50 more.", "The price is 1000 dollars plus 2.5 more.",
                               "gsm8k") is None


def fake_generate(outputs, calls):
    """Test double of the LLM: returns fixed completions, one per prompt, in order."""
    def generate(prompts):
        calls.append(list(prompts))
        return [outputs[p.split("Question: ", 1)[1].split("\n", 1)[0]] for p in prompts]
    return generate


def questions():
    return pd.DataFrame({
        "id": ["g1", "g2", "g3"],
        "question": [Q, "Tom has 3 apples and buys 4 more. How many apples does he have now?",
                     "What is 5 times 6?"],
        "answer": ["72", "7", "30"],
    })


def test_llm_orbits_validates_and_counts():
    outputs = {
        Q: "1. In April Natalia sold 48 clips, and in May only half that many. What is her total?\n"
           "2. In April Natalia sold 50 clips and in May half as many. What is her total sale?\n"
           "3. " + Q,
        "Tom has 3 apples and buys 4 more. How many apples does he have now?":
           "1. Tom buys 4 more apples after having 3. How many apples does Tom have?\n"
           "2. Tom buys 4 more apples after having 3. How many apples does Tom have?\n"
           "3. ?",
        "What is 5 times 6?": "I cannot help with that request, as it is a math question about numbers.",
    }
    calls = []
    report = OrbitReport()
    orbits, rep = llm_orbits(questions(), fake_generate(outputs, calls), n=3, task="gsm8k", report=report)
    assert len(calls) == 1 and len(calls[0]) == 3
    assert list(orbits.columns) == ORBIT_COLUMNS
    assert orbits[["orbit_id", "member"]].values.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1], [2, 0]]
    assert orbits["source"].tolist() == ["original", "llm", "original", "llm", "original"]
    assert orbits["question_id"].tolist() == ["g1", "g1", "g2", "g2", "g3"]
    assert orbits["answer"].tolist() == ["72", "72", "7", "7", "30"]
    assert orbits["prompt"].tolist() == [format_prompt(q, "gsm8k") for q in orbits["question"]]
    counts = dict(zip(rep["reason"], rep["count"]))
    assert list(rep.columns) == ["reason", "count"]
    assert list(rep["reason"]) == [*REASONS, "accepted"]
    assert counts == {"empty": 0, "identical": 1, "duplicate": 1, "too_short": 1, "too_long": 1,
                      "numbers_changed": 1, "missing": 2, "accepted": 2}
    assert report.n_questions == 3 and report.n_members == 5
    assert report.rejected["numbers_changed"] == 1 and report.rejected["missing"] == 2


def test_llm_orbits_batches_and_extra_candidates():
    outputs = {q: "\n".join(f"{i}. Tell me: {q} (version {i})" for i in (1, 2, 3))
               for q in questions()["question"]}
    calls = []
    orbits, rep = llm_orbits(questions(), fake_generate(outputs, calls), n=1, task="triviaqa",
                             max_ratio=3.0, batch_size=2)
    assert [len(c) for c in calls] == [2, 1]
    assert orbits.groupby("orbit_id").size().tolist() == [2, 2, 2]  # only the first n are used
    assert orbits[orbits.member == 1]["question"].str.endswith("(version 1)").all()
    assert dict(zip(rep["reason"], rep["count"]))["accepted"] == 3


def test_llm_orbits_mathqa_keeps_options():
    opts = OPTIONS_MARKER + "a) 20, b) 25, c) 30, d) 40, e) none of these"
    qs = pd.DataFrame({"id": ["m1"], "question": ["a train runs 60 km in 2 hours . find its speed ." + opts],
                       "answer": ["c"], "options": [opts.strip()]})
    seen = []

    def generate(prompts):
        seen.extend(prompts)
        return ["1. find the speed of a train covering 60 km in 2 hours .\n"
                "2. a train covers 60 km in 3 hours . find its speed ."]

    orbits, rep = llm_orbits(qs, generate, n=2, task="mathqa")
    assert "Options:" not in seen[0]  # only the stem is paraphrased
    assert orbits["question"].tolist() == [qs["question"][0],
                                           "find the speed of a train covering 60 km in 2 hours ." + opts]
    assert list(orbits.columns) == ORBIT_COLUMNS + ["options"]
    assert dict(zip(rep["reason"], rep["count"]))["numbers_changed"] == 1


def test_llm_orbits_errors():
    with pytest.raises(DataError, match="returned 1 completions for 3 prompts"):
        llm_orbits(questions(), lambda ps: ["x"], n=2, task="gsm8k")
    with pytest.raises(DataError, match="missing column"):
        llm_orbits(questions().drop(columns="answer"), lambda ps: ps, n=2, task="gsm8k")
    with pytest.raises(ConfigError):
        llm_orbits(questions(), lambda ps: ps, n=0, task="gsm8k")
    with pytest.raises(ConfigError):
        llm_orbits(questions(), lambda ps: ps, n=2, task="gsm8k", min_ratio=1.5)


def test_llm_orbits_empty_input():
    orbits, rep = llm_orbits(questions().iloc[:0], lambda ps: [], n=2, task="gsm8k")
    assert len(orbits) == 0 and list(orbits.columns) == ORBIT_COLUMNS
    assert rep["count"].sum() == 0
