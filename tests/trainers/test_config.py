"""Config keys: defaults, and one clear message per bad value, before anything loads."""
from __future__ import annotations

import pytest
from yacs.config import CfgNode

from trainers.dapt_init.config import add_dapt_init_config, validate_config
from trainers.dapt_init.errors import DaptInitError


def toolbox_like_cfg(**overrides) -> CfgNode:
    """The parts of the toolbox's default config that the validation reads."""
    cfg = CfgNode({"TRAINER": CfgNode({"NAME": "DAPT_Init"}),
                   "DATASET": CfgNode({"NAME": "EuroSAT", "NUM_SHOTS": 4}),
                   "MODEL": CfgNode({"BACKBONE": CfgNode({"NAME": "ViT-B/16"})}),
                   "INPUT": CfgNode({"SIZE": (224, 224)})})
    add_dapt_init_config(cfg)
    cfg.merge_from_list([item for pair in overrides.items() for item in pair])
    return cfg


def test_defaults_are_dapts_plus_random_init():
    node = toolbox_like_cfg().TRAINER.DAPT_INIT
    assert (node.VIS_NUM_TOKENS, node.TXT_NUM_TOKENS, node.VIS_DROPOUT) == (16, 16, 0.0)
    assert (node.VIS_BETA, node.TXT_BETA, node.TXT_RBF_T) == (0.1, 0.1, 2.0)
    assert (node.INIT_METHOD, node.INIT_NOISE_SCALE, node.PREC) == ("random", 0.1, "fp16")
    validate_config(toolbox_like_cfg())


@pytest.mark.parametrize("key, value, message", [
    ("TRAINER.DAPT_INIT.INIT_METHOD", "zeros", "valid values are random, same, diff"),
    ("TRAINER.DAPT_INIT.PREC", "bf16", "valid values are fp16, fp32, amp"),
    ("TRAINER.DAPT_INIT.INIT_NOISE_SCALE", -0.1, "INIT_NOISE_SCALE is -0.1; it must be"),
    ("TRAINER.DAPT_INIT.PROTOTYPE_VIEW", "augmented", "valid values are dapt, test"),
    ("TRAINER.DAPT_INIT.TXT_NUM_TOKENS", 0, "TXT_NUM_TOKENS is 0"),
    ("DATASET.NUM_SHOTS", 0, "NUM_SHOTS is 0"),
    ("DATASET.SUBSAMPLE_CLASSES", "old", "valid values are all, base, new"),
    ("MODEL.BACKBONE.NAME", "RN50", "needs a CLIP vision transformer: ViT-B/32, ViT-B/16"),
    ("INPUT.SIZE", (256, 256), r"INPUT.SIZE is \(256, 256\), but the CLIP model \(ViT-B/16\) "
                               r"takes 224x224"),
    ("TRAINER.DAPT_INIT.CLIP_WEIGHTS", "/no/such/clip.pt", "no such file exists"),
])
def test_bad_values_name_the_key_and_the_valid_choices(key, value, message):
    with pytest.raises(DaptInitError, match=message):
        validate_config(toolbox_like_cfg(**{key: value}))


def test_zero_shots_is_fine_for_evaluation_only():
    validate_config(toolbox_like_cfg(**{"DATASET.NUM_SHOTS": -1}), training=False)


def test_host_config_keeps_its_own_subsample_key():
    cfg = toolbox_like_cfg()
    cfg.DATASET.SUBSAMPLE_CLASSES = "base"
    add_dapt_init_config(cfg)
    assert cfg.DATASET.SUBSAMPLE_CLASSES == "base"
