"""Row labels of the study tables: which runs share a row (init, visual init, TAG, and where
needed trainer, config or sweep setting) and in which order the rows come."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Iterable

from trainers.dapt_init.config import INIT_METHODS

from study.run import DEFAULT_VIS_INIT, RunKey, natural_key
from study.run_read import grid_text

# Rows of the initialisations DAPT_Init knows come first, in its order (random, same, diff).
INIT_ORDER = INIT_METHODS


@dataclass(frozen=True)
class Method:
    """A table row group: its label and where it sorts (random, same, diff, then the rest).

    ``init_label`` is the "init" column; ``vis`` (only when the study holds several visual
    inits) and ``tag`` are row keys of their own; ``label`` joins them (legend, lookups).
    ``init`` and ``vis_init`` are the raw values, for matching reference rows.
    """

    label: str
    sort_key: tuple
    init_label: str = ""
    vis: str | None = None
    tag: str = ""
    init: str | None = None
    vis_init: str | None = None


def init_rank(name: str | None) -> int:
    return INIT_ORDER.index(name) if name in INIT_ORDER else len(INIT_ORDER)


def effective_vis_init(key: RunKey) -> str | None:
    """A run with an init level but no recorded visual init used the default (random)."""
    return key.vis_init or (DEFAULT_VIS_INIT if key.init is not None else None)


def label_methods(keys: Iterable[RunKey]) -> dict[RunKey, Method]:
    """Row label of every run (keyed by its RunKey with seed 0); see 'Path leniency' in
    parse_test_res.py's docstring."""
    variants = {replace(key, seed=0, split=None) for key in keys}
    trainers_with_init = {key.trainer for key in variants if key.init is not None}
    prefix_trainer = len(trainers_with_init) > 1
    show_vis = len({effective_vis_init(key) for key in variants} - {None}) > 1
    base_labels = {variant: base_method_label(variant, prefix_trainer) for variant in variants}
    settings_per_cell = defaultdict(set)
    for variant, label in base_labels.items():
        settings_per_cell[cell_of(variant, label)].add((variant.config, variant.grid))
    methods = {}
    for variant, label in base_labels.items():
        settings = settings_per_cell[cell_of(variant, label)]
        mixed = len({config for config, _ in settings}) > 1
        # Runs of one cell recorded with different sweep settings are never pooled either.
        mixed_grid = len({grid for _, grid in settings}) > 1
        grid = grid_text(variant.grid) or "no grid"
        init_label = (label + (f" [{variant.config}]" if mixed else "")
                      + (f" [{grid}]" if mixed_grid else ""))
        vis = effective_vis_init(variant) if show_vis else None
        full_label = ", ".join([init_label] + ([f"vis {vis}"] if vis else [])
                               + ([variant.tag] if variant.tag else []))
        group = variant.trainer if (prefix_trainer or variant.init is None) else ""
        sort_key = (group, init_rank(variant.init), variant.init or "",
                    init_rank(vis), vis or "", tuple(natural_key(variant.tag)), variant.extra,
                    variant.config if mixed else "", grid if mixed_grid else "")
        methods[variant] = Method(full_label, sort_key, init_label, vis, variant.tag,
                                  variant.init, effective_vis_init(variant))
    return methods


def cell_of(variant: RunKey, label: str) -> tuple:
    return (variant.kind, variant.dataset, label, variant.shots, variant.vis_init, variant.tag)


def base_method_label(key: RunKey, prefix_trainer: bool) -> str:
    parts = [key.trainer] if (key.init is None or prefix_trainer) else []
    parts += [part for part in (key.init, key.extra) if part]
    return "/".join(parts)


def method_of(key: RunKey, methods: dict[RunKey, Method]) -> Method:
    return methods[replace(key, seed=0, split=None)]
