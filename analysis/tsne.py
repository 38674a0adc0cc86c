"""tsne: t-SNE of the normalised class text features of trained runs, one panel per init. The
data and config are the first run's own (result.json's keys and CLIP weights, the data root
from log.txt); train.py's data and config arguments, given, override them. It writes the
figure plus its coordinates (.csv).

    python tools/analyze_prompts.py tsne \\
        --runs random=output/eurosat/DAPT_Init/random/vit_b16_ep50_1shots/seed1 \\
               same=output/eurosat/DAPT_Init/same/vit_b16_ep50_1shots/seed1 \\
               diff=output/eurosat/DAPT_Init/diff/vit_b16_ep50_1shots/seed1 \\
        --epoch 1 --out tsne_eurosat_1shot.png
"""
from __future__ import annotations

import argparse
import csv
import re
import sys
import textwrap
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from analysis.common import (check_init_name, checkpoint_path, chosen_epoch,
                                          logged_run_info, non_negative_int,
                                          positive_float)
from trainers.dapt_init.checkpoint import load_prompt_state, load_run_prompts
from trainers.dapt_init.errors import DaptInitError

# A KEY VALUE override's key (what ends the greedy --runs list).
CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$")


@dataclass(frozen=True)
class Panel:
    init: str
    run_dir: Path
    epoch: int
    features: torch.Tensor  # (C, D), L2-normalised class text features


def parse_runs(items: Sequence[str]) -> dict[str, Path]:
    """``INIT=RUN_DIR`` items -> {init: run folder}, in the order given."""
    runs: dict[str, Path] = {}
    for item in items:
        init, separator, folder = item.partition("=")
        if not separator or not folder:
            raise DaptInitError(f"--runs item {item!r} is not INIT=RUN_DIR (e.g. diff=output/...).")
        check_init_name(init, f"--runs {item}")
        if init in runs:
            raise DaptInitError(f"--runs names {init!r} twice; give one run folder per init.")
        runs[init] = Path(folder)
    return runs


def split_runs_and_overrides(tokens: Sequence[str]) -> tuple[list[str], list[str]]:
    """``--runs`` is greedy, so it also swallows the KEY VALUE overrides that follow it.

    Its items all contain '='; the first item without one starts the overrides, and must look
    like a config key (so a run folder given without ``INIT=`` is reported, not merged).
    """
    count = next((i for i, token in enumerate(tokens) if "=" not in token), len(tokens))
    runs, overrides = list(tokens[:count]), list(tokens[count:])
    if overrides and not CONFIG_KEY.match(overrides[0]):
        raise DaptInitError(
            f"--runs item {overrides[0]!r} is not INIT=RUN_DIR (e.g. diff=output/...), nor a "
            "config key starting KEY VALUE overrides."
        )
    return runs, overrides


def check_logged_init(init: str, run_dir: Path) -> None:
    """A swapped folder would mislabel a panel silently: compare with the run's own log."""
    logged = logged_run_info(run_dir).init
    if logged is not None and logged != init:
        raise DaptInitError(
            f"--runs labels {run_dir} as {init!r}, but its log.txt says it was trained with "
            f"init {logged!r}. Check which folder belongs to which init."
        )


def train_command(args: argparse.Namespace, overrides: Sequence[str]) -> argparse.Namespace:
    """The train.py arguments given to tsne as a train.py command; those not given are empty,
    so they override nothing."""
    from study.config import parse_args

    command = parse_args([])
    command.root, command.backbone = args.root, args.backbone
    command.dataset_config_file, command.config_file = args.dataset_config_file, args.config_file
    command.seed = -1 if args.seed is None else args.seed
    command.trainer = "DAPT_Init"
    # No loader is ever iterated (text features need no images); workers would only make torch
    # warn about more worker processes than CPUs. Last, so no override brings them back.
    command.opts = list(overrides) + ["DATALOADER.NUM_WORKERS", "0"]
    return command


def tsne_cfg(run_dir: Path, command: argparse.Namespace) -> Any:
    """The config of ``run_dir``'s run (its result.json, else its logged command), with the
    arguments given to tsne on top."""
    from study.config import apply_command, apply_record, base_cfg, read_run_record

    cfg = base_cfg()
    record = read_run_record(str(run_dir))
    if record.empty:
        # Prompt files without their run's record: the arguments say it all, as train.py's do.
        command.seed = 1 if command.seed < 0 else command.seed
    else:
        apply_record(cfg, record)
    apply_command(cfg, command)
    cfg.freeze()
    return cfg


def check_same_classes(runs: dict[str, Path]) -> None:
    """Panels side by side must show the same classes: runs of one data set and class subset."""
    from study.config import read_run_record

    seen: dict[str, tuple[Path, Any]] = {}
    for run_dir in runs.values():
        keys = read_run_record(str(run_dir)).keys
        for key in ("DATASET.NAME", "DATASET.SUBSAMPLE_CLASSES"):
            if key not in keys:
                continue
            first = seen.setdefault(key, (run_dir, keys[key]))
            if first[1] != keys[key]:
                raise DaptInitError(
                    f"{run_dir} was trained with {key} {keys[key]!r}, but {first[0]} with "
                    f"{first[1]!r}; give runs of one data set and class subset."
                )


def build_trainer_for(run_dir: Path, command: argparse.Namespace) -> Any:
    """The DAPT_Init trainer, built by Dassl from the shared config machinery."""
    from trainers.dapt_init.config import validate_config

    try:
        cfg = tsne_cfg(run_dir, command)
    except (KeyError, ValueError, AssertionError, OSError) as error:  # yacs / a missing file
        raise DaptInitError(f"bad config file or override ({error}).") from error
    validate_config(cfg, training=False)

    from dassl.engine import build_trainer
    from dassl.utils import set_random_seed

    import datasets.classes  # noqa: F401  (registers the dataset classes)
    import trainers.dapt_init.trainer  # noqa: F401  (registers DAPT_Init)

    if cfg.SEED >= 0:
        # As train.py: a few-shot split not cached yet is drawn from the seeded global random
        # and cached in the data folder, where later training runs will reuse it.
        set_random_seed(cfg.SEED)
    with redirect_stdout(sys.stderr):  # the toolbox's build log is not this tool's output
        return build_trainer(cfg)


def class_text_features(trainer: Any, run_dir: Path, epoch: int) -> torch.Tensor:
    """(C, D) normalised text features with the prompts saved in ``run_dir`` at ``epoch``."""
    prompts = load_run_prompts(str(run_dir), epoch)
    load_prompt_state(trainer.model.prompt_learner, prompts, str(checkpoint_path(run_dir, epoch)))
    trainer.set_model_mode("eval")
    with torch.no_grad():
        return trainer.model.encode_text().float().cpu()


def mean_pairwise_cosine(features: torch.Tensor) -> float:
    """Mean cosine similarity over class pairs m != n (t-SNE hides the overall spread)."""
    n = features.shape[0]
    similarity = features @ features.t()
    return ((similarity.sum() - similarity.diagonal().sum()) / (n * (n - 1))).item()


def embed_2d(features: torch.Tensor, perplexity: float, random_state: int):
    """t-SNE to 2-D; perplexity clamped below the number of classes, as sklearn requires."""
    from sklearn.manifold import TSNE

    n = features.shape[0]
    # Exact gradients: at most ~1000 classes here, where Barnes-Hut is slower, not faster.
    tsne = TSNE(n_components=2, perplexity=min(perplexity, n - 1.0), init="pca",
                method="exact", random_state=random_state)
    return tsne.fit_transform(features.double().numpy())


LABEL_WIDTH = 16  # characters per line of a class name in the t-SNE panels


def plot_panels(panels: Sequence[Panel], points: Sequence[Any], classnames: Sequence[str],
                out: Path, label_points: bool) -> None:
    import matplotlib.pyplot as plt

    fig = draw_panels(panels, points, classnames, label_points)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)


def draw_panels(panels: Sequence[Panel], points: Sequence[Any], classnames: Sequence[str],
                label_points: bool, columns: int | None = None) -> Any:
    """The t-SNE figure: one panel per init, each class a point (and its name); ``columns``
    panels per row (default: all in one row)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(columns or len(panels), len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 5 * rows), squeeze=False)
    for spare in axes.flat[len(panels):]:
        spare.set_visible(False)
    for ax, panel, xy in zip(axes.flat, panels, points):
        ax.scatter(xy[:, 0], xy[:, 1], c=range(len(classnames)), cmap="tab20", s=36)
        if label_points:
            # Each name grows towards the panel's centre and long names wrap, so no name runs
            # past the axes (EuroSAT's "Herbaceous Vegetation Land" did).
            x_mid, y_mid = (xy.min(axis=0) + xy.max(axis=0)) / 2
            for name, (x, y) in zip(classnames, xy):
                right, top = x > x_mid, y > y_mid
                ax.annotate(textwrap.fill(name, LABEL_WIDTH), (x, y), fontsize=7,
                            xytext=(-3 if right else 3, -3 if top else 3),
                            textcoords="offset points", ha="right" if right else "left",
                            va="top" if top else "bottom")
        ax.set_title(f"{panel.init} (epoch {panel.epoch})\nmean pairwise cos "
                     f"{mean_pairwise_cosine(panel.features):.3f}")
        ax.set_xticks([])  # t-SNE axes have no units
        ax.set_yticks([])
        ax.margins(0.2)  # room for the class names
    fig.tight_layout()
    return fig


def write_coordinates(panels: Sequence[Panel], points: Sequence[Any],
                      classnames: Sequence[str], path: Path) -> None:
    """One row per class per init, so the figure can be redrawn without the toolbox."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["init", "class", "x", "y", "epoch", "run_dir"])
        for panel, xy in zip(panels, points):
            for name, (x, y) in zip(classnames, xy):
                writer.writerow([panel.init, name, f"{x:.6g}", f"{y:.6g}", panel.epoch,
                                 panel.run_dir])


def checked_epochs(runs: dict[str, Path], epoch: int | None) -> dict[str, int]:
    """The checkpoint epoch of every run, each folder checked before the toolbox loads data."""
    epochs = {}
    for init, run_dir in runs.items():
        epochs[init] = chosen_epoch(run_dir, epoch)
        check_logged_init(init, run_dir)
    return epochs


def build_trainer_or_report(run_dir: Path, command: argparse.Namespace) -> Any:
    from datasets.fewshot import DatasetError  # imports the toolbox: tsne only

    try:
        return build_trainer_for(run_dir, command)
    except DatasetError as error:  # e.g. a wrong --root: reported as train.py reports it
        raise DaptInitError(str(error)) from error


def tsne(args: argparse.Namespace) -> int:
    items, overrides = split_runs_and_overrides(args.runs)
    runs = parse_runs(items)
    if not runs:
        raise DaptInitError("--runs needs at least one INIT=RUN_DIR.")
    epochs = checked_epochs(runs, args.epoch)
    check_same_classes(runs)

    # The first run's own record gives the data and config; the arguments given win.
    command = train_command(args, overrides + list(args.opts))
    trainer = build_trainer_or_report(next(iter(runs.values())), command)
    from trainers.dapt_init.runstate import check_run_weights

    for run_dir in runs.values():
        check_run_weights(str(run_dir), trainer.cfg.MODEL.BACKBONE.NAME,
                          trainer.cfg.TRAINER.DAPT_INIT.CLIP_WEIGHTS)
    classnames = list(trainer.dm.dataset.classnames)
    if len(classnames) < 3:
        raise DaptInitError(f"t-SNE needs at least 3 classes; the data set has "
                            f"{len(classnames)}.")
    panels = [Panel(init, run_dir, epochs[init],
                    class_text_features(trainer, run_dir, epochs[init]))
              for init, run_dir in runs.items()]
    points = [embed_2d(panel.features, args.perplexity, args.random_state) for panel in panels]

    plot_panels(panels, points, classnames, args.out, not args.no_labels)
    csv_path = args.out.with_suffix(".csv")
    write_coordinates(panels, points, classnames, csv_path)
    for panel in panels:
        print(f"{panel.init}: {len(classnames)} classes, mean pairwise cosine "
              f"{mean_pairwise_cosine(panel.features):.4f} ({panel.run_dir}, epoch {panel.epoch})")
    print(f"Wrote {args.out} and {csv_path}")
    return 0


def add_tsne_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tsne", help="t-SNE of the class text features of trained runs (analysis 3)",
        description="t-SNE of the normalised class text features (one point per class) with "
                    "the prompts of each run, one panel per init, each embedded on its own. "
                    "The data and config are the first run's own (its result.json and "
                    "log.txt); data and config arguments, as for train.py with the KEY VALUE "
                    "overrides last, override them. Writes OUT and OUT's .csv "
                    "(init, class, x, y).")
    data = parser.add_argument_group("data and config, as given to train.py (default: the "
                                     "first run's own)")
    data.add_argument("--root", default="", help="data root (train.py --root)")
    data.add_argument("--seed", type=int, default=None,
                      help="the runs' seed (picks the few-shot split file; default: the run's, "
                           "else 1)")
    data.add_argument("--dataset-config-file", default="",
                      help="dataset config, e.g. configs/datasets/eurosat.yaml")
    data.add_argument("--config-file", default="",
                      help="trainer config, e.g. configs/trainers/DAPT_Init/vit_b16_ep50.yaml")
    data.add_argument("--backbone", default="", help="CLIP backbone name (train.py --backbone)")
    parser.add_argument("--runs", nargs="+", required=True, metavar="INIT=RUN_DIR",
                        help="one run folder per init, e.g. random=out/random/.../seed1 "
                             "diff=out/diff/.../seed1; a panel each, in this order")
    parser.add_argument("--epoch", type=non_negative_int,
                        help="epoch whose prompts to load (0: initial; default: each run's last "
                             "saved; the report uses 1)")
    parser.add_argument("--out", type=Path, default=Path("tsne.png"),
                        help="figure file (default tsne.png); coordinates go beside it as .csv")
    parser.add_argument("--perplexity", type=positive_float, default=30.0,
                        help="t-SNE perplexity (default 30), clamped to classes - 1")
    parser.add_argument("--random-state", type=int, default=0,
                        help="t-SNE random state (default 0), fixed so figures repeat")
    parser.add_argument("--no-labels", action="store_true",
                        help="do not write class names next to the points (many classes)")
    parser.add_argument("opts", nargs=argparse.REMAINDER,
                        help="config overrides as KEY VALUE pairs, last (as for train.py)")
    parser.set_defaults(handler=tsne)
