"""configs/datasets/*.yaml: CoOp's file names, DAPT's published per-data-set values."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.toolbox import requires_toolbox

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "datasets"

IMAGENET = ("ImageNet", 2.0, 0.01, 0.01)
# DAPT's published configs (docs/TOOLBOX_NOTES.md): NAME, OPTIM.LR, VIS_BETA, TXT_BETA.
PUBLISHED = {
    "caltech101": ("Caltech101", 0.2, 10.0, 0.01),
    "dtd": ("DescribableTextures", 20.0, 100.0, 0.01),
    "eurosat": ("EuroSAT", 20.0, 100.0, 10.0),
    "fgvc_aircraft": ("FGVCAircraft", 2.0, 100.0, 0.01),
    "food101": ("Food101", 20.0, 10.0, 0.01),
    "imagenet": IMAGENET,
    "imagenet_a": ("ImageNetA",) + IMAGENET[1:],
    "imagenet_r": ("ImageNetR",) + IMAGENET[1:],
    "imagenet_sketch": ("ImageNetSketch",) + IMAGENET[1:],
    "imagenetv2": ("ImageNetV2",) + IMAGENET[1:],
    "oxford_flowers": ("OxfordFlowers", 0.002, 10.0, 0.01),
    "oxford_pets": ("OxfordPets", 0.02, 10.0, 0.1),
    "stanford_cars": ("StanfordCars", 0.002, 100.0, 0.1),
    "sun397": ("SUN397", 20.0, 100.0, 0.01),
    "ucf101": ("UCF101", 20.0, 0.1, 0.1),
}


def test_there_is_one_config_per_coop_data_set():
    assert {path.stem for path in CONFIGS.glob("*.yaml")} == set(PUBLISHED)


@pytest.mark.parametrize("config", sorted(PUBLISHED))
def test_config_holds_dapts_published_values(config):
    data = yaml.safe_load((CONFIGS / f"{config}.yaml").read_text())
    values = (data["DATASET"]["NAME"], data["OPTIM"]["LR"],
              data["TRAINER"]["DAPT_INIT"]["VIS_BETA"], data["TRAINER"]["DAPT_INIT"]["TXT_BETA"])
    assert values == PUBLISHED[config]
    assert all(isinstance(v, float) for v in values[1:])  # yacs refuses int over a float default


@requires_toolbox
@pytest.mark.parametrize("config", sorted(PUBLISHED))
def test_config_merges_into_a_toolbox_config(config):
    from dassl.config import get_cfg_default
    from yacs.config import CfgNode

    cfg = get_cfg_default()
    cfg.TRAINER.DAPT_INIT = CfgNode({"VIS_BETA": 0.1, "TXT_BETA": 0.1})
    cfg.merge_from_file(str(CONFIGS / f"{config}.yaml"))
    assert cfg.DATASET.NAME == PUBLISHED[config][0]
    assert cfg.OPTIM.LR == PUBLISHED[config][1]
