"""Bad inputs (issue 17): one ``error:`` line naming the key, exit 2, no traceback, no file changed.

``BAD_INPUTS`` is the table: add a ``Case`` for a new bad input (an id, the ``KEY VALUE``
overrides or flags, the substring the error line must hold, and optionally a ``setup`` that
prepares the output folder first, e.g. a damaged result.json). Every case runs ``train.run``
in-process against the demo's valid command, in an output folder that already holds a file,
and checks that no file under that folder or the data root changed.

The tests after the table check the guards that need a real run: a diverged run stops with no
result.json and its checkpoints kept; a result.json with non-finite metrics is not finished; a
result is finished only under a data root with the same split file.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch

from tests.support.integration import REPO, prepared_workdir, run_train, train_command
from tests.end_to_end.test_user_errors import argv, one_error_line, snapshot
from tests.support.toolbox import HAVE_TOOLBOX, requires_toolbox
from trainers.dapt_init import runstate, toolbox_keys
from trainers.dapt_init.errors import DaptInitError

if HAVE_TOOLBOX:
    import train


@dataclass(frozen=True)
class Case:
    """One bad input. ``key``: what the error line must name (default: the first override's
    key); ``setup(output_dir)`` runs before the snapshot."""

    id: str
    opts: tuple[str, ...]
    expected: str
    flags: tuple[str, ...] = ()
    key: str = ""
    setup: Callable[[Path], None] | None = field(default=None, compare=False)

    @property
    def named(self) -> str:
        return self.key or self.opts[0]


def _corrupt_result(output: Path) -> None:
    (output / "result.json").write_text('{"metrics": {"accuracy": 81.5')  # cut short


def _result_with_fingerprint_5(output: Path) -> None:
    (output / "result.json").write_text(json.dumps({"fingerprint": 5,
                                                    "metrics": {"accuracy": 81.5}}))


def _result_list(output: Path) -> None:
    (output / "result.json").write_text("[1, 2]")


BAD_INPUTS = [
    # Family 3: toolbox keys (toolbox_keys.TOOLBOX_KEYS).
    Case("lr-negative", ("OPTIM.LR", "-0.1"), "OPTIM.LR is -0.1; it must be a finite number in (0, 1000]"),
    Case("lr-zero", ("OPTIM.LR", "0.0"), "OPTIM.LR is 0.0; it must be"),
    Case("lr-inf", ("OPTIM.LR", "1e309"), "OPTIM.LR is inf; it must be"),  # yacs reads inf
    Case("lr-absurd", ("OPTIM.LR", "1e30"), "OPTIM.LR is 1e+30; it must be"),
    Case("weight-decay-negative", ("OPTIM.WEIGHT_DECAY", "-0.0005"), "OPTIM.WEIGHT_DECAY is -0.0005"),
    Case("momentum-negative", ("OPTIM.MOMENTUM", "-0.9"), "OPTIM.MOMENTUM is -0.9"),
    Case("adam-beta-absurd", ("OPTIM.NAME", "adam", "OPTIM.ADAM_BETA1", "1e300"),
         "OPTIM.ADAM_BETA1 is 1e+300; it must be a finite number in [0, 1)",
         key="OPTIM.ADAM_BETA1"),
    Case("optimizer-unknown", ("OPTIM.NAME", "adamx"),
         "OPTIM.NAME is 'adamx'; it must be one of adam, amsgrad, sgd, rmsprop, radam, adamw"),
    Case("scheduler-unknown", ("OPTIM.LR_SCHEDULER", "linear"),
         "OPTIM.LR_SCHEDULER is 'linear'; it must be one of cosine, single_step, multi_step"),
    Case("gamma-zero", ("OPTIM.GAMMA", "0.0"), "OPTIM.GAMMA is 0.0"),
    Case("stepsize-fraction", ("OPTIM.STEPSIZE", "(0.5,)"), "OPTIM.STEPSIZE is (0.5,)"),
    Case("max-epoch-zero", ("OPTIM.MAX_EPOCH", "0"),
         "OPTIM.MAX_EPOCH is 0; it must be a whole number in [1, 100000]"),
    Case("warmup-negative", ("OPTIM.WARMUP_EPOCH", "-2"),
         "OPTIM.WARMUP_EPOCH is -2; it must be a whole number in [-1, 100000] (-1 or 0: no "
         "warm-up)"),
    Case("warmup-type-unknown", ("OPTIM.WARMUP_TYPE", "exp"), "OPTIM.WARMUP_TYPE is 'exp'"),
    Case("warmup-lr-inf", ("OPTIM.WARMUP_CONS_LR", "1e309"), "OPTIM.WARMUP_CONS_LR is inf"),
    Case("nesterov-without-momentum",
         ("OPTIM.SGD_NESTEROV", "True", "OPTIM.MOMENTUM", "0.0"),
         "Nesterov momentum needs a momentum above 0"),
    Case("batch-zero", ("DATALOADER.TRAIN_X.BATCH_SIZE", "0"),
         "DATALOADER.TRAIN_X.BATCH_SIZE is 0; it must be a whole number in [1, 65536]"),
    Case("test-batch-negative", ("DATALOADER.TEST.BATCH_SIZE", "-1"),
         "DATALOADER.TEST.BATCH_SIZE is -1"),
    Case("workers-negative", ("DATALOADER.NUM_WORKERS", "-1"),
         "DATALOADER.NUM_WORKERS is -1; it must be a whole number in [0, 256]"),
    Case("sampler-unknown", ("DATALOADER.TRAIN_X.SAMPLER", "Shuffle"),
         "DATALOADER.TRAIN_X.SAMPLER is 'Shuffle'; it must be one of RandomSampler"),
    Case("size-one-number", ("INPUT.SIZE", "(32,)"),
         "INPUT.SIZE is (32,); it must be two whole numbers in [1, 4096]"),
    Case("interpolation-unknown", ("INPUT.INTERPOLATION", "lanczos"),
         "INPUT.INTERPOLATION is 'lanczos'; it must be one of bilinear, bicubic, nearest"),
    Case("transform-unknown", ("INPUT.TRANSFORMS", "['random_flip', 'mixup']"),
         "INPUT.TRANSFORMS is ('random_flip', 'mixup'); it must be a list of random_flip"),
    Case("pixel-std-zero", ("INPUT.PIXEL_STD", "[0.2, 0.0, 0.2]"), "INPUT.PIXEL_STD is [0.2, 0.0, 0.2]"),
    Case("crop-scale-reversed", ("INPUT.RRCROP_SCALE", "(0.9, 0.1)"),
         "INPUT.RRCROP_SCALE is (0.9, 0.1); it must be two numbers low, high"),
    Case("print-freq-zero", ("TRAIN.PRINT_FREQ", "0"), "TRAIN.PRINT_FREQ is 0"),
    Case("checkpoint-freq-negative", ("TRAIN.CHECKPOINT_FREQ", "-1"), "TRAIN.CHECKPOINT_FREQ is -1"),
    Case("count-iter-unknown", ("TRAIN.COUNT_ITER", "both"), "TRAIN.COUNT_ITER is 'both'"),
    Case("final-model-unknown", ("TEST.FINAL_MODEL", "worst"),
         "TEST.FINAL_MODEL is 'worst'; it must be one of last_step, best_val"),
    Case("test-split-unknown", ("TEST.SPLIT", "train"), "TEST.SPLIT is 'train'"),
    Case("seed-negative", ("SEED", "-5"), "SEED is -5; it must be a whole number in [-1, "),
    # Absurd but finite values of this trainer's keys (config.py's bounds).
    Case("vis-tokens-absurd", ("TRAINER.DAPT_INIT.VIS_NUM_TOKENS", "100000000"),
         "TRAINER.DAPT_INIT.VIS_NUM_TOKENS is 100000000; it must be a whole number from 1 to 1024"),
    Case("txt-tokens-past-context", ("TRAINER.DAPT_INIT.TXT_NUM_TOKENS", "100"),
         "TRAINER.DAPT_INIT.TXT_NUM_TOKENS is 100; it must be a whole number from 1 to 73"),
    Case("vis-beta-absurd", ("TRAINER.DAPT_INIT.VIS_BETA", "1e300"),
         "TRAINER.DAPT_INIT.VIS_BETA is 1e+300; it must be a finite number from 0 to 10000"),
    Case("txt-beta-inf", ("TRAINER.DAPT_INIT.TXT_BETA", "1e309"), "TRAINER.DAPT_INIT.TXT_BETA is inf"),
    Case("rbf-t-negative", ("TRAINER.DAPT_INIT.TXT_RBF_T", "-1.0"), "TRAINER.DAPT_INIT.TXT_RBF_T is -1.0"),
    Case("noise-scale-absurd", ("TRAINER.DAPT_INIT.INIT_NOISE_SCALE", "1000000.0"),
         "TRAINER.DAPT_INIT.INIT_NOISE_SCALE is 1000000.0"),
    # Family 7: a damaged result.json in the output folder is named as such, not as old.
    Case("result-corrupt", (), "result.json is corrupt (", key="result.json",
         setup=_corrupt_result),
    Case("result-not-an-object", (), "it holds a JSON list, not an object", key="result.json",
         setup=_result_list),
    Case("fingerprint-5", (), "a fingerprint that this trainer never writes (5: the file was "
                              "edited or damaged)", key="fingerprint", setup=_result_with_fingerprint_5),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return prepared_workdir(tmp_path_factory.mktemp("bad_inputs"))


@requires_toolbox
@pytest.mark.parametrize("case", BAD_INPUTS, ids=[case.id for case in BAD_INPUTS])
def test_bad_input_is_one_error_line_and_changes_nothing(capsys, monkeypatch, workdir, tmp_path,
                                                         case):
    output = tmp_path / "run"
    output.mkdir()
    (output / "notes.txt").write_text("a file that was here before\n")  # must stay as it is
    if case.setup is not None:
        case.setup(output)
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # whatever a run installs is undone
    watched = (output, workdir / "data")
    before = snapshot(*watched)
    status = train.run(argv(workdir, output, *case.opts, flags=case.flags))
    err = capsys.readouterr().err
    line = one_error_line(err)  # exactly one error: line, no traceback
    assert status == 2
    assert err.count("\n") == 1, err  # nothing else on stderr
    assert case.expected in line
    assert case.named in line
    assert snapshot(*watched) == before


def test_the_table_is_large_and_its_ids_unique():
    assert len(BAD_INPUTS) >= 25
    assert len({case.id for case in BAD_INPUTS}) == len(BAD_INPUTS)


# ----------------------------------------------------------------------------------------------
# The key table itself (no toolbox needed)
# ----------------------------------------------------------------------------------------------


def _example_value(rule: toolbox_keys.Rule):
    import ast

    text = rule.example
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word: a choice


@pytest.mark.parametrize("rule", toolbox_keys.TOOLBOX_KEYS, ids=lambda rule: rule.key)
def test_each_rules_example_is_allowed_and_nan_never_is(rule):
    """The fix a message suggests passes its own rule; nan and inf pass no numeric rule."""
    assert toolbox_keys.value_ok(rule, _example_value(rule)), rule
    if rule.kind in ("int", "float"):
        for bad in (math.nan, math.inf, -math.inf, True):
            assert not toolbox_keys.value_ok(rule, bad), (rule.key, bad)


def test_a_key_missing_from_the_config_is_skipped_and_a_bad_one_named():
    from yacs.config import CfgNode

    cfg = CfgNode({"OPTIM": CfgNode({"LR": float("nan")})})
    with pytest.raises(DaptInitError, match=r"^OPTIM.LR is nan; it must be a finite number in "
                                            r"\(0, 1000\], e.g. 'OPTIM.LR 0.002'.$"):
        toolbox_keys.validate_toolbox_keys(cfg)
    toolbox_keys.validate_toolbox_keys(CfgNode({"OPTIM": CfgNode({"LR": 0.002})}))


@requires_toolbox
def test_the_tables_choices_are_the_toolboxs():
    from dassl.data.transforms.transforms import AVAI_CHOICES, INTERPOLATION_MODES
    from dassl.optim.optimizer import AVAI_OPTIMS

    assert set(toolbox_keys.OPTIMIZERS) == set(AVAI_OPTIMS)
    assert set(toolbox_keys.TRANSFORMS) == set(AVAI_CHOICES)
    assert set(toolbox_keys.INTERPOLATIONS) == set(INTERPOLATION_MODES)


@requires_toolbox
def test_every_table_key_exists_and_the_toolbox_defaults_pass():
    from dassl.config import get_cfg_default

    cfg = get_cfg_default()
    for rule in toolbox_keys.TOOLBOX_KEYS:
        assert toolbox_keys._lookup(cfg, rule.key)[0], rule.key  # no typo in the table
    toolbox_keys.validate_toolbox_keys(cfg)


@requires_toolbox
@pytest.mark.parametrize("trainer_config", sorted(
    (REPO / "configs/trainers/DAPT_Init").glob("*.yaml")), ids=lambda path: path.name)
def test_shipped_configs_pass(trainer_config):
    from dassl.config import get_cfg_default

    from study.config import merge_config_file
    from trainers.dapt_init.config import add_dapt_init_config

    for dataset_config in sorted((REPO / "configs/datasets").glob("*.yaml")):
        cfg = get_cfg_default()
        add_dapt_init_config(cfg)
        merge_config_file(cfg, str(dataset_config), "--dataset-config-file")
        merge_config_file(cfg, str(trainer_config), "--config-file")
        toolbox_keys.validate_toolbox_keys(cfg)


# ----------------------------------------------------------------------------------------------
# Messages: one line, and exactly one warning silenced
# ----------------------------------------------------------------------------------------------


@requires_toolbox
def test_a_multi_line_message_becomes_one_line():
    text = ("EuroSAT: data not found.\nMissing:\n  /d/eurosat/2750/\n  /d/eurosat/split.json\n"
            "Expected layout:\n  eurosat/\n  |-- 2750/\nFix: run tools/prepare_data.py.")
    assert train.one_line(text) == (
        "EuroSAT: data not found. Missing: /d/eurosat/2750/, /d/eurosat/split.json Expected "
        "layout: eurosat/, |-- 2750/ Fix: run tools/prepare_data.py.")


@requires_toolbox
def test_only_the_pkg_resources_warning_is_silenced():
    code = "import train, clip, warnings; warnings.warn('another warning', UserWarning)"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    done = subprocess.run([sys.executable, "-W", "default", "-c", code], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pkg_resources" not in done.stderr
    assert "UserWarning: another warning" in done.stderr


# ----------------------------------------------------------------------------------------------
# Guards that need a real run (one 1-epoch run, shared)
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(workdir, tmp_path_factory) -> dict:
    """A finished 1-epoch run of the demo command (a subprocess: a run installs the toolbox's
    logger on sys.stdout)."""
    output = tmp_path_factory.mktemp("finished") / "run"
    command = train_command(workdir, "random", "OPTIM.MAX_EPOCH", "1", output_dir=output)
    done = run_train(command)
    assert done.returncode == 0, done.stderr[-3000:]
    return {"command": command, "output": output}


def _check(capsys, command: list[str]) -> tuple[int, str]:
    """The finished rule's verdict on ``command`` (its arguments less the script), as the
    scripts print it: a skip line, an error line, or why it is not finished."""
    from study.config import run_verdict

    status, message = run_verdict(command[2:])
    if status == runstate.OTHER_SETTINGS:
        return status, f"error: {message}\n"
    return status, f"{message}\n" if message else ""


def _with_flag(command: list[str], flag: str, value: str) -> list[str]:
    command = list(command)
    command[command.index(flag) + 1] = value
    return command


@requires_toolbox
def test_result_records_the_data_by_relative_path(finished, workdir):
    data = json.loads((finished["output"] / "result.json").read_text())["data"]
    split = workdir / "data/eurosat/split_zhou_EuroSAT.json"
    import hashlib

    assert data["files"] == {"eurosat/split_zhou_EuroSAT.json":
                             hashlib.sha256(split.read_bytes()).hexdigest()}
    assert data["counts"]["train"] == 20 and data["counts"]["test"] > 0  # 10 classes x 2 shots
    assert str(workdir) not in json.dumps(data)  # no absolute path: a moved root matches


@requires_toolbox
def test_finished_only_under_a_root_with_the_same_data(capsys, finished, workdir, tmp_path):
    assert _check(capsys, finished["command"]) == (0, f"skip (finished): {finished['output']}\n")
    moved = tmp_path / "moved"
    shutil.copytree(workdir / "data", moved)
    status, _ = _check(capsys, _with_flag(finished["command"], "--root", str(moved)))
    assert status == 0  # the same content elsewhere is the same data

    split = moved / "eurosat/split_zhou_EuroSAT.json"
    records = json.loads(split.read_text())
    records["test"] = records["test"][:-1]  # one test image fewer: other data
    split.write_text(json.dumps(records))
    status, out = _check(capsys, _with_flag(finished["command"], "--root", str(moved)))
    assert status == 2
    line = one_error_line(out)
    assert "other data" in line and "eurosat/split_zhou_EuroSAT.json (other contents" in line

    split.unlink()
    status, out = _check(capsys, _with_flag(finished["command"], "--root", str(moved)))
    assert status == 2 and "split_zhou_EuroSAT.json (missing under DATASET.ROOT" in out


@requires_toolbox
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_result_with_non_finite_metrics_is_not_finished(capsys, finished, tmp_path, value):
    copy = tmp_path / "run"
    shutil.copytree(finished["output"], copy)
    path = copy / "result.json"
    record = json.loads(path.read_text())
    record["metrics"]["accuracy"] = value
    path.write_text(json.dumps(record))  # NaN / Infinity: what json writes for them
    status, out = _check(capsys, _with_flag(finished["command"], "--output-dir", str(copy)))
    assert status == 3
    assert f"not finished: {path} holds no finite metrics (accuracy {value!r})" in out


def _poisoned_resume(finished: dict, tmp_path: Path, poison: Callable[[dict], None]
                     ) -> tuple[list[str], Path]:
    """A 2-epoch command whose folder holds the finished run's epoch-1 checkpoint, recorded
    for this command, with ``poison`` applied to it."""
    output = tmp_path / "run"
    command = _with_flag(finished["command"], "--output-dir", str(output))
    command = command + ["OPTIM.MAX_EPOCH", "2"]
    shutil.copytree(finished["output"] / "prompt_learner", output / "prompt_learner")
    path = output / "prompt_learner/model.pth.tar-1"
    checkpoint = torch.load(path, weights_only=True)
    from study.command import resolve_command

    identity = runstate.command_identity(resolve_command(train.parse_args(command[2:])).cfg)
    checkpoint["run"] = identity.record()  # the same run, as far as the resume check goes
    poison(checkpoint)
    torch.save(checkpoint, path)
    return command, output


def _nan_prompts(checkpoint: dict) -> None:
    checkpoint["state_dict"]["txt_ctx"] = torch.full_like(checkpoint["state_dict"]["txt_ctx"],
                                                          math.nan)


def _inf_momentum(checkpoint: dict) -> None:
    """Finite prompts and loss; the first update (momentum buffer inf) overflows them."""
    states = checkpoint["optimizer"]["state"]
    assert states, "SGD with momentum keeps a buffer per prompt tensor"
    for state in states.values():
        state["momentum_buffer"] = torch.full_like(state["momentum_buffer"], math.inf)


@requires_toolbox
@pytest.mark.parametrize("poison, expected", [
    (_nan_prompts, "the loss is nan; the prompts were already non-finite when this step began"),
    (_inf_momentum, "made the prompts non-finite; the likely cause is a learning rate or loss "
                    "weights too high for these settings (OPTIM.LR 20"),
], ids=["nan-prompts", "overflowing-update"])
def test_a_diverged_run_stops_without_a_result_and_keeps_its_checkpoints(finished, tmp_path,
                                                                         poison, expected):
    command, output = _poisoned_resume(finished, tmp_path, poison)
    before = {path: state for path, state in snapshot(output).items() if Path(path).is_file()}
    done = run_train(command)
    assert done.returncode == 2, done.stderr[-3000:]
    line = one_error_line(done.stderr)
    assert line.startswith("error: training stopped at epoch 2/2, batch 1/")
    assert expected in line and "No result.json was written" in line
    assert not (output / "result.json").exists()
    after = snapshot(output)
    assert {path: after[path] for path in before} == before  # the checkpoint is kept as it was
    assert not any(name.endswith("model.pth.tar-2") for name in after)
