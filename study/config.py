"""Building a run's config: from a train.py command line, or from a run folder's own record.

train.py and the analysis tools share this module, so a tool never imports train.py (which
would drag in its run-folder machinery) and a run folder alone is enough to rebuild the
config its run used.

Command order: toolbox defaults -> trainer keys -> dataset yaml -> trainer yaml -> arguments
-> trailing KEY VALUE pairs. A run's record: ``result.json``'s ``fingerprint_keys`` (every
resolved key that can change the result) and ``clip.weights`` (the weights file), plus the
data root from the command logged at the head of ``log.txt``; a run with no result.json yet
is rebuilt from that logged command alone.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml
from yacs.config import CfgNode

from trainers.dapt_init.config import add_dapt_init_config, leaf_keys
from trainers.dapt_init import runstate
from trainers.dapt_init.errors import DaptInitError

from .run_read import read_record

DESCRIPTION = "Train or evaluate DAPT_Init with the Dassl toolbox (the CoOp-family command line)."


def build_parser(description: str = DESCRIPTION) -> argparse.ArgumentParser:
    """train.py's command line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--root", type=str, default="", help="path to the data root")
    # None when not given: an empty value given is refused by train.py, not the default folder.
    parser.add_argument("--output-dir", type=str, default=None, help="output directory")
    parser.add_argument("--resume", type=str, default=None,
                        help="checkpoint directory to resume from (default: --output-dir)")
    parser.add_argument("--seed", type=int, default=-1,
                        help="a value >= 0 fixes the seed; -1 (the default): unseeded")
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
    parser.add_argument("--spec", type=str, default="",
                        help="the study's description of this run (JSON, study/run.py), kept in "
                             "result.json under 'spec'; not part of the fingerprint")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER,
                        help="modify config options using the command line (KEY VALUE pairs)")
    return parser


def parse_args(argv: Sequence[str] | None = None,
               description: str = DESCRIPTION) -> argparse.Namespace:
    return build_parser(description).parse_args(None if argv is None else list(argv))


def reset_cfg(cfg: CfgNode, args: argparse.Namespace) -> None:
    """Command-line arguments override the config files (as in every CoOp-family train.py)."""
    for flag, key in [("root", "DATASET.ROOT"), ("output_dir", "OUTPUT_DIR"),
                      ("resume", "RESUME"), ("source_domains", "DATASET.SOURCE_DOMAINS"),
                      ("target_domains", "DATASET.TARGET_DOMAINS"),
                      ("transforms", "INPUT.TRANSFORMS"), ("trainer", "TRAINER.NAME"),
                      ("backbone", "MODEL.BACKBONE.NAME"), ("head", "MODEL.HEAD.NAME")]:
        value = getattr(args, flag, None)
        if value:
            cfg.merge_from_list([key, value])
    if getattr(args, "seed", -1) >= 0:
        cfg.SEED = args.seed


def base_cfg() -> CfgNode:
    """The toolbox's defaults plus this trainer's keys, unfrozen."""
    from dassl.config import get_cfg_default  # here: importing this module stays cheap

    cfg = get_cfg_default()
    add_dapt_init_config(cfg)
    return cfg


def apply_command(cfg: CfgNode, args: argparse.Namespace) -> None:
    """Config files, then arguments, then KEY VALUE pairs: train.py's order."""
    for flag, path in (("--dataset-config-file", getattr(args, "dataset_config_file", "")),
                       ("--config-file", getattr(args, "config_file", ""))):
        if path:
            merge_config_file(cfg, path, flag)
    reset_cfg(cfg, args)
    merge_overrides(cfg, list(getattr(args, "opts", None) or []))


def setup_cfg(args: argparse.Namespace) -> CfgNode:
    """The frozen config of a train.py command."""
    cfg = base_cfg()
    apply_command(cfg, args)
    cfg.freeze()
    return cfg


def command_cfg(args: argparse.Namespace) -> tuple[CfgNode, str | None]:
    """The frozen config a train.py command runs with: for DAPT_Init checked, and with DAPT's
    published values for the keys nothing set (what its trainer applies too, so the run's
    identity holds them); and the line naming the values applied (None when none)."""
    from trainers.dapt_init.config import validate_config
    from trainers.dapt_init.dapt_values import apply_dapt_values

    cfg = setup_cfg(args)
    if cfg.TRAINER.NAME != "DAPT_Init":
        return cfg, None
    validate_config(cfg, training=not (args.eval_only or args.no_train))
    cfg.defrost()
    applied = apply_dapt_values(cfg)
    cfg.freeze()
    return cfg, applied


def command_identity(cfg: CfgNode, args: argparse.Namespace) -> runstate.RunIdentity:
    """The identity (fingerprint, CLIP weights, data root) of a train.py command's result;
    an evaluation's includes the model it tests."""
    return runstate.command_identity(cfg, args.model_dir if args.eval_only else "",
                                     args.load_epoch)


def run_verdict(argv: Sequence[str]) -> tuple[int, str]:
    """(status, message): what the finished rule would say of a train.py command (``argv``
    after ``train.py``) now, without its lock: a preview for --dry-run and the sweep's counts.
    The run itself asks once more, under its lock, when it starts."""
    from trainers.dapt_init.run_folder import folder_verdict

    from .run import StudyError

    args = parse_args(argv)
    try:
        cfg, _ = command_cfg(args)
    except DaptInitError as error:  # the command itself is wrong: say so, not "other settings"
        raise StudyError(" ".join(str(error).split())) from None
    try:
        identity = command_identity(cfg, args)
    except DaptInitError as error:  # the folder's record is damaged
        return runstate.OTHER_SETTINGS, " ".join(str(error).split())
    if not cfg.DATASET.ROOT:  # a preview without DATA_ROOT: the data files are not compared
        identity = dataclasses.replace(identity, data_root=None)
    verdict = folder_verdict(cfg.OUTPUT_DIR, identity)
    if verdict.status == runstate.RUNNING_ELSEWHERE:
        return verdict.status, f"running elsewhere: {verdict.message}"
    return verdict.status, verdict.message


# yacs answers a typo with an AssertionError and a wrong type with a ValueError traceback:
# these checks name the key, the value and the fix instead.
TYPE_HINTS = {int: "a whole number", float: "a decimal number (e.g. 0.5, 10 or 1e-3)",
              str: "text", bool: "True or False", tuple: "a tuple", list: "a list"}


def _flat_items(mapping: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from _flat_items(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


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
    near = nearest_keys(key, leaf_keys(cfg))
    hint = (f"nearest valid keys: {', '.join(near)}" if near
            else "keys are full dotted paths in capitals, e.g. TRAINER.DAPT_INIT.INIT_METHOD; "
                 "docs/config.md lists this trainer's keys")
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


# ============================================================================ a run's record
# train.py prints ``vars(args)`` on the line after this one, at the head of every log.
ARGUMENTS_LINE = "** Arguments **"
# Keys a record holds that are not config keys: an evaluation's model folder and epoch.
NOT_CONFIG_PREFIXES = ("EVAL.",)


@dataclass(frozen=True)
class RunRecord:
    """What a run folder says about the run that wrote it."""
    run_dir: str
    keys: dict[str, Any]  # result.json's fingerprint_keys; {} without a result
    weights: dict[str, Any] | None  # result.json's clip.weights
    command: argparse.Namespace | None  # the train.py arguments log.txt recorded

    @property
    def empty(self) -> bool:
        return not self.keys and self.command is None


def _log_files(run_dir: str) -> list[str]:
    """log.txt, then the log.txt-<time> files of resumed runs, oldest first."""
    names = sorted(name for name in os.listdir(run_dir) if name.startswith("log.txt-")
                   and os.path.isfile(os.path.join(run_dir, name)))  # no FIFO: it would block
    first = ["log.txt"] if os.path.isfile(os.path.join(run_dir, "log.txt")) else []
    return [os.path.join(run_dir, name) for name in first + names]


def logged_command(run_dir: str) -> argparse.Namespace | None:
    """The train.py arguments of the newest log that recorded them (a resumed run may have
    been given a moved data root), with today's defaults for arguments added since."""
    found = None
    for path in _log_files(run_dir):
        with open(path, errors="replace") as file:
            lines = iter(file)
            for line in lines:
                if line.rstrip("\n") == ARGUMENTS_LINE:
                    try:
                        value = ast.literal_eval(next(lines, "").strip())
                    except (ValueError, SyntaxError):
                        value = None
                    found = value if isinstance(value, dict) else found
                    break
    if found is None:
        return None
    args = parse_args([])
    vars(args).update(found)
    return args


def read_run_record(run_dir: str) -> RunRecord:
    """The record of ``run_dir``; a damaged result.json counts as none (the log remains)."""
    if not os.path.isdir(run_dir):
        raise DaptInitError(f"run folder {run_dir} does not exist.")
    keys, weights = {}, None
    result, _ = read_record(Path(run_dir))  # non-blocking: a FIFO result.json is no record
    if isinstance(result, dict):
        if isinstance(result.get("fingerprint_keys"), dict):
            keys = result["fingerprint_keys"]
        clip = result.get("clip")
        if isinstance(clip, dict) and isinstance(clip.get("weights"), dict):
            weights = clip["weights"]
    return RunRecord(run_dir, keys, weights, logged_command(run_dir))


def apply_record(cfg: CfgNode, record: RunRecord) -> None:
    """The run's own config: its recorded keys (else its logged command), its CLIP weights
    file and its data root."""
    source = f"in {os.path.join(record.run_dir, runstate.RESULT_FILE)}"
    if record.keys:
        paths = set(leaf_keys(cfg))
        for key, value in record.keys.items():
            # A key this code does not know (an evaluation's EVAL.* inputs, or a key removed
            # since the run) cannot be set; the rest still rebuilds the run.
            if key.startswith(NOT_CONFIG_PREFIXES) or key not in paths:
                continue
            merge_pair(cfg, key, value, source)
        if record.weights and record.weights.get("path"):
            cfg.TRAINER.DAPT_INIT.CLIP_WEIGHTS = record.weights["path"]
        if record.command is not None and record.command.root:
            cfg.DATASET.ROOT = record.command.root
    elif record.command is not None:
        try:
            apply_command(cfg, record.command)
        except DaptInitError as error:
            raise DaptInitError(f"the command {record.run_dir}/log.txt recorded no longer "
                                f"builds a config: {error}") from None
    else:
        raise DaptInitError(
            f"run folder {record.run_dir} records no config (no result.json with "
            "fingerprint_keys and no '** Arguments **' in log.txt); give the data and config "
            "arguments as for train.py."
        )


def recorded_cfg(run_dir: str) -> CfgNode | None:
    """The frozen config ``run_dir``'s run used; None when the folder records none (a copy
    of prompt files alone)."""
    record = read_run_record(run_dir)
    if record.empty:
        return None
    cfg = base_cfg()
    apply_record(cfg, record)
    cfg.freeze()
    return cfg
