"""The results table: replicate methods (<method>_s<k>) become seeds of one method."""

import pandas as pd
import pytest

from alft.cli import main
from alft.io import read_parquet, write_parquet


def _summary(method: str, r: int, seed: int, acc: float) -> pd.DataFrame:
    return pd.DataFrame([{"model": f"models/{method}/r{r}", "method": method, "round": r, "seed": seed,
                          "accuracy": acc, "n": 100}])


def test_replicates_are_averaged_with_gain_over_base(tmp_path):
    rows = [("base", 0, 0, 0.40), ("coherence_s1", 1, 1001, 0.45), ("coherence_s2", 1, 2001, 0.41),
            ("coherence_s3", 1, 3001, 0.46), ("majority", 1, 1, 0.38)]
    paths = []
    for i, (m, r, s, a) in enumerate(rows):
        paths.append(tmp_path / f"s{i}.parquet")
        write_parquet(_summary(m, r, s, a), paths[-1])
    out = tmp_path / "results.parquet"
    assert main(["results", "--summaries", *map(str, paths), "--out", str(out), "--markdown",
                 str(tmp_path / "results.md"), "--summary", str(tmp_path / "by_method.parquet")]) == 0
    table = read_parquet(out)
    coh = table[table["method"] == "coherence"]
    assert sorted(coh["seed"]) == [1, 2, 3]  # the name's seed, not the round seed
    by = read_parquet(tmp_path / "by_method.parquet").set_index(["method", "round"])
    assert by.loc[("coherence", 1), "n_seeds"] == 3
    assert by.loc[("coherence", 1), "accuracy_mean"] == pytest.approx((0.45 + 0.41 + 0.46) / 3)
    assert by.loc[("coherence", 1), "accuracy_sd"] == pytest.approx(pd.Series([0.45, 0.41, 0.46]).std())
    assert by.loc[("coherence", 1), "gain_mean"] == pytest.approx((0.45 + 0.41 + 0.46) / 3 - 0.40)
    assert by.loc[("majority", 1), "gain_mean"] == pytest.approx(-0.02)
    assert by.loc[("majority", 1), "accuracy_sd"] == 0.0
    assert (tmp_path / "by_method.md").read_text().startswith("| method | round |")
