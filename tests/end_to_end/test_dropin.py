"""The drop-in unit runs inside another CoOp-family codebase with its own train.py."""
from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.support.integration import REPO, prepared_workdir, python, run_train
from tests.end_to_end.test_hosts import HOSTS
from tests.support.toolbox import requires_toolbox

# Where the real codebases' archives are, tests/end_to_end/test_hosts.py runs these steps (and this
# test's evaluation into the training folder) in each of them instead.
pytestmark = [requires_toolbox, pytest.mark.skipif(
    bool(HOSTS), reason="the real CoOp-family codebases of ../shared/hosts/ are tested instead "
                        "(tests/end_to_end/test_hosts.py)")]

# A host train.py in the usual toolbox style (as CoOp-family repositories write theirs), with
# only the two additions the README's drop-in section asks for, marked "DAPT_Init".
HOST_TRAIN_PY = textwrap.dedent('''
    import argparse

    import torch
    from dassl.config import get_cfg_default
    from dassl.engine import build_trainer
    from dassl.utils import set_random_seed, setup_logger

    import datasets.eurosat  # the host's own dataset classes
    import trainers.dapt_init.trainer  # DAPT_Init: registers the trainer


    def extend_cfg(cfg):
        from yacs.config import CfgNode as CN

        cfg.TRAINER.HOSTMETHOD = CN()
        cfg.TRAINER.HOSTMETHOD.N_CTX = 4
        from trainers.dapt_init.config import add_dapt_init_config  # DAPT_Init
        add_dapt_init_config(cfg)  # DAPT_Init


    def setup_cfg(args):
        cfg = get_cfg_default()
        extend_cfg(cfg)
        cfg.merge_from_file(args.dataset_config_file)
        cfg.merge_from_file(args.config_file)
        cfg.DATASET.ROOT = args.root
        cfg.OUTPUT_DIR = args.output_dir
        cfg.SEED = args.seed
        cfg.TRAINER.NAME = args.trainer
        cfg.merge_from_list(args.opts)
        cfg.freeze()
        return cfg


    def main(args):
        cfg = setup_cfg(args)
        set_random_seed(cfg.SEED)
        setup_logger(cfg.OUTPUT_DIR)
        trainer = build_trainer(cfg)
        if args.eval_only:
            trainer.load_model(args.model_dir, epoch=args.load_epoch)
            trainer.test()
            return
        trainer.train()


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--root", default="")
        parser.add_argument("--output-dir", default="")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--trainer", default="")
        parser.add_argument("--config-file", default="")
        parser.add_argument("--dataset-config-file", default="")
        parser.add_argument("--eval-only", action="store_true")
        parser.add_argument("--model-dir", default="")
        parser.add_argument("--load-epoch", type=int)
        parser.add_argument("opts", nargs=argparse.REMAINDER)
        main(parser.parse_args())
''')


def build_host(host: Path) -> None:
    """What a user does by hand: their codebase plus the copied drop-in unit."""
    (host / "trainers").mkdir(parents=True)
    (host / "trainers" / "__init__.py").write_text("")
    shutil.copytree(REPO / "trainers" / "dapt_init", host / "trainers" / "dapt_init",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # The host's own data code and configs (here: this repository's, standing in for theirs).
    shutil.copytree(REPO / "datasets", host / "datasets", ignore=shutil.ignore_patterns("__pycache__"))
    (host / "datasets" / "__init__.py").write_text("")
    shutil.copytree(REPO / "configs", host / "configs")
    (host / "train.py").write_text(HOST_TRAIN_PY)


def test_dropin_unit_trains_and_tests_in_a_host_codebase(tmp_path):
    work = prepared_workdir(tmp_path / "work")
    host = tmp_path / "host"
    build_host(host)
    command = [
        python(), "train.py", "--root", str(work / "data"), "--seed", "1",
        "--trainer", "DAPT_Init",
        "--dataset-config-file", "configs/datasets/eurosat.yaml",
        "--config-file", "configs/trainers/DAPT_Init/demo_small.yaml",
        "--output-dir", str(tmp_path / "out"),
        "DATASET.NUM_SHOTS", "1", "OPTIM.MAX_EPOCH", "1", "USE_CUDA", "False",
        "TRAINER.DAPT_INIT.INIT_METHOD", "diff",
        "TRAINER.DAPT_INIT.CLIP_WEIGHTS", str(work / "small_clip.pt"),
    ]
    done = run_train(command, cwd=host)
    assert done.returncode == 0, done.stderr[-3000:]
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "epoch [1/1]" in log and "Finish training" in log and "* accuracy:" in log
    assert (tmp_path / "out" / "prompt_learner" / "model.pth.tar-1").exists()
    # And the host's own eval-only path loads the checkpoint on the stock toolbox. A host has
    # no train.py guard against testing into the training folder itself: the trainer keeps
    # the earlier result.json rather than overwriting it.
    trained = (tmp_path / "out" / "result.json").read_bytes()
    opts = command.index("DATASET.NUM_SHOTS")
    evaluate = command[:opts] + ["--eval-only", "--model-dir", str(tmp_path / "out"),
                                 "--load-epoch", "1"] + command[opts:]
    done = run_train(evaluate, cwd=host)
    assert done.returncode == 0, done.stderr[-3000:]
    kept = [p for p in (tmp_path / "out").iterdir() if p.name.startswith("result.json-")]
    assert len(kept) == 1 and kept[0].read_bytes() == trained
    evaluated = json.loads((tmp_path / "out" / "result.json").read_text())
    assert evaluated["metrics"] == json.loads(trained)["metrics"] and evaluated["epoch"] == 1
