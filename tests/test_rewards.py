"""alft.rewards: the lookup rule and the TRL reward callables (TRL-style keyword calls, one real step)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from alft.errors import ConfigError, DataError
from alft.rewards import (GroundTruthReward, MajorityReward, OnlineCoherenceReward, TargetTableReward,
                          lookup_rewards)
from alft.targets import TargetConfig, compute_targets


def table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["orbit_id", "member", "answer", "count", "q", "reward"])


# orbit 0: shared rows plus a per-member override group for member 1; orbit 1: per-member only
TARGETS = table([
    (0, -1, "5", 3, 1.0, 1.0), (0, -1, "6", 1, 0.0, 0.0), (0, -1, None, 0, 0.0, -0.5),
    (0, 1, "6", 2, 1.0, 2.0), (0, 1, None, 0, 0.0, -1.0),
    (1, 0, "7", 2, 1.0, 3.0), (1, 0, None, 0, 0.0, -2.0),
])


def ans(z):
    return " 1+2=3. The answer is %s." % z if z is not None else " no idea"


def test_lookup_rule():
    cases = [
        ((0, 0, "5"), 1.0),   # shared row
        ((0, 1, "6"), 2.0),   # per-member row beats the shared one
        ((0, 1, "5"), 1.0),   # not in member 1's group: falls back to the shared row
        ((0, 1, "9"), -1.0),  # unlisted: null row of its own group (0, 1)
        ((0, 2, "9"), -0.5),  # unlisted, no (0, 2) group: shared null row
        ((0, 0, None), -0.5),  # no answer: null row
        ((1, 0, "7"), 3.0), ((1, 0, None), -2.0),
    ]
    got = lookup_rewards(TARGETS, *zip(*[c for c, _ in cases]))
    assert got == [r for _, r in cases]
    with pytest.raises(DataError, match="orbit 1 member 3"):
        lookup_rewards(TARGETS, [1], [3], ["7"])
    with pytest.raises(DataError, match="orbit 7"):
        lookup_rewards(TARGETS, [7], [0], ["7"])


def test_table_validation():
    with pytest.raises(DataError, match="non-finite"):
        TargetTableReward(table([(0, -1, "1", 1, 1.0, np.nan), (0, -1, None, 0, 0.0, 0.0)]))
    with pytest.raises(DataError, match="no null-answer row"):
        TargetTableReward(table([(0, -1, "1", 1, 1.0, 1.0)]))
    with pytest.raises(DataError, match="second null"):
        TargetTableReward(table([(0, -1, None, 1, 1.0, 1.0), (0, -1, None, 0, 0.0, 0.0)]))


def test_target_table_reward_trl_call_and_pickle(tmp_path):
    f = TargetTableReward(TARGETS)
    assert f.__name__ == "target_table_reward"
    comps = [ans("5"), ans("6"), ans("9"), ans(None), ans("7")]
    out = f(prompts=["p"] * 5, completions=comps, completion_ids=[[1]] * 5,
            orbit_id=[0, 0, 0, 0, 1], member=[0, 1, 1, 0, 0], trainer_state=None,
            log_extra=None, log_metric=None)
    assert out == [1.0, 2.0, -1.0, -0.5, 3.0]
    # conversational completions
    conv = [[{"role": "assistant", "content": ans("6")}]]
    assert f(prompts=[[{"role": "user", "content": "p"}]], completions=conv, orbit_id=[0], member=[1]) == [2.0]
    g = pickle.loads(pickle.dumps(f))
    assert g(completions=comps, orbit_id=[0, 0, 0, 0, 1], member=[0, 1, 1, 0, 0]) == out
    with pytest.raises(ConfigError, match="'member'"):
        f(completions=comps, orbit_id=[0] * 5)
    TARGETS.to_parquet(tmp_path / "t.parquet")
    assert TargetTableReward.from_parquet(tmp_path / "t.parquet")(
        completions=comps, orbit_id=[0, 0, 0, 0, 1], member=[0, 1, 1, 0, 0]) == out


def test_target_table_from_compute_targets_matches_samples():
    """Rewards of the sampled completions themselves equal their rows in the table."""
    answers = {0: ["3", "3", "4", None], 1: ["4", "4", "4", "3"]}
    samples = pd.DataFrame([{"orbit_id": 0, "member": m, "answer": a} for m, xs in answers.items()
                            for a in xs])
    t, _ = compute_targets(samples, TargetConfig("coherence", "am", "plugin"))
    f = TargetTableReward(t)
    out = f(completions=[ans(a) for a in samples["answer"]], orbit_id=list(samples["orbit_id"]),
            member=list(samples["member"]))
    by = dict(zip(t["answer"], t["reward"]))
    assert out == [by[a] for a in samples["answer"]]
    assert not np.isnan(out).any()


def test_online_coherence_and_majority():
    comps = [ans(a) for a in ["1", "1", "1", "2", "2", "2", "3", "2", None, None, None, None]]
    orbit = [0] * 8 + [1] * 4
    member = [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1]
    coh = OnlineCoherenceReward()
    assert coh.__name__ == "online_coherence_reward"
    # orbit 0 pooled: "2" x4 beats "1" x3 -> global mode "2"; orbit 1 has no answers -> all 0
    assert coh(prompts=None, completions=comps, orbit_id=orbit, member=member) == \
        [0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0]
    maj = MajorityReward()
    assert maj(completions=comps, orbit_id=orbit, member=member) == [1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0]
    prompts = [f"{o}.{m}" for o, m in zip(orbit, member)]
    assert maj(prompts=prompts, completions=comps) == [1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0]
    with pytest.raises(ConfigError, match="'orbit_id'"):
        coh(completions=comps)
    with pytest.raises(ConfigError, match="mode"):
        OnlineCoherenceReward(consensus="gm")
    pickle.loads(pickle.dumps(coh))


def test_ground_truth_reward():
    f = GroundTruthReward()
    assert f(completions=[ans("12"), ans("12.0"), ans("13"), ans(None)],
             answer=["12", "12", "12", "12"]) == [1.0, 1.0, 0.0, 0.0]
    with pytest.raises(ConfigError, match="'answer'"):
        f(completions=[ans("1")])
    with pytest.raises(DataError, match="completion 0"):
        f(completions=[ans("1")], answer=[None])


@pytest.mark.timeout(120)
def test_one_grpo_step_with_target_table_reward(tmp_path):
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from alft import basemodel as bm
    from alft.tasks import format_prompt

    torch.manual_seed(0)
    prompts = [format_prompt(f"What is {i}+2?") for i in range(4)]
    tok = bm.build_tokenizer(prompts + [" The answer is 0123456789."])
    model = bm.build_model(len(tok), bm.ModelSpec(hidden_size=32, num_layers=1, num_heads=2,
                                                  intermediate_size=64), tok, seed=0)
    ds = Dataset.from_dict({"prompt": prompts, "orbit_id": [0, 0, 1, 1], "member": [0, 1, 0, 1]})
    targets = table([(0, -1, "2", 3, 1.0, 1.0), (0, -1, None, 1, 0.0, 0.0),
                     (1, -1, "3", 2, 1.0, 1.0), (1, -1, None, 2, 0.0, 0.0)])
    calls = []

    class Spy(TargetTableReward):
        def __call__(self, **kw):
            out = super().__call__(**kw)
            calls.append((list(kw["orbit_id"]), list(kw["member"]), out))
            return out

    reward = Spy(targets)
    args = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, max_steps=1,
                      per_device_train_batch_size=4, num_generations=4, max_completion_length=8,
                      report_to=[], logging_steps=1, save_strategy="no", seed=0)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=ds,
                          processing_class=tok)
    trainer.train()
    assert calls and all(len(o) == len(m) == len(r) for o, m, r in calls)
    assert all(r in (0.0, 1.0) for _, _, rs in calls for r in rs)
    logged = [h for h in trainer.state.log_history if "rewards/target_table_reward/mean" in h]
    assert logged and np.isfinite(logged[0]["rewards/target_table_reward/mean"])
