"""study/inputs.py: every path and variable the scripts, the sweep and train.py are given is
checked before any work starts: one `error:` line naming the value, exit status 2, no job
started and nothing made under OUTPUT_ROOT (issue 25, family 5)."""
from __future__ import annotations

import argparse
import errno
import os
import subprocess
import sys

import pytest

from study import inputs
from study.command import check_command_paths
from study.run import StudyError
from tests.support.scripts_helpers import REPO, error_lines, fake  # noqa: F401  (fake: a fixture)
from tests.support.toolbox import requires_toolbox
from trainers.dapt_init.errors import DaptInitError

LONG = "a" * 240  # a 240-character TAG or grid value: its folder name is over 255 bytes
AS_ROOT = os.geteuid() == 0  # root writes into read-only folders: that case cannot be made


def _setup(root) -> dict[str, str]:
    """The hostile things a case points at, made under ``root``."""
    (root / "a_file").write_text("not a folder\n")
    (root / "dangling").symlink_to(root / "purged_scratch")
    (root / "loop1").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop1")
    (root / "read_only").mkdir()
    (root / "read_only").chmod(0o555)
    return {"FILE": str(root / "a_file"), "DANGLING": str(root / "dangling"),
            "LOOP": str(root / "loop1"), "RO": str(root / "read_only")}


# (script, arguments, environment ({NAME} from _setup), words the one error line holds)
CASES = {
    "output-root-dangling": ("sweep.sh", ["--dry-run"], {"OUTPUT_ROOT": "{DANGLING}"},
                             "which does not exist (a purged scratch folder?)"),
    "output-root-file": ("main.sh", ["eurosat", "diff", "1"], {"OUTPUT_ROOT": "{FILE}"},
                         "is a file, not a folder"),
    "output-root-under-file": ("sweep.sh", ["--dry-run"], {"OUTPUT_ROOT": "{FILE}/out"},
                               "is a file, not a folder"),
    "output-root-loop": ("main.sh", ["eurosat", "diff", "1"], {"OUTPUT_ROOT": "{LOOP}/out"},
                         "is a symlink loop"),
    "sweep-log-dir-file": ("sweep.sh", [], {"SWEEP_LOG_DIR": "{FILE}", "GPUS": "cpu"},
                           "SWEEP_LOG_DIR='"),
    "long-tag": ("main.sh", ["eurosat", "diff", "1"], {"TAG": LONG},
                 "bytes, more than the 255 a file name may have"),
    "long-tag-sweep": ("sweep.sh", ["--dry-run"], {"TAG": LONG}, "more than the 255"),
    "long-grid-value": ("sweep.sh", ["--dry-run", "--grid", f"OPTIM.NAME={LONG}"], {},
                        "more than the 255"),
    "seeds-empty": ("main.sh", ["eurosat", "diff", "1"], {"SEEDS": ""},
                    "SEEDS is set but empty"),
    "seeds-empty-sweep": ("sweep.sh", ["--dry-run"], {"SEEDS": ""}, "SEEDS is set but empty"),
    "seeds-repeated": ("main.sh", ["eurosat", "diff", "1"], {"SEEDS": "1 2 1"},
                       "SEEDS lists 1 more than once"),
    "seeds-repeated-as-01": ("sweep.sh", ["--dry-run"], {"SEEDS": "1 01"},
                             "more than once"),
    "seeds-arabic-digit": ("main.sh", ["eurosat", "diff", "1"], {"SEEDS": "\u0661"},
                           "SEEDS must be non-negative integers"),
    "seeds-above-numpy": ("sweep.sh", ["--dry-run"], {"SEEDS": "4294967296"},
                          "the largest seed numpy takes"),
    "gpus-words": ("sweep.sh", [], {"GPUS": "x y"}, "got 'x'"),
    "gpu-argument": ("main.sh", ["eurosat", "diff", "1", "x"], {}, "got 'x'"),
}
READ_ONLY = {
    "output-root-read-only": ("sweep.sh", [], {"OUTPUT_ROOT": "{RO}/out", "GPUS": "cpu"},
                              "is read-only for you"),
    "sweep-log-dir-read-only": ("sweep.sh", [], {"SWEEP_LOG_DIR": "{RO}", "GPUS": "cpu"},
                                "is read-only for you"),
}
ALL = {**CASES, **READ_ONLY}
BASE = {"DATASETS": "eurosat", "INITS": "diff", "SHOTS": "1", "SEEDS": "1"}


@pytest.mark.parametrize("case", [
    *CASES, *(pytest.param(c, marks=pytest.mark.skipif(AS_ROOT, reason="root writes anywhere"))
              for c in READ_ONLY)])
def test_a_bad_path_or_variable_is_one_error_line_before_any_work(fake, case):
    script, args, env, words = ALL[case]
    made = _setup(fake.root)
    env = {**(BASE if script == "sweep.sh" else {}), **env}
    env = {k: v.format(**made) for k, v in env.items()}
    before = sorted(fake.root.rglob("*"), key=str)
    done = fake.run(script, *args, **env)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = error_lines(done)
    assert len(lines) == 1 and words in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert fake.calls() == []  # no train.py started
    assert sorted(fake.root.rglob("*"), key=str) == before  # no folder, no log made


def test_a_relative_codebase_is_resolved_once_against_the_callers_folder(fake):
    # Checked and used against the same folder: the caller's, not the repository's.
    host = fake.root / "hosts" / "CoOp"
    (host / "configs/datasets").mkdir(parents=True)
    (host / "configs/datasets/eurosat.yaml").write_text("DATASET:\n  NAME: EuroSAT\n")
    (host / "configs/trainers/DAPT_Init").mkdir(parents=True)
    for config in (REPO / "configs/trainers/DAPT_Init").glob("*.yaml"):
        (host / "configs/trainers/DAPT_Init" / config.name).write_text(config.read_text())
    (host / "train.py").write_text("# a host's train.py\n")
    done = fake.run("sweep.sh", "--dry-run", CODEBASE="hosts/CoOp", **BASE)
    assert done.returncode == 0, done.stderr
    assert "1 jobs" in done.stdout
    # The repository has a hosts/CoOp neither; from another folder it is named as missing.
    (fake.root / "elsewhere").mkdir()
    done = subprocess.run(["bash", str(REPO / "scripts/dapt_init/sweep.sh"), "--dry-run"],
                          cwd=fake.root / "elsewhere", capture_output=True, text=True,
                          env={**os.environ, **fake.env, **BASE, "CODEBASE": "hosts/CoOp"})
    assert done.returncode == 2
    assert error_lines(done) == [
        "error: CODEBASE='hosts/CoOp' has no train.py; point it at the root of the codebase "
        "that holds the drop-in unit (its train.py, trainers/dapt_init/ and configs/)"]


def test_unset_seeds_keep_their_default_and_main_sh_takes_cpu(fake):
    done = fake.run("sweep.sh", "--dry-run", DATASETS="eurosat", INITS="diff", SHOTS="1")
    assert done.returncode == 0, done.stderr
    assert "3 jobs (1 datasets x 1 inits x 1 shots x 3 seeds)" in done.stdout
    done = fake.run("main.sh", "eurosat", "diff", "1", "cpu", SEEDS="1")
    assert done.returncode == 0, done.stderr
    assert [gpu for gpu, _ in fake.calls()] == ["cpu"]


# ------------------------------------------------------------------ train.py's own arguments

def _args(**given) -> argparse.Namespace:
    from study.config import parse_args

    argv = []
    for flag, value in given.items():
        argv += [f"--{flag.replace('_', '-')}", value]
    return parse_args(argv)


def _hostile(tmp_path) -> dict[str, str]:
    made = _setup(tmp_path)
    made["LONG"] = str(tmp_path / ("x" * 300) / "seed1")
    return made


# (train.py arguments ({NAME} from _setup), words of the error)
TRAIN_CASES = {
    "output-dir-empty": ({"output_dir": ""}, "--output-dir is empty"),
    "output-dir-loop": ({"output_dir": "{LOOP}"}, "is a symlink loop"),
    "output-dir-dangling": ({"output_dir": "{DANGLING}/seed1"}, "which does not exist"),
    "output-dir-file": ({"output_dir": "{FILE}"}, "is a file, not a folder"),
    "output-dir-long-name": ({"output_dir": "{LONG}"}, "300 bytes, more than the 255"),
    "seed-negative": ({"seed": "-5"},
                      "--seed must be from 0 to 4294967295 (fixed) or -1 (unseeded), got -5"),
    "seed-above-numpy": ({"seed": "4294967296"}, "--seed must be from 0 to 4294967295"),
    "resume-missing": ({"resume": "{FILE}.gone"}, "does not exist"),
    "resume-file": ({"resume": "{FILE}"}, "is a file"),
    "resume-empty": ({"resume": ""}, "does not exist"),
}


@pytest.mark.parametrize("case", TRAIN_CASES)
def test_train_py_refuses_a_bad_path_or_seed_before_the_config_is_built(tmp_path, case):
    given, words = TRAIN_CASES[case]
    made = _hostile(tmp_path)
    args = _args(**{k: v.format(**made) for k, v in given.items()})
    with pytest.raises(DaptInitError) as refused:
        check_command_paths(args)
    assert words in str(refused.value) and "\n" not in str(refused.value)


def test_train_py_takes_the_toolboxs_unseeded_minus_one_and_ungiven_paths(tmp_path):
    check_command_paths(_args(seed="-1", output_dir=str(tmp_path / "new" / "seed1")))
    check_command_paths(_args())
    assert not (tmp_path / "new").exists()  # checked, not made


def test_train_py_says_one_line_for_an_empty_output_dir_instead_of_writing_output(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "train.py"), "--output-dir", "",
                           "--seed", "1"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: --output-dir is empty; give a folder"]
    assert list(tmp_path.iterdir()) == []  # no ./output


def test_a_run_folder_deleted_mid_run_is_told_apart_from_a_missing_file(tmp_path):
    import train

    run_dir = tmp_path / "seed1"
    run_dir.mkdir()
    with pytest.raises(FileNotFoundError) as missing_file:
        open(run_dir / "absent.json")
    assert not train.folder_gone(missing_file.value, str(run_dir))  # its folder is there
    run_dir.rmdir()  # what `rm -r` of the run folder does under a running trainer
    with pytest.raises(FileNotFoundError) as deleted:
        open(run_dir / "checkpoint.tmp", "wb")
    assert deleted.value.errno == errno.ENOENT
    assert train.folder_gone(deleted.value, str(run_dir))
    assert not train.folder_gone(deleted.value, None)
    # Made anew (the toolbox's checkpoint writer does), a folder inside it is still missing.
    run_dir.mkdir()
    with pytest.raises(FileNotFoundError) as inner:
        open(run_dir / "tensorboard" / "events", "ab")
    assert train.folder_gone(inner.value, str(run_dir))
    with pytest.raises(FileNotFoundError) as elsewhere:
        open(tmp_path / "other" / "x", "ab")
    assert not train.folder_gone(elsewhere.value, str(run_dir))  # not the run's own write


@pytest.mark.parametrize("text, ok", [
    ("0", True), ("0,1", True), ("GPU-8a1b2c3d-0000-1111", True), ("MIG-GPU-ab/1/0", True),
    ("x", False), ("0 1", False), ("0,", False), ("-1", False), ("cpu", False), ("$(id)", False)])
def test_a_gpu_is_an_index_list_or_uuid(text, ok):
    if ok:
        inputs.check_gpu(text)
    else:
        with pytest.raises(StudyError, match="CUDA_VISIBLE_DEVICES"):
            inputs.check_gpu(text)
    inputs.check_gpu("cpu", cpu=True)


def test_name_length_is_counted_in_bytes():
    inputs.check_components("/x/" + "a" * 255, "OUTPUT_ROOT")
    with pytest.raises(StudyError, match="256 bytes"):
        inputs.check_components("/x/" + "é" * 128, "OUTPUT_ROOT")  # 128 characters, 256 bytes


# train.py with its run folder removed (as `rm -r` would) when the first epoch ends, before
# that epoch's checkpoint is written; the rest is the real train.py and toolbox.
_DELETE_AT_FIRST_EPOCH_END = (
    "import runpy, shutil, sys; sys.argv = sys.argv[1:]\n"
    "import trainers.dapt_init.trainer as t; original = t.DAPT_Init.after_epoch\n"
    "def after_epoch(self):\n"
    "    shutil.rmtree(self.output_dir)\n"
    "    original(self)\n"
    "t.DAPT_Init.after_epoch = after_epoch; runpy.run_path(sys.argv[0], run_name='__main__')"
)


@requires_toolbox
def test_a_run_folder_deleted_mid_run_stops_the_run_with_one_line(tmp_path):
    from tests.support.integration import prepared_workdir, run_train, train_command

    workdir = prepared_workdir(tmp_path / "work")
    run_dir = tmp_path / "run" / "seed1"
    command = train_command(workdir, "diff", output_dir=run_dir)
    done = run_train([command[0], "-c", _DELETE_AT_FIRST_EPOCH_END] + command[1:])
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr  # nor a writer thread's
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith(f"error: the run folder {run_dir} was deleted while the run "
                                "went on (")
