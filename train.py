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
import json
import os
import sys
import tempfile
import warnings
from typing import Any, Iterator

import yaml
from yacs.config import CfgNode

# openai-clip (and the toolbox's wilds, through 'outdated') import the deprecated
# pkg_resources: a warning on every start that is about neither this project nor the user's
# setup. Exactly that warning is silenced, before anything imports clip; all others show.
warnings.filterwarnings("ignore", message=r"pkg_resources is deprecated as an API",
                        category=UserWarning)

from trainers.dapt_init import runstate
from trainers.dapt_init.config import add_dapt_init_config, validate_config
from trainers.dapt_init.errors import DaptInitError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=str, default="", help="path to the data root")
    parser.add_argument("--output-dir", type=str, default="", help="output directory")
    parser.add_argument("--resume", type=str, default="",
                        help="checkpoint directory to resume from (default: --output-dir)")
    parser.add_argument("--seed", type=int, default=-1, help="a value >= 0 fixes the seed")
    parser.add_argument("--source-domains", type=str, nargs="+", help="source domains (DA/DG)")
    parser.add_argument("--target-domains", type=str, nargs="+", help="target domains (DA/DG)")
    parser.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    parser.add_argument("--config-file", type=str, default="", help="trainer config file")
    parser.add_argument("--dataset-config-file", type=str, default="",
                        help="dataset config file")
    parser.add_argument("--trainer", type=str, default="", help="trainer name, e.g. DAPT_Init")
    parser.add_argument("--backbone", type=str, default="", help="CLIP backbone name")
    parser.add_argument("--head", type=str, default="", help="name of head")
    parser.add_argument("--eval-only", action="store_true", help="evaluation only")
    parser.add_argument("--model-dir", type=str, default="",
                        help="load the model from this output directory (with --eval-only)")
    parser.add_argument("--load-epoch", type=int, help="load the checkpoint of this epoch")
    parser.add_argument("--no-train", action="store_true", help="build everything, train nothing")
    parser.add_argument("--check-finished", action="store_true",
                        help="only say whether --output-dir holds this command's finished run "
                             "(exit 0: finished, 2: other settings, 3: not finished, 4: running "
                             "elsewhere); loads no data or model")
    parser.add_argument("--spec", type=str, default="",
                        help="the study's description of this run (JSON, study/spec.py), kept in "
                             "result.json under 'spec'; not part of the fingerprint")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER,
                        help="modify config options using the command line (KEY VALUE pairs)")
    return parser.parse_args(argv)


def reset_cfg(cfg: CfgNode, args: argparse.Namespace) -> None:
    """Command-line arguments override the config files (as in every CoOp-family train.py)."""
    for flag, key in [("root", "DATASET.ROOT"), ("output_dir", "OUTPUT_DIR"),
                      ("resume", "RESUME"), ("source_domains", "DATASET.SOURCE_DOMAINS"),
                      ("target_domains", "DATASET.TARGET_DOMAINS"),
                      ("transforms", "INPUT.TRANSFORMS"), ("trainer", "TRAINER.NAME"),
                      ("backbone", "MODEL.BACKBONE.NAME"), ("head", "MODEL.HEAD.NAME")]:
        value = getattr(args, flag)
        if value:
            cfg.merge_from_list([key, value])
    if args.seed >= 0:
        cfg.SEED = args.seed


def setup_cfg(args: argparse.Namespace) -> CfgNode:
    from dassl.config import get_cfg_default

    cfg = get_cfg_default()
    add_dapt_init_config(cfg)
    for flag, path in (("--dataset-config-file", args.dataset_config_file),
                       ("--config-file", args.config_file)):
        if path:
            merge_config_file(cfg, path, flag)
    reset_cfg(cfg, args)
    merge_overrides(cfg, args.opts)
    cfg.freeze()
    return cfg


# yacs answers a typo with an AssertionError and a wrong type with a ValueError traceback:
# these checks name the key, the value and the fix instead.
TYPE_HINTS = {int: "a whole number", float: "a decimal number (write 1.0, not 1)",
              str: "text", bool: "True or False", tuple: "a tuple", list: "a list"}


def _flat_items(mapping: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from _flat_items(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _all_keys(node: CfgNode, prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items():
        keys += (_all_keys(value, f"{prefix}{key}.") if isinstance(value, CfgNode)
                 else [f"{prefix}{key}"])
    return keys


def nearest_keys(key: str, keys: list[str]) -> list[str]:
    """Up to three valid keys close to ``key``, ignoring case; else by the last part alone
    (a bare 'INIT_METHOD' or a misspelt group)."""
    by_upper = {valid.upper(): valid for valid in keys}
    near = difflib.get_close_matches(key.upper(), list(by_upper), n=3, cutoff=0.8)
    if not near:
        leaves: dict[str, list[str]] = {}
        for valid in by_upper:
            leaves.setdefault(valid.rsplit(".", 1)[-1], []).append(valid)
        leaf = key.upper().rsplit(".", 1)[-1]
        for match in difflib.get_close_matches(leaf, list(leaves), n=3, cutoff=0.8):
            near += leaves[match]
    return [by_upper[valid] for valid in near[:3]]


def check_key(cfg: CfgNode, key: str, source: str) -> None:
    """An unknown key names the nearest valid ones (a typo is the usual cause)."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, CfgNode) or part not in node:
            break
        node = node[part]
    else:
        if not isinstance(node, CfgNode):
            return
        raise DaptInitError(f"{key} ({source}) is a group of keys, not a key; set one of "
                            f"its keys, e.g. {key}.{next(iter(node), '...')}.")
    if key.startswith("--"):
        raise DaptInitError(
            f"option {key} comes after the KEY VALUE config overrides ({source}); put every "
            "--option before the first KEY VALUE pair."
        )
    near = nearest_keys(key, _all_keys(cfg))
    hint = (f"nearest valid keys: {', '.join(near)}" if near
            else "keys are full dotted paths in capitals, e.g. TRAINER.DAPT_INIT.INIT_METHOD; "
                 "the README lists this trainer's keys")
    raise DaptInitError(f"unknown config key {key!r} ({source}); {hint}.")


def merge_pair(cfg: CfgNode, key: str, value: Any, source: str) -> None:
    check_key(cfg, key, source)
    try:
        cfg.merge_from_list([key, value])
    except ValueError:  # the key exists, so yacs' only ValueError is a type mismatch
        old = cfg
        for part in key.split("."):
            old = old[part]
        kind = TYPE_HINTS.get(type(old), type(old).__name__)
        raise DaptInitError(
            f"{key} is {value!r} ({source}), but it takes {kind}, e.g. '{key} {old!r}'."
        ) from None


def merge_config_file(cfg: CfgNode, path: str, flag: str) -> None:
    """Merge a yaml config as yacs does, key by key, naming what is wrong in it."""
    if not os.path.isfile(path):
        raise DaptInitError(
            f"{flag} {path}: no such file. Give the path of a yaml config (the ones shipped "
            "are under configs/datasets/ and configs/trainers/DAPT_Init/)."
        )
    try:
        with open(path, encoding="utf-8") as stream:
            loaded = yaml.safe_load(stream) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        problem = " ".join(str(error).split())
        raise DaptInitError(f"{flag} {path} cannot be read as yaml ({problem}).") from None
    if not isinstance(loaded, dict):
        raise DaptInitError(f"{flag} {path} holds no KEY: VALUE mapping; it is not a config.")
    for key, value in _flat_items(loaded):
        merge_pair(cfg, key, value, f"in {path}")


def merge_overrides(cfg: CfgNode, opts: list[str]) -> None:
    if len(opts) % 2:
        raise DaptInitError(
            f"the config overrides must be KEY VALUE pairs, but {len(opts)} words were given "
            f"and {opts[-1]!r} has no value; e.g. 'TRAINER.DAPT_INIT.INIT_METHOD diff'."
        )
    for key, value in zip(opts[0::2], opts[1::2]):
        merge_pair(cfg, key, value, "on the command line")


def check_eval_args(args: argparse.Namespace, output_dir: str) -> None:
    """--eval-only writes a result: it must test trained prompts, into a folder of its own."""
    if not args.eval_only:
        return
    if not args.model_dir:
        raise DaptInitError(
            "--eval-only needs --model-dir: the output folder of the run whose prompts to test "
            "(with --load-epoch N for a given epoch)."
        )
    # realpath: a symlink (or "a/../b") to the model folder is still the model folder.
    if os.path.realpath(output_dir) == os.path.realpath(args.model_dir):
        raise DaptInitError(
            f"--output-dir {output_dir} is the trained run's own folder {args.model_dir}; the "
            "evaluation's result.json would replace the training result there. Give the "
            "evaluation its own --output-dir."
        )


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


def command_identity(cfg: CfgNode, args: argparse.Namespace,
                     known_weights: dict | None = None) -> runstate.RunIdentity:
    """What this command's result is a function of: the resolved config (less the keys that
    cannot change it), the CLIP weights, and for --eval-only the model it tests."""
    extra = {}
    if args.eval_only:
        model = runstate.read_result(args.model_dir) or {}
        extra = {"EVAL.MODEL_DIR": os.path.abspath(args.model_dir),
                 "EVAL.MODEL_FINGERPRINT": model.get("fingerprint"),
                 "EVAL.LOAD_EPOCH": args.load_epoch}
    return runstate.run_identity(cfg, extra, known_weights)


def resolved_run(args: argparse.Namespace) -> tuple[CfgNode, runstate.RunIdentity | None]:
    """The config and, for a DAPT_Init run that writes a result, its identity."""
    cfg = setup_cfg(args)
    check_eval_args(args, cfg.OUTPUT_DIR)
    if cfg.TRAINER.NAME != "DAPT_Init":
        return cfg, None
    # Fail on a bad value before a folder, a log or a download exists.
    validate_config(cfg, training=not (args.eval_only or args.no_train))
    if args.no_train:
        return cfg, None
    stored = runstate.read_result(cfg.OUTPUT_DIR) or {}
    return cfg, command_identity(cfg, args, runstate.stored_weights(stored))


def finished_state(args: argparse.Namespace) -> tuple[int, str]:
    """(status, message) of the finished rule for this command: the sweep asks it in-process."""
    try:
        cfg, identity = resolved_run(args)
        if identity is None:
            raise DaptInitError("--check-finished needs a DAPT_Init training or --eval-only "
                                "command (one that writes result.json).")
    except DaptInitError as error:
        return runstate.OTHER_SETTINGS, one_line(str(error))
    holder = runstate.lock_holder(cfg.OUTPUT_DIR)
    if holder is not None:
        return runstate.RUNNING_ELSEWHERE, f"running elsewhere: {holder}"
    verdict = runstate.finished_verdict(cfg.OUTPUT_DIR, identity)
    return verdict.status, verdict.message


def check_finished(args: argparse.Namespace) -> int:
    """--check-finished: the scripts' skip test, by the rule train.py itself applies."""
    status, message = finished_state(args)
    if status == runstate.OTHER_SETTINGS:
        print(f"error: {message}", file=sys.stderr)
    elif message:
        print(message)
    return status


def record_spec(output_dir: str, identity: runstate.RunIdentity | None, spec: str) -> None:
    """Add the study's spec to this run's result.json (written by the trainer, which knows no
    study layout); only to a result of this very command, never to an older one."""
    if not spec or identity is None:
        return
    from study.spec import RunSpec
    from trainers.dapt_init.atomic import json_dump_atomically

    record = runstate.read_result(output_dir)
    if record and record.get("fingerprint") == identity.fingerprint and "spec" not in record:
        record["spec"] = RunSpec.from_dict(json.loads(spec)).to_dict()
        json_dump_atomically(record, os.path.join(output_dir, runstate.RESULT_FILE))


def finished_already(cfg: CfgNode, identity: runstate.RunIdentity | None) -> bool:
    """True (and says so) when the folder holds this command's finished run; raises when it
    holds a finished run of other settings."""
    if identity is None:
        return False
    verdict = runstate.finished_verdict(cfg.OUTPUT_DIR, identity)
    if verdict.status == runstate.OTHER_SETTINGS:
        raise DaptInitError(verdict.message)
    if verdict.status == runstate.FINISHED:
        print(verdict.message)
        return True
    return False


def check_spec(spec: str) -> None:
    """A --spec that is not a run spec is refused before anything runs."""
    if not spec:
        return
    from study.spec import RunSpec, StudyError

    try:
        RunSpec.from_dict(json.loads(spec))
    except (ValueError, StudyError) as error:
        raise DaptInitError(f"--spec is not a run spec of study/spec.py: {error}") from None


def main(args: argparse.Namespace) -> None:
    check_spec(args.spec)
    cfg, identity = resolved_run(args)
    import datasets  # noqa: F401  (registers the data set classes)
    import trainers.dapt_init.trainer  # noqa: F401  (registers DAPT_Init)

    check_registered(cfg)
    check_output_dir(cfg.OUTPUT_DIR)
    holder = runstate.lock_holder(cfg.OUTPUT_DIR)
    if holder is not None:
        raise runstate.RunLocked(holder)
    if finished_already(cfg, identity):
        return
    build_and_run(cfg, args, identity)


def build_and_run(cfg: CfgNode, args: argparse.Namespace, identity: runstate.RunIdentity | None) -> None:
    import torch
    from dassl.engine import build_trainer
    from dassl.utils import collect_env_info, set_random_seed

    if cfg.SEED >= 0:
        print(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(cfg.SEED)
    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True

    # Building reads data and weights and writes nothing into the run folder, so a command
    # refused here (bad data, bad weights) leaves no folder behind.
    console = sys.stdout
    sys.stdout = early = EarlyOutput(console)
    try:
        print(f"** Arguments **\n{vars(args)}\n** Config **\n{cfg}")
        trainer = build_trainer(cfg)
        # Seconds of subprocesses: only for a run that got this far.
        print(f"** System info **\n{collect_env_info()}\n")
    finally:
        sys.stdout = console

    # One process per run folder from the first write on: held until this process ends (the
    # OS drops it however the process dies). Another process may have finished the run while
    # this one was building: ask again under the lock.
    lock = runstate.RunLock(cfg.OUTPUT_DIR)
    try:
        if finished_already(cfg, identity):
            return
        for path in runstate.remove_stale_temporaries(cfg.OUTPUT_DIR):
            print(f"Removed {path} (left by a killed run)")
        start_log(cfg.OUTPUT_DIR)
        log_file = getattr(sys.stdout, "file", None)  # dassl.utils.Logger: console has it
        if log_file is not None:
            log_file.write(early.kept.getvalue())

        trainer.run_identity = identity  # recorded in checkpoints and result.json
        if args.eval_only:
            trainer.load_model(args.model_dir, epoch=args.load_epoch)
            trainer.test()
        elif not args.no_train:
            trainer.train()
        record_spec(cfg.OUTPUT_DIR, identity, args.spec)
    finally:
        lock.release()


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
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process ended by Ctrl-C


def environment_message(error: OSError) -> str:
    where = f" ({error.filename})" if error.filename else ""
    return (f"{error.strerror or error}{where}. The run stopped there; the files it wrote are "
            "whole (each is written atomically). Free space or fix that file system (or give "
            "--output-dir / TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR another one) and run the "
            "same command again: it resumes from its last checkpoint.")


def run(argv: list[str] | None = None) -> int:
    """Entry point: user-facing errors become one message and exit status 2, no traceback."""
    args = parse_args(argv)
    if args.check_finished:
        return check_finished(args)
    try:
        main(args)
    except DaptInitError as error:  # DatasetError is one too
        report(error)
        return 2
    except KeyboardInterrupt:
        report("interrupted (SIGINT). Checkpoints are written atomically: run the same command "
               "again and it resumes from its last finished epoch.")
        return INTERRUPTED
    except OSError as error:
        if error.errno not in ENVIRONMENT_ERRNOS:
            raise
        stop_log_file()  # its file system is likely the full one
        report(environment_message(error))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run())
