"""Orbits: member 0 is the original, paraphrases preserve numbers and answer."""

import pytest

from alft.orbits import OrbitReport, builtin_orbits, check_builtin_paraphrase, round_orbit_ids
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


def test_round_orbit_ids_give_fresh_blocks_then_cycle():
    from alft.orbits import round_orbit_ids

    ids = [7, 3, 3, 9, 1, 5, 2, 8]  # 7 distinct orbits, repeated member rows collapse
    assert round_orbit_ids(ids, 0, 3) == [1, 2, 3]
    assert round_orbit_ids(ids, 1, 3) == [5, 7, 8]
    assert round_orbit_ids(ids, 2, 3) == [1, 2, 3]  # 2 whole blocks: round 2 cycles back
    assert round_orbit_ids(ids, 5, 0) == [1, 2, 3, 5, 7, 8, 9]  # 0: every orbit
    with pytest.raises(ValueError, match="orbits_per_round = 8 exceeds the 7"):
        round_orbit_ids(ids, 0, 8)


def test_round_orbits_cli_keeps_whole_orbits(tmp_path, train):
    from alft.cli import main
    from alft.io import read_parquet, write_parquet

    orbits = builtin_orbits(train, size=3, seed=0)
    write_parquet(orbits, tmp_path / "orbits.parquet")
    assert main(["round-orbits", "--orbits", str(tmp_path / "orbits.parquet"), "--round", "1",
                 "--per-round", "10", "--out", str(tmp_path / "r1.parquet")]) == 0
    r1 = read_parquet(tmp_path / "r1.parquet")
    assert sorted(r1["orbit_id"].unique()) == list(range(10, 20))
    assert len(r1) == 30 and (r1.groupby("orbit_id").size() == 3).all()
    assert main(["round-orbits", "--orbits", str(tmp_path / "orbits.parquet"), "--round", "0",
                 "--per-round", "31", "--out", str(tmp_path / "bad.parquet")]) == 2
    assert not (tmp_path / "bad.parquet").exists()


def test_more_training_prompts_add_orbit_blocks_and_keep_the_first_ones(train):
    more = builtin.make_splits(seed=0, n_pretrain=10, n_train=30, n_val=5, n_test=5,
                               n_train_more=15)["train"]
    first = builtin_orbits(train, size=4, seed=0, report=OrbitReport())
    grown = builtin_orbits(more, size=4, seed=0, report=OrbitReport())
    assert grown[grown["orbit_id"] < 30].reset_index(drop=True).equals(first)
    # with 15 orbits per round, a third round now gets a block of its own
    assert round_orbit_ids(grown["orbit_id"], 2, per_round=15) == list(range(30, 45))
    assert round_orbit_ids(first["orbit_id"], 2, per_round=15) == list(range(0, 15))
