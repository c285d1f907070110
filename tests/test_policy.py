"""The policy step (GRPO via TRL) on a tiny random Llama: outputs, reference = π0, orbit batching."""

from collections import Counter

import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from alft import basemodel as bm
from alft.errors import ConfigError
from alft.policy import (OrbitRepeatSampler, PolicyStepConfig, build_train_dataset, build_trainer,
                         orbit_layout, run_policy_step)
from alft.tasks import format_prompt

N_ORBITS, ORBIT_SIZE, K = 4, 3, 4


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """π0 and a different π_r (another seed), saved like hub models."""
    root = tmp_path_factory.mktemp("models")
    tok = bm.build_tokenizer(["Q: How many apples? A: 1+2=3. The answer is 3."])
    spec = bm.ModelSpec(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    for name, seed in (("pi0", 0), ("pir", 1)):
        model = bm.build_model(len(tok), spec, tok, seed=seed)
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    return root / "pi0", root / "pir"


@pytest.fixture(scope="module")
def orbits():
    return pd.DataFrame([{"orbit_id": o, "member": m, "prompt": format_prompt(f"Orbit {o} wording {m}?"),
                          "answer": str(o)} for o in range(N_ORBITS) for m in range(ORBIT_SIZE)])


def length_reward(completions, orbit_id, member, **kwargs):
    """A stand-in target reward reading the dataset's orbit columns."""
    assert len(orbit_id) == len(member) == len(completions)
    return [float(len(c)) + 0.1 * m for c, m in zip(completions, member)]


def tiny_cfg(**kw):
    base = dict(max_steps=2, batch_size=12, num_generations=K, max_completion_length=8,
                learning_rate=1e-3, kl_coef=0.1, seed=3, disable_tqdm=True)
    return PolicyStepConfig(**{**base, **kw})


def _leftovers(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_policy_step_writes_a_loadable_model_and_a_log(models, orbits, tmp_path):
    pi0, pir = models
    out, logp = tmp_path / "pi1", tmp_path / "train_log.parquet"
    hist = run_policy_step(pir, pi0, orbits, length_reward, tiny_cfg(), out, logp)
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    new = AutoModelForCausalLM.from_pretrained(out)
    old = AutoModelForCausalLM.from_pretrained(pir)
    assert AutoTokenizer.from_pretrained(out).padding_side == "left"
    assert any(not torch.equal(a, b) for a, b in zip(new.state_dict().values(), old.state_dict().values()))
    log = pd.read_parquet(logp)
    assert list(log["step"]) == [1, 2] and len(hist) == 2
    for col in ("loss", "reward", "reward_std", "kl", "completions/mean_length",
                "rewards/length_reward/mean"):
        assert col in log and log[col].notna().all(), col
    assert not _leftovers(tmp_path)


def test_same_seed_same_run(models, orbits, tmp_path):
    pi0, pir = models
    logs = [run_policy_step(pir, pi0, orbits, length_reward, tiny_cfg(max_steps=1), tmp_path / f"m{i}",
                            tmp_path / f"l{i}.parquet") for i in range(2)]
    cols = ["reward", "reward_std", "kl", "loss", "completions/mean_length"]
    pd.testing.assert_frame_equal(logs[0][cols], logs[1][cols])


def test_kl_reference_is_pi0_not_the_starting_policy(models, orbits, tmp_path):
    pi0, pir = models
    trainer = build_trainer(pir, pi0, build_train_dataset(orbits), length_reward, tiny_cfg(), str(tmp_path))
    ref = trainer.accelerator.unwrap_model(trainer.ref_model).state_dict()
    want0 = AutoModelForCausalLM.from_pretrained(pi0).state_dict()
    wantr = AutoModelForCausalLM.from_pretrained(pir).state_dict()
    assert all(torch.equal(ref[k], want0[k]) for k in want0)
    assert not all(torch.equal(ref[k], wantr[k]) for k in wantr)
    pol = trainer.accelerator.unwrap_model(trainer.model).state_dict()
    assert all(torch.equal(pol[k], wantr[k]) for k in wantr)
    assert trainer.model.config._name_or_path == str(pir)


def test_online_batches_hold_whole_orbits(models, orbits, tmp_path):
    pi0, pir = models
    seen = []

    def recording_reward(completions, orbit_id, member, **kwargs):
        seen.append(list(zip(orbit_id, member)))
        return [float(len(c)) for c in completions]

    cfg = tiny_cfg(mode="online", batch_size=2 * ORBIT_SIZE * K, max_steps=2)
    run_policy_step(pir, pi0, orbits, recording_reward, cfg, tmp_path / "m", tmp_path / "l.parquet")
    assert len(seen) == 2
    for batch in seen:
        counts = Counter(batch)
        orbit_ids = {o for o, _ in batch}
        assert len(orbit_ids) == 2
        assert set(counts) == {(o, m) for o in orbit_ids for m in range(ORBIT_SIZE)}  # whole orbits
        assert set(counts.values()) == {K}
        # each prompt's K generations are contiguous
        runs = [batch[i] for i in range(0, len(batch), K)]
        assert all(batch[i: i + K] == [r] * K for i, r in zip(range(0, len(batch), K), runs))


def test_orbit_sampler_yields_whole_orbits_every_epoch():
    df = build_train_dataset(pd.DataFrame(
        [{"orbit_id": o, "member": m, "prompt": "p"} for o in (5, 1, 9, 7, 3) for m in range(3)][::-1]))
    orbits, size, dropped = orbit_layout(df["orbit_id"].tolist())
    assert size == 3 and not dropped
    sampler = OrbitRepeatSampler(orbits, mini_repeat_count=2, batch_size=6, repeat_count=2, seed=0)
    epochs = [list(sampler) for _ in range(3)]
    assert len(epochs[0]) == len(sampler) == 2 * 6 * 2 * 2  # 2 whole chunks of 2 orbits; 1 orbit left over
    for idx in epochs:
        for start in range(0, len(idx), 12):
            ids = Counter(df["orbit_id"].iloc[idx[start: start + 12]])
            assert len(ids) == 2 and set(ids.values()) == {6}
    assert epochs[0] != epochs[1]  # reshuffled per epoch, deterministically from the seed


def test_orbits_of_another_size_are_dropped_not_split():
    kept, size, dropped = orbit_layout([0, 0, 0, 1, 1, 2, 2, 2])
    assert size == 3 and dropped == [1] and kept == [[0, 1, 2], [5, 6, 7]]


@pytest.mark.parametrize("batch_size", [8, 20])
def test_online_batch_must_be_a_multiple_of_orbit_size_times_k(models, orbits, tmp_path, batch_size):
    pi0, pir = models
    with pytest.raises(ConfigError, match="multiple of orbit_size x num_generations"):
        run_policy_step(pir, pi0, orbits, length_reward, tiny_cfg(mode="online", batch_size=batch_size),
                        tmp_path / "m", tmp_path / "l.parquet")
    assert not (tmp_path / "m").exists() and not _leftovers(tmp_path)


def test_bad_settings_raise_config_errors(models, orbits, tmp_path):
    pi0, pir = models
    for kw in ({"batch_size": 10}, {"num_generations": 1}, {"mode": "batch"}, {"paper_beta": 0.0},
               {"kl_coef": -1.0}):
        with pytest.raises(ConfigError):
            run_policy_step(pir, pi0, orbits, length_reward, tiny_cfg(**kw), tmp_path / "m", tmp_path / "l")


def test_a_failing_step_leaves_no_output(models, orbits, tmp_path):
    pi0, pir = models
    calls = []

    def failing_reward(completions, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("reward server went away")
        return [0.0] * len(completions)

    with pytest.raises(RuntimeError, match="went away"):
        run_policy_step(pir, pi0, orbits, failing_reward, tiny_cfg(), tmp_path / "pi1", tmp_path / "log.parquet")
    assert not (tmp_path / "pi1").exists() and not (tmp_path / "log.parquet").exists()
    assert not _leftovers(tmp_path)


@pytest.mark.parametrize("reward", ["target", "online_coherence", "online_majority", "ground_truth"])
def test_cli_policy_step_with_each_reward(models, orbits, tmp_path, monkeypatch, reward):
    from alft import cli
    from alft.commands import policy as policy_cmd

    pi0, pir = models
    orbits.to_parquet(tmp_path / "orbits.parquet")
    pd.DataFrame({"orbit_id": [o for o in range(N_ORBITS) for _ in range(2)],
                  "member": -1, "answer": ["3", None] * N_ORBITS, "count": [2, 0] * N_ORBITS,
                  "q": [0.5, 0.5] * N_ORBITS, "reward": [0.0, -1.0] * N_ORBITS}
                 ).to_parquet(tmp_path / "targets.parquet")
    seen_columns = set()
    real_make_reward = policy_cmd.make_reward

    def spying_make_reward(args):
        inner = real_make_reward(args)

        def spy(completions, **kwargs):
            seen_columns.update(kwargs)
            return inner(completions=completions, **kwargs)
        spy.__name__ = inner.__name__
        return spy

    monkeypatch.setattr(policy_cmd, "make_reward", spying_make_reward)
    argv = ["policy", "--policy", str(pir), "--reference", str(pi0), "--orbits", str(tmp_path / "orbits.parquet"),
            "--reward", reward, "--lr", "1e-3", "--steps", "1", "--num-generations", str(K),
            "--batch-size", str(ORBIT_SIZE * K), "--max-completion-length", "8", "--seed", "0",
            "--no-progress", "--out", str(tmp_path / "pi1"), "--log", str(tmp_path / "log.parquet")]
    if reward == "target":
        argv[argv.index("--reward"):argv.index("--reward")] = ["--targets", str(tmp_path / "targets.parquet")]
    assert cli.main(argv) == 0
    log = pd.read_parquet(tmp_path / "log.parquet")
    assert len(log) == 1 and log["reward"].notna().all()
    assert any(c.startswith("rewards/") for c in log.columns)
    assert (tmp_path / "pi1" / "model.safetensors").exists()
    assert {"orbit_id", "member"} <= seen_columns
    assert ("answer" in seen_columns) == (reward == "ground_truth")  # labels only for the supervised baseline


def test_cli_target_reward_needs_targets(models, orbits, tmp_path, capsys):
    from alft import cli

    pi0, pir = models
    orbits.to_parquet(tmp_path / "orbits.parquet")
    rc = cli.main(["policy", "--policy", str(pir), "--reference", str(pi0), "--orbits",
                   str(tmp_path / "orbits.parquet"), "--reward", "target", "--seed", "0",
                   "--out", str(tmp_path / "pi1"), "--log", str(tmp_path / "log.parquet")])
    assert rc == 2 and "--targets" in capsys.readouterr().err
    assert not (tmp_path / "pi1").exists()


def test_lora_rounds_train_one_adapter_with_kl_to_pi0(models, orbits, tmp_path):
    """Round 1 puts a fresh adapter on π0; round 2 continues it; the reference stays π0."""
    pi0, pir = models
    cfg = tiny_cfg(lora_r=4, lora_alpha=8, learning_rate=5e-2)
    r1, r2 = tmp_path / "r1", tmp_path / "r2"
    run_policy_step(pi0, pi0, orbits, length_reward, cfg, r1, tmp_path / "l1.parquet")
    assert (r1 / "adapter" / "adapter_config.json").exists() and (r1 / "model.safetensors").exists()
    merged1 = AutoModelForCausalLM.from_pretrained(r1).state_dict()
    base = AutoModelForCausalLM.from_pretrained(pi0).state_dict()
    assert set(merged1) == set(base)  # a plain model for vLLM, no PEFT keys
    assert any(not torch.equal(merged1[k], base[k]) for k in base)

    trainer = build_trainer(r1, pi0, build_train_dataset(orbits), length_reward, cfg, str(tmp_path / "w"))
    peft_model = trainer.accelerator.unwrap_model(trainer.model)
    assert list(peft_model.peft_config) == ["default"]  # no frozen copy of round 1's adapter
    ids = torch.tensor([[1, 5, 6, 7, 8]])
    with torch.no_grad():
        start = peft_model(input_ids=ids).logits  # π1 = π0 + round 1's adapter
        with peft_model.disable_adapter():  # what TRL uses as the reference without a "ref" adapter
            ref = peft_model(input_ids=ids).logits
        want_ref = AutoModelForCausalLM.from_pretrained(pi0)(input_ids=ids).logits
        want_start = AutoModelForCausalLM.from_pretrained(r1)(input_ids=ids).logits
    assert torch.allclose(ref, want_ref, atol=1e-5)
    assert torch.allclose(start, want_start, atol=1e-4)
    assert not torch.allclose(start, ref, atol=1e-4)

    run_policy_step(r1, pi0, orbits, length_reward, cfg, r2, tmp_path / "l2.parquet")
    merged2 = AutoModelForCausalLM.from_pretrained(r2).state_dict()
    assert any(not torch.equal(merged2[k], merged1[k]) for k in base)
    with pytest.raises(Exception, match="LoRA policy steps continue from"):
        run_policy_step(pir, pi0, orbits, length_reward, cfg, tmp_path / "bad", tmp_path / "lb.parquet")
    with pytest.raises(ConfigError, match="lora_r"):
        tiny_cfg(lora_r=-1).validate()
