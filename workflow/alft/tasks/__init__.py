"""Tasks: data sets with questions, gold answers and the prompt format."""

from __future__ import annotations

BUILTIN_PROMPT = "Q: {question}\nA:"


def format_prompt(question: str, task: str = "builtin") -> str:
    """The text a policy is conditioned on for ``question``.

    builtin: the plain ``Q: ...\\nA:`` format the tiny base model is pretrained on;
    its completions start with a space and end with EOS.
    """
    if task == "builtin":
        return BUILTIN_PROMPT.format(question=question)
    raise ValueError(f"unknown task {task!r}")
