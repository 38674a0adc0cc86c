"""main.sh, eval.sh and base2new_*.sh in one process: check the arguments and environment,
plan each seed's train.py command, claim its run folder and run it.

The claim is the finished rule, asked once under the folder's lock (run_folder.claim): a
finished run is skipped with one line and starts no process; other settings stop the script
with one error line; a folder another process holds is noted and left alone. A claimed run's
train.py inherits the lock (it does not ask again). In a host codebase (CODEBASE=...), whose
configs and trainer keys are its own, the host's train.py is run and its trainer claims.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from trainers.dapt_init import run_folder
from trainers.dapt_init.errors import DaptInitError
from trainers.dapt_init.runstate import (FINISHED, INTERRUPTED, OTHER_SETTINGS, RESULT_FILE,
                                         RUNNING_ELSEWHERE, USER_ERROR)

from .help import HELP, USAGE
from .plan import (STATE_NAMES, Setup, bash_quote, check_arg_count, check_dataset, check_gpu,
                   check_init, check_overrides, check_shots, require_data_root, run_overrides,
                   run_state, setup, split_args, train_argv)
from .run import (REPO_ROOT, BASE2NEW_SHOTS, DG_TARGETS, EVAL_SOURCE, VIS_INIT_KEY, RunSpec, StudyError,
                   choose_config, config_epochs, full_tag)

# script -> (kind, positional arguments: min, max)
SCRIPTS = {"main": ("train", 3, 4), "eval": ("eval", 2, 3),
           "base2new_train": ("base2new_train", 2, 3), "base2new_test": ("base2new_test", 2, 3)}


@dataclass
class Plan:
    """A script's checked runs: each seed's train.py command, run from ``codebase``."""
    setup: Setup
    codebase: Path
    gpu: str
    runs: list[list[str]]
    dry_run: bool = False


def plan_script(script: str, argv: list[str], env: Mapping[str, str], caller: str
                ) -> Plan | str:
    """The checked plan of a script, or its help text when asked for."""
    kind, low, high = SCRIPTS[script]
    words, overrides, wants_help = split_args(argv)
    if wants_help:
        return f"usage: {USAGE[script]}\n\n{HELP[script]}"
    dry_run = "--dry-run" in words
    words = [w for w in words if w != "--dry-run"]
    s = setup(env, caller)
    check_arg_count(words, low, high)
    if kind == "eval":
        dataset, (init, shots_text), gpu = EVAL_SOURCE, words[:2], words[2:3]
    elif kind == "train":
        dataset, init, shots_text, gpu = words[0], words[1], words[2], words[3:4]
        check_dataset(dataset, True, s.codebase)
    else:
        dataset, init, shots_text, gpu = words[0], words[1], str(BASE2NEW_SHOTS), words[2:3]
        check_dataset(dataset, True, s.codebase)
    check_init(init)
    vis_init = s.grid.get(VIS_INIT_KEY) or s.get("VIS_INIT", "random")
    check_init(vis_init, visual=True)
    shots = check_shots(shots_text)
    gpu_text = gpu[0] if gpu else ""
    check_gpu(gpu_text)
    s.overrides = overrides
    check_overrides(overrides, s.grid)
    config = choose_config(dataset, shots, s.cfg(), s.codebase)
    # The visual init is a field of its own, not a grid value (GRID may name it).
    grid = {k: v for k, v in s.grid.items() if k != VIS_INIT_KEY}
    spec = RunSpec(kind, dataset, init, vis_init, config, shots, 0, full_tag(s.tag, grid), grid)
    epochs = 0
    targets = [dataset]
    if kind in ("eval", "base2new_test"):
        epochs = config_epochs(config, run_overrides(s), s.get("LOAD_EPOCH"), s.codebase)
    if kind == "eval":
        targets = s.get("TARGETS", " ".join(DG_TARGETS)).split()
        if not targets:
            raise StudyError("TARGETS is empty")
        for target in targets:
            check_dataset(target, False, s.codebase)
    require_data_root(s, caller)
    os.chdir(s.codebase)  # the train.py commands' paths are relative to the codebase
    if kind in ("eval", "base2new_test"):
        check_models(spec, s, words)
    runs = []
    for target in targets:
        for seed in s.seeds:
            run = replace(spec, dataset=target, seed=seed)
            model = run.model_spec()
            model_dir = model.folder(s.output_root) if model else ""
            runs.append(train_argv(run, s, model_dir, epochs))
    return Plan(s, s.codebase, gpu_text, runs, dry_run)


def check_models(spec: RunSpec, s: Setup, words: list[str]) -> None:
    """Every model an evaluation loads must be a finished training run (the finished rule of
    its training command), before anything runs."""
    model = spec.model_spec()
    train_script = "main.sh" if spec.kind == "eval" else "base2new_train.sh"
    how = train_hint(s, train_script, [model.dataset, spec.init] +
                     ([str(spec.shots)] if spec.kind == "eval" else []))
    for seed in s.seeds:
        run = replace(model, seed=seed)
        folder = run.folder(s.output_root)
        if not os.path.isdir(folder):
            raise StudyError(f"trained model folder {folder} is missing; train it first with: "
                             f"{how}")
        status, message = run_state(train_argv(run, s), s)
        if status == OTHER_SETTINGS:
            raise StudyError(message)
        if status != FINISHED:
            raise StudyError(f"trained model folder {folder} holds an unfinished run; finish it "
                             f"with: {how}")


def train_hint(s: Setup, script: str, args: list[str]) -> str:
    """The command line (this environment, the overrides) that makes the models needed."""
    words = [f"DATA_ROOT={bash_quote(s.data_root)}", f"OUTPUT_ROOT={bash_quote(s.output_root)}",
             f"SEEDS={bash_quote(' '.join(map(str, s.seeds)))}"]
    if s.cfg():
        words.append(f"CFG={bash_quote(s.cfg())}")
    if s.get("VIS_INIT", "random") != "random":
        words.append(f"VIS_INIT={bash_quote(s.get('VIS_INIT'))}")
    words += ["bash", f"scripts/dapt_init/{script}", *map(bash_quote, args)]
    over = run_overrides(s)
    return " ".join(words + (["--", *map(bash_quote, over)] if over else []))


# ------------------------------------------------------------------------------- running

def train_python(env: Mapping[str, str]) -> str:
    """PYTHON, else python where there is one, else python3 (what the scripts always ran)."""
    python = env.get("PYTHON") or ("python" if shutil.which("python") else "python3")
    if not shutil.which(python):
        raise StudyError(f"python interpreter '{python}' not found; set PYTHON to the one with "
                         "the project's requirements installed")
    return python


def shown(command: list[str], gpu: str) -> str:
    """A command as bash's `set -x` / printf %q shows it."""
    prefix = f" CUDA_VISIBLE_DEVICES={bash_quote(gpu)}" if gpu else ""
    return "+" + prefix + " " + " ".join(bash_quote(word) for word in command)


def run_plan(plan: Plan, env: Mapping[str, str]) -> int:
    """Run (or with --dry-run, show) each seed's train.py command; the script's exit status."""
    python = train_python(env)
    child_env = dict(env)
    if plan.gpu:
        child_env["CUDA_VISIBLE_DEVICES"] = plan.gpu
    elsewhere = []
    for argv in plan.runs:
        folder = argv[argv.index("--output-dir") + 1]
        command = [python, *argv]
        if plan.dry_run:
            status, message = run_state(argv, plan.setup)
            print(f"{STATE_NAMES[status]}: {folder}" + (f" ({message})" if message and
                                                         status != FINISHED else ""))
            print(shown(command, plan.gpu), flush=True)
            continue
        existed = os.path.isdir(folder)
        claim = claim_run(argv) if plan.codebase == REPO_ROOT else None
        if claim is not None and claim.skip:
            print(claim.message)
            continue
        if claim is not None and claim.status == RUNNING_ELSEWHERE:
            print(f"running elsewhere: {claim.message}")
            elsewhere.append(folder)
            continue
        if claim is not None and claim.refused:
            print(f"error: {claim.message}", file=sys.stderr)
            return USER_ERROR
        for path in claim.removed if claim is not None else ():
            print(f"Removed {path} (left by a killed run)")
        if existed and not os.path.exists(os.path.join(folder, RESULT_FILE)):
            print(f"unfinished run in {folder}: running it again (train.py resumes from its "
                  "last checkpoint)")
        print(shown(command, plan.gpu), flush=True)
        try:
            status = run_child(command, plan.codebase, child_env, run_folder.lock_fd(folder))
        finally:  # a run that wrote nothing (stopped at once) leaves no folder behind
            run_folder.release(folder, abandon=True)
        if status == RUNNING_ELSEWHERE:  # a host's trainer found the folder held
            elsewhere.append(folder)
        elif status in (USER_ERROR, INTERRUPTED) or status > 128:
            return status  # train.py printed its one line
        elif status != 0:
            print(f"error: exit status {status} from the run in {folder}; fix the cause and "
                  "re-run the same command (finished runs are skipped, this one resumes)",
                  file=sys.stderr)
            return status
    if elsewhere:
        print(f"note: {len(elsewhere)} run(s) are running elsewhere; run this again once they "
              "end")
        return RUNNING_ELSEWHERE
    return 0


def claim_run(argv: list[str]) -> run_folder.Claim:
    """Claim a train.py command's run folder (cwd: this repository): its config resolved
    here as train.py resolves it, the finished rule asked under the lock."""
    from .config import command_cfg, command_identity, parse_args

    args = parse_args(argv[1:])
    try:
        cfg, _ = command_cfg(args)
        identity = command_identity(cfg, args)
        return run_folder.claim(cfg.OUTPUT_DIR, identity)
    except DaptInitError as error:  # a wrong command or a damaged record: one error line
        return run_folder.Claim(OTHER_SETTINGS, " ".join(str(error).split()))


FORWARDED = (signal.SIGTERM, signal.SIGHUP)


def run_child(command: list[str], cwd: Path, env: Mapping[str, str],
              lock_fd: int | None = None) -> int:
    """Run one train.py; its exit status (128 + n when a signal ended it). Ctrl-C reaches it
    from the terminal (same process group) and it reports it; SIGTERM and SIGHUP sent to this
    process are passed on, so a closed terminal or a cluster's stop ends the run cleanly."""
    env = dict(env)
    if lock_fd is not None:  # train.py holds the lock this process took, and asks no rule
        env[run_folder.LOCK_FD_ENV] = str(lock_fd)
    child = subprocess.Popen(command, cwd=cwd, env=env,
                             pass_fds=(lock_fd,) if lock_fd is not None else ())
    previous = {sig: signal.getsignal(sig) for sig in FORWARDED}
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    try:
        status = child.wait()
    finally:
        signal.signal(signal.SIGINT, previous_int)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - status if status < 0 else status


def script_main(script: str, argv: list[str], env: Mapping[str, str], caller: str) -> int:
    plan = plan_script(script, argv, env, caller)
    if isinstance(plan, str):
        print(plan)
        return 0
    try:
        return run_plan(plan, env)
    except KeyboardInterrupt:  # Ctrl-C between runs
        print("error: interrupted (SIGINT); run the same command again: finished runs are "
              "skipped and an unfinished one resumes from its last checkpoint", file=sys.stderr)
        return INTERRUPTED
