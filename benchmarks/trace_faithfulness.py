"""Where the builtin policy's samples go wrong, per template, and how often a right answer
rides on a wrong trace.

Each completion of a builtin samples table is parsed as ``a op b = i. i op c = f. The
answer is f.`` and compared with the problem behind its prompt:

- ``right``            the final answer is the gold one;
    - ``right, faithful``  ... and the trace is exactly the gold trace;
- ``arithmetic``       the right numbers and operations, a wrong sum or difference;
- ``wrong ops``        the right numbers, a gain read as a loss or vice versa;
- ``wrong numbers``    a number missing, swapped or invented (word order misread);
- ``malformed``        not in the trace format at all.

Answer-level rewards (ground truth included) reinforce every ``right`` sample, so the
share of right answers with an unfaithful trace is the share of reinforced traces that
teach a wrong step.

    python benchmarks/trace_faithfulness.py --samples results/default/samples/base/r0.parquet
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from alft.tasks.builtin import parse, trace

TRACE = re.compile(r" ?(\d+)([+-])(\d+)=(\d+)\. (\d+)([+-])(\d+)=(\d+)\. The answer is (\d+)\.")
PROMPT = re.compile(r"^Q: (.*)\nA:$", re.S)


def classify(prompt: str, completion: str) -> tuple[int, str]:
    """(template, kind) of one builtin sample; see the module docstring for the kinds."""
    m = PROMPT.match(prompt)
    parsed = parse(m.group(1)) if m else None
    if parsed is None:
        raise ValueError(f"not a builtin prompt: {prompt!r}")
    problem, template = parsed
    t = TRACE.fullmatch(completion.rstrip())
    if t is None:
        return template, "malformed"
    a, op1, b, _, _, op2, c, _, answer = t.groups()
    if int(answer) == problem.answer:
        faithful = completion.strip() == trace(problem)
        return template, "right, faithful" if faithful else "right, unfaithful trace"
    if (int(a), int(b), int(c)) != problem.numbers:
        return template, "wrong numbers"
    if (op1, op2) != (problem.op1, problem.op2):
        return template, "wrong ops"
    return template, "arithmetic"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=Path, default=Path("results/default/samples/base/r0.parquet"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/trace_faithfulness.tsv"))
    args = ap.parse_args()
    s = pd.read_parquet(args.samples, columns=["prompt", "completion"])
    kinds = pd.DataFrame([classify(p, c) for p, c in zip(s["prompt"], s["completion"])],
                         columns=["template", "kind"])
    table = pd.crosstab(kinds["template"], kinds["kind"], normalize="index", margins=True).round(3)
    right = kinds["kind"].str.startswith("right")
    unfaithful = float((kinds["kind"] == "right, unfaithful trace").sum() / max(1, right.sum()))
    print(f"{args.samples}: {len(kinds)} samples")
    print(table.to_string())
    print(f"right answers with an unfaithful trace: {unfaithful:.1%} of {int(right.sum())}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.assign(samples=str(args.samples), unfaithful_share_of_right=round(unfaithful, 4)).to_csv(
        args.out, sep="\t")


if __name__ == "__main__":
    main()
