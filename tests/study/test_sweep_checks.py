"""The sweep checked before it starts, and its SLURM script quoting every value by construction.

Tables: CHECK_CASES (a problem each; one error line naming it, no job), ACCEPTED (grids a user
types that must pass, integers for decimal keys among them) and SLURM_CASES (hostile values
that reach the SLURM script or are refused before it is written). A script that is written
must pass ``bash -n`` and, run as task N by bash, hand ``python -m study job`` exactly the
words of job N, the sweep's overrides and its environment, with no command of a value run.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from study.run import REPO_ROOT, StudyError
from study.sweep import build, check_sweep
from tests.support.scripts_helpers import Fake, error_lines
from tests.support.toolbox import requires_toolbox

pytestmark = requires_toolbox  # the values are checked against the toolbox's config

BASE_ENV = {"DATASETS": "eurosat", "INITS": "diff", "SHOTS": "1", "SEEDS": "1"}
CACHE = "TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR"  # a free-text key: any word reaches the script


def checked(tmp_path: Path, argv: list[str], env: dict[str, str], monkeypatch):
    """build + check_sweep as sweep_main runs them (in the codebase's folder)."""
    (tmp_path / "data").mkdir(exist_ok=True)
    full = {"DATA_ROOT": str(tmp_path / "data"), "OUTPUT_ROOT": str(tmp_path / "out"),
            **BASE_ENV, **env}
    mode, sweep, _ = build(argv, full, str(tmp_path))
    monkeypatch.chdir(sweep.s.codebase)
    check_sweep(sweep, mode, full)
    return sweep, full


# (id, sweep arguments, environment, words the one error line must hold)
CHECK_CASES = [
    ("seeds-empty", ["--dry-run"], {"SEEDS": ""}, "SEEDS is set but empty"),
    ("datasets-blank", ["--dry-run"], {"DATASETS": "  "}, "DATASETS is set but empty"),
    ("inits-empty", ["--dry-run"], {"INITS": ""}, "INITS is set but empty"),
    ("epochs-blank", ["--dry-run"], {"EPOCHS": " "}, "EPOCHS is set but empty"),
    ("shots-empty", ["--slurm"], {"SHOTS": ""}, "SHOTS is set but empty"),
    ("seeds-twice", ["--dry-run"], {"SEEDS": "1 2 1"}, "SEEDS lists 1 more than once"),
    ("seeds-leading-zero", ["--dry-run"], {"SEEDS": "1 01"}, "SEEDS lists 01 and 1 more"),
    ("datasets-twice", ["--dry-run"], {"DATASETS": "eurosat eurosat"}, "DATASETS lists eurosat"),
    ("epochs-twice", ["--dry-run"], {"EPOCHS": "5 5"}, "EPOCHS lists 5 more than once"),
    ("key-misspelt", ["--dry-run", "--grid", "TRAINER.DAPT_INIT.TXT_BTA=0.1,10"], {},
     "unknown config key 'TRAINER.DAPT_INIT.TXT_BTA'"),
    ("key-is-a-group", ["--dry-run", "--grid", "OPTIM=1"], {}, "is a group of keys"),
    ("nan", ["--dry-run", "--grid", "TRAINER.DAPT_INIT.TXT_BETA=0.1,nan"], {},
     "--grid TRAINER.DAPT_INIT.TXT_BETA=nan: the jobs with it would stop with: "
     "TRAINER.DAPT_INIT.TXT_BETA is 'nan'"),
    ("infinite", ["--dry-run", "--grid", "OPTIM.LR=1e999"], {}, "OPTIM.LR is inf; it must be"),
    ("negative-lr", ["--dry-run", "--grid", "OPTIM.LR=0.1,-1"], {}, "OPTIM.LR is -1.0"),
    ("beta-too-large", ["--dry-run", "--grid", "TRAINER.DAPT_INIT.VIS_BETA=1e9"], {},
     "TRAINER.DAPT_INIT.VIS_BETA is 1000000000.0; it must be a finite number from 0 to"),
    ("decimal-epochs", ["--dry-run", "--grid", "OPTIM.MAX_EPOCH=2.5"], {},
     "OPTIM.MAX_EPOCH is '2.5'"),
    ("wrong-choice", ["--slurm", "--grid", "OPTIM.NAME=sgd,$(touch${IFS}x)"], {},
     "OPTIM.NAME is '$(touch${IFS}x)'; it must be one of adam"),
    ("list-split-at-commas", ["--dry-run", "--grid", "TRAINER.DAPT_INIT.KEEP_EPOCHS=[10,50]"],
     {}, "[10,50] is split at its commas, so a list or tuple cannot be a grid value"),
    ("bad-keep-epochs", ["--dry-run", "--", "TRAINER.DAPT_INIT.KEEP_EPOCHS", "[0]"], {},
     "TRAINER.DAPT_INIT.KEEP_EPOCHS is [0]"),
    ("same-value-twice", ["--dry-run", "--grid", "TRAINER.DAPT_INIT.TXT_BETA=1,1.0"], {},
     "--grid TRAINER.DAPT_INIT.TXT_BETA lists the value 1.0 twice (1 and 1.0)"),
    ("same-value-exponent", ["--dry-run", "--grid", "OPTIM.LR=0.01,1e-2"], {},
     "lists the value 0.01 twice"),
    ("tab-in-value", ["--dry-run", "--grid", f"{CACHE}=a\tb"], {}, "a space or a control"),
    ("tag-collision", ["--dry-run", "--grid", f"{CACHE}=a/b,a:b"], {},
     "would write one run folder"),
    ("dataset-name-grid", ["--dry-run", "--grid", "DATASET.NAME=EuroSAT,DescribableTextures"],
     {}, "DATASET.NAME is set by this script from the DATASET argument"),
    ("dataset-name-override", ["--dry-run", "--", "DATASET.NAME", "DescribableTextures"], {},
     "DATASET.NAME is set by this script"),
    ("override-misspelt", ["--dry-run", "--", "OPTIM.LRR", "1"], {},
     "every job would stop with: unknown config key 'OPTIM.LRR'"),
    ("override-nan", ["--dry-run", "--", "TRAINER.DAPT_INIT.VIS_DROPOUT", "nan"], {},
     "every job would stop with: TRAINER.DAPT_INIT.VIS_DROPOUT is 'nan'"),
    ("slurm-too-large", ["--slurm"], {"SEEDS": " ".join(map(str, range(1002)))},
     "the sweep has 1002 jobs"),
    ("pool-too-large", ["--dry-run", "--grid", "OPTIM.LR=" + ",".join(
        f"0.{i:05d}1" for i in range(5001))], {"SEEDS": "1 2"}, "more than 10000 jobs"),
]


@pytest.mark.parametrize("argv,env,words", [c[1:] for c in CHECK_CASES],
                         ids=[c[0] for c in CHECK_CASES])
def test_a_sweep_problem_is_one_error_before_any_job(tmp_path, monkeypatch, argv, env, words):
    with pytest.raises(StudyError) as raised:
        checked(tmp_path, argv, env, monkeypatch)
    message = str(raised.value)
    assert words in message and "\n" not in message
    assert not (tmp_path / "out").exists()


ACCEPTED = [
    ("integers-for-decimals", ["--dry-run", "--grid", "TRAINER.DAPT_INIT.TXT_BETA=0.1,10",
                               "--grid", "OPTIM.LR=20,2"], {}, 4),
    ("readme-vis-beta", ["--dry-run", "--grid", "TRAINER.DAPT_INIT.VIS_BETA=0.01,0.1,1"], {}, 3),
    ("epochs-and-vis-inits", ["--slurm"], {"EPOCHS": "5 10", "VIS_INITS": "random diff"}, 4),
    ("override-integer", ["--dry-run", "--", "TRAINER.DAPT_INIT.VIS_BETA", "1"], {}, 1),
]


@pytest.mark.parametrize("argv,env,jobs", [c[1:] for c in ACCEPTED],
                         ids=[c[0] for c in ACCEPTED])
def test_grids_users_type_pass(tmp_path, monkeypatch, argv, env, jobs):
    sweep, _ = checked(tmp_path, argv, env, monkeypatch)
    assert len(sweep.jobs) == jobs


def test_a_real_sweep_with_a_bad_value_runs_no_job(tmp_path):
    fake = Fake(tmp_path)
    done = fake.run("sweep.sh", "--grid", "TRAINER.DAPT_INIT.TXT_BETA=0.1,nan", GPUS="cpu",
                    **BASE_ENV)
    assert done.returncode == 2, done.stdout + done.stderr
    assert error_lines(done) == [line for line in done.stderr.splitlines() if line]
    assert len(error_lines(done)) == 1 and "TXT_BETA=nan" in error_lines(done)[0]
    assert done.stdout == "" and fake.calls() == [] and not fake.out.exists()


# ------------------------------------------------------------------------------ SLURM
RECORDER = """#!{python}
import json, os, sys
with open(os.environ["RECORD"], "w") as out:
    json.dump({{"argv": sys.argv[1:], "env": {{n: os.environ.get(n) for n in
              ("DATA_ROOT", "OUTPUT_ROOT", "PYTHON", "TAG", "CODEBASE", "CFG")}}}}, out)
"""

HOSTILE = ["$(touch${IFS}MARK)", "`touch${IFS}MARK`", 'a"b', "a'b", "a\\b", "$HOME",
           "a;touch${IFS}MARK", "*", "a$((1+1))", "${PATH}", "!x"]

# (id, extra sweep arguments, environment; folders named by DATA_ROOT / OUTPUT_ROOT are made,
# error words or None where the script must be written)
SLURM_CASES = [
    *[(f"grid-value-{i}", ["--grid", f"{CACHE}=cache,{value}"], {}, None)
      for i, value in enumerate(HOSTILE)],
    ("override-subst", ["--", CACHE, "$(touch MARK) \"x\" 'y'"], {}, None),
    ("override-newline", ["--", CACHE, "a\ntouch MARK"], {}, None),
    ("data-root-subst", [], {"DATA_ROOT": "d $(touch MARK) `touch MARK` \"q\" 'q'"}, None),
    ("data-root-newline", [], {"DATA_ROOT": "d\ntouch MARK"}, None),
    ("output-root-quote", [], {"OUTPUT_ROOT": "o'; touch MARK; '"}, None),
    ("python-command", [], {"PYTHON": "python3; touch MARK"}, None),
    ("codebase-subst", [], {"CODEBASE": "cb $(touch MARK) `touch MARK` 'q' \"q\""}, None),
    ("sbatch-semicolon", [], {"SWEEP_SBATCH": "--partition=gpu;touch --comment=$(x)"}, None),
    ("job-name-ok", [], {"SWEEP_JOB_NAME": "study.v2-lr+beta"}, None),
    ("time-days", [], {"SWEEP_TIME": "2-12:00:00"}, None),
    ("time-minutes", [], {"SWEEP_TIME": "90"}, None),
    ("job-name-newline", [], {"SWEEP_JOB_NAME": "x\n#SBATCH --array=0-9"}, "SWEEP_JOB_NAME"),
    ("job-name-space", [], {"SWEEP_JOB_NAME": "my job"}, "SWEEP_JOB_NAME"),
    ("job-name-subst", [], {"SWEEP_JOB_NAME": "$(touch MARK)"}, "SWEEP_JOB_NAME"),
    ("time-newline", [], {"SWEEP_TIME": "1:00:00\ntouch MARK"}, "SWEEP_TIME"),
    ("time-word", [], {"SWEEP_TIME": "bad"}, "SWEEP_TIME"),
    ("time-minutes-too-long", [], {"SWEEP_TIME": "1:000"}, "SWEEP_TIME"),
    ("sbatch-not-option", [], {"SWEEP_SBATCH": "partition=gpu"}, "SWEEP_SBATCH"),
    ("cpus-newline", [], {"SWEEP_CPUS": "8\ntouch MARK"}, "SWEEP_CPUS"),
    ("cpus-fullwidth", [], {"SWEEP_CPUS": "\uff18"}, "SWEEP_CPUS"),
    ("parallel-superscript", [], {"SWEEP_MAX_PARALLEL": "\u00b2"}, "SWEEP_MAX_PARALLEL"),
    ("parallel-ok", [], {"SWEEP_MAX_PARALLEL": "4", "SWEEP_CPUS": "16"}, None),
]


@pytest.mark.parametrize("argv,env,refused", [c[1:] for c in SLURM_CASES],
                         ids=[c[0] for c in SLURM_CASES])
def test_the_slurm_script_runs_only_what_it_was_fed(tmp_path, monkeypatch, argv, env, refused):
    from study.pool import slurm_script

    env = {k: (str(tmp_path / v) if k in ("DATA_ROOT", "OUTPUT_ROOT") else v)
           for k, v in env.items()}
    if "DATA_ROOT" in env:
        os.makedirs(env["DATA_ROOT"])
    if "CODEBASE" in env:  # a host with the drop-in's files, under a hostile folder name
        env["CODEBASE"] = str(tmp_path / env["CODEBASE"])
        shutil.copytree(REPO_ROOT / "configs", Path(env["CODEBASE"]) / "configs")
        shutil.copy(REPO_ROOT / "train.py", env["CODEBASE"])
    if refused:
        with pytest.raises(StudyError, match=refused):
            sweep, full = checked(tmp_path, ["--slurm", *argv], env, monkeypatch)
            slurm_script(sweep, full)
        return
    sweep, full = checked(tmp_path, ["--slurm", *argv], env, monkeypatch)
    script = tmp_path / "job.sbatch"
    script.write_text(slurm_script(sweep, full))
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    header = script.read_text().split("\n#\n", 1)[0].splitlines()
    assert all(line.startswith("#") for line in header)  # nothing pushed out of #SBATCH
    recorder = tmp_path / "recorder"
    recorder.write_text(RECORDER.format(python=sys.executable))
    recorder.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    for index, job in enumerate(sweep.jobs):
        record = tmp_path / f"task{index}.json"
        run_env = {"PATH": os.environ["PATH"], "HOME": str(work), "SLURM_ARRAY_TASK_ID":
                   str(index), "STUDY_PYTHON": str(recorder), "RECORD": str(record)}
        task = subprocess.run(["bash", str(script)], cwd=work, env=run_env, capture_output=True,
                              text=True, timeout=60)
        assert task.returncode == 0, task.stderr
        seen = json.loads(record.read_text())
        overrides = ["--", *sweep.s.overrides] if sweep.s.overrides else []
        assert seen["argv"] == ["-m", "study", "job", job.words(), *overrides]
        assert seen["env"]["DATA_ROOT"] == sweep.s.data_root
        assert seen["env"]["OUTPUT_ROOT"] == sweep.s.output_root
        assert seen["env"]["PYTHON"] == full.get("PYTHON")
        assert seen["env"]["CODEBASE"] == full.get("CODEBASE")
    assert not list(work.iterdir()) and not (REPO_ROOT / "MARK").exists()
    assert not (tmp_path / "MARK").exists()
