"""Tasks: data sets with questions, gold answers and the prompt format."""

from __future__ import annotations

BUILTIN_PROMPT = "Q: {question}\nA:"

# Real tasks: one instruction line fixing the final-answer convention that
# :mod:`alft.extract` parses strictly ("The answer is ..."), then the question.
GSM8K_PROMPT = (
    "Solve the following math problem step by step. Finish with a line of the form "
    "\"The answer is N.\" where N is the final number.\n\n"
    "Question: {question}\nAnswer:"
)
TRIVIAQA_PROMPT = (
    "Answer the following trivia question. Finish with a line of the form "
    "\"The answer is X.\" where X is a short answer (a name, place, date or phrase).\n\n"
    "Question: {question}\nAnswer:"
)
MATHQA_PROMPT = (
    "Solve the following multiple-choice math problem step by step. Finish with a line of "
    "the form \"The answer is (x).\" where x is the letter (a, b, c, d or e) of the correct "
    "option.\n\n"
    "Question: {question}\nAnswer:"
)
PROMPTS = {"builtin": BUILTIN_PROMPT, "gsm8k": GSM8K_PROMPT, "triviaqa": TRIVIAQA_PROMPT,
           "mathqa": MATHQA_PROMPT}


def format_prompt(question: str, task: str = "builtin") -> str:
    """The text a policy is conditioned on for ``question``.

    builtin: the plain ``Q: ...\\nA:`` format the tiny base model is pretrained on;
    its completions start with a space and end with EOS.
    gsm8k / triviaqa / mathqa: an instruction asking for a final "The answer is ..."
    line (what :func:`alft.extract.extract_answer_strict` reads), then
    ``Question: ...\\nAnswer:``. MathQA questions carry their options in the
    question text (see :mod:`alft.tasks.loaders`).
    """
    if task not in PROMPTS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(PROMPTS)}")
    return PROMPTS[task].format(question=question)
