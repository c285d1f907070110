"""LLM paraphrase orbits: prompt a model for rewrites of each question, validate, build orbits.

The model call is injected: ``generate_fn(prompts: list[str]) -> list[str]`` returns
one completion per prompt (the CLI passes a vLLM-backed function; tests pass a
fake). Everything else here is pure:

* :func:`paraphrase_prompt` — the instruction asking for ``n`` numbered rewrites;
* :func:`parse_paraphrases` — the rewrites in a completion (numbered or one per line);
* :func:`validate_paraphrase` — why a rewrite may not enter an orbit, or None;
* :func:`llm_orbits` — the orbits table (:data:`alft.orbits.ORBIT_COLUMNS`) and a
  per-reason report.

Validation reasons, checked in this order (:data:`REASONS`):

``empty``           nothing left after stripping list markers and quotes;
``identical``       the same text as the original (case and whitespace ignored);
``duplicate``       the same text as a rewrite already accepted into the orbit
                    (checked by :func:`llm_orbits`, which sees the whole orbit);
``too_short``       fewer than ``min_ratio`` x the original's characters;
``too_long``        more than ``max_ratio`` x the original's characters;
``numbers_changed`` math tasks (builtin, gsm8k, mathqa) only: the multiset of
                    numbers (canonical, so "1,000" = "1000") differs from the original's;
``missing``         the completion held fewer than ``n`` rewrites (one count per missing one).

MathQA questions carry their options after :data:`alft.tasks.loaders.OPTIONS_MARKER`:
only the stem is paraphrased (and length-checked), the options block is
re-appended unchanged.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import pandas as pd

from alft.errors import ConfigError, DataError
from alft.extract import MATH_TASKS, TASKS, numbers_in
from alft.orbits import ORBIT_COLUMNS, OrbitReport
from alft.tasks import format_prompt
from alft.tasks.loaders import split_options

REASONS = ("empty", "identical", "duplicate", "too_short", "too_long", "numbers_changed", "missing")
REPORT_COLUMNS = ["reason", "count"]
SOURCE = "llm"
ORIGINAL_SOURCE = "original"
CARRY_COLUMNS = ("aliases", "options")  # extra question columns copied onto every member

GenerateFn = Callable[[list[str]], list[str]]

_ITEM_RE = re.compile(r"^\s*(?:(?:paraphrase|rewrite|version|question)\s*)?(?:\(?\d{1,2}[.):]|[-*\u2022])\s*",
                      re.IGNORECASE)
_HEADER_RE = re.compile(r"^\s*(?:here are|sure|rewrites?|paraphrases?)\b.*:\s*$", re.IGNORECASE)
_QUOTES = "\"'\u201c\u201d\u2018\u2019`"


def paraphrase_prompt(question: str, n: int) -> str:
    """Instruction text asking a model for ``n`` rewrites of ``question``, one per numbered line."""
    if n < 1:
        raise ConfigError(f"number of paraphrases must be >= 1, got {n}")
    return (
        f"Rewrite the following question in {n} different way{'s' if n > 1 else ''}. "
        "Each rewrite must ask exactly the same thing, keep every number and every fact "
        "unchanged, and have the same answer, but use different wording and sentence "
        "structure. Do not answer the question. Write each rewrite on its own line, "
        f"numbered 1. to {n}., and write nothing else.\n\n"
        f"Question: {' '.join(question.split())}\n\n"
        "Rewrites:\n"
    )


def _clean(item: str) -> str:
    s = " ".join(item.split())
    while len(s) >= 2 and s[0] in _QUOTES and s[-1] in _QUOTES:
        s = s[1:-1].strip()
    return s


def parse_paraphrases(completion: str | None) -> list[str]:
    """The rewrites in a model's completion, in order, without list markers or quotes.

    If any line starts with a list marker ("1.", "2)", "-", "Rewrite 3:"), items
    are the marked lines, unmarked lines being continuations of the item above;
    otherwise every non-empty line is an item. Header lines ("Here are ...:") are
    dropped; repeats are kept (:func:`llm_orbits` counts them as ``duplicate``).
    """
    if not completion:
        return []
    lines = [ln for ln in completion.splitlines() if ln.strip() and not _HEADER_RE.match(ln)]
    marked = [bool(_ITEM_RE.match(ln)) for ln in lines]
    items: list[str] = []
    if any(marked):
        for ln, is_item in zip(lines, marked):
            if is_item:
                items.append(_clean(_ITEM_RE.sub("", ln, count=1)))
            elif items:
                items[-1] += " " + _clean(ln)
            # unmarked text before the first item (a preamble) is dropped
    else:
        items = lines
    return [x for x in (_clean(x) for x in items) if x]


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def validate_paraphrase(original: str, candidate: str | None, task: str = "gsm8k",
                        min_ratio: float = 0.5, max_ratio: float = 2.0) -> str | None:
    """None if ``candidate`` may enter ``original``'s orbit, else the reason it may not (see REASONS)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if candidate is None or not candidate.strip():
        return "empty"
    if _norm(candidate) == _norm(original):
        return "identical"
    n_orig, n_cand = len(" ".join(original.split())), len(" ".join(candidate.split()))
    if n_cand < min_ratio * n_orig:
        return "too_short"
    if n_cand > max_ratio * n_orig:
        return "too_long"
    if task in MATH_TASKS and Counter(numbers_in(candidate)) != Counter(numbers_in(original)):
        return "numbers_changed"
    return None


def _report_frame(counts: Counter) -> pd.DataFrame:
    rows = [{"reason": r, "count": int(counts.get(r, 0))} for r in REASONS]
    rows.append({"reason": "accepted", "count": int(counts.get("accepted", 0))})
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def llm_orbits(questions: pd.DataFrame, generate_fn: GenerateFn, n: int, task: str,
               min_ratio: float = 0.5, max_ratio: float = 2.0, batch_size: int | None = None,
               report: OrbitReport | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Orbits from LLM paraphrases: one orbit per question (member 0 the original).

    ``questions`` has columns ``id, question, answer`` (a split, see
    :func:`alft.tasks.loaders.load_task`). Each question's prompt
    (:func:`paraphrase_prompt`) goes to ``generate_fn`` (in batches of
    ``batch_size``, default all at once); the first ``n`` parsed rewrites are
    validated and the accepted ones become members 1, 2, ... with source
    ``"llm"``; member 0 is the original question (source ``"original"``). The
    ``answer`` column is the question's gold, copied for monitoring and rlvr;
    ``aliases``/``options`` columns, when present, are copied too. An orbit may
    end with the original alone.

    Returns ``(orbits, report)``: ``orbits`` with :data:`alft.orbits.ORBIT_COLUMNS`
    (plus any carried columns), ``report`` with columns ``reason, count``: one
    row per :data:`REASONS` entry and ``accepted``. ``report`` (an
    :class:`~alft.orbits.OrbitReport`), if given, is updated as well.
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; expected one of {list(TASKS)}")
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"number of paraphrases must be a positive integer, got {n!r}")
    if not 0 <= min_ratio <= 1 <= max_ratio:
        raise ConfigError(f"paraphrase length bounds must satisfy 0 <= min_ratio <= 1 <= max_ratio, "
                          f"got {min_ratio}, {max_ratio}")
    missing = [c for c in ("id", "question", "answer") if c not in questions.columns]
    if missing:
        raise DataError(f"questions: missing column(s) {missing}; found {list(questions.columns)}")
    carry = [c for c in CARRY_COLUMNS if c in questions.columns]
    records = questions.to_dict("records")
    parts = [split_options(str(r["question"])) for r in records]
    prompts = [paraphrase_prompt(stem, n) for stem, _ in parts]

    completions: list[str] = []
    step = batch_size or max(len(prompts), 1)
    for start in range(0, len(prompts), step):
        batch = prompts[start:start + step]
        out = list(generate_fn(batch))
        if len(out) != len(batch):
            raise DataError(f"paraphrase generator returned {len(out)} completions for {len(batch)} prompts")
        completions.extend(out)

    counts: Counter = Counter()
    report = report if report is not None else OrbitReport()
    rows = []
    for orbit_id, (rec, (stem, suffix), completion) in enumerate(zip(records, parts, completions)):
        extra = {c: rec[c] for c in carry}
        base = {"orbit_id": orbit_id, "question_id": str(rec["id"]), "answer": rec["answer"], **extra}
        original = str(rec["question"])
        rows.append({**base, "member": 0, "prompt": format_prompt(original, task),
                     "source": ORIGINAL_SOURCE, "question": original})
        report.n_questions += 1
        report.n_members += 1
        candidates = parse_paraphrases(completion)[:n]
        if len(candidates) < n:
            counts["missing"] += n - len(candidates)
            report.rejected["missing"] += n - len(candidates)
        seen = {_norm(stem)}
        member = 1
        for cand in candidates:
            reason = validate_paraphrase(stem, cand, task, min_ratio, max_ratio)
            if reason is None and _norm(cand) in seen:
                reason = "duplicate"
            if reason is not None:
                counts[reason] += 1
                report.rejected[reason] += 1
                continue
            seen.add(_norm(cand))
            text = cand + suffix
            rows.append({**base, "member": member, "prompt": format_prompt(text, task),
                         "source": SOURCE, "question": text})
            counts["accepted"] += 1
            report.n_members += 1
            member += 1
    orbits = pd.DataFrame(rows, columns=ORBIT_COLUMNS + carry)
    if len(orbits):
        orbits = orbits.astype({"orbit_id": "int64", "member": "int64"})
    return orbits, _report_frame(counts)

