"""The real train.py runs that several end-to-end modules read, trained once per test session.

``SharedRuns`` (the session fixture ``shared_runs`` in tests/conftest.py) is a catalogue of
named runs in one prepared workdir (tiny EuroSAT-layout data and a small random CLIP, as
tools/demo.py makes them). A run is trained the first time a test asks for it and kept for the
rest of the session; under pytest-xdist the workers (separate processes) share one folder, the
session's base temporary folder's, and an ``fcntl`` lock per run: the first worker to ask
trains it, the others wait and reuse it. The folder belongs to this session alone, so a run an
earlier session left is never reused.

The runs are READ-ONLY for the tests: a test that writes into a run (resumes into it,
evaluates into it, corrupts or locks it) copies it first (``shutil.copytree``) or trains its
own. Each run's digest (every file's path and bytes) is recorded when it is trained;
``changed()`` names the runs whose files differ now, and each module that reads shared runs
ends with a test that asserts there are none.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from tests.support import integration, warm_runner
from tests.support.integration import prepared_workdir, train_command

INITS = ("random", "same", "diff")

# tests/end_to_end/test_run_guards.py's runs: every epoch's checkpoint kept, validation every
# epoch with the best one deployed.
GUARD_OPTS = ("TRAIN.CHECKPOINT_FREQ", "1", "TEST.FINAL_MODEL", "best_val")


@dataclass(frozen=True)
class Recipe:
    """How a run is made: ``make(workdir, run_dir, catalogue)`` trains it into ``run_dir``;
    ``after`` names runs trained before it (whose caches it then finds in the data root)."""

    make: Callable[[Path, Path, "SharedRuns"], None]
    after: tuple[str, ...] = ()
    # Where the run lives, relative to the workdir (None: runs/<name>).
    folder: Callable[[Path], Path] | None = None


def _run(args: list[str]):
    """``args`` forked from the warm runner with the session's fixed run environment
    (integration.RUN_ENV), whichever worker trains it and whatever its imports have added to
    its own environment since (sklearn, imported by a t-SNE test, adds KMP_* variables: a run
    started with those would be a cold process)."""
    return warm_runner.run(args, integration.REPO, integration.RUN_ENV, 240,
                           warm_env=integration.RUN_ENV)


def _train(command: list[str]) -> None:
    done = _run(command)
    assert done.returncode == 0, done.stderr[-2000:]


def _demo(init: str) -> Recipe:
    """The demo's own command (tools/demo.py: 2 shots, 3 epochs), in the demo's output folder
    (the one main.sh uses for CFG=demo_small SEEDS=1). The data root's prototype cache: the
    "random" run computes the prototypes, the others (trained after it) load them."""
    return Recipe(
        make=lambda workdir, run_dir, _: _train(train_command(workdir, init)),
        after=() if init == "random" else ("demo/random",),
        folder=lambda workdir: workdir / "output/eurosat/DAPT_Init" / init
        / "demo_small_2shots/seed1")


def _one_epoch(init: str) -> Recipe:
    """tests/end_to_end/test_analyze_prompts_runs.py's: the demo command, 1 epoch."""
    return Recipe(make=lambda workdir, run_dir, _: _train(
        train_command(workdir, init, "OPTIM.MAX_EPOCH", "1", output_dir=run_dir)))


def _visinit(vis_init: str, epochs: str, grad_norms: str, keep: str) -> Recipe:
    """tests/end_to_end/test_visinit_runs.py's: text init diff with a visual init."""
    return Recipe(make=lambda workdir, run_dir, _: _train(train_command(
        workdir, "diff", "OPTIM.MAX_EPOCH", epochs, "TRAINER.DAPT_INIT.VIS_INIT_METHOD", vis_init,
        "TRAINER.DAPT_INIT.LOG_GRAD_NORMS", grad_norms, "TRAINER.DAPT_INIT.KEEP_EPOCHS", keep,
        output_dir=run_dir)))


def guards_command(workdir: Path, run_dir: Path, cache: Path) -> list[str]:
    return train_command(workdir, "random", *GUARD_OPTS,
                         "TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR", str(cache), output_dir=run_dir)


def _guards_reference(workdir: Path, run_dir: Path, runs: "SharedRuns") -> None:
    _train(guards_command(workdir, run_dir, runs.guards_cache))


def _guards_resumed(workdir: Path, run_dir: Path, runs: "SharedRuns") -> None:
    """The reference's command killed after epoch 1, its best-val record made unbeatable (the
    resumed epochs must keep it), then run again to the end."""
    command = guards_command(workdir, run_dir, runs.guards_cache)
    # integration.run_killed_after_epoch's command, in the fixed environment.
    killed = _run([command[0], "-c", integration._KILL_AFTER_EPOCH, "1"] + command[1:])
    assert killed.returncode == 9, killed.stderr[-2000:]
    best = run_dir / "prompt_learner/model-best.pth.tar"
    state = torch.load(best, weights_only=True)
    state["val_result"] = 100.0
    torch.save(state, best)
    _train(command)


RECIPES: dict[str, Recipe] = {
    **{f"demo/{init}": _demo(init) for init in INITS},
    **{f"one_epoch/{init}": _one_epoch(init) for init in INITS},
    # VIS_INIT_METHOD, epochs, LOG_GRAD_NORMS, KEEP_EPOCHS
    "visinit/same_on": _visinit("same", "1", "True", "[]"),
    "visinit/same_off": _visinit("same", "1", "False", "[]"),
    "visinit/diff": _visinit("diff", "2", "False", "[2]"),
    # The reference computes the prototypes into its own cache; the resumed run loads them.
    "guards/reference": Recipe(make=_guards_reference),
    "guards/resumed": Recipe(make=_guards_resumed, after=("guards/reference",)),
}


def digest(run_dir: Path) -> str:
    """Every file under ``run_dir``: its relative path and its bytes."""
    hashed = hashlib.sha256()
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        hashed.update(str(path.relative_to(run_dir)).encode() + b"\0")
        hashed.update(hashlib.sha256(path.read_bytes()).digest())
    return hashed.hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # released when the file closes
        yield


class SharedRuns:
    """The session's catalogue in ``root`` (shared by the session's xdist workers)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._workdir = root / "work"
        self.guards_cache = root / "guards_prototypes"

    @classmethod
    def for_session(cls, tmp_path_factory) -> "SharedRuns":
        """Under xdist each worker's base folder is ``<session folder>/popen-gwN``: the runs
        go beside them, in the session's folder; in one process, in its own base folder."""
        base = tmp_path_factory.getbasetemp()
        if os.environ.get("PYTEST_XDIST_WORKER"):
            base = base.parent
        return cls(base / "shared_runs")

    @property
    def workdir(self) -> Path:
        """The prepared workdir (data root ``data``, CLIP ``small_clip.pt``). Read-only as
        well, but for what train.py caches in its data root (few-shot subsets, prototypes)."""
        with _locked(self.root / "locks" / "workdir"):
            if not (self.root / "locks" / "workdir.done").exists():
                self._workdir.mkdir(parents=True, exist_ok=True)
                prepared_workdir(self._workdir)
                (self.root / "locks" / "workdir.done").touch()
        return self._workdir

    def folder(self, name: str) -> Path:
        recipe = RECIPES[name]
        return recipe.folder(self._workdir) if recipe.folder else self._workdir / "runs" / name

    def _done_file(self, name: str) -> Path:
        return self.root / "locks" / f"{name.replace('/', '__')}.done.json"

    def __getitem__(self, name: str) -> Path:
        """The finished run ``name`` (trained now unless this session trained it already)."""
        recipe = RECIPES[name]
        workdir = self.workdir
        for earlier in recipe.after:
            self[earlier]
        done = self._done_file(name)
        with _locked(self.root / "locks" / name.replace("/", "__")):
            if not done.exists():
                run_dir = self.folder(name)
                # A worker that failed here left a partial run: start again from nothing.
                assert not run_dir.exists() or not any(run_dir.iterdir()), (
                    f"{run_dir}: an earlier attempt to train {name} failed in this session")
                recipe.make(workdir, run_dir, self)
                done.write_text(json.dumps({"run": str(run_dir), "digest": digest(run_dir)}))
        return self.folder(name)

    def runs(self, *names: str) -> dict[str, Path]:
        return {name: self[name] for name in names}

    def changed(self) -> list[str]:
        """The runs trained in this session whose files are no longer as they were trained."""
        changed = []
        for done in sorted((self.root / "locks").glob("*.done.json")):
            record = json.loads(done.read_text())
            if digest(Path(record["run"])) != record["digest"]:
                changed.append(record["run"])
        return changed
