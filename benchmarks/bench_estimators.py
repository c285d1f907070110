"""Benchmark: minimax LP tables for K=2..32 and AQP tables for K in {8,16,32,64,128} x 5 eps.

Reports build seconds, worst-case weighted bias and worst-case second moment per table,
and writes benchmarks/results/estimators.csv and .md. Goal: everything <= 60 s on 2 cores.
Run: .venv/bin/python benchmarks/bench_estimators.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from alft import estimators as est
from alft.io import markdown_table, write_table

AQP_K = (8, 16, 32, 64, 128)
FRACTIONS = (0.2, 0.3, 0.45, 0.65, 0.9)  # eps = minimax + f * (taylor - minimax)


def main() -> None:
    rows = []
    t_all = time.perf_counter()
    for K in range(2, 33):
        t0 = time.perf_counter()
        c = est.minimax_lp(K)
        secs = time.perf_counter() - t0
        b = est.worst_case_bias(c, K)
        rows.append(dict(method="minimax_lp", K=K, eps=np.nan, seconds=secs, max_bias=b,
                         bias_x_K1sq=b * (K + 1) ** 2,
                         max_second_moment=est.worst_case_second_moment(c, K)))
    for K in AQP_K:
        t0 = time.perf_counter()
        floor = est.minimax_value(K)
        taylor = est.worst_case_bias(est.taylor_table(K), K)
        setup = time.perf_counter() - t0
        for i, f in enumerate(FRACTIONS):
            eps = floor + f * (taylor - floor)
            t0 = time.perf_counter()
            c = est.aqp(K, eps)
            secs = time.perf_counter() - t0 + (setup if i == 0 else 0.0)
            b = est.worst_case_bias(c, K)
            rows.append(dict(method="aqp", K=K, eps=eps, seconds=secs, max_bias=b,
                             bias_x_K1sq=b * (K + 1) ** 2,
                             max_second_moment=est.worst_case_second_moment(c, K)))
    total = time.perf_counter() - t_all
    df = pd.DataFrame(rows)
    out = Path(__file__).parent / "results"
    write_table(df, out / "estimators.parquet", out / "estimators.md", out / "estimators.csv")
    print(markdown_table(df, floatfmt=".5g"))
    print(f"table build seconds: {df.seconds.sum():.2f}; total incl. evaluation: {total:.2f} s")


if __name__ == "__main__":
    main()
