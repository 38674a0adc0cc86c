"""The study's prompt analyses: first-token statistics per init (2) and a t-SNE of class texts (3).

init-stats: mean / std / min / max of the first text prompt token (optionally all tokens, or
each token) as a training run starts, for each init method and seed, built through the
trainer's own code path (seed, load CLIP, PromptLearner: the order train.py draws in), and,
with --from-runs, of the tokens saved in run folders, so initial and trained tokens sit in
one table.

    python tools/analyze_prompts.py init-stats --seeds 1 2 3
    python tools/analyze_prompts.py init-stats --clip-weights ViT-B-16.pt \\
        --from-runs output/eurosat/DAPT_Init/*/vit_b16_ep50_1shots/seed1 --epoch 1

tsne: t-SNE of the normalised class text features of trained runs, one panel per init. It
takes train.py's data and config arguments (same files, root, seed and KEY VALUE overrides
as the training runs, overrides last) and writes the figure plus its coordinates (.csv).

    python tools/analyze_prompts.py tsne --root $DATA --seed 1 \\
        --dataset-config-file configs/datasets/eurosat.yaml \\
        --config-file configs/trainers/DAPT_Init/vit_b16_ep50.yaml \\
        --runs random=output/eurosat/DAPT_Init/random/vit_b16_ep50_1shots/seed1 \\
               same=output/eurosat/DAPT_Init/same/vit_b16_ep50_1shots/seed1 \\
               diff=output/eurosat/DAPT_Init/diff/vit_b16_ep50_1shots/seed1 \\
        --epoch 1 --out tsne_eurosat_1shot.png DATASET.NUM_SHOTS 1

User errors (a missing checkpoint, an unknown init, a checkpoint of another CLIP) end with one
``error: ...`` line and exit status 2, as train.py's do.
"""
from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import textwrap
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trainers.dapt_init.checkpoint import (load_prompt_state, load_run_prompts,  # noqa: E402
                                           prompt_epochs, run_prompts_path)
from trainers.dapt_init.config import INIT_METHODS  # noqa: E402
from trainers.dapt_init.errors import DaptInitError  # noqa: E402

STATISTICS = ("mean", "std", "min", "max")
TOKEN_CHOICES = ("first", "all", "each")
TABLE_FORMATS = ("github", "plain", "csv")
PROMPT_MODEL = "prompt_learner"  # the trainer's model name: <run>/prompt_learner/model.pth.tar-N
# Lines this project's train.py / trainer write to every run's log.txt.
LOGGED_INIT = re.compile(r"text prompt init: (\w+)")
LOGGED_SEED = re.compile(r"^SEED: (-?\d+)\s*$", re.MULTILINE)
CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$")


# ================================================================== shared: runs and checkpoints
def check_init_name(name: str, where: str) -> str:
    if name not in INIT_METHODS:
        raise DaptInitError(
            f"{where}: unknown init method {name!r}; valid values are {', '.join(INIT_METHODS)}."
        )
    return name


def saved_epochs(run_dir: Path) -> list[int]:
    """Epochs whose prompts a run holds (kept prompts files or checkpoints), ascending."""
    return prompt_epochs(str(run_dir))


def chosen_epoch(run_dir: Path, epoch: int | None) -> int:
    """``epoch`` (None: the last saved) if the run holds its prompts, else a clear error."""
    if not run_dir.is_dir():
        raise DaptInitError(f"run folder {run_dir} does not exist.")
    epochs = saved_epochs(run_dir)
    if not epochs:
        raise DaptInitError(
            f"run folder {run_dir} holds no checkpoint ({PROMPT_MODEL}/model.pth.tar-<epoch>) "
            f"and no kept prompts ({PROMPT_MODEL}/prompts-epoch<epoch>.pt). Give the folder "
            "train.py wrote with --output-dir."
        )
    chosen = epochs[-1] if epoch is None else epoch
    if chosen not in epochs:
        raise DaptInitError(
            f"run folder {run_dir} has no checkpoint for epoch {chosen}; saved epochs: "
            f"{', '.join(map(str, epochs))}. Pass one of them with --epoch (train.py keeps "
            "epochs 0 and 1, those in TRAINER.DAPT_INIT.KEEP_EPOCHS, the last epoch and every "
            "TRAIN.CHECKPOINT_FREQ-th)."
        )
    return chosen


def checkpoint_path(run_dir: Path, epoch: int | None) -> Path:
    """The file holding ``epoch``'s prompts (kept prompts first, else the checkpoint)."""
    return Path(run_prompts_path(str(run_dir), chosen_epoch(run_dir, epoch)))


def run_text_prompts(run_dir: Path, epoch: int) -> torch.Tensor:
    """The text prompt tokens of a run after ``epoch``, (K, width), in fp32."""
    return load_run_prompts(str(run_dir), epoch)["txt_ctx"].float()


@dataclass(frozen=True)
class RunInfo:
    """What a run's log.txt says about it; None where the log is missing or silent."""
    init: str | None
    seed: int | None


def logged_run_info(run_dir: Path) -> RunInfo:
    log = run_dir / "log.txt"
    text = log.read_text(errors="replace") if log.is_file() else ""
    init, seed = LOGGED_INIT.search(text), LOGGED_SEED.search(text)
    return RunInfo(init.group(1) if init else None, int(seed.group(1)) if seed else None)


# ======================================================================== init-stats: numbers
@dataclass(frozen=True)
class StatsRow:
    init: str
    seed: int | str
    epoch: int  # 0: the initial prompts
    tokens: str  # "first", "all" or a token's 1-based index
    stats: dict[str, float]
    source: str  # "initial" or the run folder

    def cells(self) -> list[Any]:
        return [self.init, self.seed, self.epoch, self.tokens,
                *(self.stats[name] for name in STATISTICS), self.source]


TABLE_HEADER = ["init", "seed", "epoch", "tokens", *STATISTICS, "source"]


def token_statistics(values: torch.Tensor) -> dict[str, float]:
    """Mean, sample std (torch's default, n - 1), min and max over every entry, in fp64."""
    flat = values.detach().double().flatten()
    return {"mean": flat.mean().item(), "std": flat.std().item(),
            "min": flat.min().item(), "max": flat.max().item()}


def token_selections(text_prompts: torch.Tensor,
                     choices: Sequence[str]) -> list[tuple[str, torch.Tensor]]:
    """(label, tokens) pairs: "first" (token 1), "all" (all K pooled), "each" ("1".."K")."""
    selected: list[tuple[str, torch.Tensor]] = []
    for choice in choices:
        if choice == "first":
            selected.append(("first", text_prompts[0]))
        elif choice == "all":
            selected.append(("all", text_prompts))
        else:
            selected.extend((str(k + 1), token) for k, token in enumerate(text_prompts))
    return selected


def stats_rows(text_prompts: torch.Tensor, choices: Sequence[str], init: str, seed: int | str,
               epoch: int, source: str) -> list[StatsRow]:
    return [StatsRow(init, seed, epoch, label, token_statistics(tokens), source)
            for label, tokens in token_selections(text_prompts, choices)]


@dataclass(frozen=True)
class InitSettings:
    """What the initial text prompts depend on besides the seed (must match the training run)."""
    backbone: str = "ViT-B/16"
    clip_weights: str = ""
    txt_tokens: int = 16
    vis_tokens: int = 16  # visual prompts are drawn first, so their count shifts the text draw
    noise_scale: float = 0.1
    prec: str = "fp32"


def initial_text_prompts(init: str, seed: int, settings: InitSettings) -> torch.Tensor:
    """The text prompts a training run with this seed starts from, (K, width), in fp32.

    Same order as train.py: seed torch, build CLIP (which draws from torch's
    generator while initialising), then the PromptLearner (visual, then text prompts). The
    caller's random state is left as it was.
    """
    from trainers.dapt_init.clip_loading import load_clip
    from trainers.dapt_init.model import PromptLearner, PromptSettings

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the torch part of dassl's set_random_seed
        clip_model = load_clip(settings.backbone, settings.clip_weights)
        if settings.prec == "fp32":  # as the trainer does for fp32 / amp and on the CPU
            clip_model.float()
        prompt_settings = PromptSettings(vis_tokens=settings.vis_tokens,
                                         txt_tokens=settings.txt_tokens, init_method=init,
                                         noise_scale=settings.noise_scale)
        learner = PromptLearner(clip_model, ["placeholder"], prompt_settings)
    return learner.txt_ctx.detach().float()


def initial_rows(inits: Sequence[str], seeds: Sequence[int], settings: InitSettings,
                 choices: Sequence[str]) -> tuple[list[StatsRow], int]:
    """Rows for every init x seed, and the CLIP's token width (to check checkpoints against)."""
    rows: list[StatsRow] = []
    width = 0
    for init in inits:
        for seed in seeds:
            # A fresh CLIP per draw: building it is part of the random stream a run consumes.
            prompts = initial_text_prompts(init, seed, settings)
            width = prompts.shape[-1]
            rows += stats_rows(prompts, choices, init, seed, 0, "initial")
    return rows, width


def check_width(prompts: torch.Tensor, clip_width: int, path: Path, clip_source: str) -> None:
    if prompts.shape[-1] != clip_width:
        raise DaptInitError(
            f"checkpoint {path} has txt_ctx of shape {tuple(prompts.shape)}, but the CLIP "
            f"({clip_source}) has token width {clip_width}, i.e. text prompts of shape "
            f"(K, {clip_width}). The run used another CLIP: pass its weights with "
            "--clip-weights / --backbone, or --no-initial to skip the initial rows."
        )


def run_rows(run_dirs: Sequence[Path], epoch: int | None, choices: Sequence[str],
             clip_width: int | None, clip_source: str) -> list[StatsRow]:
    """Rows from saved checkpoints, labelled with the init and seed their log.txt names."""
    epochs = [chosen_epoch(run_dir, epoch) for run_dir in run_dirs]  # all errors before work
    rows: list[StatsRow] = []
    for run_dir, saved_epoch in zip(run_dirs, epochs):
        prompts = run_text_prompts(run_dir, saved_epoch)
        if clip_width is not None:
            check_width(prompts, clip_width, checkpoint_path(run_dir, saved_epoch), clip_source)
        info = logged_run_info(run_dir)
        rows += stats_rows(prompts, choices, info.init or "?",
                           "?" if info.seed is None else info.seed, saved_epoch, str(run_dir))
    return rows


def sort_rows(rows: Sequence[StatsRow]) -> list[StatsRow]:
    """init in the study's order, then seed, epoch (initial first), source; tokens kept in order."""
    def key(row: StatsRow) -> tuple:
        rank = INIT_METHODS.index(row.init) if row.init in INIT_METHODS else len(INIT_METHODS)
        seed = (0, row.seed) if isinstance(row.seed, int) else (1, 0)  # "?" (unknown) last
        return rank, seed, row.epoch, row.source
    return sorted(rows, key=key)  # stable: a row's token selections keep their order


def render_table(rows: Sequence[StatsRow], table_format: str) -> str:
    if table_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(TABLE_HEADER)
        writer.writerows(row.cells() for row in rows)  # full precision: for re-analysis
        return buffer.getvalue().rstrip("\n")
    from tabulate import tabulate

    return tabulate([row.cells() for row in rows], headers=TABLE_HEADER,
                    tablefmt=table_format, floatfmt=".5f")


def init_stats(args: argparse.Namespace) -> int:
    if args.no_initial and not args.from_runs:
        raise DaptInitError("--no-initial leaves nothing to show: add --from-runs RUN_DIR ...")
    settings = InitSettings(args.backbone, args.clip_weights, args.txt_tokens, args.vis_tokens,
                            args.noise_scale, args.prec)
    clip_source = args.clip_weights or args.backbone
    rows: list[StatsRow] = []
    clip_width: int | None = None
    if not args.no_initial:
        rows, clip_width = initial_rows(args.inits, args.seeds, settings, args.tokens)
    rows += run_rows(args.from_runs or [], args.epoch, args.tokens, clip_width, clip_source)
    print(render_table(sort_rows(rows), args.format))
    return 0


# ============================================================================== tsne: figure
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


def train_argv(args: argparse.Namespace, overrides: Sequence[str]) -> list[str]:
    """train.py's command line for the data and config of the runs (DAPT_Init trainer)."""
    argv = ["--trainer", "DAPT_Init", "--seed", str(args.seed)]
    for flag, value in [("--root", args.root), ("--backbone", args.backbone),
                        ("--dataset-config-file", args.dataset_config_file),
                        ("--config-file", args.config_file)]:
        if value:
            argv += [flag, value]
    # No loader is ever iterated (text features need no images); workers would only make torch
    # warn about more worker processes than CPUs. Last, so no override brings them back.
    return argv + list(overrides) + ["DATALOADER.NUM_WORKERS", "0"]


def build_trainer_from(argv: Sequence[str]) -> Any:
    """The DAPT_Init trainer, built by Dassl from train.py's own config machinery."""
    import train
    from trainers.dapt_init.config import validate_config

    try:
        cfg = train.setup_cfg(train.parse_args(list(argv)))
    except (KeyError, ValueError, AssertionError, OSError) as error:  # yacs / a missing file
        raise DaptInitError(f"bad config file or override ({error}).") from error
    validate_config(cfg, training=False)

    from dassl.engine import build_trainer
    from dassl.utils import set_random_seed

    import datasets  # noqa: F401  (registers the dataset classes)
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
                label_points: bool) -> Any:
    """The t-SNE figure: one panel per init, each class a point (and its name)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 5), squeeze=False)
    for ax, panel, xy in zip(axes[0], panels, points):
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


def build_trainer_or_report(argv: Sequence[str]) -> Any:
    from datasets.fewshot import DatasetError  # imports the toolbox: tsne only

    try:
        return build_trainer_from(argv)
    except DatasetError as error:  # e.g. a wrong --root: reported as train.py reports it
        raise DaptInitError(str(error)) from error


def tsne(args: argparse.Namespace) -> int:
    items, overrides = split_runs_and_overrides(args.runs)
    runs = parse_runs(items)
    if not runs:
        raise DaptInitError("--runs needs at least one INIT=RUN_DIR.")
    epochs = checked_epochs(runs, args.epoch)

    trainer = build_trainer_or_report(train_argv(args, overrides + list(args.opts)))
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


# ======================================================================================== CLI
def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def add_clip_options(parser: argparse.ArgumentParser, title: str, note: str = "") -> None:
    """The CLIP to load and the prompt settings initial prompts are built with (``note``
    prefixes the prompt settings' help, e.g. the option they apply to)."""
    clip = parser.add_argument_group(title)
    clip.add_argument("--backbone", default="ViT-B/16",
                      help="CLIP backbone clip downloads (MODEL.BACKBONE.NAME); default ViT-B/16")
    clip.add_argument("--clip-weights", default="", metavar="FILE",
                      help="local CLIP file (JIT archive or state dict), as "
                           "TRAINER.DAPT_INIT.CLIP_WEIGHTS; overrides --backbone")
    clip.add_argument("--txt-tokens", type=positive_int, default=16,
                      help=f"{note}TRAINER.DAPT_INIT.TXT_NUM_TOKENS (default 16)")
    clip.add_argument("--vis-tokens", type=positive_int, default=16,
                      help=f"{note}TRAINER.DAPT_INIT.VIS_NUM_TOKENS (default 16); visual prompts "
                           "are drawn before the text prompts, so this changes them too")
    clip.add_argument("--noise-scale", type=non_negative_float, default=0.1,
                      help=f"{note}TRAINER.DAPT_INIT.INIT_NOISE_SCALE for same/diff (default 0.1)")
    clip.add_argument("--prec", choices=("fp32", "fp16"), default="fp32",
                      help=f"{note}dtype the prompts are stored in: fp32 (CPU, PREC fp32/amp; "
                           "default) or fp16 (a GPU run with PREC fp16)")


def add_init_stats_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "init-stats", help="statistics of the text prompt tokens per init (analysis 2)",
        description="Mean, std (sample, n-1), min and max of the text prompt tokens a training "
                    "run starts from, per init method and seed (epoch 0 rows), and of the "
                    "tokens saved in run folders (--from-runs).")
    add_clip_options(parser, "CLIP and prompt settings (must match the training runs)")
    parser.add_argument("--inits", nargs="+", choices=INIT_METHODS, default=list(INIT_METHODS),
                        help="init methods (default: all three)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1],
                        help="training seeds (train.py --seed); default 1")
    parser.add_argument("--tokens", nargs="+", choices=TOKEN_CHOICES, default=["first"],
                        help="rows per prompt: first (the report's first token; default), all "
                             "(all K tokens pooled), each (one row per token)")
    parser.add_argument("--from-runs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="also rows from saved prompts: run folders (train.py --output-dir); "
                             "init and seed are read from their log.txt")
    parser.add_argument("--epoch", type=non_negative_int,
                        help="with --from-runs: the epoch whose prompts to read (0: initial; "
                             "default: the last saved)")
    parser.add_argument("--no-initial", action="store_true",
                        help="only the --from-runs rows (no CLIP is loaded)")
    parser.add_argument("--format", choices=TABLE_FORMATS, default="github",
                        help="table format (default github; csv keeps full precision)")
    parser.set_defaults(handler=init_stats)


def add_tsne_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tsne", help="t-SNE of the class text features of trained runs (analysis 3)",
        description="t-SNE of the normalised class text features (one point per class) with "
                    "the prompts of each run, one panel per init, each embedded on its own. "
                    "Give the data and config arguments of the training runs, as for "
                    "train.py, with the KEY VALUE overrides last. Writes OUT and OUT's .csv "
                    "(init, class, x, y).")
    data = parser.add_argument_group("data and config, as given to train.py")
    data.add_argument("--root", default="", help="data root (train.py --root)")
    data.add_argument("--seed", type=int, default=1,
                      help="the runs' seed (picks the few-shot split file; default 1)")
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
    parser.add_argument("--perplexity", type=float, default=30.0,
                        help="t-SNE perplexity (default 30), clamped to classes - 1")
    parser.add_argument("--random-state", type=int, default=0,
                        help="t-SNE random state (default 0), fixed so figures repeat")
    parser.add_argument("--no-labels", action="store_true",
                        help="do not write class names next to the points (many classes)")
    parser.add_argument("opts", nargs=argparse.REMAINDER,
                        help="config overrides as KEY VALUE pairs, last (as for train.py)")
    parser.set_defaults(handler=tsne)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_init_stats_parser(subparsers)
    add_tsne_parser(subparsers)
    from tools.loss_curves import add_losses_parser  # here: they import this module
    from tools.nearest_words import add_nearest_words_parser

    add_losses_parser(subparsers)
    add_nearest_words_parser(subparsers)
    return parser.parse_args(argv)


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors become one ``error:`` line and exit status 2, no traceback."""
    args = parse_args(argv)
    try:
        return args.handler(args)
    except DaptInitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run())
