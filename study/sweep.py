"""The study's sweep: the job grid, its dry run (states by train.py's finished rule, in this
process), the SLURM array script, and the local GPU / CPU pool (one job per slot at a time)."""
from __future__ import annotations

import itertools
import os
import subprocess
from dataclasses import dataclass, field
from typing import Mapping

from trainers.dapt_init.config import INIT_METHODS

from .plan import (STATE_NAMES, Setup, UsageError, bash_quote, check_dataset, check_gpu,
                   check_init, check_overrides, check_shots, epoch_grid_text, require_data_root,
                   run_state, setup, split_args, train_argv)
from .run import EPOCH_KEY, REPO_ROOT, VIS_INIT_KEY, RunSpec, StudyError, choose_config, full_tag


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
    check_lists(env)
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
    inits = listed("INITS", " ".join(INIT_METHODS))  # the init names: config.py's
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
    check_sweep(sweep, mode, env)  # one line and no job, whatever a job would refuse
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


# ------------------------------------------------------------------ checks before any job
# Everything a job would refuse is found here, before the first job starts (and in --dry-run):
# one error line, no job runs. The values are checked by building the config exactly as the
# job's train.py would (study/config.py) and applying train.py's own rules (validate_config).
LIST_VARIABLES = ("DATASETS", "INITS", "SHOTS", "SEEDS", "EPOCHS", "VIS_INITS")
# The local pool has no limit of its own; a grid this large is a typo (a list pasted twice, a
# stray comma). SLURM clusters refuse arrays beyond MaxArraySize (1001 by default).
MAX_JOBS, MAX_SLURM_JOBS = 10_000, 1_001


def check_lists(env: Mapping[str, str]) -> None:
    """A list variable that is set but holds no word is an error, not its default (SEEDS=""
    from a script whose variable went unset would otherwise run the default grid)."""
    for name in LIST_VARIABLES:
        if name in env and not env[name].split():
            raise StudyError(f"{name} is set but empty; give its values (e.g. {name}="
                             f"\"{_EXAMPLES[name]}\") or unset it for the default")
    for name in LIST_VARIABLES:
        words = (env.get(name) or "").split()
        keyed = [int(w) if w.isdigit() else w for w in words]
        twice = sorted({str(w) for w, k in zip(words, keyed) if keyed.count(k) > 1})
        if twice:
            raise StudyError(f"{name} lists {' and '.join(twice)} more than once; each value "
                             "once (a value twice is two jobs on one run folder)")


_EXAMPLES = {"DATASETS": "eurosat oxford_pets", "INITS": "random same diff", "SHOTS": "1 2 4",
             "SEEDS": "1 2 3", "EPOCHS": "25 50", "VIS_INITS": "random diff"}


def _job_config(sweep: Sweep, job: Job):
    """The frozen config the job's train.py builds (cwd: the codebase), or the error it
    would stop with."""
    from trainers.dapt_init.config import validate_config
    from trainers.dapt_init.dapt_values import apply_dapt_values

    from .config import parse_args, setup_cfg

    s, saved = sweep.s, sweep.s.grid
    s.grid = {k: v for k, v in job.grid.items()}
    try:
        argv = train_argv(sweep.spec(job), s)[1:]
    finally:
        s.grid = saved
    if s.codebase != REPO_ROOT:
        # A host's dataset yaml may set its own trainer's keys (DAPT's sets TRAINER.DAPT.*),
        # which this repository's config lacks: the values are checked with ours.
        at = argv.index("--dataset-config-file") + 1
        argv[at] = str(REPO_ROOT / "configs" / "datasets" / f"{job.dataset}.yaml")
    cfg = setup_cfg(parse_args(argv))
    validate_config(cfg, training=True)
    cfg.defrost()
    apply_dapt_values(cfg)  # as train.py: a value nobody set is DAPT's, compared as such
    cfg.freeze()
    return cfg


def _config_value(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def check_values(sweep: Sweep) -> None:
    """Each grid key exists; each value is of its key's type, finite and in range (train.py's
    rules); no two values of a key are the same value (1 and 1.0); the sweep's overrides and
    each data set's config pass too. Needs the toolbox's config (dassl.config)."""
    from trainers.dapt_init.errors import DaptInitError

    for key, values in sweep.grid.items():
        for value in values:
            if value.count("[") != value.count("]") or value.count("(") != value.count(")"):
                raise StudyError(f"--grid {key}: {','.join(values)} is split at its commas, so a "
                                 "list or tuple cannot be a grid value; run one sweep per value "
                                 f"with -- {key} VALUE")
            if not value.isprintable() or any(c.isspace() for c in value):
                raise StudyError(f"--grid {key}: the value {value!r} holds a space or a control "
                                 "character; config values in a grid are single words")
    first = sweep.jobs[0]
    try:  # the sweep's overrides and its first data set, without the grid's values
        _job_config(sweep, Job(first.dataset, first.init, first.shots, first.seed))
    except DaptInitError as error:
        raise StudyError(f"every job would stop with: {error}") from None
    seen_configs = {(first.dataset, first.shots)}
    for job in sweep.jobs:  # each data set and shot count once (their yaml files)
        if (job.dataset, job.shots) in seen_configs:
            continue
        seen_configs.add((job.dataset, job.shots))
        try:
            _job_config(sweep, Job(job.dataset, first.init, job.shots, first.seed))
        except DaptInitError as error:
            raise StudyError(f"the {job.dataset} {job.shots}-shot jobs would stop with: "
                             f"{error}") from None
    for key, values in sweep.grid.items():
        parsed: dict[str, object] = {}
        for value in values:
            job = Job(first.dataset, first.init, first.shots, first.seed,
                      {**first.grid, key: value})
            try:
                cfg = _job_config(sweep, job)
            except DaptInitError as error:
                raise StudyError(f"--grid {key}={value}: the jobs with it would stop with: "
                                 f"{error}") from None
            merged = _config_value(cfg, key)
            same = [other for other, known in parsed.items() if known == merged]
            if same:
                raise StudyError(f"--grid {key} lists the value {merged!r} twice ({same[0]} "
                                 f"and {value}); give each value once")
            parsed[value] = merged


def check_jobs(sweep: Sweep, mode: str, env: Mapping[str, str]) -> None:
    """The grid's size, and no two jobs on one run folder (two grid values with one tag)."""
    limit = MAX_SLURM_JOBS if mode == "slurm" else MAX_JOBS
    if len(sweep.jobs) > limit:
        where = ("a SLURM array of more than 1001 tasks is refused by SLURM's default "
                 "MaxArraySize" if mode == "slurm" else f"more than {limit} jobs is taken for "
                 "a typo")
        raise StudyError(f"the sweep has {len(sweep.jobs)} jobs ({sweep.grid_text()}); {where}:"
                         " split it (e.g. one DATASETS value per sweep)")
    folders: dict[str, int] = {}
    for index, job in enumerate(sweep.jobs):
        folder = sweep.spec(job).folder(sweep.s.output_root)
        if folder in folders:
            other = sweep.jobs[folders[folder]]
            raise StudyError(f"jobs {folders[folder]} ({other.text()}) and {index} "
                             f"({job.text()}) would write one run folder, {folder}; grid "
                             "values must differ in their folder tag")
        folders[folder] = index


def check_sweep(sweep: Sweep, mode: str, env: Mapping[str, str]) -> None:
    """Every check above, in the codebase's folder (the configs are read from there)."""
    check_jobs(sweep, mode, env)
    check_values(sweep)
