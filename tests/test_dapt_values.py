"""DAPT's per-dataset LR and betas: one table, the dataset configs agree, stale defaults warn."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.toolbox import requires_toolbox
from trainers.dapt_init.dapt_values import DAPT_VALUES, DEFAULTS, stale_defaults_warning

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs/datasets").glob("*.yaml"))


def read_values(path: Path) -> tuple[str, tuple[float, float, float]]:
    data = yaml.safe_load(path.read_text())
    node = data["TRAINER"]["DAPT_INIT"]
    return data["DATASET"]["NAME"], (data["OPTIM"]["LR"], node["VIS_BETA"], node["TXT_BETA"])


def test_dataset_configs_carry_exactly_the_tables_values():
    from_configs = dict(read_values(path) for path in CONFIGS)
    assert len(from_configs) == len(CONFIGS) == 15
    assert from_configs == DAPT_VALUES


def default_cfg(dataset: str):
    from dassl.config import get_cfg_default

    from trainers.dapt_init.config import add_dapt_init_config

    cfg = get_cfg_default()
    add_dapt_init_config(cfg)
    cfg.DATASET.NAME = dataset
    return cfg


@requires_toolbox
def test_defaults_are_the_toolboxs_and_the_keys():
    cfg = default_cfg("EuroSAT")
    assert DEFAULTS == {"OPTIM.LR": cfg.OPTIM.LR, "TRAINER.DAPT_INIT.VIS_BETA":
                        cfg.TRAINER.DAPT_INIT.VIS_BETA, "TRAINER.DAPT_INIT.TXT_BETA":
                        cfg.TRAINER.DAPT_INIT.TXT_BETA}


@requires_toolbox
def test_a_config_left_at_the_defaults_gets_one_warning_naming_dapts_values():
    warning = stale_defaults_warning(default_cfg("EuroSAT"))
    assert warning.count("\n") == 0
    assert warning.startswith("Warning: OPTIM.LR and TRAINER.DAPT_INIT.VIS_BETA and "
                              "TRAINER.DAPT_INIT.TXT_BETA still have the default value; ")
    assert ("DAPT trains EuroSAT with OPTIM.LR 20, TRAINER.DAPT_INIT.VIS_BETA 100, "
            "TRAINER.DAPT_INIT.TXT_BETA 10.") in warning
    # Only the stale key is named as stale; UCF101's betas are DAPT's and the defaults alike.
    cfg = default_cfg("EuroSAT")
    cfg.OPTIM.LR = 20.0
    cfg.TRAINER.DAPT_INIT.VIS_BETA = 100.0
    assert stale_defaults_warning(cfg).startswith(
        "Warning: TRAINER.DAPT_INIT.TXT_BETA still has the default value")
    assert stale_defaults_warning(default_cfg("UCF101")).startswith(
        "Warning: OPTIM.LR still has the default value; DAPT trains UCF101 with OPTIM.LR 20,")
    assert stale_defaults_warning(default_cfg("SomeHostDataset")) is None


@requires_toolbox
@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_the_repositorys_dataset_configs_do_not_warn(path):
    cfg = default_cfg("EuroSAT")
    cfg.merge_from_file(str(path))
    assert stale_defaults_warning(cfg) is None
