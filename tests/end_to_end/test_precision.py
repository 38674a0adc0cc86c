"""fp16 and amp on the CPU (TRAINER.DAPT_INIT.CPU_FP32 False): the GPU's code paths, run in CI.

Real train.py runs (forked from one driver that imported train.py's modules once:
tests/support/forked_train.py) on tiny EuroSAT-layout data with the small random CLIP, INIT_METHOD
random, one per precision (fp16, amp) and text encoder (full, shared_prefix); the shared_prefix
run is also killed after its first epoch and run again. Checked: the dtypes each precision
trains in, the resume bit for bit (the GradScaler's state included), ``--eval-only``,
shared_prefix against full within a bound, the divergence stop (fires on a real divergence, not
on a step the GradScaler skipped), and what loads across precisions.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from tests.support.forked_train import TrainServer
from tests.support.integration import output_dir_of, prepared_workdir, read_result, train_command
from tests.end_to_end.test_resume_exact import assert_same_tensors
from tests.end_to_end.test_user_errors import one_error_line
from tests.support.toolbox import requires_toolbox
from trainers.dapt_init.trainer import AMP_DTYPE, resolve_precision

PRECISIONS = ("fp16", "amp")
ENCODERS = ("full", "shared_prefix")
# Largest relative difference of the final prompts, shared_prefix against full, after 3
# epochs (max |a - b| / max |b|). Measured on this data: fp16 2.6e-3, amp 2.4e-3 (fp32:
# < 1e-5, README "Performance"); both paths round differently in half precision, and the
# demo's LR 20 amplifies it.
SHARED_PREFIX_BOUND = {"fp16": 1e-2, "amp": 1e-2}
PROMPT_DTYPE = {"fp16": torch.float16, "amp": torch.float32}  # amp: fp32 weights, fp16 math


# ------------------------------------------------------------------------ no run needed
@pytest.mark.parametrize("device, requested, cpu_fp32, expected", [
    ("cpu", "fp16", True, "fp32"),
    ("cpu", "amp", True, "fp32"),
    ("cpu", "fp32", True, "fp32"),
    ("cpu", "fp16", False, "fp16"),
    ("cpu", "amp", False, "amp"),
    ("cpu", "fp32", False, "fp32"),
    ("cuda", "fp16", True, "fp16"),  # the key is about the CPU only
    ("cuda", "amp", True, "amp"),
    ("cuda", "fp16", False, "fp16"),
])
def test_the_precision_each_device_runs(device, requested, cpu_fp32, expected, capsys):
    assert resolve_precision(requested, torch.device(device), cpu_fp32) == expected
    out = capsys.readouterr().out
    replaced = expected != requested
    assert ("is replaced by fp32" in out) == replaced
    if replaced:
        assert "TRAINER.DAPT_INIT.CPU_FP32 False runs it as asked" in out


def test_the_key_is_checked_and_fingerprinted_only_off_its_default():
    from tests.trainers.test_config import toolbox_like_cfg
    from trainers.dapt_init.config import validate_config
    from trainers.dapt_init.errors import DaptInitError
    from trainers.dapt_init.runstate import differences, fingerprint_keys

    cfg = toolbox_like_cfg()
    assert cfg.TRAINER.DAPT_INIT.CPU_FP32 is True
    bad = toolbox_like_cfg()
    bad.TRAINER.DAPT_INIT.CPU_FP32 = "no"  # a host's own config loader may not type-check
    with pytest.raises(DaptInitError, match="CPU_FP32 is 'no'; it must be True or False"):
        validate_config(bad)
    default = fingerprint_keys(cfg)
    # At its default the key is left out: fingerprints written before it existed still match.
    assert "TRAINER.DAPT_INIT.CPU_FP32" not in default
    off = fingerprint_keys(toolbox_like_cfg(**{"TRAINER.DAPT_INIT.CPU_FP32": False}))
    assert off["TRAINER.DAPT_INIT.CPU_FP32"] is False
    assert {k: v for k, v in off.items() if k != "TRAINER.DAPT_INIT.CPU_FP32"} == default
    # A resume refused for it names both values, not "(absent)".
    assert differences(off, default) == ["TRAINER.DAPT_INIT.CPU_FP32 False -> True"]


def test_amp_on_the_cpu_autocasts_to_float16():
    # The GPU's autocast dtype, so a CPU amp run takes the GPU's casts.
    assert AMP_DTYPE == torch.float16
    a = torch.randn(4, 4)
    with torch.autocast("cpu", dtype=AMP_DTYPE):
        assert (a @ a).dtype == torch.float16


# ---------------------------------------------------------------------- real runs
# Every train.py run of this module is forked from one driver that imported train.py's
# modules once (tests/support/forked_train.py): a cold process spends most of a tiny run importing.
# ``scale_power`` sets the GradScaler's initial scale to 2**power in the run (the product code
# is untouched): 2**127 makes every scaled loss overflow, so the scaler skips every step; 2**8
# lets every step through on this data (the default 2**16 overflows the first steps).
NO_SKIP_POWER = 8


def command_for(workdir: Path, precision: str, encoder: str, name: str, *extra: str
                ) -> list[str]:
    return train_command(workdir, "random", "TRAINER.DAPT_INIT.PREC", precision,
                         "TRAINER.DAPT_INIT.CPU_FP32", "False",
                         "TRAINER.DAPT_INIT.TEXT_ENCODER", encoder, *extra,
                         output_dir=workdir / "runs" / name)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    driver = TrainServer(tmp_path_factory.mktemp("precision_driver"))
    yield driver
    driver.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, server) -> dict:
    """Uninterrupted runs per (precision, encoder); the shared_prefix ones also killed after
    epoch 1 and run again ("<precision>-resumed")."""
    workdir = prepared_workdir(tmp_path_factory.mktemp("precision"))
    commands = {(p, e): command_for(workdir, p, e, f"{p}-{e}")
                for p in PRECISIONS for e in ENCODERS}
    # amp with a scale that skips no step: both encoders take the same steps (with the
    # default scale the first steps overflow, and the two may skip a different number).
    commands.update({("amp-noskip", e): command_for(workdir, "amp", e, f"amp-noskip-{e}")
                     for e in ENCODERS})
    resumed = {p: command_for(workdir, p, "shared_prefix", f"{p}-resumed") for p in PRECISIONS}
    # Two at a time: the runs are independent (each its own folder; the prototype cache is
    # written atomically and keyed by dtype).
    jobs = [(c, {"scale_power": NO_SKIP_POWER} if k[0] == "amp-noskip" else {})
            for k, c in commands.items()]
    jobs += [(c, {"kill_after_epoch": 1}) for c in resumed.values()]
    *finished, killed_fp16, killed_amp = server.run_all(jobs)
    done = dict(zip(commands, finished))
    for precision, killed in (("fp16", killed_fp16), ("amp", killed_amp)):
        assert killed.returncode == 9, (precision, killed.stderr[-3000:])
    again = dict(zip(resumed, server.run_all([(c, {}) for c in resumed.values()])))
    for key, result in [*done.items(), *again.items()]:
        assert result.returncode == 0, (key, result.stderr[-3000:])
    return {"workdir": workdir, "commands": commands, "done": done,
            "resumed": resumed, "again": again}


def final_checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "prompt_learner/model.pth.tar-3", weights_only=True)


@requires_toolbox
@pytest.mark.parametrize("precision", PRECISIONS)
def test_each_precision_trains_in_its_dtypes_on_the_cpu(runs, precision):
    for encoder in ENCODERS:
        out = runs["done"][precision, encoder].stdout
        assert "is replaced by fp32" not in out
        # The fast path's probe passed in this precision: shared_prefix was kept.
        assert f"Text encoder: {encoder}" in out
        checkpoint = final_checkpoint(output_dir_of(runs["commands"][precision, encoder]))
        prompts = checkpoint["state_dict"]
        assert {t.dtype for t in prompts.values()} == {PROMPT_DTYPE[precision]}
        assert all(torch.isfinite(t).all() for t in prompts.values())
        # amp: the GradScaler's state is saved (scale, growth tracker); fp16 has none.
        assert ("scaler" in checkpoint) == (precision == "amp")
        if precision == "amp":
            assert checkpoint["scaler"]["scale"] > 0
        result = read_result(output_dir_of(runs["commands"][precision, encoder]))
        assert result["fingerprint_keys"]["TRAINER.DAPT_INIT.CPU_FP32"] is False
        assert result["fingerprint_keys"]["TRAINER.DAPT_INIT.PREC"] == precision
        assert all(math.isfinite(v) for v in result["metrics"].values())


@requires_toolbox
@pytest.mark.parametrize("precision", PRECISIONS)
def test_prototypes_are_computed_by_the_half_precision_model(runs, precision):
    records = [torch.load(path, weights_only=True)
               for path in (runs["workdir"] / "data").rglob("prototypes/*.pt")]
    dtypes = {json.loads(record["key"])["dtype"] for record in records}
    # fp16 runs CLIP in fp16; amp keeps CLIP's weights in fp32 and autocasts the training
    # step only, so its prototypes come from the fp32 model (as DAPT's amp would compute them).
    assert ("torch.float16" if precision == "fp16" else "torch.float32") in dtypes
    for record in records:
        prototypes = record["prototypes"]  # stored as fp32, whatever computed them
        assert prototypes.dtype == torch.float32 and torch.isfinite(prototypes).all()
        norms = prototypes.norm(dim=-1)  # means of unit vectors
        assert (norms <= 1 + 1e-3).all() and (norms > 0.1).all()


@requires_toolbox
@pytest.mark.parametrize("precision", PRECISIONS)
def test_killed_after_an_epoch_and_rerun_equals_the_uninterrupted_run(runs, precision):
    mine = final_checkpoint(output_dir_of(runs["resumed"][precision]))
    theirs = final_checkpoint(output_dir_of(runs["commands"][precision, "shared_prefix"]))
    assert "Resuming from" in runs["again"][precision].stdout
    for key in ("state_dict", "optimizer", "scheduler", "epoch", "scaler"):
        assert (key in mine) == (key in theirs)
        if key in mine:
            assert_same_tensors(mine[key], theirs[key])
    assert torch.equal(mine["rng"]["torch_cpu"], theirs["rng"]["torch_cpu"])
    assert (read_result(output_dir_of(runs["resumed"][precision]))["metrics"]
            == read_result(output_dir_of(runs["commands"][precision, "shared_prefix"]))["metrics"])


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def scaler_state(runs: dict, key: tuple[str, str]) -> dict:
    return final_checkpoint(output_dir_of(runs["commands"][key]))["scaler"]


@requires_toolbox
@pytest.mark.parametrize("precision", ["fp16", "amp-noskip"])
def test_shared_prefix_stays_close_to_full(runs, precision):
    fast = final_checkpoint(output_dir_of(runs["commands"][precision, "shared_prefix"]))
    full = final_checkpoint(output_dir_of(runs["commands"][precision, "full"]))
    differences = {name: relative_difference(fast["state_dict"][name], full["state_dict"][name])
                   for name in full["state_dict"]}
    print(f"{precision}: shared_prefix vs full, largest relative difference {differences}")
    assert max(differences.values()) < SHARED_PREFIX_BOUND[precision.split("-")[0]]
    assert differences["txt_ctx"] > 0  # two computations, not one
    if precision == "amp-noskip":  # both took all 6 steps: the scale grew by none, fell by none
        for encoder in ENCODERS:
            state = scaler_state(runs, (precision, encoder))
            assert state["scale"] == 2.0 ** NO_SKIP_POWER and state["_growth_tracker"] == 6


@requires_toolbox
def test_amp_at_the_default_scale_skips_its_first_steps_and_finishes(runs):
    """The GPU's default (init scale 2**16) overflows this data's first steps: the scaler
    halves its scale per skipped step; the run goes on (no divergence stop) and the steps
    it took after that count in the growth tracker (6 steps in all)."""
    for encoder in ENCODERS:
        state = scaler_state(runs, ("amp", encoder))
        skipped = 16 - int(math.log2(state["scale"]))
        assert skipped >= 1 and state["_growth_tracker"] == 6 - skipped, (encoder, state)
        assert "training stopped" not in runs["done"]["amp", encoder].stderr


@requires_toolbox
@pytest.mark.parametrize("precision", PRECISIONS)
def test_eval_only_reproduces_the_trained_metrics(runs, server, precision, tmp_path):
    trained = output_dir_of(runs["commands"][precision, "full"])
    command = command_for(runs["workdir"], precision, "full", "unused")
    command[command.index("--output-dir") + 1] = str(tmp_path / "eval")
    done = server.run(command[:2] + ["--eval-only", "--model-dir", str(trained),
                                    "--load-epoch", "3"] + command[2:])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "are rounded to" not in done.stdout  # same dtype: loaded as saved
    assert read_result(tmp_path / "eval")["metrics"] == read_result(trained)["metrics"]


@requires_toolbox
def test_fp32_prompts_tested_in_fp16_are_rounded_with_one_note(runs, server, tmp_path):
    trained = output_dir_of(runs["commands"]["amp", "full"])  # fp32 prompts
    command = command_for(runs["workdir"], "fp16", "full", "unused")
    command[command.index("--output-dir") + 1] = str(tmp_path / "eval")
    done = server.run(command[:2] + ["--eval-only", "--model-dir", str(trained),
                                    "--load-epoch", "3"] + command[2:])
    assert done.returncode == 0, done.stderr[-3000:]
    [note] = [line for line in done.stdout.splitlines() if "are rounded to" in line]
    assert note.startswith("Note: the trained prompts (txt_ctx, vis_ctx) are torch.float32, "
                           "this run's model is torch.float16")


@requires_toolbox
def test_a_run_is_not_resumed_in_another_precision(runs, server, tmp_path):
    source = output_dir_of(runs["commands"]["fp16", "full"])
    copy = tmp_path / "run"
    shutil.copytree(source / "prompt_learner", copy / "prompt_learner")  # no result.json
    command = command_for(runs["workdir"], "amp", "full", "unused")
    command[command.index("--output-dir") + 1] = str(copy)
    done = server.run(command)
    assert done.returncode == 2, done.stdout[-2000:]
    line = one_error_line(done.stderr)
    assert "belongs to another run (TRAINER.DAPT_INIT.PREC 'fp16' -> 'amp')" in line


def _inf_momentum_resume(runs: dict, precision: str, tmp_path: Path) -> tuple[list[str], Path]:
    """A 4-epoch run resuming the precision's 3-epoch checkpoint (recorded for it) with an
    inf momentum buffer: finite prompts, gradients and loss, and an update that overflows
    them (a real divergence, which no GradScaler skips: the gradients are finite)."""
    from trainers.dapt_init.runstate import fingerprint

    source = output_dir_of(runs["commands"][precision, "full"])
    output = tmp_path / "run"
    command = command_for(runs["workdir"], precision, "full", "unused", "OPTIM.MAX_EPOCH", "4")
    command[command.index("--output-dir") + 1] = str(output)
    shutil.copytree(source / "prompt_learner", output / "prompt_learner")
    path = output / "prompt_learner/model.pth.tar-3"
    checkpoint = torch.load(path, weights_only=True)
    run = checkpoint["run"]  # the same run, but for its 4 epochs
    run["fingerprint_keys"]["OPTIM.MAX_EPOCH"] = 4
    run["fingerprint"] = fingerprint(run["fingerprint_keys"])
    for state in checkpoint["optimizer"]["state"].values():
        state["momentum_buffer"] = torch.full_like(state["momentum_buffer"], math.inf)
    torch.save(checkpoint, path)
    return command, output


@requires_toolbox
@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_real_divergence_stops_the_run_in_each_precision(runs, server, precision, tmp_path):
    command, output = _inf_momentum_resume(runs, precision, tmp_path)
    done = server.run(command)
    assert done.returncode == 2, done.stderr[-3000:]
    line = one_error_line(done.stderr)
    assert line.startswith("error: training stopped at epoch 4/4, batch 1/")
    assert "made the prompts non-finite" in line and f"PREC {precision})" in line
    assert not (output / "result.json").exists()


@requires_toolbox
def test_steps_the_grad_scaler_skips_do_not_stop_the_run(runs, server, tmp_path):
    command = command_for(runs["workdir"], "amp", "shared_prefix", "unused",
                          "OPTIM.MAX_EPOCH", "1")
    output = tmp_path / "run"
    command[command.index("--output-dir") + 1] = str(output)
    done = server.run(command, scale_power=127)
    assert done.returncode == 0, done.stderr[-3000:]
    assert read_result(output)["epoch"] == 1
    checkpoint = torch.load(output / "prompt_learner/model.pth.tar-1", weights_only=True)
    steps = 2  # 20 images in batches of 8, as the log shows ("batch [2/2]")
    assert checkpoint["scaler"]["scale"] == 2.0 ** (127 - steps)  # each step skipped once
    initial = torch.load(output / "prompt_learner/prompts-epoch0.pt", weights_only=True)
    for name, tensor in initial.items():  # no step was taken
        assert torch.equal(checkpoint["state_dict"][name], tensor)
