"""The builtin task: seeded, disjoint splits; templates preserve numbers and answers."""

import numpy as np
import pytest

from alft.extract import extract_answer
from alft.tasks import builtin, format_prompt


@pytest.fixture(scope="module")
def splits():
    return builtin.make_splits(seed=3, n_pretrain=3000, n_train=50, n_val=40, n_test=1000)


def test_same_seed_same_splits(splits):
    again = builtin.make_splits(seed=3, n_pretrain=3000, n_train=50, n_val=40, n_test=1000)
    for name in splits:
        assert splits[name].equals(again[name])
    other = builtin.make_splits(seed=4, n_pretrain=3000, n_train=50, n_val=40, n_test=1000)
    assert not splits["test"]["question"].equals(other["test"]["question"])


def test_splits_are_disjoint_and_test_covers_all_templates(splits):
    keys = {name: set(map(tuple, df[["name", "items", "a", "op1", "b", "op2", "c"]].values.tolist()))
            for name, df in splits.items()}
    names = list(keys)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not keys[a] & keys[b], (a, b)
    counts = splits["test"]["template"].value_counts()
    assert len(splits["test"]) >= 1000
    assert set(counts.index) == set(range(len(builtin.TEMPLATES)))
    assert counts.max() - counts.min() <= 1


def test_pretraining_mix_is_skewed_as_configured(splits):
    freq = splits["pretrain"]["template"].value_counts(normalize=True).sort_index().to_numpy()
    np.testing.assert_allclose(freq, builtin.PRETRAIN_MIX, atol=0.03)
    assert freq[0] > 0.5 and freq[-1] < 0.05


def test_trace_ends_in_the_answer_and_values_stay_in_range(splits):
    for row in splits["pretrain"].head(500).itertuples():
        p = builtin.problem_of_row(row._asdict())
        assert extract_answer(row.trace) == row.answer == str(p.answer)
        assert 0 <= p.intermediate <= builtin.MAX_VALUE and 0 <= p.answer <= builtin.MAX_VALUE
        assert 1 <= p.b <= builtin.MAX_STEP and 1 <= p.c <= builtin.MAX_STEP
    steps = splits["pretrain"][["b", "c"]].to_numpy()
    assert steps.min() == 1 and steps.max() == builtin.MAX_STEP  # the whole range is drawn


@pytest.mark.parametrize("template", range(len(builtin.TEMPLATES)))
def test_every_template_parses_back_to_the_same_problem(template):
    rng = np.random.default_rng(template)
    for _ in range(200):
        p = builtin.sample_problem(rng)
        parsed = builtin.parse(builtin.render(p, template))
        assert parsed == (p, template)


def test_parse_rejects_text_of_no_template():
    assert builtin.parse("What is 2+2?") is None


def test_prompt_format():
    assert format_prompt("How many?") == "Q: How many?\nA:"
    with pytest.raises(ValueError, match="unknown task"):
        format_prompt("x", task="nope")


def test_more_training_prompts_leave_the_other_splits_and_the_first_rows_unchanged(splits):
    more = builtin.make_splits(seed=3, n_pretrain=3000, n_train=50, n_val=40, n_test=1000,
                               n_train_more=30)
    for name in ("pretrain", "val", "test"):
        assert more[name].equals(splits[name]), name
    train = more["train"]
    assert len(train) == 80
    assert train.iloc[:50].equals(splits["train"])
    assert train["id"].is_unique and train["id"].iloc[50] == "train-000050"
    # the uniform template cycle continues where the first rows stopped
    assert train["template"].tolist() == [i % len(builtin.TEMPLATES) for i in range(80)]
    keys = lambda df: set(map(tuple, df[["name", "items", "a", "op1", "b", "op2", "c"]].values.tolist()))
    extra = keys(train.iloc[50:])
    assert len(extra) == 30
    for name in ("pretrain", "val", "test"):
        assert not extra & keys(more[name]), name
    assert not extra & keys(train.iloc[:50])
    with pytest.raises(ValueError, match="n_train_more"):
        builtin.make_splits(seed=3, n_pretrain=10, n_train=5, n_val=5, n_test=5, n_train_more=-1)
