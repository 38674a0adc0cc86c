"""Check a data root for the CoOp-family data sets and, where the sources are public, fetch them.

    python tools/prepare_data.py --root /data                        # survey all fifteen
    python tools/prepare_data.py --root /data --dataset eurosat      # one (config or class name)
    python tools/prepare_data.py --root /data --dataset EuroSAT --download

For each data set it prints what is present, what is missing and the exact next step. With
``--download`` it fetches what is public (archives by URL, CoOp's split files from Google Drive
with ``gdown``), verifies published MD5 checksums and sizes where they are known (and says so
where none is), extracts into a temporary folder inside the data set folder and only then
renames the parts into place, so an interrupted run never leaves a half-extracted folder. An
archive already sitting in the data set folder (fetched by hand) is used instead of a download.
Data sets whose licence needs a person (ImageNet, ...) get the exact manual steps.

Without ``--dataset`` it surveys the root: the data sets present get the full report and
those without a folder one line (all fifteen get the full report when none is present).

Exit status: 0 when every data set checked is ready (in a survey: every one present, and at
least one), 1 when any is not (so scripts can test it), 2 for a bad command line.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import warnings
import tarfile
import tempfile
import urllib.request
import zipfile

# The toolbox imports wilds, whose 'outdated' dependency imports the deprecated pkg_resources:
# a warning on every start that is about neither this project nor the user's setup.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

# Run as a script, the repository root is not on sys.path; split files are validated by the
# same code the data set classes use.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from datasets.fewshot import (DatasetError, Splits, read_split_file,  # noqa: E402
                              require_images)

GDRIVE = "https://drive.google.com/uc?id={}"


@dataclass(frozen=True)
class Download:
    """One file to fetch into the data set folder, and how to lay it out if it is an archive.

    ``moves`` maps a path inside the archive to a path in the data set folder ("x/*" moves the
    entries of x); no moves means the file itself is what is needed (a split file).
    """

    file: str
    url: str = ""
    gdrive_id: str = ""
    md5: str = ""  # the published checksum; "" when none is known
    size: int | None = None  # bytes, where known
    moves: tuple[tuple[str, str], ...] = ()
    provides: str = ""  # the layout entry it provides (what makes it unnecessary)

    @property
    def source(self) -> str:
        return self.url or GDRIVE.format(self.gdrive_id)

    @property
    def verification(self) -> str:
        if self.md5:
            return f"md5 {self.md5}" + (f", {self.size:,} bytes" if self.size else "")
        if self.size:
            return f"size only ({self.size:,} bytes): no published checksum known"
        return "not verified: no published checksum or size known"


@dataclass(frozen=True)
class Spec:
    """A data set as CoOp lays it out (must agree with its class in datasets/)."""

    name: str  # DATASET.NAME
    config: str  # configs/datasets/<config>.yaml
    folder: str  # under the data root
    required: tuple[str, ...]  # entries the class reads ("x/" = folder)
    image_folder: str = ""
    split_file: str = ""
    downloads: tuple[Download, ...] = ()
    manual: str = ""  # steps a person must take (licence, no stable public URL)
    optional: tuple[str, ...] = field(default=())  # in CoOp's layout, not read by the class


def _split(name: str, gdrive_id: str) -> Download:
    return Download(file=name, gdrive_id=gdrive_id, provides=name)


def _imagenet_variant_manual(folder: str, what: str) -> str:
    return (f"{what}\n"
            f"Then copy ROOT/imagenet/classnames.txt to ROOT/{folder}/ (with --download this tool "
            f"copies it when ROOT/imagenet/classnames.txt exists).")


SPECS: tuple[Spec, ...] = (
    Spec("ImageNet", "imagenet", "imagenet", ("images/train/", "images/val/", "classnames.txt"),
         image_folder="images",
         downloads=(_split("classnames.txt", "1-61f_ol79pViBFDG_IDlUQSwoLcn2XXF"),),
         manual=("ImageNet's licence needs a person: log in at https://image-net.org, download "
                 "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar, extract them to "
                 "ROOT/imagenet/images/train/ (1000 folders n01440764, ...) and "
                 "ROOT/imagenet/images/val/ sorted into the same 1000 class folders (the val "
                 "archive is flat; e.g. use the widely used valprep.sh). An existing copy can be "
                 "linked: ln -s /path/to/train ROOT/imagenet/images/train.")),
    Spec("Caltech101", "caltech101", "caltech-101",
         ("101_ObjectCategories/", "split_zhou_Caltech101.json"),
         image_folder="101_ObjectCategories", split_file="split_zhou_Caltech101.json",
         downloads=(
             Download("101_ObjectCategories.tar.gz",
                      url="http://www.vision.caltech.edu/Image_Datasets/Caltech101/"
                          "101_ObjectCategories.tar.gz",
                      md5="b224c7392d521a49829488ab0f1120d9",
                      moves=(("101_ObjectCategories", "101_ObjectCategories"),),
                      provides="101_ObjectCategories/"),
             _split("split_zhou_Caltech101.json", "1hyarUivQE36mY6jSomru6Fjd-JzwcCzN")),
         manual=("If the Caltech URL no longer serves the archive: download caltech-101.zip from "
                 "https://data.caltech.edu/records/mzrjq-6wc02, take 101_ObjectCategories.tar.gz "
                 "out of it, put it in ROOT/caltech-101/ and run again with --download.")),
    Spec("OxfordPets", "oxford_pets", "oxford_pets", ("images/", "split_zhou_OxfordPets.json"),
         image_folder="images", split_file="split_zhou_OxfordPets.json",
         optional=("annotations/",),
         downloads=(
             Download("images.tar.gz", url="https://www.robots.ox.ac.uk/~vgg/data/pets/data/"
                      "images.tar.gz", md5="5c4f3ee8e5d25df40f4fd59a7f44e54c",
                      moves=(("images", "images"),), provides="images/"),
             Download("annotations.tar.gz", url="https://www.robots.ox.ac.uk/~vgg/data/pets/"
                      "data/annotations.tar.gz", md5="95a8c909bbe2e81eed6a22bccdf3f68f",
                      moves=(("annotations", "annotations"),), provides="annotations/"),
             _split("split_zhou_OxfordPets.json", "1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs"))),
    Spec("StanfordCars", "stanford_cars", "stanford_cars",
         ("cars_train/", "cars_test/", "split_zhou_StanfordCars.json"),
         split_file="split_zhou_StanfordCars.json",
         optional=("devkit/", "cars_test_annos_withlabels.mat"),
         downloads=(_split("split_zhou_StanfordCars.json", "1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT"),),
         manual=("The Stanford URLs in CoOp's DATASETS.md (ai.stanford.edu/~jkrause/car196/) no "
                 "longer serve the images: obtain cars_train.tgz, cars_test.tgz and car_devkit.tgz "
                 "from a copy you trust and extract them so that ROOT/stanford_cars/cars_train/ "
                 "and ROOT/stanford_cars/cars_test/ hold the JPEGs.")),
    Spec("OxfordFlowers", "oxford_flowers", "oxford_flowers",
         ("jpg/", "split_zhou_OxfordFlowers.json"),
         image_folder="jpg", split_file="split_zhou_OxfordFlowers.json",
         optional=("imagelabels.mat", "cat_to_name.json"),
         downloads=(
             Download("102flowers.tgz", url="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
                      "102flowers.tgz", md5="52808999861908f626f3c1f4e79d11fa",
                      moves=(("jpg", "jpg"),), provides="jpg/"),
             Download("imagelabels.mat", url="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
                      "imagelabels.mat", md5="e0620be6f572b9609742df49c70aed4d",
                      provides="imagelabels.mat"),
             _split("cat_to_name.json", "1AkcxCXeK_RCGCEC_GvmWxjcjaNhu-at0"),
             _split("split_zhou_OxfordFlowers.json", "1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT"))),
    Spec("Food101", "food101", "food-101", ("images/", "split_zhou_Food101.json"),
         image_folder="images", split_file="split_zhou_Food101.json", optional=("meta/",),
         downloads=(
             Download("food-101.tar.gz", url="http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
                      md5="85eeb15f3717b99a5da872d97d918f87", moves=(("food-101/*", ""),),
                      provides="images/"),
             _split("split_zhou_Food101.json", "1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl"))),
    Spec("FGVCAircraft", "fgvc_aircraft", "fgvc_aircraft",
         ("images/", "variants.txt", "images_variant_train.txt", "images_variant_val.txt",
          "images_variant_test.txt"),
         image_folder="images",
         downloads=(
             Download("fgvc-aircraft-2013b.tar.gz",
                      url="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/"
                          "fgvc-aircraft-2013b.tar.gz",
                      md5="d4acdd33327262359767eeaa97a4f732",
                      moves=(("fgvc-aircraft-2013b/data/*", ""),), provides="images/"),)),
    Spec("SUN397", "sun397", "sun397", ("SUN397/", "split_zhou_SUN397.json"),
         image_folder="SUN397", split_file="split_zhou_SUN397.json",
         downloads=(
             Download("SUN397.tar.gz", url="http://vision.princeton.edu/projects/2010/SUN/"
                      "SUN397.tar.gz", md5="8ca2778205c41d23104230ba66911c7a",
                      moves=(("SUN397", "SUN397"),), provides="SUN397/"),
             _split("split_zhou_SUN397.json", "1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq"))),
    Spec("DescribableTextures", "dtd", "dtd", ("images/", "split_zhou_DescribableTextures.json"),
         image_folder="images", split_file="split_zhou_DescribableTextures.json",
         optional=("imdb/", "labels/"),
         downloads=(
             Download("dtd-r1.0.1.tar.gz", url="https://www.robots.ox.ac.uk/~vgg/data/dtd/"
                      "download/dtd-r1.0.1.tar.gz", md5="fff73e5086ae6bdbea199a49dfb8a4c1",
                      moves=(("dtd/*", ""),), provides="images/"),
             _split("split_zhou_DescribableTextures.json", "1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x"))),
    Spec("EuroSAT", "eurosat", "eurosat", ("2750/", "split_zhou_EuroSAT.json"),
         image_folder="2750", split_file="split_zhou_EuroSAT.json",
         downloads=(
             # The official source today; its folder EuroSAT_RGB/ is CoOp's 2750/.
             Download("EuroSAT_RGB.zip",
                      url="https://zenodo.org/records/7711810/files/EuroSAT_RGB.zip",
                      md5="f46e308c4d50d4bf32fedad2d3d62f3b", size=94_658_721,
                      moves=(("EuroSAT_RGB", "2750"),), provides="2750/"),
             _split("split_zhou_EuroSAT.json", "1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o"))),
    Spec("UCF101", "ucf101", "ucf101", ("UCF-101-midframes/", "split_zhou_UCF101.json"),
         image_folder="UCF-101-midframes", split_file="split_zhou_UCF101.json",
         downloads=(
             Download("UCF-101-midframes.zip", gdrive_id="10Jqome3vtUA2keJkNanAiFpgbyC9Hc2O",
                      moves=(("UCF-101-midframes", "UCF-101-midframes"),),
                      provides="UCF-101-midframes/"),
             _split("split_zhou_UCF101.json", "1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y"))),
    Spec("ImageNetV2", "imagenetv2", "imagenetv2",
         ("imagenetv2-matched-frequency-format-val/", "classnames.txt"),
         image_folder="imagenetv2-matched-frequency-format-val",
         downloads=(
             Download("imagenetv2-matched-frequency.tar.gz",
                      url="https://s3-us-west-2.amazonaws.com/imagenetv2public/"
                          "imagenetv2-matched-frequency.tar.gz",
                      moves=(("imagenetv2-matched-frequency-format-val",
                              "imagenetv2-matched-frequency-format-val"),),
                      provides="imagenetv2-matched-frequency-format-val/"),),
         manual=_imagenet_variant_manual("imagenetv2", "")),
    Spec("ImageNetSketch", "imagenet_sketch", "imagenet-sketch", ("images/", "classnames.txt"),
         image_folder="images",
         manual=_imagenet_variant_manual(
             "imagenet-sketch", "Download ImageNet-Sketch as linked from "
             "https://github.com/HaohanWang/ImageNet-Sketch (ImageNet-Sketch.zip) and extract "
             "it so that ROOT/imagenet-sketch/images/ holds the 1000 folders n*.")),
    Spec("ImageNetA", "imagenet_a", "imagenet-adversarial", ("imagenet-a/", "classnames.txt"),
         image_folder="imagenet-a",
         downloads=(
             Download("imagenet-a.tar", url="https://people.eecs.berkeley.edu/~hendrycks/"
                      "imagenet-a.tar", moves=(("imagenet-a", "imagenet-a"),),
                      provides="imagenet-a/"),),
         manual=_imagenet_variant_manual("imagenet-adversarial", "")),
    Spec("ImageNetR", "imagenet_r", "imagenet-rendition", ("imagenet-r/", "classnames.txt"),
         image_folder="imagenet-r",
         downloads=(
             Download("imagenet-r.tar", url="https://people.eecs.berkeley.edu/~hendrycks/"
                      "imagenet-r.tar", moves=(("imagenet-r", "imagenet-r"),),
                      provides="imagenet-r/"),),
         manual=_imagenet_variant_manual("imagenet-rendition", "")),
)


class PrepareError(Exception):
    """A download or extraction failed; the message says what to do."""


# ----------------------------------------------------------------------------------------------
# Checking
# ----------------------------------------------------------------------------------------------


def find_spec(name: str) -> Spec:
    """A data set by class name (EuroSAT) or config name (eurosat), any case."""
    for spec in SPECS:
        if name.lower() in (spec.name.lower(), spec.config.lower()):
            return spec
    choices = ", ".join(spec.config for spec in SPECS)
    raise SystemExit(f"Unknown data set {name!r}; choose one of: {choices}, or all.")


def _describe_folder(path: Path) -> str:
    entries = [entry for entry in os.scandir(path) if not entry.name.startswith(".")]
    folders = sum(entry.is_dir() for entry in entries)
    files = len(entries) - folders
    # Only what is there: "10 folders, 0 files" read like a fault for a folder of class folders.
    parts = [f"{folders} folder{'s' * (folders != 1)}" if folders else "",
             f"{files} file{'s' * (files != 1)}" if files else ""]
    return ", ".join(part for part in parts if part) or "empty"


def check_entries(spec: Spec, dataset_dir: Path) -> tuple[list[str], list[str], list[str]]:
    """(present lines, missing required entries, absent optional entries)."""
    present, missing, absent = [], [], []
    for entry in spec.required + spec.optional:
        path = dataset_dir / entry
        found = path.is_dir() if entry.endswith("/") else path.is_file()
        if found:
            is_folder = entry.endswith("/")
            detail = _describe_folder(path) if is_folder else f"{path.stat().st_size:,} bytes"
            present.append(f"{entry} ({detail})")
        elif entry in spec.required:
            missing.append(entry)
        else:
            absent.append(entry)
    return present, missing, absent


def check_split(spec: Spec, dataset_dir: Path) -> tuple[str, str]:
    """("", problem) or (summary, "") for the split file and the images it lists."""
    try:
        splits: Splits = read_split_file(dataset_dir / spec.split_file, spec.name)
        require_images(spec.name, dataset_dir.parent, dataset_dir / spec.image_folder, splits,
                       spec.split_file)
    except DatasetError as error:
        return "", str(error)
    sizes = f"train {len(splits.train)} / val {len(splits.val or [])} / test {len(splits.test)}"
    return f"{spec.split_file} is valid and every listed image exists ({sizes})", ""


def next_step(spec: Spec, root: Path, missing: Sequence[str], problem: str) -> list[str]:
    """What the user should do now, as exact commands or manual steps."""
    if problem:
        return ["fix the PROBLEM above as it says, then run this check again"]
    if not missing:
        return []
    steps = []
    fetchable = [d for d in spec.downloads if d.provides in missing]
    if fetchable:
        steps.append(
            f"python tools/prepare_data.py --root {root} --dataset {spec.config} --download")
        steps.extend(f"  fetches {d.file} from {d.source} ({d.verification})" for d in fetchable)
    if spec.manual:  # licence steps, dead links, or what to do if a URL has moved
        steps.extend(spec.manual.replace("ROOT", str(root)).strip().splitlines())
    return steps


def report(spec: Spec, root: Path) -> bool:
    """Print one data set's report; True when it is ready to use."""
    dataset_dir = root / spec.folder
    print(f"== {spec.name} (--dataset {spec.config}; DATASET.NAME {spec.name}) in {dataset_dir}")
    if dataset_dir.is_dir():
        present, missing, absent = check_entries(spec, dataset_dir)
    else:
        present, missing, absent = [], [f"{spec.folder}/ (the data set folder itself)",
                                        *spec.required], []
    for line in present:
        print(f"   present: {line}")
    for entry in missing:
        print(f"   missing: {entry}")
    for entry in absent:
        print(f"   absent:  {entry} (optional: in CoOp's layout, not read by the data set class)")
    problem = ""
    if spec.split_file and not missing:
        summary, problem = check_split(spec, dataset_dir)
        print(f"   checked: {summary}" if summary else f"   PROBLEM: {problem}")
    missing_entries = [m for m in missing if not m.endswith("(the data set folder itself)")]
    steps = next_step(spec, root, missing_entries, problem)
    print(f"   status:  {'ready' if not steps else 'NOT READY'}")
    for number, step in enumerate(steps):
        print(f"   {'next:   ' if number == 0 else '        '} {step}")
    return not steps


# ----------------------------------------------------------------------------------------------
# Fetching and laying out
# ----------------------------------------------------------------------------------------------


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, download: Download) -> None:
    """Raise if the size or the published checksum is known and does not match."""
    size = path.stat().st_size
    if download.size is not None and size != download.size:
        raise PrepareError(f"{path} is {size:,} bytes, expected {download.size:,}: incomplete or "
                           f"a different file. Delete it and run again.")
    if download.md5:
        actual = file_md5(path)
        if actual != download.md5:
            raise PrepareError(f"{path} has md5 {actual}, the published checksum is "
                               f"{download.md5}. Delete it and run again.")
        print(f"   verified {path.name}: md5 matches")
    else:
        print(f"   {path.name}: {download.verification}")


def fetch(download: Download, target: Path) -> None:
    """Download to ``target.part`` and rename once complete."""
    partial = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"   downloading {download.source} -> {target}")
    try:
        if download.gdrive_id:
            import gdown  # installed with Dassl

            if gdown.download(id=download.gdrive_id, output=str(partial), quiet=False) is None:
                raise PrepareError("gdown could not fetch it")
        else:
            urllib.request.urlretrieve(download.url, partial)
    except PrepareError:
        raise
    except Exception as error:  # network errors come in many types
        raise PrepareError(f"could not download {download.source} ({error}). Download it by hand "
                           f"and put it at {target}, then run again with --download.") from None
    os.replace(partial, target)


def _open_archive(archive: Path):
    if zipfile.is_zipfile(archive):
        return zipfile.ZipFile(archive)
    return tarfile.open(archive)


def _sources(tmp: Path, source: str) -> list[tuple[Path, str]]:
    """(path in the extracted tree, name under the destination) for one move."""
    if source.endswith("/*"):
        folder = tmp / source[:-2]
        if not folder.is_dir():
            return []
        return [(child, child.name) for child in sorted(folder.iterdir())]
    return [(tmp / source, "")] if (tmp / source).exists() else []


def extract(archive: Path, dataset_dir: Path, moves: Sequence[tuple[str, str]]) -> list[Path]:
    """Extract into a temporary folder beside the destination, then rename the parts into place.

    Renames within one file system are atomic, so a killed run leaves either nothing or whole
    folders (plus a hidden temporary folder that the next run removes). Existing destinations
    are kept, never overwritten.
    """
    dataset_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dataset_dir, prefix=".extract-"))
    placed = []
    try:
        print(f"   extracting {archive.name} ...")
        with _open_archive(archive) as opened:
            if isinstance(opened, tarfile.TarFile):
                opened.extractall(tmp, filter="data")  # refuses absolute paths and links out
            else:
                opened.extractall(tmp)
        plan = []
        for source, destination in moves:
            found = _sources(tmp, source)
            if not found:
                top = sorted(p.name for p in tmp.iterdir())
                raise PrepareError(f"{archive} has no {source} (its top level holds {top}); "
                                   "it is not the expected archive. Delete it and run again.")
            plan += [(path, dataset_dir / destination / name if name else dataset_dir / destination)
                     for path, name in found]
        for path, destination in plan:
            if destination.exists():
                print(f"   kept existing {destination}")
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, destination)
            placed.append(destination)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return placed


def _remove_stale_temporaries(dataset_dir: Path) -> None:
    # Left by a run that was killed mid-extraction; never part of the layout.
    for stale in dataset_dir.glob(".extract-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _copy_imagenet_classnames(spec: Spec, root: Path) -> None:
    source, target = root / "imagenet" / "classnames.txt", root / spec.folder / "classnames.txt"
    if "classnames.txt" in spec.required and spec.name != "ImageNet" and not target.exists():
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            print(f"   copied {source} -> {target}")


def prepare(spec: Spec, root: Path) -> None:
    """Fetch (or take from the data set folder) and lay out every missing public part."""
    dataset_dir = root / spec.folder
    if dataset_dir.is_dir():
        _remove_stale_temporaries(dataset_dir)
    _, missing, _ = check_entries(spec, dataset_dir)
    for download in spec.downloads:
        if download.provides not in missing:
            continue
        target = dataset_dir / download.file
        if target.exists():
            print(f"   using {target} already present")
        else:
            fetch(download, target)
        verify(target, download)
        if download.moves:
            extract(target, dataset_dir, download.moves)
    _copy_imagenet_classnames(spec, root)


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Check (and with --download fetch) CoOp-family data sets under a data root.",
        epilog="Exit status: 0 all checked data sets ready, 1 some not ready, 2 usage error.")
    parser.add_argument("--root", required=True, type=Path, help="the data root (DATASET.ROOT)")
    parser.add_argument("--dataset", default="all",
                        help="config name (eurosat) or class name (EuroSAT), or all (default)")
    parser.add_argument("--download", action="store_true",
                        help="fetch and lay out what is public and missing")
    args = parser.parse_args(argv)
    root = Path(os.path.abspath(os.path.expanduser(str(args.root))))
    specs = SPECS if args.dataset.lower() == "all" else (find_spec(args.dataset),)
    print(f"Data root: {root}\n")
    absent = []
    if args.dataset.lower() == "all" and not args.download:
        # A survey: a root usually holds the few data sets its user works on. Those without a
        # folder get one line, not fifteen "NOT READY" reports, and do not fail the check.
        absent = [spec for spec in specs if not (root / spec.folder).is_dir()]
        if len(absent) < len(specs):
            specs = tuple(spec for spec in specs if spec not in absent)
        else:
            absent = []
    ready = []
    for spec in specs:
        if args.download:
            try:
                prepare(spec, root)
            except PrepareError as error:
                print(f"   FAILED: {error}")
        ready.append(report(spec, root))
        print()
    done = [spec.name for spec, ok in zip(specs, ready) if ok]
    todo = [spec.name for spec, ok in zip(specs, ready) if not ok]
    print(f"Ready: {', '.join(done) or 'none'}")
    print(f"Not ready: {', '.join(todo) or 'none'}")
    if absent:
        print(f"Not present (no folder, not checked): {', '.join(s.name for s in absent)}")
        print(f"Check or fetch one: python tools/prepare_data.py --root {root} --dataset NAME "
              "[--download]")
    return 0 if all(ready) else 1


if __name__ == "__main__":
    sys.exit(main())
