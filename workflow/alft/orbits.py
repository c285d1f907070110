"""Orbits O_x = {x, Φ(x), ...}: sets of task-preserving paraphrases of a question.

For the builtin task the paraphrase maps Φ are the wording templates of
:mod:`alft.tasks.builtin`. Every paraphrase is checked before it enters an orbit:
parsed back into a problem, it must have the same multiset of numbers and the same
answer as the original. Violators are dropped and counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alft.tasks import builtin, format_prompt

ORBIT_COLUMNS = ["orbit_id", "member", "prompt", "source", "question", "question_id", "answer"]


@dataclass
class OrbitReport:
    """What the orbit stage kept and dropped (per reason)."""

    n_questions: int = 0
    n_members: int = 0
    rejected: Counter = field(default_factory=Counter)


def check_builtin_paraphrase(original: builtin.Problem, text: str) -> str | None:
    """None if ``text`` preserves ``original``'s numbers and answer, else the reason it fails."""
    parsed = builtin.parse(text)
    if parsed is None:
        return "unparsable"
    problem, _ = parsed
    if sorted(problem.numbers) != sorted(original.numbers):
        return "numbers_changed"
    if problem.answer != original.answer:
        return "answer_changed"
    return None


def builtin_orbits(train: pd.DataFrame, size: int, seed: int,
                   report: OrbitReport | None = None) -> pd.DataFrame:
    """One orbit per training question: the original (member 0) plus ``size - 1`` other templates.

    The other templates are drawn without replacement, seeded, from those the
    original does not use. Rows carry the gold ``answer`` for label-using
    strategies and monitoring only; label-free strategies never read it.
    """
    n_templates = len(builtin.TEMPLATES)
    if not 1 <= size <= n_templates:
        raise ValueError(f"orbits.size must be in [1, {n_templates}], got {size}")
    report = report if report is not None else OrbitReport()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2002]))
    rows = []
    for orbit_id, row in enumerate(train.itertuples(index=False)):
        problem = builtin.problem_of_row(row._asdict())
        others = [t for t in range(n_templates) if t != row.template]
        chosen = rng.choice(others, size=size - 1, replace=False) if size > 1 else []
        members = [(row.question, f"original:template{row.template}")]
        members += [(builtin.render(problem, int(t)), f"template{int(t)}") for t in chosen]
        report.n_questions += 1
        member = 0
        for i, (text, source) in enumerate(members):
            if i > 0:
                reason = check_builtin_paraphrase(problem, text)
                if reason is not None:
                    report.rejected[reason] += 1
                    continue
            rows.append({"orbit_id": orbit_id, "member": member, "prompt": format_prompt(text),
                         "source": source, "question": text, "question_id": row.id,
                         "answer": row.answer})
            member += 1
            report.n_members += 1
    return pd.DataFrame(rows, columns=ORBIT_COLUMNS)


def round_orbit_ids(orbit_ids: "pd.Series | list[int]", round_index: int, per_round: int) -> list[int]:
    """The orbits a round works on: block ``r mod B`` of ``per_round`` orbits (B = n // per_round).

    Label-free RL has an unbounded supply of unlabeled prompts; giving every round
    fresh ones keeps the policy step from fitting the answers of a few hundred
    problems it revisits (on the builtin task, revisiting 256 problems raised their
    greedy accuracy by 10 points while a disjoint development set lost 2). Orbits are
    taken in ``orbit_id`` order; once all B blocks are used, rounds cycle through them
    again. ``per_round <= 0`` means every orbit in every round.
    """
    ids = sorted({int(o) for o in orbit_ids})
    if per_round <= 0:
        return ids
    if round_index < 0:
        raise ValueError(f"round must be >= 0, got {round_index}")
    if per_round > len(ids):
        raise ValueError(f"rounds.orbits_per_round = {per_round} exceeds the {len(ids)} orbits available "
                         f"(raise builtin.n_train_more, or n_train, or lower rounds.orbits_per_round)")
    n_blocks = len(ids) // per_round
    block = round_index % n_blocks
    return ids[block * per_round: (block + 1) * per_round]
