"""Answer extraction E(y) and equivalence."""

import pytest

from alft.extract import answers_match, canonical_number, extract_answer


@pytest.mark.parametrize("text,expected", [
    ("5+23=28. 28-20=8. The answer is 8.", "8"),
    ("The answer is 1,234.", "1234"),
    ("The answer is $1234.", "1234"),
    ("The answer is 12.50", "12.5"),
    ("The answer is 3. The answer is 4.", "4"),  # the last final answer counts
    ("the answer is: 7", "7"),
    ("5+23=28. 28-20=", None),
    ("", None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text, "builtin") == expected


@pytest.mark.parametrize("pred,gold,ok", [
    ("1234", "1,234", True), ("1234.0", "1234", True), ("$1234", "1234", True),
    ("12", "12.5", False), ("0.5", "1/2", True), ("3", ["4", "3.0"], True),
    (None, "3", False), ("7", "8", False),
])
def test_answers_match(pred, gold, ok):
    assert answers_match(pred, gold, "builtin") is ok


def test_canonical_number():
    assert canonical_number("-0012") == "-12"
    assert canonical_number("1.2300") == "1.23"
    assert canonical_number("abc") is None


def test_unknown_task_is_an_error():
    with pytest.raises(ValueError, match="unknown task"):
        extract_answer("The answer is 1", "nope")
