"""The study's analyses on the runs' own files: first-token statistics of the initial prompts,
t-SNE of the class text features after epoch 1, loss curves. Each returns what it could make
and, when it could not, one sentence saying why (a partial tree never fails the report)."""
from __future__ import annotations

import json
import multiprocessing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from study.run import normalized_dataset
from .figures import png_bytes, pyplot
from .runs import Run
from .study import Study

PROMPTS_FILE = "prompt_learner/prompts-epoch{epoch}.pt"
TSNE_PERPLEXITY = 30.0
TSNE_COLUMNS = 3  # panels per row: at the page's width each panel keeps ~400 px


@dataclass
class Analyses:
    dataset: str = ""
    shots: int = 0
    stats_rows: list[list[Any]] = field(default_factory=list)
    stats_note: str = ""
    tsne_png: bytes | None = None
    tsne_note: str = ""
    loss_png: bytes | None = None
    loss_note: str = ""
    other_losses: list[tuple[int, bytes | None, str]] = field(default_factory=list)  # other shots


def choose_cell(study: Study, wanted: str | None) -> tuple[str, int] | None:
    """``DATASET:SHOTS`` (dataset by display or folder name), else the first cell present."""
    present = [(row.dataset, shots) for row in study.rows for shots in study.shots
               if (row, shots) in study.cells]
    if not present:
        return None
    if wanted is None:
        return present[0]
    name, _, shots = wanted.partition(":")
    for dataset, s in present:
        if normalized_dataset(dataset) == normalized_dataset(name) \
                and str(s) == shots:
            return dataset, s
    return None


def cell_runs(study: Study, dataset: str, shots: int) -> dict[str, list[Run]]:
    """Init label -> the cell's finished runs, seeds ascending."""
    found: dict[str, list[Run]] = {}
    for row in study.rows:
        cell = study.cells.get((row, shots))
        if row.dataset == dataset and cell is not None:
            found[row.label] = [cell.runs[seed] for seed in sorted(cell.runs)]
    return found


def first_token_stats(groups: dict[str, list[Run]]) -> tuple[list[list[Any]], str]:
    import torch

    from analysis import init_stats

    rows, problems = [], []
    for label, runs in groups.items():
        for run in runs:
            path = run.path / PROMPTS_FILE.format(epoch=0)
            if not path.is_file():
                continue
            try:  # a truncated or key-less file costs that run only, with a note
                txt = torch.load(path, map_location="cpu", weights_only=True)["txt_ctx"].float()
                stats = init_stats.token_statistics(txt[0])
            except Exception as error:
                problems.append(f"{run.path.name} {path.name}: {type(error).__name__}: "
                                f"{str(error)[:200]}")
                continue
            rows.append([label, run.seed, *(f"{stats[k]:.4f}" for k in ("mean", "std", "min",
                                                                          "max"))])
    note = "" if rows else "no run of this cell kept its initial prompts (prompts-epoch0.pt)."
    if problems:
        note = (note + " " if note else "") + "Left out: " + "; ".join(problems)
    return rows, note


def class_names(split_file: str) -> list[str]:
    """Class names in label order from the CoOp split file the run read (its log names it)."""
    data = json.loads(Path(split_file).read_text())
    names: dict[int, str] = {}
    for _, label, name in data["train"]:
        names.setdefault(int(label), name)
    return [names[label] for label in sorted(names)]


def tsne(groups: dict[str, list[Run]]) -> tuple[bytes | None, str]:
    """One panel per init: the seed every init has (lowest), prompts after epoch 1, text
    features computed from the saved prompts with the CLIP weights the run recorded."""
    with_prompts = {label: [r for r in runs if (r.path / PROMPTS_FILE.format(epoch=1)).is_file()]
                    for label, runs in groups.items()}
    with_prompts = {label: runs for label, runs in with_prompts.items() if runs}
    if not with_prompts:
        return None, "skipped: no run of this cell kept its epoch-1 prompts (prompts-epoch1.pt)."
    common = set.intersection(*({r.seed for r in runs} for runs in with_prompts.values()))
    chosen = {label: next((r for r in runs if r.seed == min(common)), runs[0]) if common
              else runs[0] for label, runs in with_prompts.items()}
    first = next(iter(chosen.values()))
    weights = first.clip_weights.get("path", "")
    if not weights or not Path(weights).is_file():
        return None, (f"skipped: the CLIP weights the runs recorded ({weights or 'none'}) are not "
                      "on this machine.")
    if Path(weights).stat().st_size != first.clip_weights.get("size", -1):
        return None, f"skipped: {weights} is not the file the runs used (size differs)."
    if any(r.clip_weights.get("sha256") != first.clip_weights.get("sha256")
           for r in chosen.values()):
        return None, "skipped: the runs of this cell used different CLIP weights."
    if not first.split_file or not Path(first.split_file).is_file():
        return None, (f"skipped: the split file the run read ({first.split_file or 'not logged'}) "
                      "is not here, so the class names are unknown.")
    names = class_names(first.split_file)
    if len(names) < 3:
        return None, f"skipped: t-SNE needs at least 3 classes; the data set has {len(names)}."
    panels = text_feature_panels(chosen, weights, names)
    from analysis import tsne

    perplexity = min(TSNE_PERPLEXITY, len(names) - 1.0)  # what embed_2d uses (sklearn's bound)
    points = [tsne.embed_2d(panel.features, TSNE_PERPLEXITY, 0) for panel in panels]
    pyplot()
    figure = tsne.draw_panels(panels, points, names, True, columns=TSNE_COLUMNS)
    seeds = sorted({r.seed for r in chosen.values()})
    return png_bytes(figure), (f"exact t-SNE, perplexity {perplexity:g} ({len(names)} classes), "
                               f"PCA init, random state 0; seed {', '.join(map(str, seeds))}; "
                               "text features from the "
                                       f"saved prompts and {Path(weights).name}; class names "
                                       f"from {first.split_file}.")


def text_feature_panels(chosen: dict[str, Run], weights: str, names: Sequence[str]) -> list:
    import torch

    from analysis import tsne
    from trainers.dapt_init import checkpoint, clip_loading
    from trainers.dapt_init.model import DAPTModel, PromptSettings

    first = next(iter(chosen.values()))
    backbone = first.keys.get("MODEL.BACKBONE.NAME", "ViT-B/16")
    with torch.random.fork_rng(devices=[]):  # building prompts draws; leave no trace
        clip_model = clip_loading.load_clip(backbone, weights).float()
        prompts = {label: checkpoint.load_run_prompts(str(run.path), 1)
                   for label, run in chosen.items()}
        sample = next(iter(prompts.values()))
        settings = PromptSettings(
            vis_tokens=sample["vis_ctx"].shape[1], txt_tokens=sample["txt_ctx"].shape[0],
            text_encoder=str(first.keys.get("TRAINER.DAPT_INIT.TEXT_ENCODER", "shared_prefix")))
        model = DAPTModel(clip_model, list(names), settings).eval()
    panels = []
    for label, run in chosen.items():
        checkpoint.load_prompt_state(model.prompt_learner, prompts[label], str(run.path))
        with torch.no_grad():
            features = model.encode_text().float()
        panels.append(tsne.Panel(f"{label} seed{run.seed}", run.path, 1, features))
    return panels


def loss_curves(groups: dict[str, list[Run]]) -> tuple[bytes | None, str]:
    figure, note = loss_figure(groups)
    return (None if figure is None else png_bytes(figure)), note


def loss_figure(groups: dict[str, list[Run]]) -> tuple[Any, str]:
    """The loss-curve figure of one cell (None when no run logged training lines) and its
    note."""
    from analysis import losses

    curves, problems = [], []
    for runs in groups.values():
        for run in runs:
            try:
                curves.append(losses.read_run(run.path))
            except Exception as error:  # one run's unreadable log costs that run only
                problems.append(f"{run.path.name}: {error}")
    if not curves:
        return None, "skipped: no run of this cell logged training lines."
    pyplot()
    lines = losses.group_lines(curves)
    label_of = {run.path: label for label, runs in groups.items() for run in runs}
    for line in lines:  # the table's row labels, not folder names
        label = next((label_of[r.run_dir] for r in line.runs if r.run_dir in label_of), None)
        if label is not None:
            seeds = len(line.runs)
            line.label = f"{label} ({seeds} seed{'s' if seeds != 1 else ''})"
    figure = losses.draw_lines(lines)

    grads = any(name.startswith("grad_") for c in curves for name in c.values)
    sources_used = sorted({c.source for c in curves})
    note = (f"{len(curves)} runs, read from {', '.join(sources_used)}; gradient norms "
            + ("shown" if grads else "not logged (TRAINER.DAPT_INIT.LOG_GRAD_NORMS off)") + ".")
    if problems:
        note += " Left out: " + "; ".join(problems)
    return figure, note


def _tsne_child(groups: dict[str, list[Run]], connection: Any) -> None:
    try:
        connection.send(tsne(groups))
    except Exception as error:  # reported in the page, never a failed report
        connection.send((None, f"skipped: {type(error).__name__}: {error}"))
    finally:
        connection.close()


def tsne_in_background(groups: dict[str, list[Run]]) -> Callable[[], tuple[bytes | None, str]]:
    """Start the t-SNE (clip, torchvision and sklearn imports: most of a report's time) in a
    process of its own while this one draws the rest; returns the function that collects it.
    Spawned, not forked: a fork after torch has started its thread pool can deadlock."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_tsne_child, args=(groups, sender), daemon=True)
    child.start()
    sender.close()

    def collect() -> tuple[bytes | None, str]:
        try:
            result = receiver.recv()
        except EOFError:
            result = (None, f"skipped: the t-SNE process ended without a result "
                            f"(exit status {child.exitcode}).")
        child.join()
        return result

    return collect


def start_analyses(study: Study, wanted: str | None) -> Callable[[], Analyses]:
    """Start the analyses; the returned function finishes them (the caller draws its own
    figures in between, while the t-SNE runs in its process)."""
    cell = choose_cell(study, wanted)
    if cell is None:
        note = (f"no finished runs at {wanted}" if wanted else "no finished runs")
        empty = Analyses(stats_note=note, tsne_note=note, loss_note=note)
        return lambda: empty
    dataset, shots = cell
    groups = cell_runs(study, dataset, shots)
    collect_tsne = tsne_in_background(groups)

    def finish() -> Analyses:
        result = Analyses(dataset, shots)
        result.stats_rows, result.stats_note = first_token_stats(groups)
        result.loss_png, result.loss_note = loss_curves(groups)
        for other in study.shots:  # the loss curves of every other cell of the data set
            if other != shots and cell_runs(study, dataset, other):
                result.other_losses.append((other, *loss_curves(cell_runs(study, dataset,
                                                                          other))))
        result.tsne_png, result.tsne_note = collect_tsne()
        return result

    return finish
