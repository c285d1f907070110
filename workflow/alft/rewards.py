"""Reward callables for TRL's ``GRPOTrainer(reward_funcs=...)`` and the target-table lookup rule.

TRL calls ``reward_func(prompts=..., completions=..., completion_ids=..., **columns)``:
every dataset column (other than prompt/completion) arrives as a keyword list aligned
with ``completions`` (strings for standard datasets, message lists for
conversational ones); the function returns one float per completion (None excludes
a completion). All callables here are plain, picklable objects with a ``__name__``
(TRL logs ``rewards/<name>/mean``).

* :class:`TargetTableReward` — the round's offline target table
  (:mod:`alft.targets`); needs dataset columns ``orbit_id`` and ``member``.
* :class:`OnlineCoherenceReward` — the slides' Coherence-GRPO computed online: the
  global mode z* of each orbit's completions *in the current batch*, reward
  1[E(y) = z*]; needs ``orbit_id`` (orbit members must share a generation batch).
* :class:`MajorityReward` — the same per prompt (TTRL-style).
* :class:`GroundTruthReward` — 1[E(y) ≡ gold] from a dataset column ``answer``.

Lookup rule (:func:`lookup_rewards`, the single source of truth): a completion of
orbit o, member m with extracted answer z gets the reward of row (o, m, z) if
present, else (o, −1, z), else the null-answer row of its group — (o, m) if that
group exists, else (o, −1). A completion with no extractable answer gets the null
row directly. An (o, m) with neither group raises DataError.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alft.errors import ConfigError, DataError
from alft.extract import answers_match, extract_answer
from alft.targets import SHARED, TARGET_COLUMNS, mode_answer


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or the content of a conversational message list."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, Sequence):
        return "".join(completion_text(m) for m in completion)
    return "" if completion is None else str(completion)


def _column(kwargs: dict, name: str, n: int, owner: str) -> list:
    if name not in kwargs or kwargs[name] is None:
        raise ConfigError(f"{owner} needs the dataset column {name!r} (got columns "
                          f"{sorted(k for k in kwargs if k not in ('trainer_state', 'log_extra', 'log_metric'))})")
    col = list(kwargs[name])
    if len(col) != n:
        raise DataError(f"{owner}: column {name!r} has {len(col)} values for {n} completions")
    return col


class TargetLookup:
    """Validated index of a target table implementing the lookup rule."""

    def __init__(self, targets: pd.DataFrame, source: str = "targets"):
        missing = [c for c in TARGET_COLUMNS if c not in targets.columns]
        if missing:
            raise DataError(f"{source}: missing column(s) {missing}; found {list(targets.columns)}")
        rewards = pd.to_numeric(targets["reward"], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(rewards)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{source}: row {row} has a non-finite reward {targets['reward'].iloc[row]!r}")
        self.exact: dict[tuple[int, int, str], float] = {}
        self.null: dict[tuple[int, int], float] = {}
        for i, (o, m, a, r) in enumerate(zip(targets["orbit_id"], targets["member"],
                                             targets["answer"], rewards)):
            o, m = int(o), int(m)
            if a is None or (isinstance(a, float) and np.isnan(a)):
                if (o, m) in self.null:
                    raise DataError(f"{source}: row {i}: second null-answer row for orbit {o} member {m}")
                self.null[(o, m)] = float(r)
            else:
                key = (o, m, str(a))
                if key in self.exact:
                    raise DataError(f"{source}: row {i}: duplicate answer {a!r} for orbit {o} member {m}")
                self.exact[key] = float(r)
        groups = {(o, m) for o, m, _ in self.exact}
        lacking = sorted(groups - set(self.null))
        if lacking:
            o, m = lacking[0]
            raise DataError(f"{source}: orbit {o} member {m} has no null-answer row")

    def reward(self, orbit_id: int, member: int, answer: str | None) -> float:
        o, m = int(orbit_id), int(member)
        if answer is not None:
            for key in ((o, m, answer), (o, SHARED, answer)):
                if key in self.exact:
                    return self.exact[key]
        for key in ((o, m), (o, SHARED)):
            if key in self.null:
                return self.null[key]
        raise DataError(f"no target for orbit {o} member {m}: the target table has neither a "
                        f"per-prompt nor a shared group for it")


def lookup_rewards(targets: pd.DataFrame | TargetLookup, orbit_ids: Sequence[int],
                   members: Sequence[int], answers: Sequence[str | None]) -> list[float]:
    """Rewards of completions with extracted ``answers`` under the lookup rule."""
    lk = targets if isinstance(targets, TargetLookup) else TargetLookup(targets)
    return [lk.reward(o, m, a) for o, m, a in zip(orbit_ids, members, answers, strict=True)]


class TargetTableReward:
    """Reward from the round's target table: lookup of (orbit_id, member, E(completion))."""

    def __init__(self, targets: pd.DataFrame, task: str = "builtin",
                 name: str = "target_table_reward", source: str = "targets"):
        self.lookup = TargetLookup(targets, source)
        self.task = task
        self.__name__ = name

    @classmethod
    def from_parquet(cls, path: str | Path, task: str = "builtin", **kwargs: Any) -> TargetTableReward:
        from alft.io import read_parquet

        df = read_parquet(path, {"orbit_id": "int", "member": "int", "answer": "str",
                                 "count": "int", "q": "float", "reward": "float"})
        return cls(df, task, source=str(path), **kwargs)

    def __call__(self, prompts=None, completions=None, completion_ids=None, **kwargs) -> list[float]:
        n = len(completions)
        orbit_ids = _column(kwargs, "orbit_id", n, type(self).__name__)
        members = _column(kwargs, "member", n, type(self).__name__)
        answers = [extract_answer(completion_text(c), self.task) for c in completions]
        return lookup_rewards(self.lookup, orbit_ids, members, answers)


def _mode_rewards(keys: Sequence[Any], answers: Sequence[str | None]) -> list[float]:
    groups: dict[Any, Counter] = {}
    for k, a in zip(keys, answers, strict=True):
        c = groups.setdefault(k, Counter())
        if a is not None:
            c[a] += 1
    modes = {k: mode_answer(c) for k, c in groups.items()}
    return [float(a is not None and a == modes[k]) for k, a in zip(keys, answers)]


class OnlineCoherenceReward:
    """Coherence-GRPO online (slides): per orbit in the batch, z* = global mode, reward 1[E(y) = z*].

    Completions without an extractable answer score 0; an orbit with none scores all 0.
    Only ``consensus="mode"`` is defined online.
    """

    def __init__(self, task: str = "builtin", consensus: str = "mode",
                 name: str = "online_coherence_reward"):
        if consensus != "mode":
            raise ConfigError(f"OnlineCoherenceReward supports consensus 'mode' only, got {consensus!r}")
        self.task = task
        self.consensus = consensus
        self.__name__ = name

    def __call__(self, prompts=None, completions=None, completion_ids=None, **kwargs) -> list[float]:
        orbit_ids = _column(kwargs, "orbit_id", len(completions), type(self).__name__)
        answers = [extract_answer(completion_text(c), self.task) for c in completions]
        return _mode_rewards([int(o) for o in orbit_ids], answers)


class MajorityReward:
    """Per-prompt majority vote (TTRL-style): reward 1[E(y) = mode of the prompt's completions in the batch].

    Groups by (orbit_id, member) when both columns are present, else by prompt text.
    """

    def __init__(self, task: str = "builtin", name: str = "majority_reward"):
        self.task = task
        self.__name__ = name

    def __call__(self, prompts=None, completions=None, completion_ids=None, **kwargs) -> list[float]:
        n = len(completions)
        if kwargs.get("orbit_id") is not None and kwargs.get("member") is not None:
            keys = list(zip(_column(kwargs, "orbit_id", n, "MajorityReward"),
                            _column(kwargs, "member", n, "MajorityReward")))
        else:
            if prompts is None or len(prompts) != n:
                raise ConfigError("MajorityReward needs prompts aligned with completions, or the "
                                  "dataset columns 'orbit_id' and 'member'")
            keys = [repr(p) for p in prompts]
        answers = [extract_answer(completion_text(c), self.task) for c in completions]
        return _mode_rewards(keys, answers)


class GroundTruthReward:
    """RLVR: reward 1[E(y) ≡ gold] with :func:`alft.extract.answers_match`; gold from a dataset column."""

    def __init__(self, task: str = "builtin", column: str = "answer", name: str = "ground_truth_reward"):
        self.task = task
        self.column = column
        self.__name__ = name

    def __call__(self, prompts=None, completions=None, completion_ids=None, **kwargs) -> list[float]:
        golds = _column(kwargs, self.column, len(completions), type(self).__name__)
        out = []
        for i, (c, g) in enumerate(zip(completions, golds)):
            if g is None or (isinstance(g, float) and np.isnan(g)):
                raise DataError(f"GroundTruthReward: completion {i} has no gold value in column {self.column!r}")
            pred = extract_answer(completion_text(c), self.task)
            if isinstance(g, np.ndarray):  # an alias list read back from Parquet
                g = [str(a) for a in g]
            out.append(float(answers_match(pred, g if isinstance(g, (str, list)) else str(g), self.task)))
        return out
