"""Synthetic run folders in the exact formats Dassl and DAPT_Init write.

Text markers (``Finish training``, ``=> result``, ``* accuracy: 91.1%``, the training lines, the
traceback) follow the Dassl toolbox; ``result.json`` follows the DAPT_Init record. Accuracies
are printed with one decimal as Dassl does, so callers should pass values with one decimal.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

TQDM_BAR = "100%|##########| 27/27 [00:10<00:00,  2.60it/s]"


def log_header(trainer: str = "DAPT_Init", dataset: str = "EuroSAT") -> str:
    return (
        "Setting fixed seed: 1\n"
        "***************\n** Arguments **\n***************\n"
        f"trainer: {trainer}\n"
        f"Loading trainer: {trainer}\n"
        f"Loading dataset: {dataset}\n"
        "Building transform_train\n"
        "Building transform_test\n"
    )


def result_block(accuracy: float | str, total: int = 2700, macro_f1: float | None = None) -> str:
    """The block Dassl's classification evaluator prints (accuracy may be a bad string)."""
    if isinstance(accuracy, str):
        correct_line, error_line = f"* correct: {total:,}\n", "* error: nan%\n"
        accuracy_text = accuracy
    else:
        correct = round(total * accuracy / 100)
        correct_line = f"* correct: {correct:,}\n"
        error_line = f"* error: {100 - accuracy:.1f}%\n"
        accuracy_text = f"{accuracy:.1f}%"
    f1 = macro_f1 if macro_f1 is not None else (accuracy if not isinstance(accuracy, str) else 0)
    return (
        "=> result\n"
        f"* total: {total:,}\n"
        + correct_line
        + f"* accuracy: {accuracy_text}\n"
        + error_line
        + f"* macro_f1: {f1:.1f}%\n"
    )


def training_lines(epochs: int, val_accuracies: Sequence[float] = ()) -> str:
    """Epoch lines; a *val* evaluation after each epoch when val_accuracies are given."""
    text = "Initialize tensorboard (log_dir=output/x/tensorboard)\n"
    for epoch in range(1, epochs + 1):
        text += (f"epoch [{epoch}/{epochs}] batch [1/1] time 0.123 (0.456) data 0.010 (0.020) "
                 f"loss 1.2345 (1.3456) loss_ce 1.1000 (1.2000) acc 50.0000 (40.0000) "
                 f"lr 2.0000e+01 eta 0:00:12\n")
        if epoch <= len(val_accuracies):
            text += "Evaluate on the *val* set\n" + result_block(val_accuracies[epoch - 1], 100)
    return text


def training_log(*test_accuracies: float | str, epochs: int = 2,
                 val_accuracies: Sequence[float] = (), macro_f1: float | None = None) -> str:
    """A finished training run; several test accuracies give several final result blocks."""
    text = log_header() + training_lines(epochs, val_accuracies)
    text += f"Checkpoint saved to output/x/prompt_learner/model.pth.tar-{epochs}\n"
    text += "Finish training\nDeploy the last-epoch model\n"
    for accuracy in test_accuracies:
        text += "Evaluate on the *test* set\n" + TQDM_BAR + "\r\n"
        text += result_block(accuracy, macro_f1=macro_f1)
    return text + "Elapsed: 0:10:11\n"


def eval_only_log(*test_accuracies: float) -> str:
    """An --eval-only run (e.g. base2new test_new): no training lines, no 'Finish training'."""
    text = log_header() + "Loading weights to prompt_learner from output/x/model.pth.tar-5\n"
    for accuracy in test_accuracies:
        text += "Evaluate on the *test* set\n" + TQDM_BAR + "\n" + result_block(accuracy)
    return text


def in_progress_log(val_accuracies: Sequence[float] = (55.0,)) -> str:
    """Training that has not finished: epoch lines and val results only."""
    return log_header() + training_lines(3, val_accuracies)


def crashed_log(exception_line: str = "RuntimeError: CUDA out of memory.") -> str:
    return (log_header() + training_lines(1)
            + "Traceback (most recent call last):\n"
            + '  File "train.py", line 238, in <module>\n'
            + "    main(args)\n"
            + "    ^^^^^^^^^^\n"
            + '  File "dassl/engine/trainer.py", line 393, in run_epoch\n'
            + "    loss_summary = self.forward_backward(batch)\n"
            + exception_line + "\n")


def write_log(run_dir: Path, text: str, name: str = "log.txt") -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / name
    path.write_text(text)
    return path


def write_result_json(run_dir: Path, accuracy: object, **fields: object) -> Path:
    """The record a finished DAPT_Init run writes beside its log."""
    record = {"format": "dapt_init.result/1", "trainer": "DAPT_Init", "dataset": "EuroSAT",
              "init_method": "diff", "shots": 4, "seed": 1, "subsample_classes": "all",
              "backbone": "ViT-B/16", "split": "test", "epoch": 100,
              "metrics": {"accuracy": accuracy, "error_rate": None, "macro_f1": None}}
    record.update(fields)
    if isinstance(accuracy, (int, float)):
        record["metrics"].update(error_rate=round(100 - accuracy, 2), macro_f1=accuracy)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "result.json"
    path.write_text(json.dumps(record))
    return path


def fewshot_run_dir(root: Path, dataset: str, init: str | None, shots: int, seed: int,
                    trainer: str = "DAPT_Init", extra: str = "") -> Path:
    """<dataset>/<trainer>/[<init>/]<cfg>_<shots>shots/[<extra>/]seed<k>, cfg as the scripts."""
    epochs = {1: 50, 2: 100, 4: 100, 8: 200, 16: 200}.get(shots, 100)
    folder = root / dataset / trainer
    if init is not None:
        folder = folder / init
    folder = folder / f"vit_b16_ep{epochs}_{shots}shots"
    if extra:
        folder = folder / extra
    return folder / f"seed{seed}"


def base2new_run_dir(root: Path, split_folder: str, dataset: str, init: str, seed: int,
                     shots: int = 16, trainer: str = "DAPT_Init") -> Path:
    return (root / "base2new" / split_folder / dataset / f"shots_{shots}" / trainer / init
            / "vit_b16_ep10" / f"seed{seed}")
