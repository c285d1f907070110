"""Answer extraction E(y) and answer equivalence.

``extract_answer(text, task)`` is the deterministic map E from a completion
(reasoning trace) to a canonical answer string, or ``None`` when the trace has no
parsable final answer. Canonical answers are what the target step counts: two
traces with the same canonical answer fall in the same preimage E^{-1}(z).

``answers_match(pred, gold, task)`` decides correctness; numeric answers use
math-verify for mathematical equivalence (fractions, decimals, thousands
separators, currency), after a fast path on canonical strings.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

TASKS = ("builtin",)

_FINAL_RE = re.compile(r"The answer is\s*:?\s*(?P<ans>[-+$\d.,/]*\d)", re.IGNORECASE)
_NUMBER_RE = re.compile(r"^[-+]?\$?\s*[-+]?[\d,]*\.?\d+$")


def canonical_number(text: str) -> str | None:
    """Canonical decimal string of a number written as "1,234", "$1234", "1234.0"; else None."""
    s = text.strip().rstrip(".")
    if not _NUMBER_RE.match(s):
        return None
    s = s.replace("$", "").replace(",", "").replace(" ", "")
    try:
        value = Decimal(s)
    except InvalidOperation:
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def extract_answer(text: str, task: str = "builtin") -> str | None:
    """E(y): the canonical final answer of a completion, or None if none is parsable.

    builtin: the last "The answer is N" in the trace (the format the base model
    is pretrained on), canonicalised as a number.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if text is None:
        return None
    matches = _FINAL_RE.findall(text)
    if not matches:
        return None
    return canonical_number(matches[-1])


@lru_cache(maxsize=65536)
def _math_equal(pred: str, gold: str) -> bool:
    from math_verify import parse, verify

    # parsing_timeout/timeout_seconds use signals, which only work in the main thread.
    try:
        g = parse(gold, parsing_timeout=None)
        p = parse(pred, parsing_timeout=None)
        return bool(g) and bool(p) and verify(g, p, timeout_seconds=None)
    except Exception:
        return False


def answers_match(pred: str | None, gold: str | list[str], task: str = "builtin") -> bool:
    """Whether the extracted answer ``pred`` is equivalent to ``gold`` (a string or aliases)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if pred is None:
        return False
    golds = [gold] if isinstance(gold, str) else list(gold)
    for g in golds:
        cp, cg = canonical_number(str(pred)), canonical_number(str(g))
        if cp is not None and cg is not None:  # both plain decimals: exact comparison
            if cp == cg:
                return True
            continue
        if str(pred).strip() == str(g).strip() or _math_equal(str(pred), str(g)):
            return True
    return False
