"""Answer extraction E(y) and answer equivalence.

``extract_answer(text, task)`` is the deterministic map E from a completion
(reasoning trace) to a canonical answer string, or ``None`` when the trace has no
parsable final answer. Canonical answers are what the target step counts: two
traces with the same canonical answer fall in the same preimage E^{-1}(z).

``answers_match(pred, gold, task)`` decides correctness; numeric answers use
math-verify for mathematical equivalence (fractions, decimals, thousands
separators, currency), after a fast path on canonical strings.

Tasks:

* ``builtin`` — the last "The answer is N", canonicalised by :func:`canonical_number`.
* ``gsm8k`` — *strict*: the last of "The answer is N", "#### N" and ``\\boxed{N}``
  (by position in the text); *flexible*: the last number in the text.
  ``extract_answer`` is strict, falling back to flexible; evaluation can report
  both through :func:`extract_answer_strict` / :func:`extract_answer_flexible`.
  Numbers are canonicalised by :func:`canonical_numeric` (thousands separators,
  currency and percent signs dropped, ``12.50`` -> ``12.5``, ``1/2`` -> ``0.5``,
  ``2/3`` stays ``2/3``), so equal values count as one answer.
* ``triviaqa`` — *strict*: the text after the last "The answer is" up to the end
  of the line or sentence; *flexible*: the first non-empty line (up to the end of
  its sentence). Canonical form: :func:`normalize_triviaqa` (TriviaQA's official
  normalisation), matched against every gold alias.
* ``mathqa`` — the chosen option letter a–e, lowercase. *strict*: "The answer is
  (c)", "answer: c"; *flexible*: a letter ending the text ("... so (c).").
  An answer given as an option's value rather than its letter is not mapped
  back to a letter (the options are not known to E).

The gold side: :func:`gold_answer` turns a data set's reference (GSM8K's solution
ending in ``#### N``, a TriviaQA answer, a MathQA ``correct`` letter) into the
same canonical form.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation, localcontext
from fractions import Fraction
from functools import lru_cache

TASKS = ("builtin", "gsm8k", "triviaqa", "mathqa")
MATH_TASKS = ("builtin", "gsm8k", "mathqa")  # tasks whose questions' numbers must survive a paraphrase

_FINAL_RE = re.compile(r"The answer is\s*:?\s*(?P<ans>[-+$\d.,/]*\d)", re.IGNORECASE)
_NUMBER_RE = re.compile(r"^[-+]?\$?\s*[-+]?[\d,]*\.?\d+$")


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")


# ------------------------------------------------------------------------ builtin
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


def _builtin_strict(text: str) -> str | None:
    matches = _FINAL_RE.findall(text)
    if not matches:
        return None
    return canonical_number(matches[-1])


# -------------------------------------------------------------------------- gsm8k
# A number as written in a solution: 1,234.5 | 1234 | .5, optionally a simple fraction a/b.
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_NUM_TOKEN = rf"-?\\?\$?\s?{_NUM}(?:/{_NUM})?%?"
# Not inside a word or a longer number ("x2", "1.2.3"); a minus after a digit is an operator.
_NUM_TOKEN_RE = re.compile(rf"(?<![\w.]){_NUM_TOKEN}")
_CANON_NUM_RE = re.compile(r"^[-+]?\$?[-+]?(?:[\d,]*\.?\d+)(?:/(?:[\d,]*\.?\d+))?%?$")
_GSM8K_STRICT_RE = re.compile(
    rf"(?:The (?:final )?answer is|####)\s*:?[\s*]*(?:\\\(|\$\$|\\\[)?\s*(?P<num>{_NUM_TOKEN})",
    re.IGNORECASE)
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_LATEX_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_TEXT_RE = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{[^{}]*\}")


def _fraction_str(value: Fraction) -> str:
    """Integer, exact decimal (denominator 2^a 5^b), or reduced p/q."""
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d == 1:
        with localcontext() as ctx:
            ctx.prec = 60
            dec = Decimal(value.numerator) / Decimal(value.denominator)
        return format(dec.normalize(), "f")
    return f"{value.numerator}/{value.denominator}"


def canonical_numeric(text: str) -> str | None:
    """Canonical string of a number ("1,234", "$12.50", "50%", "3/4", "-0.0"); None if not a number.

    Integers print as integers, terminating fractions as decimals ("1/2" -> "0.5"),
    others as reduced fractions ("4/6" -> "2/3"). Currency, percent signs and
    thousands separators are dropped.
    """
    if text is None:
        return None
    s = str(text).strip().rstrip(".").replace("\\$", "$").replace("\\%", "%")
    s = s.replace(" ", "").replace("\u2212", "-")
    if not _CANON_NUM_RE.match(s):
        return None
    s = s.replace("$", "").replace(",", "").rstrip("%")
    if s.count("-") + s.count("+") > 1:
        return None
    try:
        if "/" in s:
            num, den = s.split("/")
            if Decimal(den) == 0:
                return None
            value = Fraction(Decimal(num)) / Fraction(Decimal(den))
        else:
            value = Fraction(Decimal(s))
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None
    return _fraction_str(value)


def _boxed_contents(text: str) -> list[tuple[int, str]]:
    """(position, content) of every \\boxed{...}, with nested braces."""
    out = []
    for m in _BOXED_RE.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append((m.start(), text[m.end():i - 1]))
    return out


def _latex_number(content: str) -> str | None:
    s = _LATEX_FRAC_RE.sub(r"(\1)/(\2)", content)
    s = _LATEX_TEXT_RE.sub("", s)
    s = s.replace("\\!", "").replace("\\,", "").replace("{,}", ",").replace("^\\circ", "")
    s = s.replace("(", "").replace(")", "").strip().strip("$").strip()
    return canonical_numeric(s)


def _gsm8k_strict(text: str) -> str | None:
    found = [(m.start(), canonical_numeric(m.group("num"))) for m in _GSM8K_STRICT_RE.finditer(text)]
    found += [(pos, _latex_number(c)) for pos, c in _boxed_contents(text)]
    found = [(pos, v) for pos, v in found if v is not None]
    return max(found)[1] if found else None


def _last_number(text: str, canonical=canonical_numeric) -> str | None:
    """The last number in ``text`` that ``canonical`` accepts, canonicalised."""
    for m in reversed(list(_NUM_TOKEN_RE.finditer(text))):
        v = canonical(m.group(0))
        if v is not None:
            return v
    return None


def _gsm8k_flexible(text: str) -> str | None:
    return _last_number(text, canonical_numeric)


def numbers_in(text: str) -> list[str]:
    """Canonical strings of every number written in ``text`` (in order), e.g. for paraphrase checks."""
    out = []
    for m in _NUM_TOKEN_RE.finditer(text or ""):
        v = canonical_numeric(m.group(0))
        if v is not None:
            out.append(v.lstrip("-"))  # "costs $5 - 3" vs "5-3": signs are wording, not numbers
    return out


# ----------------------------------------------------------------------- triviaqa
_TRIVIA_PUNCT = set(string.punctuation + "\u2018\u2019\u00b4`")
_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")
_ANSWER_IS_RE = re.compile(r"The (?:final )?answer is", re.IGNORECASE)
# A full stop ending a sentence: followed by whitespace or the end, and not after an
# initial ("J. R. R."), a two-letter abbreviation ("St.", "Mr.", "Dr.") or "Mrs.".
_SENTENCE_END_RE = re.compile(r"(?<!\b[A-Z])(?<!\b(?:St|Mr|Dr|Mt|Jr|Sr|Ms|Co|vs))(?<!\bMrs)\.(?=\s|$)")


def normalize_triviaqa(text: str) -> str:
    """TriviaQA's official answer normalisation.

    Lowercase, underscores and punctuation (incl. typographic quotes) replaced by
    spaces, articles a/an/the removed, whitespace collapsed.
    """
    s = str(text).replace("_", " ").lower()
    s = "".join(" " if ch in _TRIVIA_PUNCT else ch for ch in s)
    s = _ARTICLES_RE.sub(" ", s)
    return " ".join(s.split())


def _first_sentence(span: str) -> str:
    span = span.split("\n", 1)[0]
    m = _SENTENCE_END_RE.search(span)
    return span[:m.start()] if m else span


def _trivia_canonical(span: str) -> str | None:
    norm = normalize_triviaqa(_first_sentence(span))
    return norm or None


def _triviaqa_strict(text: str) -> str | None:
    matches = list(_ANSWER_IS_RE.finditer(text))
    if not matches:
        return None
    return _trivia_canonical(text[matches[-1].end():].lstrip(" \t:*"))


def _triviaqa_flexible(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip():
            return _trivia_canonical(line.strip())
    return None


# ------------------------------------------------------------------------- mathqa
MATHQA_LETTERS = "abcde"
_MATHQA_STRICT_RE = re.compile(
    r"answer(?:\s+is|\s*:)\s*:?[\s*]*(?:\(([a-e])\)|([a-e])(?=\s*(?:[.,;:)\]*]|$)))",
    re.IGNORECASE | re.MULTILINE)
_MATHQA_FINAL_RE = re.compile(r"(?:^|[\s(:*])\(?([a-e])\)?[.)*]*$", re.IGNORECASE)


def _mathqa_strict(text: str) -> str | None:
    matches = list(_MATHQA_STRICT_RE.finditer(text))
    if not matches:
        return None
    m = matches[-1]
    return (m.group(1) or m.group(2)).lower()


def _mathqa_flexible(text: str) -> str | None:
    m = _MATHQA_FINAL_RE.search(text.strip())
    return m.group(1).lower() if m else None


# ------------------------------------------------------------------------- public
_STRICT = {"builtin": _builtin_strict, "gsm8k": _gsm8k_strict,
           "triviaqa": _triviaqa_strict, "mathqa": _mathqa_strict}


def _builtin_flexible(text: str) -> str | None:
    return _last_number(text, canonical_number)


_FLEXIBLE = {"builtin": _builtin_flexible,
             "gsm8k": _gsm8k_flexible, "triviaqa": _triviaqa_flexible, "mathqa": _mathqa_flexible}


def extract_answer_strict(text: str | None, task: str = "builtin") -> str | None:
    """The answer in the task's required final-answer format only (None if absent)."""
    _check_task(task)
    if not text:
        return None
    return _STRICT[task](text)


def extract_answer_flexible(text: str | None, task: str = "builtin") -> str | None:
    """The lenient reading: gsm8k/builtin the last number, triviaqa the first line, mathqa a final letter."""
    _check_task(task)
    if not text:
        return None
    return _FLEXIBLE[task](text)


def extract_answer(text: str | None, task: str = "builtin") -> str | None:
    """E(y): the canonical final answer of a completion, or None if none is parsable.

    builtin: the last "The answer is N" in the trace (the format the base model
    is pretrained on), canonicalised as a number; no fallback.
    gsm8k, triviaqa, mathqa: strict extraction, falling back to flexible.
    """
    _check_task(task)
    if not text:
        return None
    if task == "builtin":
        return _builtin_strict(text)
    strict = _STRICT[task](text)
    return strict if strict is not None else _FLEXIBLE[task](text)


def gold_answer(reference: str, task: str = "builtin") -> str | None:
    """A data set's reference answer in canonical form (None if it has none).

    gsm8k: the number after the last ``####`` of the reference solution (or the
    whole reference if it is a bare number); triviaqa: the normalised answer;
    mathqa: the option letter; builtin: the canonical number.
    """
    _check_task(task)
    if reference is None:
        return None
    ref = str(reference).strip()
    if task == "gsm8k":
        tail = ref.rsplit("####", 1)[1] if "####" in ref else ref
        return canonical_numeric(tail.strip().split("\n", 1)[0])
    if task == "triviaqa":
        return normalize_triviaqa(ref) or None
    if task == "mathqa":
        letter = ref.strip("() .").lower()
        return letter if len(letter) == 1 and letter in MATHQA_LETTERS else None
    return canonical_number(ref)


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


def _golds(gold: str | Iterable[str]) -> list[str]:
    if isinstance(gold, str):
        return [gold]
    return [str(g) for g in gold if g is not None]


def answers_match(pred: str | None, gold: str | Iterable[str], task: str = "builtin") -> bool:
    """Whether the extracted answer ``pred`` is equivalent to ``gold`` (a string or aliases)."""
    _check_task(task)
    if pred is None:
        return False
    golds = _golds(gold)
    if task == "triviaqa":
        p = normalize_triviaqa(pred)
        return bool(p) and any(p == normalize_triviaqa(g) for g in golds)
    if task == "mathqa":
        p = str(pred).strip("() .").lower()
        return any(p == str(g).strip("() .").lower() for g in golds)
    canon = canonical_numeric if task == "gsm8k" else canonical_number
    for g in golds:
        cp, cg = canon(str(pred)), canon(str(g))
        if cp is not None and cg is not None:  # both plain numbers: exact comparison
            if cp == cg:
                return True
            continue
        if str(pred).strip() == str(g).strip() or _math_equal(str(pred), str(g)):
            return True
    return False
