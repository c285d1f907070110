"""The builtin base model: tokenizer round trip, BOS, save/load like a hub model."""

import os
import subprocess
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from alft import basemodel as bm
from alft.tasks import builtin, format_prompt


def _tiny(tmp_path):
    pre = builtin.make_splits(seed=0, n_pretrain=200, n_train=2, n_val=8, n_test=2)["pretrain"]
    tok = bm.build_tokenizer(list(pre["question"]) + list(pre["trace"]))
    spec = bm.ModelSpec(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    return pre, tok, bm.build_model(len(tok), spec, tok, seed=0)


def test_tokenizer_round_trip_and_bos(tmp_path):
    pre, tok, _ = _tiny(tmp_path)
    text = format_prompt(pre["question"][0]) + " " + pre["trace"][0]
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == len(text) + 1
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.padding_side == "left"


def test_loss_only_on_completion_and_save_load(tmp_path):
    pre, tok, model = _tiny(tmp_path)
    ex = bm.encode_examples(tok, ["Q: a\nA:"], [" 1+2=3."])
    ids, attn, labels = bm.collate(ex + bm.encode_examples(tok, ["Q: ab\nA:"], [" 1."]), tok.pad_token_id)
    n_prompt = len(tok("Q: a\nA:")["input_ids"])
    assert (labels[0, :n_prompt] == -100).all() and (labels[0, n_prompt:] != -100).all()
    assert labels[0, -1] == tok.eos_token_id
    assert attn[1].sum() == 1 + len("Q: ab\nA:") + len(" 1.") + 1  # BOS, prompt, completion, EOS
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    tok2 = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert tok2("Q: a")["input_ids"] == tok("Q: a")["input_ids"]
    x = torch.tensor([tok("Q: a")["input_ids"]])
    torch.testing.assert_close(again(x).logits, model(x).logits)


def test_pretraining_lowers_the_loss_and_keeps_the_best_checkpoint(tmp_path):
    pre, tok, model = _tiny(tmp_path)
    ex = bm.encode_examples(tok, [format_prompt(q) for q in pre["question"]],
                            [" " + t for t in pre["trace"]])
    scores = iter([0.2, 0.5, 0.1])
    cfg = bm.PretrainConfig(lr=3e-3, batch_size=16, max_steps=60, eval_every=20, warmup_steps=5)
    best, hist = bm.pretrain(model, ex, tok.pad_token_id, cfg, seed=0, validate=lambda m: next(scores))
    assert [h["step"] for h in hist] == [20, 40, 60]
    assert hist[-1]["loss"] < hist[0]["loss"]
    # the kept state is the one scored 0.5 (step 40), not the last
    assert not all(torch.equal(best[k], v) for k, v in model.state_dict().items())


def test_a_binding_wall_clock_cap_is_logged_with_its_config_key(tmp_path):
    """`--max-minutes` is a guard: when it stops training before `--max-steps`, the log
    says so (the model then depends on the machine's speed)."""
    splits = builtin.make_splits(seed=0, n_pretrain=200, n_train=2, n_val=4, n_test=2)
    splits["pretrain"].to_parquet(tmp_path / "pretrain.parquet")
    splits["val"].to_parquet(tmp_path / "val.parquet")
    alft = Path(sys.executable).parent / "alft"
    cmd = [str(alft), "base-model", "--pretrain", str(tmp_path / "pretrain.parquet"),
           "--val", str(tmp_path / "val.parquet"), "--seed", "0", "--hidden-size", "32",
           "--num-layers", "1", "--num-heads", "1", "--intermediate-size", "64",
           "--batch-size", "8", "--max-steps", "50", "--eval-every", "25", "--threads", "1",
           "--log-parquet", str(tmp_path / "hist.parquet")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    capped = subprocess.run([*cmd, "--max-minutes", "1e-9", "--out", str(tmp_path / "a")],
                            capture_output=True, text=True, env=env)
    assert capped.returncode == 0, capped.stderr[-3000:]
    assert "stopped at step 1 of 50 by the wall-clock cap" in capped.stderr
    assert "base_model.max_minutes" in capped.stderr
    full = subprocess.run([*cmd, "--max-minutes", "60", "--out", str(tmp_path / "b")],
                          capture_output=True, text=True, env=env)
    assert full.returncode == 0, full.stderr[-3000:]
    assert "wall-clock cap" not in full.stderr
    assert "CPU capability" in full.stderr  # the host a trained model depends on is logged
