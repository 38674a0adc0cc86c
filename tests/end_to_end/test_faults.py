"""Caches whose key is right but whose content is wrong, and files kept aside: each is checked
where it is loaded or written (issue 17). The few-shot tests build the real data set class
through the toolbox; the rest need no toolbox."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.support.toolbox import requires_toolbox
from tools.tiny.marker import MARKER, FolderNotOurs
from tools.tiny_data import make_tiny_eurosat
from trainers.dapt_init.atomic import unused_path
from trainers.dapt_init.prototypes import load_cached_prototypes


# ---------------------------------------------------------------------- few-shot cache content
def _tamper_missing_image(data: dict, root: Path) -> None:
    data["train"][0][0] = "Forest/Forest_999.jpg"


def _tamper_outside_root(data: dict, root: Path) -> None:
    data["train"][0][0] = "../../outside.jpg"


def _tamper_label_out_of_range(data: dict, root: Path) -> None:
    data["train"][0][1] = 10


def _tamper_one_class(data: dict, root: Path) -> None:
    data["train"] = [item for item in data["train"] if item[1] == 0]


@requires_toolbox
@pytest.mark.parametrize("tamper, says", [
    (_tamper_missing_image, "is not an image of the split"),
    (_tamper_outside_root, "'../../outside.jpg'"),
    (_tamper_label_out_of_range, "is not an image of the split with that label"),
    (_tamper_one_class, "has 0 image(s) of class 1; a draw of 2 shot(s) has 2"),
])
def test_a_fewshot_cache_with_the_right_key_and_wrong_content_is_redrawn(tmp_path, capsys,
                                                                         tamper, says):
    from dassl.config import get_cfg_default
    from dassl.data.datasets import build_dataset
    from dassl.utils import set_random_seed

    import datasets.classes  # noqa: F401  (registers the data set classes)
    from datasets.fewshot import fewshot_cache_path

    make_tiny_eurosat(tmp_path)
    cfg = get_cfg_default()
    cfg.DATASET.ROOT, cfg.DATASET.NAME = str(tmp_path), "EuroSAT"
    cfg.DATASET.NUM_SHOTS, cfg.SEED, cfg.DATASET.SUBSAMPLE_CLASSES = 2, 1, "all"

    def build():
        set_random_seed(1)
        return build_dataset(cfg)

    first = build()
    cache = fewshot_cache_path(tmp_path / "eurosat", 2, 1, "all")
    good = cache.read_bytes()
    data = json.loads(good)
    tamper(data, tmp_path)
    cache.write_text(json.dumps(data))
    capsys.readouterr()
    again = build()
    out = capsys.readouterr().out
    note = [line for line in out.splitlines() if line.startswith("Ignoring few-shot cache")]
    assert len(note) == 1 and says in note[0] and "not a draw from this split" in note[0]
    # The same draw as before (the seed's), all ten classes, and the file replaced by it.
    assert [d.impath for d in again.train_x] == [d.impath for d in first.train_x]
    assert sorted({d.label for d in again.train_x}) == list(range(10))
    assert cache.read_bytes() == good


# ---------------------------------------------------------------------- prototype cache content
KEY = {"dataset": "EuroSAT", "shots": 2, "seed": 1}


@pytest.mark.parametrize("prototypes, says", [
    (torch.full((10, 8), 0.1), None),
    (torch.full((9, 8), 0.1), "shape (9, 8), expected (10, 8)"),
    (torch.full((10, 8), float("nan")), "NaN or infinite"),
    (torch.full((10, 8), 1.0), "norm exceeds 1"),
    (torch.zeros(10, 8, dtype=torch.long), "not a float tensor"),
])
def test_a_prototype_cache_is_used_only_when_its_content_fits(tmp_path, capsys, prototypes, says):
    path = str(tmp_path / "cache.pt")
    # The cache's own format, with the right key and the content under test.
    torch.save({"key": json.dumps(KEY, sort_keys=True), "prototypes": prototypes}, path)
    loaded = load_cached_prototypes(path, KEY, (10, 8))
    out = capsys.readouterr().out
    if says is None:
        assert torch.equal(loaded, prototypes) and out == ""
    else:
        assert loaded is None
        assert out.count("\n") == 1 and says in out and "recomputing and replacing it" in out


# ---------------------------------------------------------------------- files kept aside
def test_a_kept_file_never_replaces_one_kept_in_the_same_second(tmp_path):
    stamp = tmp_path / "result.json-2026-01-01-00-00-00"
    assert unused_path(str(stamp)) == str(stamp)
    stamp.write_text("first")
    assert unused_path(str(stamp)) == f"{stamp}-1"
    Path(f"{stamp}-1").write_text("second")
    assert unused_path(str(stamp)) == f"{stamp}-2"


# ---------------------------------------------------------------------- the data generator
def test_tiny_data_regenerates_its_own_folder_and_refuses_a_foreign_one(tmp_path):
    made = make_tiny_eurosat(tmp_path / "ours")
    assert (made / MARKER).is_file()
    split = (made / "split_zhou_EuroSAT.json").read_bytes()
    assert make_tiny_eurosat(tmp_path / "ours") == made  # its own: regenerated
    assert (made / "split_zhou_EuroSAT.json").read_bytes() == split
    foreign = tmp_path / "real" / "eurosat"
    foreign.mkdir(parents=True)
    (foreign / "split_zhou_EuroSAT.json").write_text("the real split")
    with pytest.raises(FolderNotOurs, match="was not made by tools/tiny_data.py"):
        make_tiny_eurosat(tmp_path / "real")
    assert sorted(p.name for p in foreign.iterdir()) == ["split_zhou_EuroSAT.json"]
    assert (foreign / "split_zhou_EuroSAT.json").read_text() == "the real split"
