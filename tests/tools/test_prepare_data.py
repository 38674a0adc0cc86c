"""tools/prepare_data.py: the per-data-set report, exit status, and verify-extract-rename.

Nothing here touches the network: archives are built locally and downloads are forbidden.
"""
from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.support.toolbox import requires_toolbox
from tools import prepare_data
from tools.data_prep import download
from tools.data_prep.download import PrepareError, extract
from tools.prepare_data import main
from tools.tiny_data import make_tiny

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to download")
    monkeypatch.setattr(download, "fetch", refuse)  # where prepare() looks it up


def test_empty_root_reports_every_data_set_and_exits_1(tmp_path: Path):
    result = subprocess.run([sys.executable, str(REPO / "tools" / "prepare_data.py"),
                             "--root", str(tmp_path)], capture_output=True, text=True, check=False)
    out = result.stdout
    assert result.returncode == 1
    for spec in prepare_data.SPECS:
        assert f"== {spec.name} (--dataset {spec.config}" in out
    assert "missing: 2750/" in out and "missing: split_zhou_EuroSAT.json" in out
    assert f"python tools/prepare_data.py --root {tmp_path} --dataset eurosat --download" in out
    assert "https://zenodo.org/records/7711810/files/EuroSAT_RGB.zip" in out
    assert "image-net.org" in out  # ImageNet: the manual step, with where to put it
    assert f"{tmp_path}/imagenet/images/train/" in out
    assert "Ready: none" in out
    assert not list(tmp_path.iterdir())  # checking writes nothing


def test_ready_data_set_exits_0(tmp_path: Path, capsys):
    make_tiny("eurosat", tmp_path)
    assert main(["--root", str(tmp_path), "--dataset", "EuroSAT"]) == 0
    out = capsys.readouterr().out
    assert "status:  ready" in out and "(train 40 / val 20 / test 20)" in out
    assert "present: 2750/ (10 folders)" in out


def test_a_survey_checks_the_data_sets_present_and_lists_the_others(tmp_path: Path, capsys):
    # The root a newcomer has: one data set prepared. Ready, so the check passes.
    make_tiny("eurosat", tmp_path)
    assert main(["--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("== ") == 1 and "== EuroSAT" in out and "status:  ready" in out
    assert "NOT READY" not in out
    others = [spec.name for spec in prepare_data.SPECS if spec.name != "EuroSAT"]
    assert f"Not present (no folder, not checked): {', '.join(others)}" in out
    assert f"--root {tmp_path} --dataset NAME" in out
    # A present data set that is not ready still fails the survey.
    (tmp_path / "eurosat" / "split_zhou_EuroSAT.json").unlink()
    assert main(["--root", str(tmp_path)]) == 1


def test_corrupt_split_file_is_named_in_the_report(tmp_path: Path, capsys):
    split = make_tiny("eurosat", tmp_path) / "split_zhou_EuroSAT.json"
    split.write_text(split.read_text()[:100])
    assert main(["--root", str(tmp_path), "--dataset", "eurosat"]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM" in out and str(split) in out and "corrupt or truncated" in out


def test_unknown_data_set_is_refused_with_the_choices(tmp_path: Path):
    with pytest.raises(SystemExit, match="choose one of: imagenet, caltech101"):
        main(["--root", str(tmp_path), "--dataset", "mnist"])


# ----------------------------------------------------------------------------------------------
# Extract into a temporary folder, then rename into place
# ----------------------------------------------------------------------------------------------


def _zip_folder(folder: Path, archive: Path, top: str) -> None:
    with zipfile.ZipFile(archive, "w") as opened:
        for path in sorted(folder.rglob("*")):
            opened.write(path, Path(top) / path.relative_to(folder))


def test_extract_renames_archive_folder_into_place(tmp_path: Path):
    dataset_dir = make_tiny("eurosat", tmp_path / "src")
    archive = tmp_path / "EuroSAT_RGB.zip"
    _zip_folder(dataset_dir / "2750", archive, "EuroSAT_RGB")
    target = tmp_path / "data" / "eurosat"
    placed = extract(archive, target, [("EuroSAT_RGB", "2750")])
    assert placed == [target / "2750"]
    assert sorted(p.name for p in (target / "2750").iterdir()) == \
        sorted(p.name for p in (dataset_dir / "2750").iterdir())
    assert [p.name for p in target.iterdir()] == ["2750"]  # no temporary folder left


def test_extract_moves_folder_contents_from_a_tarball(tmp_path: Path):
    dataset_dir = make_tiny("dtd", tmp_path / "src")
    archive = tmp_path / "dtd-r1.0.1.tar.gz"
    with tarfile.open(archive, "w:gz") as opened:
        opened.add(dataset_dir, arcname="dtd")
    target = tmp_path / "data" / "dtd"
    extract(archive, target, [("dtd/*", "")])
    assert (target / "images" / "banded" / "banded_0001.jpg").is_file()
    assert (target / "labels" / "train1.txt").is_file()


def test_wrong_archive_leaves_nothing_behind(tmp_path: Path):
    archive = tmp_path / "EuroSAT_RGB.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.writestr("EuroSAT_MS/readme.txt", "multispectral")
    target = tmp_path / "eurosat"
    with pytest.raises(PrepareError, match="has no EuroSAT_RGB"):
        extract(archive, target, [("EuroSAT_RGB", "2750")])
    assert list(target.iterdir()) == []


def test_download_uses_a_local_archive_verifies_and_lays_out(tmp_path: Path, monkeypatch, capsys):
    root = tmp_path / "data"
    dataset_dir = make_tiny("eurosat", root)
    archive = dataset_dir / "EuroSAT_RGB.zip"
    _zip_folder(dataset_dir / "2750", archive, "EuroSAT_RGB")
    shutil.rmtree(dataset_dir / "2750")
    (dataset_dir / ".extract-killed").mkdir()  # left by an interrupted run
    # The test archive is not Zenodo's: pin its own checksum instead of the published one.
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    specs = tuple(
        dataclasses.replace(spec, downloads=tuple(
            dataclasses.replace(d, md5=digest, size=archive.stat().st_size)
            if d.file == "EuroSAT_RGB.zip" else d for d in spec.downloads))
        for spec in prepare_data.SPECS)
    monkeypatch.setattr(prepare_data, "SPECS", specs)
    assert main(["--root", str(root), "--dataset", "eurosat", "--download"]) == 0
    out = capsys.readouterr().out
    assert "verified EuroSAT_RGB.zip: md5 matches" in out and "status:  ready" in out
    assert (dataset_dir / "2750" / "Forest" / "Forest_1.jpg").is_file()
    assert not list(dataset_dir.glob(".extract-*"))


def test_checksum_mismatch_stops_before_extracting(tmp_path: Path, capsys):
    root = tmp_path / "data"
    dataset_dir = make_tiny("eurosat", root)
    archive = dataset_dir / "EuroSAT_RGB.zip"
    _zip_folder(dataset_dir / "2750", archive, "EuroSAT_RGB")
    shutil.rmtree(dataset_dir / "2750")
    assert main(["--root", str(root), "--dataset", "eurosat", "--download"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "bytes, expected 94,658,721" in out
    assert not (dataset_dir / "2750").exists()


def test_imagenet_variant_gets_classnames_copied(tmp_path: Path):
    make_tiny("imagenet", tmp_path)
    variant = make_tiny("imagenet_r", tmp_path, images_per_class=3)
    (variant / "classnames.txt").unlink()
    specs = tuple(dataclasses.replace(s, downloads=()) for s in prepare_data.SPECS)
    prepare_data.prepare(next(s for s in specs if s.name == "ImageNetR"), tmp_path)
    assert (variant / "classnames.txt").read_text() == \
        (tmp_path / "imagenet" / "classnames.txt").read_text()


# ----------------------------------------------------------------------------------------------
# The tool's table agrees with the data set classes
# ----------------------------------------------------------------------------------------------


@requires_toolbox
def test_specs_agree_with_the_registered_classes():
    from dassl.data.datasets import DATASET_REGISTRY

    import datasets.classes  # noqa: F401

    assert len(prepare_data.SPECS) == 15
    for spec in prepare_data.SPECS:
        cls = DATASET_REGISTRY.get(spec.name)
        assert cls.dataset_dir == spec.folder, spec.name
        assert cls.layout() == spec.required, spec.name
        assert cls.image_folder == spec.image_folder, spec.name
        assert (cls.split_file or "") == spec.split_file, spec.name
        config = (REPO / "configs" / "datasets" / f"{spec.config}.yaml").read_text()
        assert f'NAME: "{spec.name}"' in config
