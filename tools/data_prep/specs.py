"""The CoOp-family data sets as prepare_data.py knows them: layout, split file, public
downloads (URL or Google Drive id, published checksum and size) and the manual steps where a
licence or a dead link needs a person. Must agree with the classes in datasets/."""
from __future__ import annotations

from dataclasses import dataclass, field

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

