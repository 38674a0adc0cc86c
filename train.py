"""Train or evaluate DAPT_Init with the Dassl toolbox (the CoOp-family command line).

    python train.py --root DATA --seed 1 --trainer DAPT_Init \
        --dataset-config-file configs/datasets/eurosat.yaml \
        --config-file configs/trainers/DAPT_Init/vit_b16_ep100.yaml \
        --output-dir output/eurosat/DAPT_Init/diff/vit_b16_ep100_4shots/seed1 \
        DATASET.NUM_SHOTS 4 TRAINER.DAPT_INIT.INIT_METHOD diff

Config order: toolbox defaults -> trainer keys -> dataset yaml -> trainer yaml -> arguments
-> trailing KEY VALUE pairs.
"""
from __future__ import annotations

import argparse
import difflib
import errno
import io
import os
import signal
import sys
import tempfile
import threading
from typing import Any

from yacs.config import CfgNode

# Before anything imports clip or the toolbox: no third-party pkg_resources warning, no
# version check of 'outdated' (quiet.py says why).
import trainers.dapt_init.quiet  # noqa: F401,E402

from study import config
from study.command import resolve_command
from trainers.dapt_init import run_folder, runstate
from trainers.dapt_init.errors import DaptInitError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return config.parse_args(argv, description=__doc__.splitlines()[0])


def check_registered(cfg: CfgNode) -> None:
    """An unknown trainer or data set name, listed with the valid ones before any folder exists."""
    from dassl.data.datasets import DATASET_REGISTRY
    from dassl.engine import TRAINER_REGISTRY

    for key, flag, registry in (("TRAINER.NAME", "--trainer", TRAINER_REGISTRY),
                                ("DATASET.NAME", "--dataset-config-file", DATASET_REGISTRY)):
        name, names = cfg[key.split(".")[0]].NAME, sorted(registry.registered_names())
        if name not in names:
            near = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
            guess = f"did you mean {near[0]}? " if near else ""
            raise DaptInitError(
                f"{key} is {name!r}, which is not registered; {guess}set it with {flag} or "
                f"'{key} <name>'; valid names: {', '.join(names)}."
            )


def check_output_dir(output_dir: str) -> None:
    """The run writes its log, checkpoints and result here: refuse now, not after epoch 1."""
    target = os.path.abspath(output_dir)
    existing = target
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    fix = "Give --output-dir a folder you can write to."
    if not os.path.isdir(existing):
        raise DaptInitError(
            f"the output folder {target} cannot be made: {existing} is a file, not a folder. {fix}"
        )
    try:  # a real write: permission bits, a read-only mount or a full quota all show here
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise DaptInitError(
            f"the output folder {target} cannot be written: creating a file in {existing} "
            f"fails ({error.strerror or error}). {fix}"
        ) from None


class EarlyOutput(io.TextIOBase):
    """stdout until the log file exists: printed as usual and kept, so a run refused while the
    trainer is built (data, weights) leaves no folder, and a run that goes on logs it all."""

    def __init__(self, console: Any) -> None:
        self.console, self.kept = console, io.StringIO()

    def write(self, text: str) -> int:
        self.kept.write(text)
        return self.console.write(text)

    def flush(self) -> None:
        self.console.flush()

    def isatty(self) -> bool:
        return self.console.isatty()

    def fileno(self) -> int:
        return self.console.fileno()


def main(args: argparse.Namespace) -> int:
    """Resolve, check, claim the run folder (the finished rule, once, under its lock), build,
    then train or evaluate; the exit status."""
    command = resolve_command(args)
    cfg, applied, spec = command.cfg, command.applied, command.spec
    import datasets.classes  # noqa: F401  (registers the data set classes)
    import trainers.dapt_init.trainer  # noqa: F401  (registers DAPT_Init)

    check_registered(cfg)
    check_output_dir(cfg.OUTPUT_DIR)
    identity = None
    if cfg.TRAINER.NAME == "DAPT_Init" and not args.no_train:
        identity = config.command_identity(cfg, args)
        if args.eval_only:  # before any folder or log: prompts are read only with their CLIP
            model = runstate.read_result(args.model_dir) or {}
            runstate.refuse_other_weights(args.model_dir, runstate.stored_weights(model),
                                          identity.weights)
    claim = run_folder.claim(cfg.OUTPUT_DIR, identity)
    if claim.skip:
        print(claim.message)
        return runstate.SUCCESS
    if claim.status == runstate.RUNNING_ELSEWHERE:  # refused, with its own status
        report(claim.message)
        return runstate.RUNNING_ELSEWHERE
    if claim.refused:
        raise DaptInitError(claim.message)
    for path in claim.removed:
        print(f"Removed {path} (left by a killed run)")
    if applied:
        print(applied)
    try:
        trainer, early = build_quietly(cfg, args)
    except BaseException:
        # Building reads data and weights and writes nothing: a refused build leaves no folder.
        run_folder.release(cfg.OUTPUT_DIR, abandon=True)
        raise
    try:
        run_claimed(cfg, args, identity, spec, trainer, early)
    finally:
        run_folder.release(cfg.OUTPUT_DIR)
    return runstate.SUCCESS


def build_quietly(cfg: CfgNode, args: argparse.Namespace) -> tuple[Any, EarlyOutput]:
    """The trainer, and what it printed while it was built (kept for log.txt)."""
    import torch
    from dassl.engine import build_trainer
    from dassl.utils import collect_env_info, set_random_seed

    if cfg.SEED >= 0:
        print(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(cfg.SEED)
    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True

    console = sys.stdout
    sys.stdout = early = EarlyOutput(console)
    try:
        # The config dump goes to log.txt, and to the console only once the trainer is built:
        # a command refused while building (no data, bad weights) prints its one line alone.
        dump = f"** Arguments **\n{vars(args)}\n** Config **\n{cfg}\n"
        early.kept.write(dump)
        trainer = build_trainer(cfg)
        console.write(dump)
        # Seconds of subprocesses: only for a run that got this far.
        print(f"** System info **\n{collect_env_info()}\n")
    finally:
        sys.stdout = console
    return trainer, early


def run_claimed(cfg: CfgNode, args: argparse.Namespace, identity: runstate.RunIdentity | None,
                spec: dict[str, Any] | None, trainer: Any, early: EarlyOutput) -> None:
    """Log to log.txt (with what building printed) and train or evaluate."""
    start_log(cfg.OUTPUT_DIR)
    log_file = getattr(sys.stdout, "file", None)  # dassl.utils.Logger: console has it
    if log_file is not None:
        log_file.write(early.kept.getvalue())

    trainer.run_identity = identity  # recorded in checkpoints and result.json
    trainer.run_spec = spec  # the study's name for the run, recorded in result.json
    if args.eval_only:
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
        trainer.test()
    elif not args.no_train:
        trainer.train()


def one_line(text: str) -> str:
    """A message as one line: some name several files, one per indented line ('Missing:' and
    a list); those become a comma-separated list, other lines are joined by a space."""
    out, previous_item = "", False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        item = raw[:1].isspace()
        out += ("" if not out else ", " if item and previous_item else " ") + line
        previous_item = item
    return out


def start_log(output_dir: str) -> None:
    """The toolbox's logger (stdout to the console and ``log.txt``), but never over an earlier
    log: a re-run logs to ``log.txt-<time>`` as the toolbox names it, and a second re-run in
    the same second to ``log.txt-<time>-1`` (the toolbox would overwrite the first)."""
    import time

    from dassl.utils.logger import Logger
    from trainers.dapt_init.atomic import unused_path

    path = os.path.join(output_dir, "log.txt")
    if os.path.exists(path):
        path = unused_path(path + time.strftime("-%Y-%m-%d-%H-%M-%S"))
    logger = Logger()
    logger.file = open(path, "x")  # exclusive: fails rather than replace a file
    sys.stdout = logger


def report(error: Exception | str) -> None:
    """One line on stderr, and in log.txt when the toolbox's logger already captures stdout
    (unless that file cannot take it: a full disk)."""
    message = f"error: {one_line(str(error))}"
    print(message, file=sys.stderr)
    log_file = getattr(sys.stdout, "file", None)  # dassl.utils.Logger keeps its file here
    if log_file is not None:
        try:
            log_file.write(message + "\n")
            log_file.flush()
        except (OSError, ValueError):
            stop_log_file()


def stop_log_file() -> None:
    """Detach log.txt from stdout (its unwritten tail is dropped), so a full disk does not
    raise again at every print and at exit."""
    logger = sys.stdout
    log_file = getattr(logger, "file", None)
    if log_file is None:
        return
    logger.file = None
    try:
        log_file.close()
    except OSError:  # close flushes, which fails on a full disk; the file is closed anyway
        pass


# Errors of the machine, not of the command: the run stops with one line and resumes later.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


def environment_message(error: OSError) -> str:
    where = f" ({error.filename})" if error.filename else ""
    return (f"{error.strerror or error}{where}. The run stopped there; the files it wrote are "
            "whole (each is written atomically). Free space or fix that file system (or give "
            "--output-dir / TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR another one) and run the "
            "same command again: it resumes from its last checkpoint.")


class Hangup(KeyboardInterrupt):
    """SIGHUP (the terminal or ssh session closed): stopped as Ctrl-C stops a run."""


def _on_hangup(number: int, frame: Any) -> None:
    raise Hangup()


def folder_gone(error: OSError, output_dir: str | None) -> bool:
    """A write failed because the run folder (or a folder in it) was deleted while the run
    went on: every writer makes its folder first, so a missing one was removed under us (the
    toolbox's checkpoint writer may have made the run folder anew meanwhile)."""
    if error.errno != errno.ENOENT or not output_dir:
        return False
    if not os.path.isdir(output_dir):
        return True
    if error.filename is None:
        return False
    written = os.path.abspath(os.fsdecode(error.filename))
    inside = os.path.commonpath([written, os.path.abspath(output_dir)]) == os.path.abspath(
        output_dir)
    return inside and not os.path.isdir(os.path.dirname(written))


def quiet_when_folder_gone(output_dir: str | None) -> None:
    """A writer thread (tensorboard's) meeting a deleted run folder stays quiet: the main
    thread meets it too, at its next write, and says so in one line."""
    default = threading.excepthook

    def hook(failure: threading.ExceptHookArgs) -> None:
        if not (isinstance(failure.exc_value, OSError)
                and folder_gone(failure.exc_value, output_dir)):
            default(failure)

    threading.excepthook = hook


def run(argv: list[str] | None = None) -> int:
    """Entry point: user-facing errors become one message and exit status USER_ERROR, no
    traceback."""
    args = parse_args(argv)
    if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:  # under nohup it stays ignored
        signal.signal(signal.SIGHUP, _on_hangup)
    quiet_when_folder_gone(args.output_dir)
    try:
        return main(args)
    except DaptInitError as error:  # DatasetError is one too
        report(error)
        return runstate.USER_ERROR
    except KeyboardInterrupt as error:
        hangup = isinstance(error, Hangup)
        report(f"interrupted ({'SIGHUP' if hangup else 'SIGINT'}). Checkpoints are written "
               "atomically: run the same command again and it resumes from its last finished "
               "epoch.")
        return runstate.HANGUP if hangup else runstate.INTERRUPTED
    except OSError as error:
        if folder_gone(error, args.output_dir):
            stop_log_file()
            report(f"the run folder {args.output_dir} was deleted while the run went on (at "
                   f"the write of {os.fsdecode(error.filename or '?')}); the run stopped. Run "
                   "the same command again: it resumes from a checkpoint left in the folder, "
                   "or trains from the start.")
            return runstate.USER_ERROR
        if error.errno not in ENVIRONMENT_ERRNOS:
            raise
        stop_log_file()  # its file system is likely the full one
        report(environment_message(error))
        return runstate.USER_ERROR


if __name__ == "__main__":
    from study.entry import run_main

    sys.exit(run_main(run))
