"""The sweep's local pool (one job per GPU / CPU slot at a time, each job in its own process
group) and its SLURM job-array script (one template)."""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from typing import Mapping

from . import inputs
from .run import REPO_ROOT, StudyError

SLURM = """#!/bin/bash
#SBATCH --job-name={name}
#SBATCH --array=0-{last}{throttle}
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
#SBATCH --output=%x_%A_%a.out
#SBATCH --open-mode=append
#SBATCH --requeue
{extra}#
# DAPT_Init study as a SLURM job array: {count} jobs ({grid}), one per array task.
# Made by scripts/dapt_init/sweep.sh --slurm on {date}. Submit: sbatch <this file>.
# Each task runs main.sh for one job on the GPU SLURM gives it. Finished runs are skipped and
# unfinished ones resume (--requeue, --open-mode=append: a pre-empted task restarts and keeps
# its first attempt's output); resubmit chosen tasks with sbatch --array=3,7 <this file>.
set -euo pipefail
cd {repo}
{exports}# task index: "dataset init shots seed [vis-<visual init>] [KEY=VALUE grid values]"
JOBS=(
{jobs})
: "${{SLURM_ARRAY_TASK_ID:?submit this file with sbatch (it is a job array)}}"
echo "task $SLURM_ARRAY_TASK_ID (restart ${{SLURM_RESTART_COUNT:-0}}) on $(hostname), $(date)"
exec "${{STUDY_PYTHON:-python3}}" -m study job "${{JOBS[$SLURM_ARRAY_TASK_ID]}}"{overrides}
"""


def _double_quoted(word: str) -> str:
    """``word`` as one bash word in double quotes: inside them bash gives a meaning to exactly
    backslash, '$', '`' and '"' (history expansion is off in scripts), so escaping those four
    leaves every other character literal. The task list stays readable as it always was."""
    return '"' + re.sub(r'([\\"$`])', r"\\\1", word) + '"'


# SLURM's --time formats: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
# days-hours:minutes, days-hours:minutes:seconds; or no limit.
SLURM_TIME = re.compile(r"[0-9]+(:[0-9]{1,2}){0,2}|[0-9]+-[0-9]{1,2}(:[0-9]{1,2}){0,2}"
                        r"|UNLIMITED|INFINITE")
# A job name and an extra #SBATCH option become lines that sbatch reads up to the first
# non-comment line: no newline (it would end the #SBATCH block and start a command), no other
# control character, no space in a name (sbatch splits the line).
JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
SBATCH_OPTION = re.compile(r"--?[A-Za-z][A-Za-z0-9-]*(=[\x21-\x7e]*)?")


def check_slurm_env(env: Mapping[str, str]) -> None:
    """SWEEP_JOB_NAME, SWEEP_TIME and SWEEP_SBATCH, each checked before the script is written:
    the script must be the one the sweep describes, whatever the variables hold."""
    name, limit = env.get("SWEEP_JOB_NAME", ""), env.get("SWEEP_TIME", "")
    if name and not JOB_NAME.fullmatch(name):
        raise StudyError(f"SWEEP_JOB_NAME must be letters, digits, '.', '_', '+' or '-' "
                         f"(at most 128, no spaces or newlines), got {name!r}")
    if limit and not SLURM_TIME.fullmatch(limit):
        raise StudyError(f"SWEEP_TIME must be a SLURM time limit (MINUTES, HH:MM:SS, "
                         f"DAYS-HH:MM:SS, ... e.g. 24:00:00), got {limit!r}")
    for option in (env.get("SWEEP_SBATCH") or "").split():
        if not SBATCH_OPTION.fullmatch(option):
            raise StudyError(f"SWEEP_SBATCH holds sbatch options separated by spaces (e.g. "
                             f"'--partition=gpu --account=lab'), got {option!r}")


def slurm_script(sweep, env: Mapping[str, str]) -> str:
    parallel, cpus = env.get("SWEEP_MAX_PARALLEL", ""), env.get("SWEEP_CPUS") or "8"
    # ASCII digits only (str.isdigit takes '８' and '²', which sbatch does not).
    if parallel and not re.fullmatch(r"[1-9][0-9]{0,6}", parallel):
        raise StudyError(f"SWEEP_MAX_PARALLEL must be a positive integer, got {parallel!r}")
    if not re.fullmatch(r"[1-9][0-9]{0,6}", cpus):
        raise StudyError(f"SWEEP_CPUS must be a positive integer, got {cpus!r}")
    check_slurm_env(env)
    s = sweep.s
    exports = [("DATA_ROOT", s.data_root), ("OUTPUT_ROOT", s.output_root),
               ("CODEBASE", str(s.codebase) if env.get("CODEBASE") else "")]
    exports += [(n, env.get(n, "")) for n in ("CFG", "PYTHON", "TAG", "TRIAL")]
    # Every value that reaches a bash line is quoted here, by construction: exports and the
    # repository with shlex.quote, each task in double quotes (_double_quoted), overrides
    # with shlex.join. The comments carry only numbers and checked names.
    return SLURM.format(
        name=env.get("SWEEP_JOB_NAME") or "dapt_init", last=len(sweep.jobs) - 1,
        throttle=f"%{parallel}" if parallel else "", cpus=cpus,
        time=env.get("SWEEP_TIME") or "24:00:00",
        extra="".join(f"#SBATCH {o}\n" for o in (env.get("SWEEP_SBATCH") or "").split()),
        count=len(sweep.jobs), grid=sweep.grid_text(), date=time.strftime("%Y-%m-%d %H:%M"),
        repo=shlex.quote(str(REPO_ROOT)),
        exports="".join(f"export {n}={shlex.quote(v)}\n" for n, v in exports if v),
        jobs="".join(f"    {_double_quoted(job.words())}  # {i}\n"
                     for i, job in enumerate(sweep.jobs)),
        overrides=" -- " + shlex.join(s.overrides) if s.overrides else "").rstrip("\n")


def run_pool(sweep, gpus: list[str], env: Mapping[str, str], caller: str) -> int:
    s = sweep.s
    logs = env.get("SWEEP_LOG_DIR") or os.path.join(s.output_root, "sweep_logs")
    logs = os.path.join(caller, logs)
    # Before any job: where the runs and their logs go must be (or become) writable folders.
    inputs.check_folder(s.output_root, "OUTPUT_ROOT", writable=True)
    inputs.check_folder(logs, "SWEEP_LOG_DIR", writable=True)
    for job in sweep.jobs:
        inputs.check_components(sweep.log(job, logs), "a job's log file")
    pending, elsewhere, failed = [], [], []
    for index, job in enumerate(sweep.jobs):
        state = sweep.state(job)
        if state == "finished":
            print(f"skip (finished): job {index}: {job.text()}")
        elif state == "running-elsewhere":
            print(f"running elsewhere: job {index}: {job.text()}")
            elsewhere.append(index)
        else:  # todo, or other settings: main.sh then fails with the reason in the job's log
            pending.append(index)
    if "cpu" in gpus:
        where = ("on the CPU, one at a time" if len(gpus) == 1 else
                 f"on the CPU ({' '.join(gpus)} slots)")
    else:
        where = f"on GPUs {' '.join(gpus)}"
    print(f"sweep: {len(sweep.jobs)} jobs, {len(pending)} to run {where}", flush=True)
    if pending:
        os.makedirs(logs, exist_ok=True)
    running: dict[int, tuple[int, subprocess.Popen]] = {}  # slot -> (job index, process)
    signals: list[int] = []

    def forward(process: subprocess.Popen) -> None:
        # First signal: the job's own (train.py stops cleanly and resumes next time); any
        # later one: SIGKILL, for a job that does not stop.
        number = signals[0] if len(signals) == 1 else signal.SIGKILL
        try:
            os.killpg(process.pid, number)
        except ProcessLookupError:  # it ended meanwhile
            pass

    def on_signal(number: int, _frame) -> None:
        signals.append(number)
        if len(signals) == 1:  # the sweep's one line; stopped jobs are not reported as failed
            name = signal.Signals(number).name
            print(f"error: interrupted ({name}); stopping {len(running)} running job(s); run "
                  "the sweep again: finished runs are skipped and unfinished ones resume from "
                  "their last checkpoint (a second signal kills the jobs)", file=sys.stderr,
                  flush=True)
        for _, process in running.values():
            forward(process)

    # SIGHUP (the terminal or ssh session closed) as SIGTERM: the jobs stop and resume later,
    # rather than the sweep dying silently with its job running on detached.
    # Under nohup SIGHUP stays ignored, as the user asked.
    old = {n: signal.signal(n, on_signal) for n in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
           if n != signal.SIGHUP or signal.getsignal(n) != signal.SIG_IGN}
    ran, slot_name = 0, (lambda slot: "cpu" if gpus[slot] == "cpu" else f"gpu {gpus[slot]}")
    try:
        while (pending and not signals) or running:
            for slot in range(len(gpus)):
                if slot not in running and pending and not signals:
                    index = pending.pop(0)
                    job, gpu = sweep.jobs[index], "" if gpus[slot] == "cpu" else gpus[slot]
                    log = sweep.log(job, logs)
                    print(f"[start] {slot_name(slot)}: job {index}: "
                          f"{job.command(s, gpu, s.overrides)} (log: {log})", flush=True)
                    command = ["bash", str(REPO_ROOT / "scripts/dapt_init/main.sh"),
                               job.dataset, job.init, str(job.shots), *([gpu] if gpu else []),
                               *(["--", *s.overrides] if s.overrides else [])]
                    with open(log, "a", encoding="utf-8") as out:
                        # Its own process group: a terminal's Ctrl-C reaches the sweep only,
                        # which forwards it (so it is reported once, and a second one kills).
                        process = subprocess.Popen(
                            command, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            env={**env, **job.env(s)}, start_new_session=True, cwd=caller)
                    running[slot] = (index, process)
                    ran += 1
                    if signals:  # a signal came while it started: it missed the forwarding
                        forward(process)
            pid, status = os.wait()
            for slot, (index, process) in list(running.items()):
                if process.pid != pid:
                    continue
                del running[slot]
                process.returncode = os.waitstatus_to_exitcode(status)  # reaped here
                code = process.returncode
                job = sweep.jobs[index]
                if signals and code != 0:  # stopped by the forwarded signal: said above
                    continue
                if code == 0:
                    print(f"[done] {slot_name(slot)}: job {index}: {job.text()}", flush=True)
                elif code == 4:  # not a failure: another process has it
                    print(f"[running elsewhere] {slot_name(slot)}: job {index}: {job.text()}")
                    elsewhere.append(index)
                else:
                    code_text = code if code >= 0 else "killed"
                    print(f"[FAILED] {slot_name(slot)}: job {index}: {job.text()}: exit status "
                          f"{code_text} (log: {sweep.log(job, logs)})", flush=True)
                    failed.append((index, code_text))
    finally:
        for number, handler in old.items():
            signal.signal(number, handler)
    if signals:
        return 128 + signals[0]  # 130 SIGINT, 129 SIGHUP, 143 SIGTERM, as a shell reports
    if failed:
        print(f"sweep: {len(failed)} of {ran} jobs run failed:", file=sys.stderr)
        for index, code in failed:
            job = sweep.jobs[index]
            print(f"  job {index}: {job.text()}: exit status {code} (log: "
                  f"{sweep.log(job, logs)})", file=sys.stderr)
        return 1
    if elsewhere:
        print(f"sweep: {len(sweep.jobs) - len(elsewhere)} jobs done or finished ({ran} run now), "
              f"{len(elsewhere)} running elsewhere (not failures; run the sweep again once "
              "they end)")
        return 0
    print(f"sweep: all {len(sweep.jobs)} jobs finished ({ran} run now)")
    return 0
