"""benchmarks/bench_train_step.py: a smoke run at tiny sizes writes valid, consistent JSON."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_train_step  # noqa: E402
from tests.toolbox import requires_toolbox  # noqa: E402


def test_smoke_run_writes_valid_json_with_agreeing_paths(tmp_path, capsys):
    out = tmp_path / "bench" / "step.json"
    bench_train_step.main(["--classes", "2", "5", "--batch", "2", "--txt-tokens", "4",
                           "--repeats", "1", "--matmul-size", "128", "--threads", "1",
                           "--json", str(out)])
    record = json.loads(out.read_text())
    assert record["format"] == "dapt_init.bench_train_step/1"
    assert record["machine"]["device"] == "cpu" and record["precision"] == "fp32"
    assert [row["classes"] for row in record["rows"]] == [2, 5]
    assert record["matmul"]["flops_per_s"] > 0
    width, layers, context = 64, 2, 77  # tools/small_clip.py's text transformer
    for row in record["rows"]:
        # The two paths agree: same loss, same prompts after one SGD step.
        assert row["max_loss_diff"] == abs(row["loss_full"] - row["loss_shared_prefix"])
        assert row["max_loss_diff"] < 1e-5 and row["max_prompt_diff_rel"] < 1e-5
        assert row["max_step_diff_rel"] < 1e-4  # relative to lr * gradient: fp32 rounding
        assert row["speedup"] == row["full_s"] / row["shared_prefix_s"]
        assert row["memory_ratio"] == row["shared_prefix_peak_bytes"] / row["full_peak_bytes"]
        # The full path's forward alone runs every class's 77 tokens through the linear
        # layers: qkv, out, c_fc, c_proj = 12 width^2 multiply-adds (24 flops) per token.
        text_linear = row["classes"] * context * layers * 24 * width ** 2
        assert row["full_flops"] >= text_linear > 0
        assert 0 < row["shared_prefix_flops"] < row["full_flops"]
        assert 0 < row["shared_prefix_peak_bytes"] < row["full_peak_bytes"]
    table = capsys.readouterr().out
    assert "speed-up" in table and str(out) in table


def test_the_cpu_refuses_half_precision():
    with pytest.raises(SystemExit) as exit_info:
        bench_train_step.main(["--precision", "fp16", "--classes", "2"])
    assert exit_info.value.code == 2


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
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
