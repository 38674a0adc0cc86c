"""benchmarks/bench_train_step.py: a smoke run at tiny sizes writes valid, consistent JSON."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_train_step  # noqa: E402
from tests.support.toolbox import requires_toolbox  # noqa: E402


# Largest relative difference of the prompts after one step, full vs shared_prefix: fp32
# rounding, and half-precision rounding under fp16 / amp (both paths round differently).
PROMPT_BOUND = {"fp32": 1e-5, "fp16": 5e-3, "amp": 5e-3}


def test_smoke_run_writes_valid_json_with_agreeing_paths(tmp_path, capsys):
    out = tmp_path / "bench" / "step.json"
    bench_train_step.main(["--classes", "2", "5", "--batch", "2", "--txt-tokens", "4",
                           "--repeats", "1", "--matmul-size", "128", "--threads", "1",
                           "--json", str(out)])
    record = json.loads(out.read_text())
    assert record["format"] == "dapt_init.bench_train_step/2"
    assert record["machine"]["device"] == "cpu"
    assert record["precisions"] == ["fp32", "fp16", "amp"]  # every precision on the CPU
    assert [(row["classes"], row["precision"]) for row in record["rows"]] == [
        (2, "fp32"), (2, "fp16"), (2, "amp"), (5, "fp32"), (5, "fp16"), (5, "amp")]
    assert all(rate > 0 for rate in record["matmul"]["flops_per_s"].values())
    width, layers, context = 64, 2, 77  # tools/small_clip.py's text transformer
    by_key = {(row["classes"], row["precision"]): row for row in record["rows"]}
    for row in record["rows"]:
        precision = row["precision"]
        # The two paths agree: same loss, same prompts after one SGD step, up to rounding.
        assert row["max_loss_diff"] == abs(row["loss_full"] - row["loss_shared_prefix"])
        assert math.isfinite(row["loss_full"]) and math.isfinite(row["loss_shared_prefix"])
        assert 0 < row["max_prompt_diff_rel"] < PROMPT_BOUND[precision]
        assert math.isfinite(row["max_step_diff_rel"])  # the compared step was taken
        if precision == "fp32":
            assert row["max_loss_diff"] < 1e-5
            assert row["max_step_diff_rel"] < 1e-4  # relative to lr * gradient
        else:
            assert row["max_loss_diff"] < 2e-2
        assert row["speedup"] == row["full_s"] / row["shared_prefix_s"]
        assert row["memory_ratio"] == row["shared_prefix_peak_bytes"] / row["full_peak_bytes"]
        fp32 = by_key[row["classes"], "fp32"]
        for encoder in ("full", "shared_prefix"):  # each ratio from the same process's rows
            assert row[f"{encoder}_vs_fp32"] == fp32[f"{encoder}_s"] / row[f"{encoder}_s"]
        # The full path's forward alone runs every class's 77 tokens through the linear
        # layers: qkv, out, c_fc, c_proj = 12 width^2 multiply-adds (24 flops) per token.
        text_linear = row["classes"] * context * layers * 24 * width ** 2
        assert row["full_flops"] >= text_linear > 0
        assert 0 < row["shared_prefix_flops"] < row["full_flops"]
        assert 0 < row["shared_prefix_peak_bytes"] < row["full_peak_bytes"]
    # Half precision saves half-size activations: fp16 holds less for the backward than fp32.
    for classes in (2, 5):
        assert by_key[classes, "fp16"]["full_peak_bytes"] < by_key[classes, "fp32"]["full_peak_bytes"]
    table = capsys.readouterr().out
    assert "speed-up" in table and "fp32/this" in table and str(out) in table


def test_one_precision_alone_has_no_ratio_columns(tmp_path):
    record = bench_train_step.main(["--precision", "fp16", "--classes", "2", "--batch", "2",
                                    "--txt-tokens", "4", "--repeats", "1",
                                    "--matmul-size", "64", "--threads", "1"])
    [row] = record["rows"]
    assert row["precision"] == "fp16" and "full_vs_fp32" not in row


@requires_toolbox
def test_generated_many_class_data_reads_as_imagenet(tmp_path):
    """The GPU check's 1000-class data, at 3 classes: the real ImageNet reader accepts it."""
    from benchmarks.many_classes_data import make_imagenet_layout
    from datasets.imagenet import ImageNet

    dataset_dir = make_imagenet_layout(tmp_path, 3, train_per_class=2, image_size=8)
    splits = ImageNet.__new__(ImageNet).read_splits(dataset_dir)
    names = bench_train_step.class_names(3)
    assert sorted({(r.label, r.classname) for r in splits.train}) == list(enumerate(names))
    assert len(splits.train) == 6 and len(splits.test) == 3


def test_gpu_check_script_parses():
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
def test_gpu_check_refuses_to_run_without_a_gpu_unless_smoke(capsys):
    import gpu_check

    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main([])
    assert exit_info.value.code == 2
    assert "no CUDA device" in capsys.readouterr().err
