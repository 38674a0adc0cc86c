"""A train.py command, checked and resolved before anything touches a folder: its paths and
seed, its --spec, its config (resolved once, with DAPT's published values where nothing set
them), an evaluation's arguments, and that the spec names this very run. train.py asks it once
(``resolve_command``); the scripts resolve the same config through ``config.command_cfg``."""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from typing import Any

from yacs.config import CfgNode

from trainers.dapt_init.errors import DaptInitError

from . import inputs
from .config import command_cfg
from .run import RunSpec, StudyError


@dataclass(frozen=True)
class Command:
    """What ``resolve_command`` found: the frozen config, the line naming DAPT's values it
    applied (None when none) and the --spec's record (None without one)."""
    cfg: CfgNode
    applied: str | None
    spec: dict[str, Any] | None


def resolve_command(args: argparse.Namespace) -> Command:
    """Every check of a train.py command that needs no toolbox registry; one error each."""
    spec = read_spec(args.spec)
    check_command_paths(args)
    cfg, applied = command_cfg(args)
    check_eval_args(args, cfg.OUTPUT_DIR)
    check_spec_is_this_run(args.spec, cfg, args.dataset_config_file)
    return Command(cfg, applied, spec)


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


def check_command_paths(args: argparse.Namespace) -> None:
    """--output-dir, --resume and --seed as given, before the config is built: an empty or
    impossible path, or a seed Dassl would silently ignore, is refused, not defaulted."""
    try:
        inputs.check_seed(args.seed)
        if args.output_dir is not None:
            inputs.check_folder(args.output_dir, "--output-dir")
        if args.resume is not None and not os.path.isdir(args.resume):
            what = "is a file" if os.path.exists(args.resume) else "does not exist"
            raise StudyError(f"--resume {args.resume!r} {what}; give the output folder of the "
                             "run to resume (its checkpoints), or leave --resume out")
    except StudyError as error:
        raise DaptInitError(str(error)) from None


def read_spec(text: str) -> dict[str, Any] | None:
    """The --spec as its record (None without one); not a run spec: refused before anything
    runs."""
    if not text:
        return None
    try:
        return RunSpec.from_dict(json.loads(text)).to_dict()
    except (ValueError, TypeError, AttributeError, StudyError) as error:
        raise DaptInitError(f"--spec is not a run spec of study/run.py: {error}") from None


def check_spec_is_this_run(spec: str, cfg: CfgNode, dataset_file: str) -> None:
    """A --spec naming another data set, seed, shots or init than the run's own config is
    refused: result.json's spec places the run, so it must say what the run is."""
    if not spec:
        return
    node = cfg.TRAINER.DAPT_INIT
    names = (os.path.splitext(os.path.basename(dataset_file or ""))[0], cfg.DATASET.NAME)
    found = RunSpec.from_dict(json.loads(spec)).mismatches(
        names, cfg.SEED, cfg.DATASET.NUM_SHOTS, node.INIT_METHOD,
        node.VIS_INIT_METHOD)
    if found:
        raise DaptInitError(f"--spec is another run than this command's ({'; '.join(found)}); "
                            "give the spec of this run, or no --spec.")
