"""The trainer's own checks that run before the toolbox loads any data (needs Dassl)."""
from __future__ import annotations

import pytest

from tests.support.toolbox import requires_toolbox

pytestmark = requires_toolbox


def test_a_host_that_forgot_the_config_call_is_told_the_fix():
    from dassl.config import get_cfg_default

    from trainers.dapt_init.errors import DaptInitError
    from trainers.dapt_init.trainer import DAPT_Init

    trainer = object.__new__(DAPT_Init)  # check_cfg runs first in the toolbox's __init__
    with pytest.raises(DaptInitError, match="add_dapt_init_config"):
        trainer.check_cfg(get_cfg_default())


def test_check_cfg_validates_the_trainer_keys():
    from dassl.config import get_cfg_default

    from trainers.dapt_init.config import add_dapt_init_config
    from trainers.dapt_init.errors import DaptInitError
    from trainers.dapt_init.trainer import DAPT_Init

    cfg = get_cfg_default()
    add_dapt_init_config(cfg)
    cfg.MODEL.BACKBONE.NAME = "ViT-B/16"
    cfg.INPUT.SIZE = (224, 224)
    cfg.TRAINER.DAPT_INIT.PREC = "fp8"
    with pytest.raises(DaptInitError, match="PREC is 'fp8'"):
        object.__new__(DAPT_Init).check_cfg(cfg)
