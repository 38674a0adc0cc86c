"""Run the real DAPT_Init pipeline on a CPU in under a minute, with nothing downloaded.

It generates a tiny data set in EuroSAT's layout and a small CLIP with random weights, then
runs ``train.py`` (config, dataset class, prototypes, training, test, log.txt, result.json)
for the chosen init method. THE ACCURACY IT PRINTS MEANS NOTHING: the CLIP is random.

    python tools/demo.py [--init diff] [--workdir <repository>/demo_output] [--prepare-only]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from tools.small_clip import save_small_clip  # noqa: E402
from tools.tiny_data import make_tiny_eurosat  # noqa: E402
from study import inputs  # noqa: E402
from study.run import StudyError  # noqa: E402
from trainers.dapt_init.config import INIT_METHODS  # noqa: E402


def demo_command(workdir: Path, init: str, seed: int, shots: int) -> list[str]:
    """The train.py invocation the demo runs (the same one the integration tests run)."""
    return [
        sys.executable, str(REPO / "train.py"),
        "--root", str(workdir / "data"),
        "--seed", str(seed),
        "--trainer", "DAPT_Init",
        "--dataset-config-file", str(REPO / "configs/datasets/eurosat.yaml"),
        "--config-file", str(REPO / "configs/trainers/DAPT_Init/demo_small.yaml"),
        "--output-dir", str(workdir / "output/eurosat/DAPT_Init" / init
                            / f"demo_small_{shots}shots/seed{seed}"),
        "TRAINER.DAPT_INIT.INIT_METHOD", init,
        "TRAINER.DAPT_INIT.CLIP_WEIGHTS", str(workdir / "small_clip.pt"),
        "DATASET.NUM_SHOTS", str(shots),
        "USE_CUDA", "False",
    ]


def prepare(workdir: Path) -> None:
    if not (workdir / "small_clip.pt").exists():
        save_small_clip(str(workdir / "small_clip.pt"))
    if not (workdir / "data/eurosat/split_zhou_EuroSAT.json").exists():
        make_tiny_eurosat(workdir / "data")


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", default="diff", choices=INIT_METHODS)
    # In the repository, wherever it is run from: TRIAL=1 in the scripts uses the same files.
    parser.add_argument("--workdir", default=REPO / "demo_output", type=Path)
    parser.add_argument("--seed", type=non_negative, default=1)
    parser.add_argument("--shots", type=positive, default=2)
    parser.add_argument("--prepare-only", action="store_true",
                        help="only make the small CLIP and the tiny data (TRIAL=1 uses them)")
    args = parser.parse_args()
    try:  # before anything is made: a file or an unwritable place is one line
        inputs.check_folder(str(args.workdir), "--workdir", writable=True)
    except StudyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    workdir = args.workdir.resolve()
    prepare(workdir)
    if args.prepare_only:
        print(f"Small CLIP and tiny EuroSAT ready in {workdir}")
        return 0
    command = demo_command(workdir, args.init, args.seed, args.shots)
    print("+ " + " ".join(command), flush=True)
    status = subprocess.call(command, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    run_dir = command[command.index("--output-dir") + 1]
    if status != 0:
        print(f"\nDemo failed (exit status {status}); the error is above.\n", file=sys.stderr)
        return status
    # Short lines and a blank line after: the closing words stay apart from what comes next
    # (docs/results.md runs the demo for several inits in a row).
    print("\nDemo finished: the real pipeline ran end to end; its log.txt and result.json are in\n"
          f"  {run_dir}\n"
          "The CLIP had random weights and the images are noise: the accuracy means nothing.\n"
          "Next, a trial sweep and its table: TRIAL=1 bash scripts/dapt_init/sweep.sh\n")
    return status


if __name__ == "__main__":
    from study.entry import run_main

    sys.exit(run_main(main))
