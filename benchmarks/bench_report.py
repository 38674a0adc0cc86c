"""Time tools/report.py on a generated 90-run tree (2 data sets x 3 inits x 5 shots x 3 seeds).

The tree has the files a real run leaves, in their real formats (copied from what
``python tools/demo.py`` writes): result.json (format dapt_init.result/1, fingerprint_keys,
clip.weights, data), log.txt (config lines, the trainer's notes, 'epoch [e/E] batch [b/B]'
training lines, the '=> result' block, 'Elapsed:'), prompt_learner/prompts-epoch0.pt and
-epoch1.pt ({'vis_ctx', 'txt_ctx'}), the split file the log names
and the small CLIP the records name, so the t-SNE runs for real. No tensorboard events: the
loss curves come from log.txt, as for runs trained without tensorboard.

    python benchmarks/bench_report.py [--keep DIR]

``make_tree`` is also what tests/test_report.py builds its trees with.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent

FOLDER = {"EuroSAT": "eurosat", "OxfordPets": "oxford_pets"}
CLASSES = {"EuroSAT": 10, "OxfordPets": 37}
CONFIG = {1: ("vit_b16_ep50", 50), 2: ("vit_b16_ep100", 100), 4: ("vit_b16_ep100", 100),
          8: ("vit_b16", 200), 16: ("vit_b16", 200)}
BENCH_EPOCHS = 3  # training lines per run: the report's cost grows with them, not with 200
Accuracy = Callable[[str, str, int, int], float]


def default_accuracy(dataset: str, init: str, shots: int, seed: int) -> float:
    """A deterministic curve with seed noise; the numbers mean nothing."""
    base = {"EuroSAT": 40.0, "OxfordPets": 85.0}.get(dataset, 50.0)
    effect = {"random": 0.0, "same": -2.0, "diff": 1.5}.get(init, 0.0)
    noise = random.Random(f"{dataset}{init}{shots}{seed}").gauss(0, 1.5)
    return round(min(base + 8 * math.log2(shots) + effect + noise, 100.0), 2)


def write_split(data_root: Path, dataset: str) -> Path:
    folder = data_root / FOLDER.get(dataset, dataset.lower())
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{dataset} class {i}" for i in range(CLASSES.get(dataset, 10))]
    entries = [[f"c{i}/img_{k}.jpg", i, name] for i, name in enumerate(names) for k in range(2)]
    path = folder / f"split_zhou_{dataset}.json"
    path.write_text(json.dumps({"train": entries, "val": entries, "test": entries}))
    return path


def weights_record(path: Path) -> dict:
    data = path.read_bytes()
    return {"mtime_ns": path.stat().st_mtime_ns, "path": str(path),
            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def fingerprint_keys(dataset: str, init: str, shots: int, seed: int, epochs: int) -> dict:
    """The DAPT_Init keys of a real record (the real one has every toolbox key too)."""
    return {"DATASET.NAME": dataset, "DATASET.NUM_SHOTS": shots, "MODEL.BACKBONE.NAME": "ViT-B/16",
            "OPTIM.LR": 20.0, "OPTIM.MAX_EPOCH": epochs, "SEED": seed,
            "TRAINER.DAPT_INIT.INIT_METHOD": init, "TRAINER.DAPT_INIT.INIT_NOISE_SCALE": 0.1,
            "TRAINER.DAPT_INIT.PREC": "fp16", "TRAINER.DAPT_INIT.TEXT_ENCODER": "shared_prefix",
            "TRAINER.DAPT_INIT.TXT_NUM_TOKENS": 16, "TRAINER.DAPT_INIT.VIS_INIT_METHOD": "random",
            "TRAINER.DAPT_INIT.VIS_NUM_TOKENS": 16, "TRAINER.NAME": "DAPT_Init",
            "USE_CUDA": False}


def training_lines(epochs: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for epoch in range(1, epochs + 1):
        ce, intra, inter = 2.5 - 0.3 * epoch + rng.random() * 0.1, 0.002 * epoch, 0.65 / epoch
        loss = ce + 100 * intra + 10 * inter
        for batch in (1, 2):
            lines.append(
                f"epoch [{epoch}/{epochs}] batch [{batch}/2] time 0.270 (0.378) data 0.034 "
                f"(0.032) loss {loss:.4f} ({loss:.4f}) loss_ce {ce:.4f} ({ce:.4f}) loss_intra "
                f"{intra:.4f} ({intra:.4f}) loss_inter {inter:.4f} ({inter:.4f}) acc 12.5000 "
                f"(12.5000) lr 1.0000e-05 eta 0:00:01")
    return lines


def log_text(run_dir: Path, split: Path, weights: Path, init: str, epochs: int, seed: int,
             accuracy: float | None) -> str:
    lines = ["** Config **", "OPTIM:", f"  MAX_EPOCH: {epochs}", f"SEED: {seed}",
             "USE_CUDA: False", "Loading trainer: DAPT_Init", f"Reading split from {split}",
             "Note: running on the CPU, so TRAINER.DAPT_INIT.PREC fp16 is replaced by fp32 "
             "(faster there; TRAINER.DAPT_INIT.CPU_FP32 False runs it as asked)", f"Loading CLIP ({weights})",
             f"Building DAPT model (text prompt init: {init}, visual prompt init: random)",
             "Text encoder: shared_prefix", "** System info **", "PyTorch version: 2.14.1+cu130",
             "No checkpoint found, train from scratch"]
    lines += training_lines(epochs, seed)
    if accuracy is not None:
        lines += ["Finished training", "Finish training", "Deploy the last-epoch model",
                  "Evaluate on the *test* set", "=> result", "* total: 20",
                  f"* accuracy: {accuracy:.1f}%", f"* error: {100 - accuracy:.1f}%",
                  f"Result saved to {run_dir / 'result.json'}", "Elapsed: 0:00:42"]
    return "\n".join(lines) + "\n"


def write_prompts(run_dir: Path, init: str, seed: int, width: int = 64) -> None:
    import torch

    folder = run_dir / "prompt_learner"
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    vis = torch.randn(1, 16, width, generator=generator) * 0.02
    if init == "random":
        txt = torch.randn(16, width, generator=generator) * 0.02
    else:  # EOS + noise; 'same' repeats one draw for every token
        eos = torch.ones(width) * 0.01
        noise = torch.randn(1 if init == "same" else 16, width, generator=generator)
        txt = eos + 0.1 * noise / noise.norm(dim=-1, keepdim=True)
        txt = txt.expand(16, width).clone()
    torch.save({"vis_ctx": vis, "txt_ctx": txt}, folder / "prompts-epoch0.pt")
    torch.save({"vis_ctx": vis * 1.1, "txt_ctx": txt + 0.01 * torch.randn(16, width,
                                                                           generator=generator)},
               folder / "prompts-epoch1.pt")


def write_run(root: Path, dataset: str, init: str, shots: int, seed: int, accuracy: float | None,
              split: Path, weights: Path, weights_info: dict, epochs: int = BENCH_EPOCHS,
              prompts: bool = True) -> Path:
    config, _ = CONFIG.get(shots, ("vit_b16", 200))
    run_dir = (root / FOLDER.get(dataset, dataset.lower()) / "DAPT_Init" / init
               / f"{config}_{shots}shots" / f"seed{seed}")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "log.txt").write_text(log_text(run_dir, split, weights, init, epochs, seed,
                                              accuracy))
    (run_dir / ".lock").write_text("12345\n")
    if prompts:
        write_prompts(run_dir, init, seed)
    if accuracy is None:  # stopped mid-training: a checkpoint (only its name is read here)
        (run_dir / "prompt_learner").mkdir(exist_ok=True)
        (run_dir / "prompt_learner" / f"model.pth.tar-{epochs}").write_bytes(b"")
        (run_dir / "prompt_learner" / "checkpoint").write_text(f"model.pth.tar-{epochs}\n")
        return run_dir
    keys = fingerprint_keys(dataset, init, shots, seed, epochs)
    record = {
        "backbone": "ViT-B/16", "clip": {"loaded": {"embed_dim": 64}, "weights": weights_info},
        "data": {"counts": {"test": 20, "train": 20, "val": 20}, "files": {}, "images": ""},
        "dataset": dataset, "epoch": epochs,
        "fingerprint": hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest(),
        "fingerprint_keys": keys, "format": "dapt_init.result/1", "init_method": init,
        "metrics": {"accuracy": accuracy, "error_rate": round(100 - accuracy, 2),
                    "macro_f1": accuracy},
        "seed": seed, "shots": shots, "split": "test", "subsample_classes": "all",
        "trainer": "DAPT_Init", "vis_init_method": "random"}
    (run_dir / "result.json").write_text(json.dumps(record, indent=2, sort_keys=True))
    return run_dir


def make_tree(workdir: Path, datasets=("EuroSAT", "OxfordPets"), inits=("random", "same", "diff"),
              shots=(1, 2, 4, 8, 16), seeds=(1, 2, 3), accuracy: Accuracy = default_accuracy,
              prompts: bool = True) -> Path:
    """workdir/output (the tree), workdir/data (split files), workdir/small_clip.pt."""
    from tools.small_clip import save_small_clip

    weights = workdir / "small_clip.pt"
    if not weights.is_file():
        save_small_clip(str(weights))
    info = weights_record(weights)
    root = workdir / "output"
    for dataset in datasets:
        split = write_split(workdir / "data", dataset)
        for init in inits:
            for s in shots:
                for seed in seeds:
                    write_run(root, dataset, init, s, seed, accuracy(dataset, init, s, seed),
                              split, weights, info, prompts=prompts)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build the tree and report here and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        workdir = args.keep or Path(temporary)
        started = time.perf_counter()
        root = make_tree(workdir)
        print(f"tree: 90 runs in {time.perf_counter() - started:.1f} s under {root}")
        command = [sys.executable, str(REPO / "tools" / "report.py"), str(root),
                   "--out", str(workdir / "report")]
        started = time.perf_counter()
        status = subprocess.call(command)
        elapsed = time.perf_counter() - started
        print(f"report: {elapsed:.1f} s wall for 90 runs, t-SNE included (target: under 30 s), "
              f"exit status {status}")
        return status


if __name__ == "__main__":
    sys.exit(main())
