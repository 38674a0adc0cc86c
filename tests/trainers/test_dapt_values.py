"""DAPT's per-dataset LR and betas: one table, the dataset configs agree, keys nobody set get
them."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.toolbox import requires_toolbox
from trainers.dapt_init.dapt_values import DAPT_VALUES, DEFAULTS, apply_dapt_values

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs/datasets").glob("*.yaml"))


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


# (command-line words, what the run trains with): each key nobody set gets DAPT's value;
# a key the command sets keeps it, even the toolbox's default, and integers are decimals.
APPLY_CASES = [
    ("EuroSAT", [], (20.0, 100.0, 10.0), 3),
    ("EuroSAT", ["OPTIM.LR", "0.0003"], (0.0003, 100.0, 10.0), 2),
    ("EuroSAT", ["OPTIM.LR", "5", "TRAINER.DAPT_INIT.TXT_BETA", "1"], (5.0, 100.0, 1.0), 1),
    ("EuroSAT", ["OPTIM.LR", "20", "TRAINER.DAPT_INIT.VIS_BETA", "100",
                 "TRAINER.DAPT_INIT.TXT_BETA", "10"], (20.0, 100.0, 10.0), 0),
    ("UCF101", [], (20.0, 0.1, 0.1), 1),  # its betas are the defaults: only the LR is named
    ("OxfordFlowers", ["TRAINER.DAPT_INIT.VIS_BETA", "0.1"], (0.002, 0.1, 0.01), 2),
    ("ImageNetV2", [], (2.0, 0.01, 0.01), 3),
    ("SomeHostDataset", [], (0.0003, 0.1, 0.1), 0),  # DAPT published nothing for it
]


def trained_values(cfg) -> tuple[float, float, float]:
    node = cfg.TRAINER.DAPT_INIT
    return cfg.OPTIM.LR, node.VIS_BETA, node.TXT_BETA


@requires_toolbox
@pytest.mark.parametrize("dataset,words,expected,named", APPLY_CASES,
                         ids=[f"{c[0]}-{len(c[1]) // 2}set" for c in APPLY_CASES])
def test_keys_nobody_set_get_dapts_values_and_one_line_says_so(dataset, words, expected, named):
    cfg = default_cfg(dataset)
    cfg.merge_from_list(words)
    line = apply_dapt_values(cfg)
    assert trained_values(cfg) == expected
    assert all(isinstance(v, float) for v in trained_values(cfg))
    if named == 0:
        assert line is None
        return
    assert "\n" not in line and line.startswith(f"DAPT_Init: {dataset} trains with DAPT's")
    assert line.count(" OPTIM.LR ") + line.count("_BETA ") == named
    assert apply_dapt_values(cfg) is None  # applied once; a second call changes nothing
    assert trained_values(cfg) == expected


@requires_toolbox
def test_a_key_set_by_a_config_file_is_kept(tmp_path):
    dataset_yaml = tmp_path / "eurosat.yaml"  # a host's own: its own LR, no betas
    dataset_yaml.write_text('DATASET:\n  NAME: "EuroSAT"\nOPTIM:\n  LR: 1\n')
    cfg = default_cfg("Unset")
    cfg.merge_from_file(str(dataset_yaml))
    line = apply_dapt_values(cfg)
    assert trained_values(cfg) == (1.0, 100.0, 10.0)
    assert "OPTIM.LR" not in line and "VIS_BETA 100 TRAINER.DAPT_INIT.TXT_BETA 10" in line
    # The record of set keys travels with a clone (train.py and the trainer clone configs).
    clone = default_cfg("EuroSAT")
    clone.merge_from_list(["OPTIM.LR", "0.0003"])
    clone = clone.clone()
    apply_dapt_values(clone)
    assert clone.OPTIM.LR == 0.0003


@requires_toolbox
@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_the_repositorys_dataset_configs_need_nothing_applied(path):
    cfg = default_cfg("EuroSAT")
    cfg.merge_from_file(str(path))
    before = trained_values(cfg)
    assert apply_dapt_values(cfg) is None
    assert trained_values(cfg) == before
