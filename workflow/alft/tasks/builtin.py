"""The builtin task: seeded two-step arithmetic word problems with paraphrase templates.

A problem is a story about a person and a pile of items: they start with ``a``
items, then gain or lose ``b``, then gain or lose ``c``. The answer is
``a op1 b op2 c``; every intermediate value stays in ``[0, MAX_VALUE]`` and the
amounts ``b, c`` are in ``[1, MAX_STEP]``.

Why the amounts are single digits: the tiny base model then learns the arithmetic
itself within its pretraining budget, and what is left to learn is the wording. With
amounts up to 29 the pretrained model was still learning to add (most errors on the
common wordings were arithmetic slips, and 23% of its right answers came with a wrong
intermediate step), so any answer-level reward, ground truth included, reinforced
wrong arithmetic and cost accuracy (``benchmarks/TUNE_POLICY.md``).

The chain-of-thought trace is always written in story order, whatever the wording::

    23+5=28. 28-9=19. The answer is 19.

Each problem can be rendered by any of :data:`TEMPLATES` -- different wording,
different order of the sentences, same numbers and same answer. That is what the
orbits (paraphrase sets) are made of.

Why the templates get different weights in pretraining
------------------------------------------------------
Coherence (consensus across an orbit) only helps when the model answers
equivalent questions *differently*: when its errors depend on the surface form.
If every template were equally well learned, the base model's errors would be
pure arithmetic slips, every paraphrase would fail the same way, and an orbit
would add nothing over per-prompt majority voting. So the pretraining corpus
uses the templates with deliberately skewed frequencies (:data:`PRETRAIN_MIX`):
the canonical wording is common, the changes-first and ledger wordings (templates
3 and 4, 1.5% each) are rare. A model pretrained on this mix reads the common
wordings well and the rare ones poorly; an orbit that contains a canonical member pulls the rare
members towards its (more often right) answer. The RL prompts, the validation and
the test splits use all templates uniformly, so the test accuracy has room to
improve exactly where the surface form hurts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_VALUE = 60
"""Every number in a problem (operands, intermediate and final results) is in [0, MAX_VALUE]."""

MAX_STEP = 9
"""The amounts gained or lost (``b`` and ``c``) are in [1, MAX_STEP]."""

NAMES = ["Ann", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Ida", "Jon", "Kim", "Lea", "Max"]
ITEMS = ["apples", "books", "coins", "cards", "pens", "shells", "stamps", "marbles"]

# Each template has its own wording and its own verbs for the two operations
# (three gain verbs, three loss verbs). Templates 0-2 share verb lemmas in
# different tenses; templates 3 and 4 use verbs of their own, so a model that
# rarely saw them must guess whether "won" or "withdraw" adds or subtracts --
# an error that depends on the surface form, which the orbit's consensus can fix.


@dataclass(frozen=True)
class Template:
    text: str  # slots {name} {items} {a} {b} {c} {v1} {v2}
    gain: tuple[str, str, str]
    loss: tuple[str, str, str]


TEMPLATES: list[Template] = [
    # 0 canonical: story order, present tense.
    Template("{name} has {a} {items}. {name} {v1} {b} {items}. Then {name} {v2} {c}. "
             "How many {items} does {name} have now?",
             ("buys", "finds", "gets"), ("sells", "loses", "gives away")),
    # 1 past tense, one sentence, story order.
    Template("{name} had {a} {items}, {v1} {b} and then {v2} {c}. How many {items} are left?",
             ("bought", "found", "got"), ("sold", "lost", "gave away")),
    # 2 question first, start value last.
    Template("How many {items} does {name} have after {v1} {b} and then {v2} {c}, "
             "starting with {a}?",
             ("buying", "finding", "getting"), ("selling", "losing", "giving away")),
    # 3 changes first, start value in a later sentence; verbs of its own.
    Template("First {name} {v1} {b} {items}, then {v2} {c}. Before that, {name} had {a}. "
             "How many {items} now?",
             ("won", "collected", "received"), ("spent", "dropped", "donated")),
    # 4 terse ledger wording; verbs of its own.
    Template("Ledger of {name}: start {a} {items}; {v1} {b}; {v2} {c}. Count?",
             ("deposit", "add", "earn"), ("withdraw", "remove", "pay")),
]

PRETRAIN_MIX: tuple[float, ...] = (0.70, 0.20, 0.07, 0.015, 0.015)
"""Template frequencies in the pretraining corpus (canonical common, others rare)."""

TRACE_RE = re.compile(r"The answer is (-?\d+)")


@dataclass(frozen=True)
class Problem:
    """A two-step problem: start ``a``, then ``op1 b``, then ``op2 c`` (ops are '+' or '-')."""

    name: str
    items: str
    a: int
    op1: str
    b: int
    op2: str
    c: int
    verb1: int  # index into the template's gain or loss verbs (by op1)
    verb2: int

    @property
    def intermediate(self) -> int:
        return self.a + self.b if self.op1 == "+" else self.a - self.b

    @property
    def answer(self) -> int:
        return self.intermediate + self.c if self.op2 == "+" else self.intermediate - self.c

    @property
    def numbers(self) -> tuple[int, int, int]:
        return (self.a, self.b, self.c)


def _verb(template: Template, op: str, index: int) -> str:
    return (template.gain if op == "+" else template.loss)[index]


def render(problem: Problem, template: int) -> str:
    """The question text of ``problem`` in wording ``template``."""
    t = TEMPLATES[template]
    return t.text.format(
        name=problem.name, items=problem.items, a=problem.a, b=problem.b, c=problem.c,
        v1=_verb(t, problem.op1, problem.verb1), v2=_verb(t, problem.op2, problem.verb2),
    )


def trace(problem: Problem) -> str:
    """The chain-of-thought trace (story order), ending in a parsable final answer."""
    p = problem
    return (f"{p.a}{p.op1}{p.b}={p.intermediate}. "
            f"{p.intermediate}{p.op2}{p.c}={p.answer}. The answer is {p.answer}.")


def sample_problem(rng: np.random.Generator) -> Problem:
    """Draw one problem uniformly among those whose values stay in [0, MAX_VALUE]."""
    while True:
        a = int(rng.integers(2, MAX_VALUE + 1))
        op1, op2 = ("+" if rng.random() < 0.5 else "-"), ("+" if rng.random() < 0.5 else "-")
        b = int(rng.integers(1, MAX_STEP + 1))
        c = int(rng.integers(1, MAX_STEP + 1))
        p = Problem(
            name=NAMES[int(rng.integers(len(NAMES)))], items=ITEMS[int(rng.integers(len(ITEMS)))],
            a=a, op1=op1, b=b, op2=op2, c=c,
            verb1=int(rng.integers(3)), verb2=int(rng.integers(3)),
        )
        if 0 <= p.intermediate <= MAX_VALUE and 0 <= p.answer <= MAX_VALUE:
            return p


# ---------------------------------------------------------------------------
# Parsing a question back into its problem: used to check that a paraphrase
# preserves the numbers and the answer.

def _template_regex(template: int) -> re.Pattern[str]:
    t = TEMPLATES[template]
    verbs = "|".join(re.escape(v) for v in t.gain + t.loss)
    pattern = re.escape(t.text)
    for slot, rx in [("name", r"(?P<name>[A-Z][a-z]+)"), ("items", r"(?P<items>[a-z]+)"),
                     ("a", r"(?P<a>\d+)"), ("b", r"(?P<b>\d+)"), ("c", r"(?P<c>\d+)"),
                     ("v1", rf"(?P<v1>{verbs})"), ("v2", rf"(?P<v2>{verbs})")]:
        escaped = re.escape("{" + slot + "}")
        pattern = pattern.replace(escaped, rx, 1)
        pattern = pattern.replace(escaped, f"(?P={slot})")
    return re.compile("^" + pattern + "$")


_REGEXES = [_template_regex(t) for t in range(len(TEMPLATES))]


def parse(question: str) -> tuple[Problem, int] | None:
    """Recover ``(problem, template)`` from a question text, or None if it matches no template."""
    for t, rx in enumerate(_REGEXES):
        m = rx.match(question)
        if m is None:
            continue
        template = TEMPLATES[t]
        ops, idx = [], []
        for slot in ("v1", "v2"):
            word = m.group(slot)
            for op, table in (("+", template.gain), ("-", template.loss)):
                if word in table:
                    ops.append(op)
                    idx.append(table.index(word))
        p = Problem(name=m.group("name"), items=m.group("items"), a=int(m.group("a")), op1=ops[0],
                    b=int(m.group("b")), op2=ops[1], c=int(m.group("c")), verb1=idx[0], verb2=idx[1])
        return p, t
    return None


# ---------------------------------------------------------------------------
# Splits

def _rows(rng: np.random.Generator, n: int, weights: tuple[float, ...] | None,
          prefix: str, seen: set[tuple], start: int = 0) -> Iterator[dict]:
    """``n`` new problems; ids and the uniform template cycle count from ``start``."""
    probs = None if weights is None else np.asarray(weights) / np.sum(weights)
    i = start
    while i < start + n:
        p = sample_problem(rng)
        key = (p.name, p.items, p.a, p.op1, p.b, p.op2, p.c)
        if key in seen:  # splits never share a problem
            continue
        seen.add(key)
        t = int(rng.choice(len(TEMPLATES), p=probs)) if probs is not None else i % len(TEMPLATES)
        yield {
            "id": f"{prefix}-{i:06d}", "question": render(p, t), "answer": str(p.answer),
            "template": t, "trace": trace(p),
            "name": p.name, "items": p.items, "a": p.a, "op1": p.op1, "b": p.b,
            "op2": p.op2, "c": p.c, "verb1": p.verb1, "verb2": p.verb2,
        }
        i += 1


def make_splits(seed: int, n_pretrain: int, n_train: int, n_val: int, n_test: int,
                mix: tuple[float, ...] = PRETRAIN_MIX, n_train_more: int = 0) -> dict[str, pd.DataFrame]:
    """Generate disjoint splits.

    - ``pretrain``: questions with their traces, templates drawn from ``mix``;
      the base model is trained on these.
    - ``train``: prompts for the fine-tuning rounds (labels stored, read only by
      label-using methods); templates cycle uniformly.
    - ``val`` (checkpoint selection) and ``test`` (reporting): templates cycle uniformly.

    ``n_train_more`` appends that many training prompts drawn *after* the pretraining
    corpus, so more fresh orbit blocks (``rounds.orbits_per_round``) can be added to a
    study without changing the pretraining corpus and so the base model π0; the first
    ``n_train`` training rows, like every other split, are the same as without them.
    """
    if len(mix) != len(TEMPLATES):
        raise ValueError(f"mix has {len(mix)} weights, there are {len(TEMPLATES)} templates")
    if n_train_more < 0:
        raise ValueError(f"n_train_more must be >= 0, got {n_train_more}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1001]))
    seen: set[tuple] = set()
    out = {}
    for split, n, weights in [("test", n_test, None), ("val", n_val, None),
                              ("train", n_train, None), ("pretrain", n_pretrain, mix)]:
        out[split] = pd.DataFrame(list(_rows(rng, n, weights, split, seen)))
    if n_train_more:
        more = pd.DataFrame(list(_rows(rng, n_train_more, None, "train", seen, start=n_train)))
        out["train"] = pd.concat([out["train"], more], ignore_index=True)
    return out


def problem_of_row(row: dict | pd.Series) -> Problem:
    """The :class:`Problem` stored in a split row."""
    return Problem(name=row["name"], items=row["items"], a=int(row["a"]), op1=row["op1"],
                   b=int(row["b"]), op2=row["op2"], c=int(row["c"]),
                   verb1=int(row["verb1"]), verb2=int(row["verb2"]))
