"""Orbits: member 0 is the original, paraphrases preserve numbers and answer."""

import pytest

from alft.orbits import OrbitReport, builtin_orbits, check_builtin_paraphrase
from alft.tasks import builtin, format_prompt


@pytest.fixture(scope="module")
def train():
    return builtin.make_splits(seed=0, n_pretrain=10, n_train=30, n_val=5, n_test=5)["train"]


def test_orbit_structure(train):
    report = OrbitReport()
    orbits = builtin_orbits(train, size=4, seed=0, report=report)
    assert list(orbits.columns[:4]) == ["orbit_id", "member", "prompt", "source"]
    assert orbits["orbit_id"].nunique() == len(train)
    assert report.n_members == len(orbits) == 4 * len(train) and not report.rejected
    for orbit_id, g in orbits.groupby("orbit_id"):
        row = train.iloc[orbit_id]
        assert list(g["member"]) == [0, 1, 2, 3]
        assert g["question"].iloc[0] == row["question"]
        assert g["prompt"].iloc[0] == format_prompt(row["question"])
        templates = {builtin.parse(q)[1] for q in g["question"]}
        assert len(templates) == 4  # all wordings differ
        answers = {builtin.parse(q)[0].answer for q in g["question"]}
        assert answers == {int(row["answer"])}


def test_orbits_are_seeded(train):
    a = builtin_orbits(train, size=3, seed=1)
    assert a.equals(builtin_orbits(train, size=3, seed=1))
    assert not a.equals(builtin_orbits(train, size=3, seed=2))


def test_size_out_of_range(train):
    with pytest.raises(ValueError, match="orbits.size"):
        builtin_orbits(train, size=len(builtin.TEMPLATES) + 1, seed=0)


def test_paraphrase_check_catches_changed_numbers_and_answers():
    p = builtin.Problem("Ann", "pens", 10, "+", 5, "-", 3, 0, 1)
    assert check_builtin_paraphrase(p, builtin.render(p, 2)) is None
    changed = builtin.Problem("Ann", "pens", 11, "+", 5, "-", 3, 0, 1)
    assert check_builtin_paraphrase(p, builtin.render(changed, 1)) == "numbers_changed"
    flipped = builtin.Problem("Ann", "pens", 10, "-", 5, "+", 3, 0, 1)  # same numbers, other answer
    assert check_builtin_paraphrase(p, builtin.render(flipped, 1)) == "answer_changed"
    assert check_builtin_paraphrase(p, "Ann has pens.") == "unparsable"
