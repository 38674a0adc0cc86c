"""A run's result record, ``result.json`` beside ``log.txt``: its metrics and what it is.

The record names the run's spec (dataset, inits, shots, seed, backbone), its fingerprint and
CLIP weights (what the finished rule in ``runstate.py`` compares) and the data it read. Only
finite metrics are written: a number that means nothing must not end as a finished run.
"""
from __future__ import annotations

import math
import os
import time
from typing import Any

from .atomic import json_dump_atomically, unused_path
from .errors import DaptInitError
from .runstate import RESULT_FILE, RunIdentity, data_record

RESULT_FORMAT = "dapt_init.result/1"


def result_record(cfg: Any, identity: RunIdentity, split: str, metrics: dict[str, float],
                  epoch: int, clip_loaded: dict[str, Any] | None, dataset: Any,
                  spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record of a final evaluation on ``split`` of the prompts after ``epoch``;
    ``spec``: the study's name for the run (``train.py --spec``), not part of the fingerprint."""
    record = {
        "format": RESULT_FORMAT,
        "trainer": cfg.TRAINER.NAME,
        "dataset": cfg.DATASET.NAME,
        "init_method": cfg.TRAINER.DAPT_INIT.INIT_METHOD,
        "vis_init_method": cfg.TRAINER.DAPT_INIT.VIS_INIT_METHOD,
        "shots": cfg.DATASET.NUM_SHOTS,
        "seed": cfg.SEED,
        "subsample_classes": cfg.DATASET.get("SUBSAMPLE_CLASSES", "all"),
        "backbone": cfg.MODEL.BACKBONE.NAME,
        "split": split,
        "epoch": epoch,
        "metrics": {name: float(value) for name, value in metrics.items()},
        "clip": {"weights": identity.weights, "loaded": clip_loaded},
        "fingerprint": identity.fingerprint,
        "fingerprint_keys": identity.keys,
        # The data read, by relative path: the finished rule checks it under the next
        # command's DATASET.ROOT (a root with other data is not this run's).
        "data": data_record(cfg.DATASET.ROOT, dataset),
    }
    if spec:
        record["spec"] = dict(spec)
    return record


def write_result(output_dir: str, cfg: Any, identity: RunIdentity, split: str,
                 metrics: dict[str, float], epoch: int, clip_loaded: dict[str, Any] | None,
                 dataset: Any, spec: dict[str, Any] | None = None) -> str:
    """Write the record as ``output_dir/result.json`` atomically and return its path; an
    earlier result is kept as ``result.json-<its time>``, as the toolbox keeps earlier logs.
    Refused (nothing written) when a metric is not finite."""
    bad = {name: value for name, value in metrics.items() if not math.isfinite(value)}
    if bad:
        raise DaptInitError(f"the {split} metrics are not finite ({bad}), so no result.json "
                            "is written. Train again in a new --output-dir.")
    record = result_record(cfg, identity, split, metrics, epoch, clip_loaded, dataset, spec)
    path = os.path.join(output_dir, RESULT_FILE)
    if os.path.exists(path):
        stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.localtime(os.path.getmtime(path)))
        os.replace(path, unused_path(f"{path}-{stamp}"))
    json_dump_atomically(record, path)
    return path
