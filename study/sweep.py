"""The study's sweep: the job grid, its dry run (states by train.py's finished rule, in this
process), the SLURM array script, and the local GPU / CPU pool (one job per slot at a time)."""
from __future__ import annotations

import itertools
import os
import subprocess
from dataclasses import dataclass, field
from typing import Mapping

from .plan import (STATE_NAMES, Setup, UsageError, bash_quote, check_dataset, check_gpu,
                   check_init, check_overrides, check_shots, epoch_grid_text, require_data_root,
                   run_state, setup, split_args, train_argv)
from .spec import EPOCH_KEY, REPO_ROOT, VIS_INIT_KEY, RunSpec, StudyError, choose_config, full_tag


@dataclass(frozen=True)
class Job:
    dataset: str
    init: str
    shots: int
    seed: int
    grid: dict[str, str] = field(default_factory=dict)

    @property
    def vis_init(self) -> str:
        return self.grid.get(VIS_INIT_KEY, "random")

    def words(self) -> str:  # a SLURM task's job: "dataset init shots seed [vis-v] [KEY=V]"
        extra = [f"vis-{self.vis_init}"] if self.vis_init != "random" else []
        extra += [f"{k}={v}" for k, v in self.grid.items() if k != VIS_INIT_KEY]
        return " ".join([self.dataset, self.init, str(self.shots), str(self.seed), *extra])

    def text(self) -> str:  # eurosat init=diff shots=4 seed=1 [epochs=25]
        out = f"{self.dataset} init={self.init}"
        out += f" vis_init={self.vis_init}" if self.vis_init != "random" else ""
        out += f" shots={self.shots} seed={self.seed}"
        for key, value in self.grid.items():
            if key != VIS_INIT_KEY:
                out += f" {'epochs' if key == EPOCH_KEY else key.rsplit('.', 1)[-1].lower()}={value}"
        return out

    def env(self, s: Setup) -> dict[str, str]:
        """main.sh's environment for this job."""
        # The visual init as main.sh's own VIS_INIT (it names a folder, not a tag); the other
        # grid values as GRID, which main.sh passes as overrides and tags the folder with.
        # Set even when empty (GRID) or random (VIS_INIT, with a visual-init grid), so that
        # the caller's own environment cannot leak into a job.
        grid = " ".join(f"{k}={v}" for k, v in self.grid.items() if k != VIS_INIT_KEY)
        env = {"TAG": s.tag, "SEEDS": str(self.seed), "GRID": grid}
        if VIS_INIT_KEY in self.grid:
            env["VIS_INIT"] = self.vis_init
        return env

    def command(self, s: Setup, gpu: str, overrides: list[str]) -> str:
        env = self.env(s)
        words = (["TRIAL=1"] if s.trial else []) + [f"{k}={bash_quote(v)}" for k, v in
                                                     env.items() if v]
        words += ["bash", "scripts/dapt_init/main.sh", self.dataset, self.init, str(self.shots)]
        words += [gpu] if gpu else []
        words += ["--", *map(bash_quote, overrides)] if overrides else []
        return " ".join(words)


@dataclass
class Sweep:
    s: Setup
    datasets: list[str]
    inits: list[str]
    shots: list[int]
    grid: dict[str, list[str]]
    jobs: list[Job]

    def spec(self, job: Job) -> RunSpec:
        config = choose_config(job.dataset, job.shots, self.s.cfg(), self.s.codebase)
        grid = {k: v for k, v in job.grid.items() if k != VIS_INIT_KEY}  # as main.sh's spec
        return RunSpec("train", job.dataset, job.init, job.vis_init, config, job.shots, job.seed,
                       full_tag(self.s.tag, grid), grid)

    def log(self, job: Job, folder: str) -> str:
        spec = self.spec(job)
        tag = f"_{spec.tag}" if spec.tag else ""
        name = f"{job.dataset}_{spec.init_folder}_{job.shots}shots{tag}_seed{job.seed}.log"
        return os.path.join(folder, name)

    def state(self, job: Job) -> str:
        s, grid = self.s, job.grid
        saved, s.grid = s.grid, dict(grid)
        try:
            status, _ = run_state(train_argv(self.spec(job), s), s)
        finally:
            s.grid = saved
        return STATE_NAMES.get(status, "other-settings")

    def grid_text(self) -> str:
        vis = self.grid.get(VIS_INIT_KEY, ["random"])
        text = f"{len(self.datasets)} datasets x {len(self.inits)} inits"
        if vis != ["random"]:
            text += f" x {len(vis)} visual inits"
        text += f" x {len(self.shots)} shots x {len(self.s.seeds)} seeds"
        keys = [k for k in self.grid if k != VIS_INIT_KEY]
        return text + epoch_grid_text(keys, [len(self.grid[k]) for k in keys])


def parse_grid(words: list[str], env: Mapping[str, str]) -> dict[str, list[str]]:
    """--grid KEY=V1,V2 options, with VIS_INITS and EPOCHS as the grids they always were."""
    grid: dict[str, list[str]] = {}
    vis = (env.get("VIS_INITS") or env.get("VIS_INIT") or "").split()
    if vis:
        grid[VIS_INIT_KEY] = vis
    for word in words:
        key, sep, values = word.partition("=")
        if not sep or not all(values.split(",")):
            raise StudyError(f"--grid takes KEY=VALUE1,VALUE2,..., got '{word}'")
        if key in grid or key == EPOCH_KEY and env.get("EPOCHS"):
            raise StudyError(f"{key} has two grids (--grid twice, or EPOCHS / VIS_INITS and "
                             "--grid); give its values once")
        if key != VIS_INIT_KEY:  # the visual init's grid is VIS_INITS in --grid's words
            check_overrides([key, values])
        grid[key] = values.split(",")
    if env.get("EPOCHS"):
        for value in env["EPOCHS"].split():
            if not value.isdigit() or value.startswith("0"):
                raise StudyError(f"EPOCHS must be positive integers separated by spaces, got "
                                 f"'{value}'")
        grid[EPOCH_KEY] = env["EPOCHS"].split()
    for value in grid.get(VIS_INIT_KEY, []):
        check_init(value, visual=True)
    return grid


def build(argv: list[str], env: Mapping[str, str], caller: str) -> tuple[str, Sweep, list[str]]:
    mode, grid_words, rest = "run", [], list(argv)
    head, overrides, _ = split_args(rest)
    words = iter(head)
    for word in words:
        if word in ("--dry-run", "--slurm"):
            if mode != "run":
                raise UsageError("give at most one of --dry-run and --slurm")
            mode = word[2:]
        elif word == "--grid":
            grid_words.append(next(words, ""))
        elif word.startswith("--grid="):
            grid_words.append(word[7:])
        else:
            raise UsageError(f"unknown argument '{word}' (config overrides go after '--')")
    if env.get("GRID"):  # one job's grid point, set by the sweep itself
        raise StudyError("GRID is main.sh's (one point of a grid); give the sweep its grid as "
                         "--grid KEY=VALUE1,VALUE2")
    s = setup(env, caller)
    grid = parse_grid(grid_words, env)
    s.overrides = overrides
    check_overrides(overrides, {k: "" for k in grid})

    def listed(name: str, default: str) -> list[str]:
        values = (env.get(name) or default).split()
        if not values:
            raise StudyError(f"{name} is empty")
        return values

    datasets = listed("DATASETS", "eurosat" if s.trial else "eurosat oxford_pets")
    inits = listed("INITS", "random same diff")
    shots = [check_shots(v) for v in listed("SHOTS", "1 2 4" if s.trial else "1 2 4 8 16")]
    for dataset in datasets:
        check_dataset(dataset, True, s.codebase)
    for init in inits:
        check_init(init)
    for dataset, count in itertools.product(datasets, shots):
        choose_config(dataset, count, s.cfg(), s.codebase)
    keys = list(grid)
    vis = grid.get(VIS_INIT_KEY, ["random"])
    others = [k for k in keys if k != VIS_INIT_KEY]
    jobs = []
    for dataset, init, v, count, seed in itertools.product(datasets, inits, vis, shots, s.seeds):
        for values in itertools.product(*(grid[k] for k in others)):
            job_grid = ({VIS_INIT_KEY: v} if VIS_INIT_KEY in grid else {})
            job_grid.update(zip(others, values))
            jobs.append(Job(dataset, init, count, seed, job_grid))
    if mode == "run":
        gpus = listed("GPUS", default_gpus())
        for gpu in gpus:
            check_gpu(gpu)
        require_data_root(s, caller)
    else:
        gpus = []
        if env.get("DATA_ROOT") or s.trial:
            require_data_root(s, caller)
    return mode, Sweep(s, datasets, inits, shots, grid, jobs), gpus


def default_gpus() -> str:
    """GPU 0 where nvidia-smi lists one, else one job at a time on the CPU."""
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                check=False).stdout
    except OSError:
        return "cpu"
    return "0" if any(line.startswith("GPU") for line in listed.splitlines()) else "cpu"


def sweep_main(argv: list[str], env: Mapping[str, str], caller: str) -> int:
    from .help import HELP, USAGE
    from .pool import run_pool, slurm_script

    if any(w in ("-h", "--help") for w in argv[:argv.index("--") if "--" in argv else None]):
        print(f"usage: {USAGE['sweep']}\n\n{HELP['sweep']}")
        return 0
    mode, sweep, gpus = build(argv, env, caller)
    os.chdir(sweep.s.codebase)
    if mode == "dry-run":
        return dry_run(sweep)
    if mode == "slurm":
        print(slurm_script(sweep, env))
        return 0
    return run_pool(sweep, gpus, env, caller)


def dry_run(sweep: Sweep) -> int:
    counts = dict.fromkeys(("finished", "todo", "other-settings", "running-elsewhere"), 0)
    for index, job in enumerate(sweep.jobs):
        state = sweep.state(job)
        counts[state] += 1
        # The folder as a shell comment: the command stays one to paste.
        print(f"job {index} [{state}]: {job.command(sweep.s, 'GPU', sweep.s.overrides)}  "
              f"# {sweep.spec(job).folder(sweep.s.output_root)}")
    # Every job in exactly one count: a folder finished with other settings is neither done
    # nor going to run (main.sh refuses it, naming the keys).
    summary = f"{counts['finished']} finished, {counts['todo']} to run"
    if counts["other-settings"]:
        summary += (f", {counts['other-settings']} finished with other settings (refused: run "
                    "main.sh for one of them to see the keys; another TAG or OUTPUT_ROOT keeps "
                    "both)")
    if counts["running-elsewhere"]:
        summary += f", {counts['running-elsewhere']} running elsewhere"
    print(f"{len(sweep.jobs)} jobs ({sweep.grid_text()}): {summary}")
    if not sweep.s.data_root and not sweep.s.trial:
        print("note: DATA_ROOT is not set; the jobs need it")
    return 0


def job_main(argv: list[str], env: Mapping[str, str], caller: str) -> int:
    """A SLURM task: "dataset init shots seed [vis-v] [KEY=V ...]" [-- overrides] -> main.sh."""
    head, overrides, _ = split_args(argv)
    dataset, init, shots, seed, *extra = " ".join(head).split()
    vis = [w[4:] for w in extra if w.startswith("vis-")]
    grid = [w for w in extra if not w.startswith("vis-")]
    # Set even when random / empty: sbatch passes the submitting shell's environment on.
    job_env = {**env, "SEEDS": seed, "GRID": " ".join(grid),
               "VIS_INIT": vis[-1] if vis else "random"}
    command = ["bash", str(REPO_ROOT / "scripts/dapt_init/main.sh"), dataset, init, shots]
    os.execve("/bin/bash", command + (["--", *overrides] if overrides else []), job_env)
    return 0
