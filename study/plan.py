"""The scripts' settings and checks (arguments, environment, TRIAL, CODEBASE), the train.py
command of a run, and a preview of its finished state (the run itself decides under its lock):
what main.sh, eval.sh, base2new_*.sh and the sweep share."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from trainers.dapt_init.config import INIT_METHODS
from trainers.dapt_init.runstate import (FINISHED, NOT_FINISHED, OTHER_SETTINGS, RESULT_FILE,
                                         RUNNING_ELSEWHERE)

from . import inputs
from .run import (DG_TARGETS, EPOCH_KEY, REPO_ROOT, SUBSAMPLE, TAG_PATTERN, TRAINER, VIS_INIT_KEY,
                   StudyError)

# Config keys the scripts set from their arguments: an override would make the run disagree
# with its folder name, so they are refused.
RESERVED_KEYS = {
    "DATASET.NUM_SHOTS": "the SHOTS argument",
    "TRAINER.DAPT_INIT.INIT_METHOD": "the INIT argument",
    VIS_INIT_KEY: "VIS_INIT",
    "DATASET.SUBSAMPLE_CLASSES": "the script (base2new_*.sh set base / new)",
    "SEED": "SEEDS",
    "OUTPUT_DIR": "OUTPUT_ROOT",
    "DATASET.ROOT": "DATA_ROOT",
    "TRAINER.NAME": f"the script ({TRAINER})",
    "DATASET.NAME": "the DATASET argument (its configs/datasets/<dataset>.yaml)",
}
CLIP_KEY = "TRAINER.DAPT_INIT.CLIP_WEIGHTS"
STATE_NAMES = {FINISHED: "finished", OTHER_SETTINGS: "other-settings",
               RUNNING_ELSEWHERE: "running-elsewhere", NOT_FINISHED: "todo"}


class UsageError(StudyError):
    """A wrong argument count: the usage line, then the error line."""


def bash_quote(word: str) -> str:
    """printf %q's quoting (the scripts' messages print commands as bash does)."""
    if word == "":
        return "''"
    return re.sub(r"([^A-Za-z0-9_./:=@%+,^-])", r"\\\1", word)


@dataclass
class Setup:
    """What every script reads from its environment, resolved and checked."""
    env: Mapping[str, str]
    codebase: Path = REPO_ROOT
    trial: bool = False
    seeds: list[int] = field(default_factory=list)
    data_root: str = ""
    output_root: str = ""
    tag: str = ""
    grid: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    has_spec: bool = True

    def get(self, name: str, default: str = "") -> str:
        return self.env.get(name) or default

    @property
    def trial_dir(self) -> Path:
        return Path(self.get("DEMO_DIR") or REPO_ROOT / "demo_output")

    def cfg(self) -> str:
        return self.get("CFG", "demo_small" if self.trial else "")


def setup(env: Mapping[str, str], caller_dir: str) -> Setup:
    """CODEBASE and TRIAL first (they change defaults), as the scripts always did."""
    out = Setup(env)
    codebase = out.get("CODEBASE")
    if codebase:
        # Resolved once, against the caller's folder, and checked there.
        if not (Path(caller_dir, codebase) / "train.py").is_file():
            raise StudyError(f"CODEBASE='{codebase}' has no train.py; point it at the root of "
                             "the codebase that holds the drop-in unit (its train.py, "
                             "trainers/dapt_init/ and configs/)")
        out.codebase = Path(caller_dir, codebase).resolve()
        if not (out.codebase / "configs/trainers" / TRAINER).is_dir():
            raise StudyError(f"CODEBASE='{codebase}' has no configs/trainers/{TRAINER}/; copy "
                             f"{REPO_ROOT}/configs/trainers/{TRAINER}/ there (drop-in step 3)")
        text = (out.codebase / "train.py").read_text(errors="replace")
        out.has_spec = "--spec" in text
    trial = out.get("TRIAL")
    if trial not in ("", "0", "1"):
        raise StudyError("TRIAL must be 1 (a trial with the demo's small CLIP and tiny data) or "
                         f"0, got '{trial}'")
    out.trial = trial == "1"
    out.tag = out.get("TAG")
    if out.trial and "_trial_" not in f"_{out.tag}_":
        out.tag = f"{out.tag}_trial" if out.tag else "trial"
    if out.tag and not TAG_PATTERN.fullmatch(out.tag):
        raise StudyError("TAG must be letters, digits, '.', '_' or '-' (it names a folder), got "
                         f"'{out.tag}'")
    seeds = inputs.words(env, "SEEDS", "1 2" if out.trial else "1 2 3")
    for seed in seeds:
        inputs.check_seed_word(seed)
    out.seeds = [int(s) for s in seeds]
    inputs.check_unique(out.seeds, "SEEDS")  # 1 and 01: one folder
    root = out.get("OUTPUT_ROOT") or str(out.codebase / ("output_trial" if out.trial else "output"))
    out.output_root = os.path.join(caller_dir, root).rstrip("/") or "/"
    inputs.check_folder(out.output_root, "OUTPUT_ROOT")
    out.grid = parse_grid_env(out.get("GRID"))
    return out


def parse_grid_env(text: str) -> dict[str, str]:
    """GRID="KEY=VALUE ...": one job's grid values (the sweep sets it for main.sh)."""
    grid = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if not sep or not value:
            raise StudyError(f"GRID holds KEY=VALUE words, got '{word}'")
        grid[key] = value
    return grid


def require_data_root(s: Setup, caller_dir: str) -> None:
    """DATA_ROOT must name a folder (a trial's default: the demo's tiny data, made here)."""
    root = s.get("DATA_ROOT")
    if s.trial and not root:
        root = str(s.trial_dir / "data")
        if not (Path(root) / "eurosat/split_zhou_EuroSAT.json").is_file() or \
                not (s.trial_dir / "small_clip.pt").is_file():
            print(f"trial: making the demo's small CLIP and tiny EuroSAT in {s.trial_dir}",
                  file=sys.stderr)
            made = subprocess.run([sys.executable, str(REPO_ROOT / "tools/demo.py"),
                                   "--prepare-only", "--workdir", str(s.trial_dir)],
                                  stdout=sys.stderr, check=False)
            if made.returncode != 0:
                raise StudyError(f"could not make the trial's data and CLIP in {s.trial_dir} "
                                 "(see above)")
    if not root:
        raise StudyError("DATA_ROOT is not set; export DATA_ROOT=/path/to/datasets (the folder "
                         "that holds eurosat/, oxford_pets/, ...)")
    full = os.path.join(caller_dir, root)
    if not os.path.isdir(full):
        raise StudyError(f"DATA_ROOT='{root}' is not a directory; point it at the folder that "
                         "holds the data sets (eurosat/, oxford_pets/, ...)")
    s.data_root = os.path.abspath(full)


# ------------------------------------------------------------------------------- checks

def known_datasets(codebase: Path) -> list[str]:
    return sorted(p.stem for p in (codebase / "configs/datasets").glob("*.yaml"))


def check_dataset(name: str, train: bool, codebase: Path) -> None:
    known = known_datasets(codebase)
    valid = [d for d in known if d not in DG_TARGETS] if train else known
    if train and name in DG_TARGETS:
        raise StudyError(f"dataset '{name}' is a test-only target set: train on imagenet "
                         "(main.sh imagenet INIT SHOTS), then evaluate on it with eval.sh INIT "
                         "SHOTS.")
    if name not in valid:
        raise StudyError(f"unknown dataset '{name}'; valid datasets: {' '.join(valid)}")


def check_init(name: str, visual: bool = False) -> None:
    if name not in INIT_METHODS:
        what = "visual init method" if visual else "init method"
        where = " (VIS_INIT, VIS_INITS)" if visual else ""
        raise StudyError(f"unknown {what} '{name}'{where}; valid init methods: "
                         f"{' '.join(INIT_METHODS)}")


def check_shots(text: str) -> int:
    if not re.fullmatch(r"[1-9][0-9]*", text):
        raise StudyError("shots must be a positive integer (1, 2, 4, 8, 16, ...), got "
                         f"'{text}'")
    return int(text)


def check_gpu(text: str) -> None:
    """What CUDA_VISIBLE_DEVICES gets (an index, a comma list, or a GPU-/MIG- UUID)."""
    if text:
        inputs.check_gpu(text, cpu=True)  # "cpu" hides every GPU: a CPU run


def check_overrides(words: list[str], grid: Mapping[str, str] = {}) -> None:
    if len(words) % 2:
        raise StudyError(f"config overrides after '--' come in KEY VALUE pairs; got "
                         f"{len(words)} words: {' '.join(words)}")
    for key in words[::2]:
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*", key):
            raise StudyError(f"'{key}' is not a config key; after '--' give KEY VALUE pairs "
                             "(e.g. OPTIM.MAX_EPOCH 10)")
        if key in RESERVED_KEYS:
            raise StudyError(f"{key} is set by this script from {RESERVED_KEYS[key]}; don't "
                             "pass it as an override")
        if key in grid:
            raise StudyError(f"{key} is set by the grid; don't pass it as an override too")


def split_args(argv: list[str]) -> tuple[list[str], list[str], bool]:
    """(positional words, KEY VALUE overrides after '--', --help asked)."""
    if "--" in argv:
        cut = argv.index("--")
        head, tail = argv[:cut], argv[cut + 1:]
    else:
        head, tail = argv, []
    return [w for w in head if w not in ("-h", "--help")], tail, any(
        w in ("-h", "--help") for w in head)


def check_arg_count(words: list[str], low: int, high: int) -> None:
    if not low <= len(words) <= high:
        expected = f"{low}" if low == high else f"{low} to {high}"
        raise UsageError(f"expected {expected} arguments before any '--', got {len(words)} "
                         "(config overrides go after '--': ... -- OPTIM.MAX_EPOCH 10)")


def run_overrides(s: Setup) -> list[str]:
    """The user's overrides, the grid's values, and a trial's small CLIP (unless named)."""
    words = list(s.overrides)
    for key, value in s.grid.items():
        if key != VIS_INIT_KEY:
            words += [key, value]
    if s.trial and CLIP_KEY not in words[::2]:
        words += [CLIP_KEY, str(s.trial_dir / "small_clip.pt")]
    return words


def train_argv(spec, s: Setup, model_dir: str = "", load_epoch: int = 0) -> list[str]:
    """The train.py command (after the interpreter) of a run, as main.sh always built it."""
    argv = ["train.py", "--root", s.data_root, "--seed", str(spec.seed), "--trainer", TRAINER,
            "--dataset-config-file", f"configs/datasets/{spec.dataset}.yaml",
            "--config-file", f"configs/trainers/{TRAINER}/{spec.config}.yaml",
            "--output-dir", spec.folder(s.output_root)]
    inputs.check_components(argv[-1], "a run folder")
    if s.has_spec:  # recorded in result.json by train.py; a host's train.py has no --spec
        argv += ["--spec", spec.to_json()]
    if model_dir:
        argv += ["--model-dir", model_dir, "--load-epoch", str(load_epoch), "--eval-only"]
    argv += ["TRAINER.DAPT_INIT.INIT_METHOD", spec.init,
             VIS_INIT_KEY, spec.vis_init, "DATASET.NUM_SHOTS", str(spec.shots)]
    if spec.kind in SUBSAMPLE:
        argv += ["DATASET.SUBSAMPLE_CLASSES", SUBSAMPLE[spec.kind]]
    return argv + run_overrides(s)


def run_state(argv: list[str], s: Setup) -> tuple[int, str]:
    """(status, message): a preview of the finished rule for a train.py command (cwd: the
    codebase). A host's configs and trainer keys are its own, so there only a result.json
    tells: the run itself compares the settings when it starts."""
    folder = argv[argv.index("--output-dir") + 1]
    if not os.path.exists(folder):
        return NOT_FINISHED, ""
    if s.codebase != REPO_ROOT:
        found = os.path.isfile(os.path.join(folder, RESULT_FILE))
        return (FINISHED, f"skip (finished): {folder}") if found else (NOT_FINISHED, "")
    from .config import run_verdict

    return run_verdict(argv[1:])


def epoch_grid_text(grid_keys: list[str], counts: list[int]) -> str:
    return "".join(f" x {n} epochs" if k == EPOCH_KEY else
                   f" x {n} {k.rsplit('.', 1)[-1].lower()} values" for k, n in zip(grid_keys, counts))
