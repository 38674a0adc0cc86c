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
import os
import sys
import warnings

from yacs.config import CfgNode

# The toolbox imports wilds, whose 'outdated' dependency imports the deprecated pkg_resources:
# a warning on every start that is about neither this project nor the user's setup.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

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
    for path in (args.dataset_config_file, args.config_file):
        if path:
            cfg.merge_from_file(path)
    reset_cfg(cfg, args)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    return cfg


def check_eval_args(args: argparse.Namespace) -> None:
    """--eval-only writes a result: it must test trained prompts, into a folder of its own."""
    if not args.eval_only:
        return
    if not args.model_dir:
        raise DaptInitError(
            "--eval-only needs --model-dir: the output folder of the run whose prompts to test "
            "(with --load-epoch N for a given epoch)."
        )
    if args.output_dir and os.path.abspath(args.output_dir) == os.path.abspath(args.model_dir):
        raise DaptInitError(
            "--output-dir is the trained run's own folder; the evaluation's result.json would "
            "replace the training result there. Give the evaluation its own --output-dir."
        )


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
    check_eval_args(args)
    cfg = setup_cfg(args)
    if cfg.TRAINER.NAME != "DAPT_Init":
        return cfg, None
    # Fail on a bad value before a folder, a log or a download exists.
    validate_config(cfg, training=not (args.eval_only or args.no_train))
    if args.no_train:
        return cfg, None
    stored = runstate.read_result(cfg.OUTPUT_DIR) or {}
    return cfg, command_identity(cfg, args, runstate.stored_weights(stored))


def check_finished(args: argparse.Namespace) -> int:
    """--check-finished: the scripts' skip test, by the rule train.py itself applies."""
    try:
        cfg, identity = resolved_run(args)
        if identity is None:
            raise DaptInitError("--check-finished needs a DAPT_Init training or --eval-only "
                                "command (one that writes result.json).")
    except DaptInitError as error:
        print(f"error: {error}", file=sys.stderr)
        return runstate.OTHER_SETTINGS
    holder = runstate.lock_holder(cfg.OUTPUT_DIR)
    if holder is not None:
        print(f"running elsewhere: {holder}")
        return runstate.RUNNING_ELSEWHERE
    verdict = runstate.finished_verdict(cfg.OUTPUT_DIR, identity)
    if verdict.status == runstate.OTHER_SETTINGS:
        print(f"error: {verdict.message}", file=sys.stderr)
    elif verdict.message:
        print(verdict.message)
    return verdict.status


def main(args: argparse.Namespace) -> None:
    cfg, identity = resolved_run(args)
    # One process per run folder: taken before the log opens or anything is written, and
    # held until this process ends (the OS drops it however the process dies).
    lock = runstate.RunLock(cfg.OUTPUT_DIR)
    try:
        if identity is not None:
            verdict = runstate.finished_verdict(cfg.OUTPUT_DIR, identity)
            if verdict.status == runstate.FINISHED:
                print(verdict.message)
                return
            if verdict.status == runstate.OTHER_SETTINGS:
                raise DaptInitError(verdict.message)
        for path in runstate.remove_stale_temporaries(cfg.OUTPUT_DIR):
            print(f"Removed {path} (left by a killed run)")
        run_locked(cfg, args, identity)
    finally:
        lock.release()


def run_locked(cfg: CfgNode, args: argparse.Namespace,
               identity: runstate.RunIdentity | None) -> None:
    import torch
    from dassl.engine import build_trainer
    from dassl.utils import collect_env_info, set_random_seed, setup_logger

    import datasets  # noqa: F401  (registers the dataset classes)
    import trainers.dapt_init.trainer  # noqa: F401  (registers DAPT_Init)

    if cfg.SEED >= 0:
        print(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(cfg.SEED)
    setup_logger(cfg.OUTPUT_DIR)
    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True

    print(f"** Arguments **\n{vars(args)}\n** Config **\n{cfg}")
    print(f"** System info **\n{collect_env_info()}\n")

    trainer = build_trainer(cfg)
    trainer.run_identity = identity  # recorded in checkpoints and result.json
    if args.eval_only:
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
        trainer.test()
        return
    if not args.no_train:
        trainer.train()


def report(error: Exception) -> None:
    """One line on stderr, and in log.txt when the toolbox's logger already captures stdout."""
    message = f"error: {error}"
    print(message, file=sys.stderr)
    log_file = getattr(sys.stdout, "file", None)  # dassl.utils.Logger keeps its file here
    if log_file is not None:
        log_file.write(message + "\n")
        log_file.flush()


def run(argv: list[str] | None = None) -> int:
    """Entry point: user-facing errors become one message and exit status 2, no traceback."""
    args = parse_args(argv)
    if args.check_finished:
        return check_finished(args)
    from datasets.fewshot import DatasetError

    try:
        main(args)
    except (DaptInitError, DatasetError) as error:
        report(error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run())
