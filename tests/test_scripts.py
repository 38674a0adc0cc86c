"""The experiment scripts in scripts/dapt_init/ (main, sweep, eval, base2new_train/test).

Most tests run the scripts with ``bash`` and a stand-in for python (``fake_python`` below) that
records each train.py command and leaves a finished run behind, so argument checks, config
choice, folder layout, skip/resume and the GPU pool are tested without the toolbox. The tests
marked ``requires_toolbox`` run the real train.py on tiny generated data with a small random
CLIP. Every script runs with a working directory outside the repository (they cd there).
"""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.toolbox import requires_toolbox

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts" / "dapt_init"

# Environment the scripts read; cleared so the caller's shell cannot leak into a test.
SCRIPT_ENV = ("DATA_ROOT", "OUTPUT_ROOT", "SEEDS", "CFG", "LOAD_EPOCH", "PYTHON", "TARGETS",
              "DATASETS", "INITS", "SHOTS", "GPUS", "SWEEP_LOG_DIR", "SWEEP_JOB_NAME",
              "SWEEP_TIME", "SWEEP_CPUS", "SWEEP_MAX_PARALLEL", "SWEEP_SBATCH",
              "CUDA_VISIBLE_DEVICES", "SLURM_ARRAY_TASK_ID", "VIS_INIT", "VIS_INITS", "TAG",
              "EPOCHS", "TRIAL", "DEMO_DIR", "CODEBASE")

FAKE_PYTHON = r"""#!/usr/bin/env bash
# Stands in for python: records the call (CUDA_VISIBLE_DEVICES|arguments), then leaves a finished
# run (result.json) in --output-dir, or fails with status 7 when FAKE_FAIL is in that folder.
# A --check-finished call (the scripts' skip test) is the real train.py's; the result.json it
# leaves is the one a finished run of the command would have (tests/fake_train.py), so the
# real finished rule (train.py's, and the sweep's in-process one) judges it.
# With FAKE_LOCKS it also holds a per-GPU lock while it runs and waits (up to 20 s) until
# FAKE_BARRIER calls have started, so a pool that ran jobs one after another would time out.
set -u
out="" prev=""
for arg in "$@"; do
    [[ "$prev" == --output-dir ]] && out=$arg
    prev=$arg
done
if [[ " $* " == *" --check-finished "* ]]; then  # train.py's finished rule, unrecorded
    exec "$REAL_PYTHON" "$@"
fi
printf '%s|%s\n' "${CUDA_VISIBLE_DEVICES-unset}" "$*" >>"$FAKE_LOG"
[[ -z "${FAKE_CWD:-}" ]] || pwd >>"$FAKE_CWD"
lock=""
if [[ -n "${FAKE_LOCKS:-}" ]]; then
    lock="$FAKE_LOCKS/gpu_${CUDA_VISIBLE_DEVICES-none}"
    if ! mkdir "$lock" 2>/dev/null; then
        echo "two jobs at once on GPU $CUDA_VISIBLE_DEVICES" >&2
        exit 3
    fi
    : >"$FAKE_LOCKS/started_$$"
    for ((n = 0; ; n++)); do
        started=("$FAKE_LOCKS"/started_*)
        ((${#started[@]} >= FAKE_BARRIER)) && break
        ((n < 400)) || { echo "no other job started alongside" >&2; rmdir "$lock"; exit 4; }
        sleep 0.05
    done
fi
if [[ -n "${FAKE_FAIL:-}" && "$out" == *"$FAKE_FAIL"* ]]; then
    echo "fake failure" >&2
    [[ -n "$lock" ]] && rmdir "$lock"
    exit 7
fi
shift  # train.py
"$REAL_PYTHON" "$FAKE_TRAIN" "$@" || exit 5
[[ -n "$lock" ]] && rmdir "$lock"
exit 0
"""


def run_script(name: str, *args: str, env: dict[str, str], cwd: Path,
               timeout: int = 60) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    full_env.update(PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")
    full_env.update(env)
    return subprocess.run(["bash", str(SCRIPTS / name), *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


class Fake:
    """A temporary working area: data root, output root and the recording python."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.data.mkdir()
        self.out = root / "out"
        self.calls_file = root / "calls.log"
        self.python = root / "fake_python"
        self.python.write_text(FAKE_PYTHON)
        self.python.chmod(0o755)
        self.env = {"DATA_ROOT": str(self.data), "OUTPUT_ROOT": str(self.out),
                    "PYTHON": str(self.python), "FAKE_LOG": str(self.calls_file),
                    "REAL_PYTHON": sys.executable,
                    "FAKE_TRAIN": str(REPO / "tests" / "fake_train.py")}

    def run(self, name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        return run_script(name, *args, env={**self.env, **env}, cwd=self.root)

    def calls(self) -> list[tuple[str, list[str]]]:
        """(CUDA_VISIBLE_DEVICES, train.py arguments) of each recorded call."""
        if not self.calls_file.exists():
            return []
        rows = [line.split("|", 1) for line in self.calls_file.read_text().splitlines()]
        return [(gpu, args.split(" ")) for gpu, args in rows]

    def finish(self, script: str, *args: str, **env: str) -> None:
        """Finished runs, as the script leaves them (the calls are not kept)."""
        done = self.run(script, *args, **env)
        assert done.returncode == 0, done.stderr
        self.calls_file.unlink()


def arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.fixture()
def fake(tmp_path) -> Fake:
    return Fake(tmp_path)


# ------------------------------------------------------------------------------ bad input

BAD_INPUT = [
    # (script, args, environment changes, expected message)
    ("main.sh", [], {}, "expected 3 to 4 arguments"),
    ("main.sh", ["eurosat", "diff"], {}, "expected 3 to 4 arguments"),
    ("main.sh", ["eurosat", "diff", "1", "0", "OPTIM.LR", "1"], {}, "expected 3 to 4 arguments"),
    ("main.sh", ["cifar10", "diff", "1"], {},
     ("unknown dataset 'cifar10'; valid datasets: caltech101 dtd eurosat fgvc_aircraft food101 "
      "imagenet oxford_flowers oxford_pets stanford_cars sun397 ucf101")),
    ("main.sh", ["imagenet_a", "diff", "1"], {}, "'imagenet_a' is a test-only target set"),
    ("main.sh", ["eurosat", "sideways", "1"], {},
     "unknown init method 'sideways'; valid init methods: random same diff"),
    ("main.sh", ["eurosat", "diff", "0"], {}, "shots must be a positive integer"),
    ("main.sh", ["eurosat", "diff", "-4"], {}, "shots must be a positive integer"),
    ("main.sh", ["eurosat", "diff", "two"], {}, "shots must be a positive integer"),
    ("main.sh", ["eurosat", "diff", "1.5"], {}, "shots must be a positive integer"),
    ("main.sh", ["eurosat", "diff", "3"], {}, "no default trainer config for 3 shots"),
    ("main.sh", ["eurosat", "diff", "1"], {"CFG": "vit_b99"},
     "unknown trainer config CFG='vit_b99'; valid configs"),
    ("main.sh", ["eurosat", "diff", "1"], {"DATA_ROOT": ""}, "DATA_ROOT is not set"),
    ("main.sh", ["eurosat", "diff", "1"], {"DATA_ROOT": "/nonexistent/data"},
     "DATA_ROOT='/nonexistent/data' is not a directory"),
    ("main.sh", ["eurosat", "diff", "1"], {"SEEDS": "1 two"}, "SEEDS must be non-negative"),
    ("main.sh", ["eurosat", "diff", "1", "0;ls"], {}, "GPU must be a device index"),
    ("main.sh", ["eurosat", "diff", "1", "--", "OPTIM.LR"], {}, "come in KEY VALUE pairs"),
    ("main.sh", ["eurosat", "diff", "1", "--", "--eval-only", "x"], {},
     "'--eval-only' is not a config key"),
    ("main.sh", ["eurosat", "diff", "1", "--", "DATASET.NUM_SHOTS", "4"], {},
     "DATASET.NUM_SHOTS is set by this script from the SHOTS argument"),
    ("main.sh", ["eurosat", "diff", "1", "--", "SEED", "4"], {}, "SEED is set by this script"),
    ("eval.sh", ["diff"], {}, "expected 2 to 3 arguments"),
    ("eval.sh", ["sideways", "16"], {}, "unknown init method 'sideways'"),
    ("eval.sh", ["diff", "sixteen"], {}, "shots must be a positive integer"),
    ("eval.sh", ["diff", "16"], {"TARGETS": "imagenetv2 imagenet_z"},
     "unknown dataset 'imagenet_z'"),
    ("eval.sh", ["diff", "16"], {"DATA_ROOT": ""}, "DATA_ROOT is not set"),
    ("base2new_train.sh", ["eurosat"], {}, "expected 2 to 3 arguments"),
    ("base2new_train.sh", ["cifar10", "diff"], {}, "unknown dataset 'cifar10'"),
    ("base2new_train.sh", ["eurosat", "diff", "0", "--", "DATASET.SUBSAMPLE_CLASSES", "all"], {},
     "DATASET.SUBSAMPLE_CLASSES is set by this script"),
    ("base2new_test.sh", ["eurosat", "sideways"], {}, "unknown init method 'sideways'"),
    ("base2new_test.sh", ["eurosat", "diff"], {"DATA_ROOT": "/nonexistent/data"},
     "is not a directory"),
    ("sweep.sh", ["--bogus"], {}, "unknown argument '--bogus'"),
    ("sweep.sh", ["--dry-run", "--slurm"], {}, "give at most one of --dry-run and --slurm"),
    ("sweep.sh", [], {"DATASETS": "eurosat cifar10"}, "unknown dataset 'cifar10'"),
    ("sweep.sh", [], {"INITS": "random sideways"}, "unknown init method 'sideways'"),
    ("sweep.sh", [], {"SHOTS": "1 0"},
     "shots must be a positive integer (1, 2, 4, 8, 16, ...), got '0'"),
    ("sweep.sh", [], {"SHOTS": "1 32"}, "no default trainer config for 32 shots"),
    ("sweep.sh", [], {"SEEDS": "1 -2"}, "SEEDS must be non-negative"),
    ("sweep.sh", [], {"GPUS": "0 1;2"}, "GPU must be a device index"),
    ("sweep.sh", [], {"DATA_ROOT": ""}, "DATA_ROOT is not set"),
    ("sweep.sh", ["--", "OPTIM.MAX_EPOCH"], {}, "come in KEY VALUE pairs"),
    ("sweep.sh", [], {"GRID": "OPTIM.LR=1"}, "GRID is main.sh's (one point of a grid)"),
    ("sweep.sh", ["--grid", "OPTIM.MAX_EPOCH"], {}, "--grid takes KEY=VALUE1,VALUE2,..., got "),
    ("sweep.sh", ["--grid", "OPTIM.MAX_EPOCH=1,,2"], {}, "--grid takes KEY=VALUE1,VALUE2"),
    ("sweep.sh", ["--grid", "SEED=1,2"], {}, "SEED is set by this script from SEEDS"),
    ("sweep.sh", ["--grid", "optim.lr=1,2"], {}, "'optim.lr' is not a config key"),
    ("sweep.sh", ["--grid", "OPTIM.MAX_EPOCH=1,2"], {"EPOCHS": "5"},
     "OPTIM.MAX_EPOCH has two grids"),
    ("sweep.sh", ["--grid", "OPTIM.LR=1,2", "--", "OPTIM.LR", "3"], {},
     "OPTIM.LR is set by the grid; don't pass it as an override too"),
]


BAD_INPUT_IDS = [f"{s}:{' '.join(a) or '-'}:{' '.join(e)}" for s, a, e, _ in BAD_INPUT]


@pytest.mark.parametrize("script,args,env,message", BAD_INPUT, ids=BAD_INPUT_IDS)
def test_bad_input_gives_one_message_and_runs_nothing(fake, script, args, env, message):
    done = fake.run(script, *args, **env)
    assert done.returncode == 2, done.stdout + done.stderr
    errors = error_lines(done)
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert fake.calls() == [] and not fake.out.exists()


@pytest.mark.parametrize("script", ["main.sh", "eval.sh", "base2new_train.sh",
                                    "base2new_test.sh", "sweep.sh"])
def test_usage_line_on_wrong_arguments_and_help(fake, script):
    done = fake.run(script, "a", "b", "c", "d", "e", "f")
    assert done.returncode == 2
    assert done.stderr.startswith(f"usage: bash scripts/dapt_init/{script} ")
    helped = fake.run(script, "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: ")
    assert "DATA_ROOT" in helped.stdout and fake.calls() == []


# ------------------------------------------------------------------------------ main.sh


@pytest.mark.parametrize("dataset,shots,cfg", [
    ("eurosat", "1", "vit_b16_ep50"), ("eurosat", "2", "vit_b16_ep100"),
    ("oxford_pets", "4", "vit_b16_ep100"), ("eurosat", "8", "vit_b16"),
    ("eurosat", "16", "vit_b16"), ("imagenet", "16", "vit_b16_ep50"),
    ("imagenet", "2", "vit_b16_ep50"),
])
def test_trainer_config_is_chosen_by_shots_as_dapt_does(fake, dataset, shots, cfg):
    done = fake.run("main.sh", dataset, "random", shots, SEEDS="1")
    assert done.returncode == 0, done.stderr
    [(_, args)] = fake.calls()
    assert arg(args, "--config-file") == f"configs/trainers/DAPT_Init/{cfg}.yaml"
    assert arg(args, "--output-dir") == str(
        fake.out / dataset / "DAPT_Init/random" / f"{cfg}_{shots}shots/seed1")


def test_cfg_environment_variable_overrides_the_choice(fake):
    done = fake.run("main.sh", "eurosat", "same", "3", SEEDS="2", CFG="demo_small")
    assert done.returncode == 0, done.stderr
    [(_, args)] = fake.calls()
    assert arg(args, "--config-file") == "configs/trainers/DAPT_Init/demo_small.yaml"
    assert arg(args, "--output-dir").endswith("eurosat/DAPT_Init/same/demo_small_3shots/seed2")


def test_main_runs_each_seed_with_the_full_command_then_skips_them(fake):
    # A value with a space and parentheses, one ViT-B/16 accepts (the skip test below is the
    # real train.py's finished rule, which refuses a 32x32 input for that CLIP).
    done = fake.run("main.sh", "eurosat", "diff", "4", "1", "--", "OPTIM.MAX_EPOCH", "7",
                    "INPUT.SIZE", "(224, 224)")
    assert done.returncode == 0, done.stderr
    calls = fake.calls()
    assert [arg(args, "--seed") for _, args in calls] == ["1", "2", "3"]
    for (gpu, args), seed in zip(calls, "123"):
        run_dir = fake.out / f"eurosat/DAPT_Init/diff/vit_b16_ep100_4shots/seed{seed}"
        assert gpu == "1"
        assert args[:2] == ["train.py", "--root"] and arg(args, "--root") == str(fake.data)
        assert arg(args, "--trainer") == "DAPT_Init"
        assert arg(args, "--dataset-config-file") == "configs/datasets/eurosat.yaml"
        assert arg(args, "--output-dir") == str(run_dir)
        tail = " ".join(args[args.index("TRAINER.DAPT_INIT.INIT_METHOD"):])
        assert tail == "TRAINER.DAPT_INIT.INIT_METHOD diff TRAINER.DAPT_INIT.VIS_INIT_METHOD " \
                       "random DATASET.NUM_SHOTS 4 OPTIM.MAX_EPOCH 7 INPUT.SIZE (224, 224)"
        assert (run_dir / "result.json").exists()
    printed = [line for line in done.stdout.splitlines() if line.startswith("+ ")]
    assert len(printed) == 3 and printed[0].startswith("+ CUDA_VISIBLE_DEVICES=1 ")
    assert "train.py" in printed[0] and "seed1" in printed[0]

    again = fake.run("main.sh", "eurosat", "diff", "4", "1", "--", "OPTIM.MAX_EPOCH", "7",
                     "INPUT.SIZE", "(224, 224)")
    assert again.returncode == 0
    assert again.stdout.splitlines() == [
        f"skip (finished): {fake.out}/eurosat/DAPT_Init/diff/vit_b16_ep100_4shots/seed{s}"
        for s in "123"]
    assert len(fake.calls()) == 3


def test_relative_roots_are_taken_from_the_callers_directory(fake):
    done = fake.run("main.sh", "eurosat", "random", "1", SEEDS="5", DATA_ROOT="data",
                    OUTPUT_ROOT="rel_out")
    assert done.returncode == 0, done.stderr
    [(gpu, args)] = fake.calls()
    assert gpu == "unset"  # no GPU argument: CUDA_VISIBLE_DEVICES left alone
    assert arg(args, "--root") == str(fake.data)
    assert (fake.root / "rel_out/eurosat/DAPT_Init/random/vit_b16_ep50_1shots/seed5"
            / "result.json").exists()


def test_the_first_failing_run_stops_main_with_its_exit_status(fake):
    done = fake.run("main.sh", "eurosat", "same", "2", FAKE_FAIL="seed2")
    assert done.returncode == 7
    assert [arg(args, "--seed") for _, args in fake.calls()] == ["1", "2"]
    assert "error: exit status 7 from the run in" in done.stderr
    assert not (fake.out / "eurosat/DAPT_Init/same/vit_b16_ep100_2shots/seed3").exists()


def test_only_a_run_with_a_result_counts_as_finished(fake):
    base = fake.out / "eurosat/DAPT_Init/random/vit_b16_ep100_2shots"
    logs = {
        # A log alone does not say which settings made it (train.py's rule needs result.json).
        "1": "epoch [2/2]\nFinish training\n=> result\n* total: 10\n* accuracy: 50.0%\n",
        # Killed mid-training, after a validation printed a result: run again.
        "2": "epoch [1/2]\n=> result\n* total: 10\n* accuracy: 40.0%\nepoch [2/2]\n",
        # Training finished but the final test never printed its accuracy: run again.
        "3": "epoch [2/2]\nFinish training\nEvaluate on the *test* set\n",
    }
    for seed, text in logs.items():
        (base / f"seed{seed}").mkdir(parents=True)
        (base / f"seed{seed}/log.txt").write_text(text)
    done = fake.run("main.sh", "eurosat", "random", "2")
    assert done.returncode == 0, done.stderr
    assert [arg(args, "--seed") for _, args in fake.calls()] == ["1", "2", "3"]
    assert f"unfinished run in {base}/seed1: running it again" in done.stdout
    assert f"unfinished run in {base}/seed2: running it again" in done.stdout


# ------------------------------------------------------------------------- eval / base2new


def test_eval_names_the_missing_model_and_the_command_that_makes_it(fake):
    done = fake.run("eval.sh", "diff", "16", SEEDS="1 2")
    assert done.returncode == 2
    [error] = error_lines(done)
    model = fake.out / "imagenet/DAPT_Init/diff/vit_b16_ep50_16shots/seed1"
    assert f"trained model folder {model} is missing" in error
    assert "bash scripts/dapt_init/main.sh imagenet diff 16" in error
    assert "SEEDS=1\\ 2" in error and fake.calls() == []

    model.mkdir(parents=True)  # started, never finished
    (model / "log.txt").write_text("epoch [1/50]\n")
    done = fake.run("eval.sh", "diff", "16", SEEDS="1")
    assert done.returncode == 2 and f"{model} holds an unfinished run" in done.stderr
    assert fake.calls() == [] and not (fake.out / "evaluation").exists()


def test_eval_tests_each_seed_on_the_four_imagenet_variants(fake):
    fake.finish("main.sh", "imagenet", "same", "4", "--", "USE_CUDA", "False", SEEDS="1 2")
    done = fake.run("eval.sh", "same", "4", "0", "--", "USE_CUDA", "False", SEEDS="1 2")
    assert done.returncode == 0, done.stderr
    calls = fake.calls()
    targets = ["imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"]
    assert [(arg(a, "--dataset-config-file"), arg(a, "--seed")) for _, a in calls] == [
        (f"configs/datasets/{t}.yaml", s) for t in targets for s in "12"]
    for gpu, args in calls:
        seed, target = arg(args, "--seed"), arg(args, "--dataset-config-file")[17:-5]
        assert gpu == "0" and "--eval-only" in args and arg(args, "--load-epoch") == "50"
        assert arg(args, "--config-file") == "configs/trainers/DAPT_Init/vit_b16_ep50.yaml"
        assert arg(args, "--model-dir") == str(
            fake.out / f"imagenet/DAPT_Init/same/vit_b16_ep50_4shots/seed{seed}")
        assert arg(args, "--output-dir") == str(
            fake.out / f"evaluation/{target}/DAPT_Init/same/vit_b16_ep50_4shots/seed{seed}")
        assert args[-2:] == ["USE_CUDA", "False"]
    again = fake.run("eval.sh", "same", "4", "0", "--", "USE_CUDA", "False", SEEDS="1 2")
    assert again.stdout.count("skip (finished): ") == 8 and len(fake.calls()) == 8


@pytest.mark.parametrize("env,overrides,epoch", [
    ({}, [], "50"),
    ({"LOAD_EPOCH": "12"}, [], "12"),
    ({}, ["OPTIM.MAX_EPOCH", "5"], "5"),
])
def test_eval_loads_the_configs_last_epoch_unless_told(fake, env, overrides, epoch):
    extra = ["--", *overrides] if overrides else []
    fake.finish("main.sh", "imagenet", "random", "1", *extra, SEEDS="3")
    done = fake.run("eval.sh", "random", "1", *extra, SEEDS="3", TARGETS="imagenet_r", **env)
    assert done.returncode == 0, done.stderr
    [(_, args)] = fake.calls()
    assert arg(args, "--load-epoch") == epoch


def test_base2new_trains_on_base_classes_and_tests_on_new_ones(fake):
    missing = fake.run("base2new_test.sh", "oxford_pets", "diff", SEEDS="1")
    assert missing.returncode == 2
    assert "bash scripts/dapt_init/base2new_train.sh oxford_pets diff" in missing.stderr
    trained = fake.run("base2new_train.sh", "oxford_pets", "diff", SEEDS="1")
    assert trained.returncode == 0, trained.stderr
    tested = fake.run("base2new_test.sh", "oxford_pets", "diff", SEEDS="1")
    assert tested.returncode == 0, tested.stderr
    (_, train), (_, test) = fake.calls()
    tail = "oxford_pets/shots_16/DAPT_Init/diff/vit_b16/seed1"
    assert arg(train, "--output-dir") == str(fake.out / "base2new/train_base" / tail)
    assert " ".join(train[train.index("DATASET.NUM_SHOTS"):]) == \
        "DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base"
    assert arg(test, "--output-dir") == str(fake.out / "base2new/test_new" / tail)
    assert arg(test, "--model-dir") == str(fake.out / "base2new/train_base" / tail)
    assert "--eval-only" in test and arg(test, "--load-epoch") == "200"
    assert " ".join(test[test.index("DATASET.NUM_SHOTS"):]) == \
        "DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES new"


# -------------------------------------------------------------------------------- sweep.sh


def jobs_of(text: str) -> list[tuple[str, ...]]:
    """(dataset, init, shots, seed) of each 'SEEDS=k bash .../main.sh D I S GPU' line."""
    found = re.findall(r"SEEDS=(\d+) bash scripts/dapt_init/main\.sh (\S+) (\S+) (\S+) ", text)
    return [(dataset, init, shots, seed) for seed, dataset, init, shots in found]


def test_sweep_dry_run_lists_datasets_x_inits_x_shots_x_seeds(fake):
    done = fake.run("sweep.sh", "--dry-run")
    assert done.returncode == 0, done.stderr
    expected = [(d, i, s, k) for d in ("eurosat", "oxford_pets") for i in ("random", "same", "diff")
                for s in ("1", "2", "4", "8", "16") for k in "123"]
    assert jobs_of(done.stdout) == expected
    summary = "90 jobs (2 datasets x 3 inits x 5 shots x 3 seeds): 0 finished, 90 to run"
    assert summary in done.stdout

    fake.finish("main.sh", "dtd", "same", "2", SEEDS="7")
    done = fake.run("sweep.sh", "--dry-run", DATASETS="dtd", INITS="same diff", SHOTS="2",
                    SEEDS="7 8")
    assert jobs_of(done.stdout) == [("dtd", "same", "2", "7"), ("dtd", "same", "2", "8"),
                                    ("dtd", "diff", "2", "7"), ("dtd", "diff", "2", "8")]
    assert "job 0 [finished]" in done.stdout and "job 1 [todo]" in done.stdout
    assert "4 jobs (1 datasets x 2 inits x 1 shots x 2 seeds): 1 finished, 3 to run" in done.stdout
    assert fake.calls() == []


def test_sweep_slurm_emits_a_job_array_with_one_task_per_job(fake):
    env = {"DATASETS": "eurosat", "INITS": "random diff", "SHOTS": "1 16", "SEEDS": "1 2",
           "SWEEP_SBATCH": "--partition=gpu --account=lab"}
    done = fake.run("sweep.sh", "--slurm", "--", "OPTIM.MAX_EPOCH", "3", **env)
    assert done.returncode == 0, done.stderr
    script = done.stdout
    assert script.startswith("#!/bin/bash\n")
    for line in ("#SBATCH --array=0-7", "#SBATCH --gres=gpu:1", "#SBATCH --partition=gpu",
                 "#SBATCH --account=lab", f"export DATA_ROOT={fake.data}"):
        assert line + "\n" in script, line
    listed = re.findall(r'^    "(\S+ \S+ \S+ \S+)"  # (\d+)$', script, flags=re.MULTILINE)
    expected = [f"eurosat {i} {s} {k}" for i in ("random", "diff") for s in ("1", "16")
                for k in "12"]
    assert listed == [(job, str(n)) for n, job in enumerate(expected)]
    assert fake.calls() == [] and not fake.out.exists()

    # Task 5 of the array runs job 5 (eurosat diff 1 shot, seed 2) and nothing else.
    batch = fake.root / "sweep.sbatch"
    batch.write_text(script)
    # DATA_ROOT and OUTPUT_ROOT come from the script itself, not from this environment.
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    env.update(PYTHON=str(fake.python), FAKE_LOG=str(fake.calls_file), SLURM_ARRAY_TASK_ID="5",
               REAL_PYTHON=fake.env["REAL_PYTHON"], FAKE_TRAIN=fake.env["FAKE_TRAIN"])
    task = subprocess.run(["bash", str(batch)], cwd=fake.root, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert task.returncode == 0, task.stderr
    [(_, args)] = fake.calls()
    assert arg(args, "--output-dir") == str(
        fake.out / "eurosat/DAPT_Init/diff/vit_b16_ep50_1shots/seed2")
    assert args[-2:] == ["OPTIM.MAX_EPOCH", "3"]


def test_sweep_keeps_each_gpu_busy_with_one_job_at_a_time(fake):
    locks = fake.root / "locks"
    locks.mkdir()
    env = {"DATASETS": "eurosat", "INITS": "same", "SHOTS": "1 2", "SEEDS": "1 2",
           "GPUS": "0 1", "FAKE_LOCKS": str(locks), "FAKE_BARRIER": "2"}
    done = fake.run("sweep.sh", "--", "USE_CUDA", "True", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = fake.calls()
    assert sorted(arg(a, "--output-dir") for _, a in calls) == sorted(
        str(fake.out / f"eurosat/DAPT_Init/same/{cfg}_{s}shots/seed{k}")
        for cfg, s in (("vit_b16_ep50", 1), ("vit_b16_ep100", 2)) for k in (1, 2))
    assert {gpu for gpu, _ in calls} == {"0", "1"}  # both GPUs were used, concurrently
    assert all(a[-2:] == ["USE_CUDA", "True"] for _, a in calls)
    assert "sweep: all 4 jobs finished (4 run now)" in done.stdout
    log = fake.out / "sweep_logs/eurosat_same_2shots_seed1.log"
    assert "train.py" in log.read_text()

    again = fake.run("sweep.sh", **env)
    assert again.returncode == 0 and again.stdout.count("skip (finished): job") == 4
    assert len(fake.calls()) == 4


def test_sweep_finishes_the_other_jobs_then_reports_the_failed_ones(fake):
    env = {"DATASETS": "oxford_pets", "INITS": "random diff", "SHOTS": "8", "SEEDS": "1 2",
           "GPUS": "0 1", "FAKE_FAIL": "random/vit_b16_8shots/seed2"}
    done = fake.run("sweep.sh", **env)
    assert done.returncode == 1
    assert "sweep: 1 of 4 jobs run failed:" in done.stderr
    assert "job 1: oxford_pets init=random shots=8 seed=2: exit status 7 (log: " in done.stderr
    for init, seed in (("random", 1), ("diff", 1), ("diff", 2)):
        assert (fake.out / f"oxford_pets/DAPT_Init/{init}/vit_b16_8shots/seed{seed}"
                / "result.json").exists()
    failed_log = fake.out / "sweep_logs/oxford_pets_random_8shots_seed2.log"
    assert "fake failure" in failed_log.read_text()


def test_sweep_dry_run_counts_every_job_once(fake):
    fake.finish("main.sh", "dtd", "same", "2", SEEDS="7")
    # Seed 8 finished with another learning rate: the sweep's runs are refused there.
    fake.finish("main.sh", "dtd", "same", "2", "--", "OPTIM.LR", "0.5", SEEDS="8")
    done = fake.run("sweep.sh", "--dry-run", DATASETS="dtd", INITS="same diff", SHOTS="2",
                    SEEDS="7 8")
    assert "job 1 [other-settings]" in done.stdout
    assert ("4 jobs (1 datasets x 2 inits x 1 shots x 2 seeds): 1 finished, 2 to run, "
            "1 finished with other settings") in done.stdout


def test_sweep_grid_dry_run_counts_and_tags_each_value_pair(fake):
    grid = ["--grid", "TRAINER.DAPT_INIT.VIS_BETA=1,10", "--grid", "OPTIM.MAX_EPOCH=1,2"]
    done = fake.run("sweep.sh", "--dry-run", *grid, DATASETS="eurosat", INITS="diff", SHOTS="1",
                    SEEDS="1 2")
    assert done.returncode == 0, done.stderr
    summary = ("8 jobs (1 datasets x 1 inits x 1 shots x 2 seeds x 2 vis_beta values x 2 "
               "epochs): 0 finished, 8 to run")
    assert done.stdout.splitlines()[-1] == summary
    listed = re.findall(r"^job (\d+) \[todo\]: SEEDS=(\d) GRID=TRAINER\.DAPT_INIT\.VIS_BETA=(\d+)"
                        r"\\ OPTIM\.MAX_EPOCH=(\d) bash scripts/dapt_init/main\.sh eurosat diff 1 "
                        r"GPU  # (\S+)$", done.stdout, flags=re.MULTILINE)
    expected = [(str(n), seed, beta, epochs, str(
        fake.out / f"eurosat/DAPT_Init/diff/vit_b16_ep50_1shots_vis_beta{beta}_ep{epochs}"
        f"/seed{seed}")) for n, (seed, beta, epochs) in enumerate(
            (k, b, e) for k in "12" for b in ("1", "10") for e in "12")]
    assert listed == expected
    assert fake.calls() == [] and not fake.out.exists()
    # With TAG, the user's tag comes first; the SLURM tasks carry the same grid values.
    done = fake.run("sweep.sh", "--slurm", *grid, DATASETS="eurosat", INITS="diff", SHOTS="1",
                    SEEDS="1", TAG="lr")
    tasks = re.findall(r'^    "([^"]+)"  # \d+$', done.stdout, flags=re.MULTILINE)
    assert tasks == [f"eurosat diff 1 1 TRAINER.DAPT_INIT.VIS_BETA={b} OPTIM.MAX_EPOCH={e}"
                     for b in ("1", "10") for e in "12"]
    done = fake.run("sweep.sh", "--dry-run", *grid, DATASETS="eurosat", INITS="diff", SHOTS="1",
                    SEEDS="1", TAG="lr")
    assert done.stdout.splitlines()[0].endswith(
        f"  # {fake.out}/eurosat/DAPT_Init/diff/vit_b16_ep50_1shots_lr_vis_beta1_ep1/seed1")


def test_sweep_jobs_get_their_own_visual_init_whatever_the_callers_environment(fake):
    # VIS_INIT=same in the caller's shell must not turn the random job into a second "same".
    done = fake.run("sweep.sh", "--grid", "OPTIM.MAX_EPOCH=3", DATASETS="eurosat", INITS="diff",
                    SHOTS="1", SEEDS="1", VIS_INITS="random same", VIS_INIT="same", GPUS="cpu")
    assert done.returncode == 0, done.stdout + done.stderr
    runs = sorted((arg(a, "TRAINER.DAPT_INIT.VIS_INIT_METHOD"), arg(a, "--output-dir"))
                  for _, a in fake.calls())
    base = fake.out / "eurosat/DAPT_Init"
    assert runs == [("random", str(base / "diff/vit_b16_ep50_1shots_ep3/seed1")),
                    ("same", str(base / "diff_vis-same/vit_b16_ep50_1shots_ep3/seed1"))]
    spec = json.loads(Path(runs[1][1], "result.json").read_text())["spec"]
    assert (spec["vis_init"], spec["tag"], spec["grid"]) == ("same", "ep3",
                                                             {"OPTIM.MAX_EPOCH": "3"})


def test_sweep_without_a_gpu_runs_on_the_cpu_and_names_each_jobs_fields(fake):
    # nvidia-smi that lists no GPU (as on a machine without a driver): the default pool is the CPU.
    bin_dir = fake.root / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"
    done = fake.run("sweep.sh", DATASETS="eurosat", INITS="diff", SHOTS="1", SEEDS="1 2", PATH=path)
    assert done.returncode == 0, done.stderr
    assert [gpu for gpu, _ in fake.calls()] == ["unset", "unset"]  # no CUDA_VISIBLE_DEVICES
    assert "sweep: 2 jobs, 2 to run on the CPU, one at a time" in done.stdout
    assert "[done] cpu: job 1: eurosat init=diff shots=1 seed=2" in done.stdout

    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-1)'\n")
    done = fake.run("sweep.sh", DATASETS="eurosat", INITS="same", SHOTS="1", SEEDS="1", PATH=path)
    assert "on GPUs 0" in done.stdout and fake.calls()[-1][0] == "0"


# Stands in for python in the interrupt tests: records "<pid> <process group>" (written whole,
# then renamed, so the test never reads half of it), then blocks opening a FIFO that no one
# writes. On SIGINT it appends "SIGINT" to a file and exits 130 as train.py does, or with
# STANDIN_IGNORE=1 keeps blocking (a job that does not stop).
STANDIN = r"""#!/usr/bin/env python3
import os, signal, sys
base = os.environ["STANDIN_DIR"]
def on_int(number, frame):
    with open(os.path.join(base, "signals"), "a") as file:
        file.write("SIGINT\n")
    if os.environ.get("STANDIN_IGNORE") != "1":
        sys.exit(130)
signal.signal(signal.SIGINT, on_int)
with open(os.path.join(base, "pid.tmp"), "w") as file:
    file.write(f"{os.getpid()} {os.getpgid(0)}")
os.rename(os.path.join(base, "pid.tmp"), os.path.join(base, "pid"))
with open(os.path.join(base, "fifo")) as fifo:  # blocks: no writer ever comes
    fifo.read()
"""


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 120) -> None:
    """Until ``path`` exists, waiting on ``process`` meanwhile (fails at once if it ends)."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {seconds} s"
        try:
            process.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        out, err = process.communicate()
        pytest.fail(f"exited with status {process.returncode} before {path} appeared:\n"
                    f"{out}\n{err}")


def fifo_has_reader(fifo: Path) -> bool:
    """Whether a process is (still) blocked opening ``fifo`` for reading."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError as error:  # ENXIO: no reader
        assert error.errno == errno.ENXIO, error
        return False
    return True


@pytest.mark.parametrize("ignore", [False, True], ids=["job-stops", "second-signal-kills"])
def test_sweep_forwards_an_interrupt_to_the_running_job_and_exits_with_one_line(fake, ignore):
    standin_dir = fake.root / "standin"
    standin_dir.mkdir()
    os.mkfifo(standin_dir / "fifo")
    standin = fake.root / "standin_python"
    standin.write_text(STANDIN)
    standin.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    env.update(fake.env, PYTHON=str(standin), STANDIN_DIR=str(standin_dir),
               STANDIN_IGNORE="1" if ignore else "0", DATASETS="eurosat", INITS="diff",
               SHOTS="1", SEEDS="1 2", GPUS="cpu", PYTHONUNBUFFERED="1")
    sweep = subprocess.Popen(["bash", str(SCRIPTS / "sweep.sh")], cwd=fake.root, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(standin_dir / "pid", sweep)
        pid, group = map(int, (standin_dir / "pid").read_text().split())
        # The job runs in a process group of its own (a terminal's Ctrl-C reaches the sweep
        # only), so the stand-in can only get SIGINT by the sweep's forwarding.
        assert group != os.getpgid(0) and group != pid
        sweep.send_signal(signal.SIGINT)
        if ignore:
            wait_for(standin_dir / "signals", sweep)
            # The job ignored it and still runs; the sweep waits for it.
            assert fifo_has_reader(standin_dir / "fifo") and sweep.poll() is None
            sweep.send_signal(signal.SIGINT)
        out, err = sweep.communicate(timeout=60)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.communicate()
    assert sweep.returncode == 130, out + err
    assert (standin_dir / "signals").read_text() == "SIGINT\n"  # forwarded once, then killed
    assert not fifo_has_reader(standin_dir / "fifo")  # the stand-in is gone
    assert err.splitlines() == [
        "error: interrupted (SIGINT); stopping 1 running job(s); run the sweep again: finished "
        "runs are skipped and unfinished ones resume from their last checkpoint (a second "
        "signal kills the jobs)"]
    lines = out.splitlines()
    assert lines[0] == "sweep: 2 jobs, 2 to run on the CPU, one at a time"
    assert lines[1].startswith("[start] cpu: job 0: SEEDS=1 bash scripts/dapt_init/main.sh "
                               "eurosat diff 1 (log: ")
    assert len(lines) == 2  # job 1 never started; job 0 is not reported as failed
    assert len(fake.calls()) == 0 and not (fake.out / "eurosat").exists()


def test_trial_runs_the_demo_clip_and_config_into_folders_of_their_own(fake):
    # A demo folder as tools/demo.py --prepare-only leaves it (contents do not matter here).
    demo = fake.root / "demo"
    (demo / "data/eurosat").mkdir(parents=True)
    (demo / "data/eurosat/split_zhou_EuroSAT.json").write_text("{}")
    (demo / "small_clip.pt").write_text("")
    env = {"TRIAL": "1", "DEMO_DIR": str(demo), "DATA_ROOT": ""}
    done = fake.run("main.sh", "eurosat", "diff", "4", **env)
    assert done.returncode == 0, done.stderr
    calls = [args for _, args in fake.calls()]
    assert [arg(a, "--output-dir") for a in calls] == [
        str(fake.out / f"eurosat/DAPT_Init/diff/demo_small_4shots_trial/seed{k}") for k in (1, 2)]
    for args in calls:
        assert arg(args, "--root") == str(demo / "data")
        assert arg(args, "--config-file") == "configs/trainers/DAPT_Init/demo_small.yaml"
        assert arg(args, "TRAINER.DAPT_INIT.CLIP_WEIGHTS") == str(demo / "small_clip.pt")
    # The user's choices win; the tag always says trial.
    done = fake.run("main.sh", "eurosat", "diff", "4", SEEDS="3", TAG="lr", CFG="vit_b16_ep100",
                    **env)
    assert arg(fake.calls()[-1][1], "--output-dir") == str(
        fake.out / "eurosat/DAPT_Init/diff/vit_b16_ep100_4shots_lr_trial/seed3")
    # The sweep's trial grid, and commands that say TRIAL=1.
    done = fake.run("sweep.sh", "--dry-run", **env)
    assert "18 jobs (1 datasets x 3 inits x 3 shots x 2 seeds)" in done.stdout
    command = "TRIAL=1 TAG=trial SEEDS=1 bash scripts/dapt_init/main.sh eurosat random 1 GPU"
    assert command in done.stdout
    assert "DATA_ROOT is not set" not in done.stdout
    assert fake.run("main.sh", "eurosat", "diff", "4", TRIAL="yes").returncode == 2


def test_codebase_runs_a_host_train_py_with_its_configs_and_the_same_rules(fake):
    # A CoOp-family host after the drop-in steps: its own train.py (no --check-finished) and
    # configs, with DAPT_Init's trainer configs copied in.
    host = fake.root / "CoOp"
    (host / "configs/datasets").mkdir(parents=True)
    (host / "configs/datasets/eurosat.yaml").write_text("DATASET:\n  NAME: EuroSAT\n")
    (host / "configs/trainers/DAPT_Init").mkdir(parents=True)
    for config in (REPO / "configs/trainers/DAPT_Init").glob("*.yaml"):
        (host / "configs/trainers/DAPT_Init" / config.name).write_text(config.read_text())
    (host / "train.py").write_text("# CoOp's train.py\n")
    env = {"CODEBASE": str(host), "OUTPUT_ROOT": "", "FAKE_CWD": str(fake.root / "cwd.log"),
           "SEEDS": "1 2"}
    done = fake.run("main.sh", "eurosat", "diff", "4", **env)
    assert done.returncode == 0, done.stderr
    assert (fake.root / "cwd.log").read_text().split() == [str(host)] * 2
    for seed, (_, args) in enumerate(fake.calls(), start=1):
        assert args[:2] == ["train.py", "--root"]
        assert arg(args, "--config-file") == "configs/trainers/DAPT_Init/vit_b16_ep100.yaml"
        assert arg(args, "--output-dir") == str(
            host / f"output/eurosat/DAPT_Init/diff/vit_b16_ep100_4shots/seed{seed}")
    # Without --check-finished in the host's train.py, a result.json means finished.
    done = fake.run("main.sh", "eurosat", "diff", "4", **env)
    assert done.returncode == 0 and len(fake.calls()) == 2
    assert done.stdout.count("skip (finished): ") == 2
    assert "settings were not compared" in done.stdout
    # The sweep loops there too; the host's datasets are the ones with a config.
    done = fake.run("sweep.sh", "--dry-run", DATASETS="eurosat", **env)
    summary = "30 jobs (1 datasets x 3 inits x 5 shots x 2 seeds): 2 finished, 28 to run"
    assert summary in done.stdout
    done = fake.run("main.sh", "oxford_pets", "diff", "4", **env)
    assert done.returncode == 2 and "valid datasets: eurosat" in done.stderr
    done = fake.run("main.sh", "eurosat", "diff", "4", CODEBASE=str(fake.root / "nowhere"))
    assert done.returncode == 2 and error_lines(done) == [
        f"error: CODEBASE='{fake.root / 'nowhere'}' has no train.py; point it at the root of the "
        "codebase that holds the drop-in unit (its train.py, trainers/dapt_init/ and configs/)"]


# ------------------------------------------------------------- real train.py (needs Dassl)

KILLER = r"""
import os, runpy, sys
# Run train.py, but die (os._exit, no clean-up) right after epoch 1 is checkpointed.
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
import trainers.dapt_init.trainer as t
original = t.DAPT_Init.after_epoch
def after_epoch(self):
    original(self)
    if self.epoch == 0:
        os._exit(9)
t.DAPT_Init.after_epoch = after_epoch
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """Tiny EuroSAT / ImageNet / ImageNetV2 data, a small CLIP, and the run environment."""
    from tools.small_clip import save_small_clip
    from tools.tiny_data import make_tiny_eurosat, make_tiny_imagenet, make_tiny_imagenetv2

    root = tmp_path_factory.mktemp("scripts")
    for make in (make_tiny_eurosat, make_tiny_imagenet, make_tiny_imagenetv2):
        make(root / "data")
    clip = save_small_clip(str(root / "small_clip.pt"))
    killer = root / "killer.py"
    killer.write_text(KILLER)
    wrapper = root / "killing_python"
    wrapper.write_text(f'#!/usr/bin/env bash\nexec "{sys.executable}" "{killer}" "$@"\n')
    wrapper.chmod(0o755)
    return {
        "root": root,
        "env": {"DATA_ROOT": str(root / "data"), "OUTPUT_ROOT": str(root / "out"),
                "PYTHON": sys.executable},
        "killing_python": str(wrapper),
        # The small model on a CPU, for 2 epochs, with the trainer config main.sh chooses.
        "small": ["--", "TRAINER.DAPT_INIT.CLIP_WEIGHTS", clip, "INPUT.SIZE", "(32, 32)",
                  "DATALOADER.NUM_WORKERS", "0", "USE_CUDA", "False", "OPTIM.MAX_EPOCH", "2"],
    }


def log_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("log.txt*"))


@pytest.fixture(scope="module")
def main_runs(tiny) -> dict:
    """main.sh eurosat diff 1: seed 1 killed after epoch 1, then all three seeds by main.sh."""
    runs = tiny["root"] / "out/eurosat/DAPT_Init/diff/vit_b16_ep50_1shots"
    killed = run_script("main.sh", "eurosat", "diff", "1", *tiny["small"], cwd=tiny["root"],
                        env={**tiny["env"], "SEEDS": "1 2", "PYTHON": tiny["killing_python"]},
                        timeout=240)
    seed2_after_kill = (runs / "seed2").exists()
    finished = run_script("main.sh", "eurosat", "diff", "1", *tiny["small"], cwd=tiny["root"],
                          env=tiny["env"], timeout=240)
    return {"runs": runs, "killed": killed, "finished": finished,
            "seed2_after_kill": seed2_after_kill}


@requires_toolbox
def test_main_stops_at_a_killed_run_and_a_rerun_resumes_it(main_runs):
    runs, killed, finished = main_runs["runs"], main_runs["killed"], main_runs["finished"]
    # The killed run stopped main.sh with its status, before seed 2 started.
    assert killed.returncode == 9, killed.stderr[-2000:]
    assert "error: exit status 9 from the run in" in killed.stderr
    assert not main_runs["seed2_after_kill"]

    assert finished.returncode == 0, finished.stderr[-2000:]
    assert f"unfinished run in {runs}/seed1: running it again" in finished.stdout
    for seed in "123":
        assert (runs / f"seed{seed}/result.json").exists(), seed
    logs = sorted(p.name for p in (runs / "seed1").iterdir() if p.name.startswith("log.txt"))
    assert logs[0] == "log.txt" and len(logs) == 2
    assert "Finish training" not in (runs / "seed1/log.txt").read_text()
    resumed = (runs / "seed1" / logs[1]).read_text()
    assert "Resuming from" in resumed and "(epoch 1 done)" in resumed
    assert "epoch [1/2]" not in resumed and "epoch [2/2]" in resumed
    assert "Finish training" in resumed and "* accuracy:" in resumed


@requires_toolbox
def test_main_skips_finished_runs_on_a_second_invocation(tiny, main_runs):
    runs = main_runs["runs"]
    before = log_files(runs)
    again = run_script("main.sh", "eurosat", "diff", "1", *tiny["small"], cwd=tiny["root"],
                       env=tiny["env"], timeout=240)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.splitlines() == [f"skip (finished): {runs}/seed{s}" for s in "123"]
    assert log_files(runs) == before


@requires_toolbox
def test_each_finished_run_records_its_study_spec(main_runs):
    # Seed 1 was killed and resumed; each result.json names its run by the study's terms.
    for seed in (1, 2, 3):
        result = json.loads((main_runs["runs"] / f"seed{seed}/result.json").read_text())
        assert result["spec"] == {"kind": "train", "dataset": "eurosat", "init": "diff",
                                  "vis_init": "random", "config": "vit_b16_ep50", "shots": 1,
                                  "seed": seed, "tag": "", "grid": {}}
        assert "spec" not in result["fingerprint_keys"]  # not part of what the run is
        assert result["epoch"] == 2


@requires_toolbox
def test_trial_sweep_over_an_epoch_grid_trains_one_folder_per_value(tiny):
    # TRIAL=1 with the module's tiny data and small CLIP as its demo folder (the same layout).
    out = tiny["root"] / "grid_out"
    env = {"DEMO_DIR": str(tiny["root"]), "TRIAL": "1", "OUTPUT_ROOT": str(out),
           "DATASETS": "eurosat", "INITS": "random", "SHOTS": "1", "SEEDS": "1", "GPUS": "cpu",
           "PYTHON": sys.executable}
    done = run_script("sweep.sh", "--grid", "OPTIM.MAX_EPOCH=1,2", cwd=tiny["root"], env=env,
                      timeout=480)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sweep: 2 jobs, 2 to run on the CPU, one at a time" in done.stdout
    for n, epochs in enumerate((1, 2)):
        assert (f"[done] cpu: job {n}: eurosat init=random shots=1 seed=1 epochs={epochs}"
                in done.stdout)
    assert "sweep: all 2 jobs finished (2 run now)" in done.stdout
    runs = out / "eurosat/DAPT_Init/random"
    assert sorted(p.name for p in runs.iterdir()) == ["demo_small_1shots_trial_ep1",
                                                      "demo_small_1shots_trial_ep2"]
    for epochs in (1, 2):
        result = json.loads((runs / f"demo_small_1shots_trial_ep{epochs}/seed1/result.json")
                            .read_text())
        assert result["epoch"] == epochs  # the grid value reached the trainer
        assert result["spec"] == {"kind": "train", "dataset": "eurosat", "init": "random",
                                  "vis_init": "random", "config": "demo_small", "shots": 1,
                                  "seed": 1, "tag": f"trial_ep{epochs}",
                                  "grid": {"OPTIM.MAX_EPOCH": str(epochs)}}
        saved = [int(p.name.rsplit("-", 1)[1]) for p in
                 (runs / f"demo_small_1shots_trial_ep{epochs}/seed1").rglob("model.pth.tar-*")]
        assert saved and max(saved) == epochs
    again = run_script("sweep.sh", "--dry-run", "--grid", "OPTIM.MAX_EPOCH=1,2",
                       cwd=tiny["root"], env=env)
    assert "2 jobs (1 datasets x 1 inits x 1 shots x 1 seeds x 2 epochs): 2 finished, 0 to run" \
        in again.stdout


@requires_toolbox
def test_base2new_train_then_test_on_tiny_eurosat(tiny):
    env = {**tiny["env"], "SEEDS": "1", "CFG": "demo_small"}
    trained = run_script("base2new_train.sh", "eurosat", "same", *tiny["small"],
                         cwd=tiny["root"], env=env, timeout=240)
    assert trained.returncode == 0, trained.stderr[-2000:]
    tested = run_script("base2new_test.sh", "eurosat", "same", *tiny["small"], cwd=tiny["root"],
                        env=env, timeout=240)
    assert tested.returncode == 0, tested.stderr[-2000:]
    tail = "eurosat/shots_16/DAPT_Init/same/demo_small/seed1"
    base = json.loads((tiny["root"] / "out/base2new/train_base" / tail / "result.json").read_text())
    new = json.loads((tiny["root"] / "out/base2new/test_new" / tail / "result.json").read_text())
    assert base["subsample_classes"] == "base" and new["subsample_classes"] == "new"
    assert new["epoch"] == 2 and new["init_method"] == "same"
    assert "--load-epoch 2" in tested.stdout


@requires_toolbox
def test_eval_tests_imagenet_prompts_on_a_target_set(tiny):
    env = {**tiny["env"], "SEEDS": "1"}
    missing = run_script("eval.sh", "random", "1", *tiny["small"], cwd=tiny["root"], env=env)
    assert missing.returncode == 2 and "main.sh imagenet random 1" in missing.stderr
    trained = run_script("main.sh", "imagenet", "random", "1", *tiny["small"], cwd=tiny["root"],
                         env=env, timeout=240)
    assert trained.returncode == 0, trained.stderr[-2000:]
    evaluated = run_script("eval.sh", "random", "1", *tiny["small"], cwd=tiny["root"],
                           env={**env, "TARGETS": "imagenetv2"}, timeout=240)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    run_dir = tiny["root"] / "out/evaluation/imagenetv2/DAPT_Init/random/vit_b16_ep50_1shots/seed1"
    log = (run_dir / "log.txt").read_text()
    assert "=> result" in log and "Finish training" not in log and "(epoch 2)" in log
    assert (run_dir / "result.json").exists()
