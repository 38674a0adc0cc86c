"""study/run.py: folder and record round trip for every kind (the folder a spec names reads
back as the spec's key, and so does its record), the shots -> config rule, epochs, tags."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from study.run import (KINDS, RunSpec, StudyError, choose_config, config_epochs, full_tag,
                       grid_tag, spec_from_path)
from study.run_read import key_from_spec


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("vis,tag", [("random", ""), ("same", "trial"), ("diff", "lr_ep25")])
def test_folder_round_trip_for_every_kind(tmp_path, kind, vis, tag):
    spec = RunSpec(kind, "eurosat", "diff", vis, "vit_b16_ep50", 16, 3, tag,
                   {"OPTIM.MAX_EPOCH": "5"})
    parts = Path(spec.folder(tmp_path)).relative_to(tmp_path).parts
    # Folder names hold no grid values, and say nothing of a random visual init; a tagged
    # base-to-new folder '<cfg>_<TAG>' cannot be split (both hold '_'): its spec places it.
    expected = replace(spec.key(), grid=(), vis_init=None if vis == "random" else vis)
    if kind.startswith("base2new") and tag:
        expected = replace(expected, config=f"vit_b16_ep50_{tag}", tag="")
    assert spec_from_path(parts) == expected
    assert key_from_spec(spec.to_dict()) == spec.key()
    assert RunSpec.from_dict(spec.to_dict()) == spec


def test_folders_are_todays_layout():
    spec = RunSpec("train", "eurosat", "diff", "same", "demo_small", 4, 1, "trial")
    assert spec.folder("/o") == "/o/eurosat/DAPT_Init/diff_vis-same/demo_small_4shots_trial/seed1"
    assert RunSpec("base2new_test", "dtd", "same", "random", "vit_b16", 16, 2).folder("/o") == \
        "/o/base2new/test_new/dtd/shots_16/DAPT_Init/same/vit_b16/seed2"
    assert RunSpec("eval", "imagenet_r", "random", "random", "vit_b16_ep50", 1, 1).folder(
        "/o") == "/o/evaluation/imagenet_r/DAPT_Init/random/vit_b16_ep50_1shots/seed1"


@pytest.mark.parametrize("dataset,shots,cfg", [
    ("eurosat", 1, "vit_b16_ep50"), ("eurosat", 2, "vit_b16_ep100"), ("dtd", 4, "vit_b16_ep100"),
    ("eurosat", 8, "vit_b16"), ("eurosat", 16, "vit_b16"), ("imagenet", 2, "vit_b16_ep50")])
def test_config_rule(dataset, shots, cfg):
    assert choose_config(dataset, shots) == cfg


def test_config_rule_errors_and_epochs():
    with pytest.raises(StudyError, match="no default trainer config for 3 shots"):
        choose_config("eurosat", 3)
    assert choose_config("eurosat", 3, "demo_small") == "demo_small"
    assert [config_epochs(c) for c in ("vit_b16", "vit_b16_ep100", "vit_b16_ep50",
                                       "demo_small")] == [200, 100, 50, 3]
    assert config_epochs("vit_b16", ["OPTIM.MAX_EPOCH", "5"]) == 5
    assert config_epochs("vit_b16", ["OPTIM.MAX_EPOCH", "5"], "12") == 12


def test_grid_tags():
    assert grid_tag("OPTIM.MAX_EPOCH", "25") == "ep25"
    assert grid_tag("TRAINER.DAPT_INIT.VIS_BETA", "10") == "vis_beta10"
    assert full_tag("trial", {"TRAINER.DAPT_INIT.VIS_INIT_METHOD": "same",
                              "OPTIM.MAX_EPOCH": "25"}) == "trial_ep25"


@pytest.mark.parametrize("change,found", [
    ({}, []),
    ({"dataset": "dtd"}, ["dataset dtd (the run: eurosat / EuroSAT)"]),
    ({"seed": 2}, ["seed 2 (the run: 1)"]),
    ({"shots": 8}, ["shots 8 (the run: 4)"]),
    ({"init": "diff", "vis_init": "same"}, ["init diff (the run: random)",
                                            "vis_init same (the run: random)"]),
])
def test_a_spec_naming_another_run_than_its_config_says_what_differs(change, found):
    spec = replace(RunSpec("train", "eurosat", "random", "random", "vit_b16", 4, 1), **change)
    assert spec.mismatches(("eurosat", "EuroSAT"), 1, 4, "random", "random") == found
    # Dassl's class name alone places a data set too ('DescribableTextures' is dtd's).
    assert RunSpec("train", "dtd", "random", "random", "vit_b16", 4, 1).mismatches(
        ("dtd", "DescribableTextures"), 1, 4, "random", "random") == []
