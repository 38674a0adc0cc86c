"""The first-GPU check: the CPU suite's precision checks on the GPU, plus what only a GPU shows.

One command, one GPU, planned for under 8 minutes on an H100/H200; prints one table (and writes
``OUT/gpu_check.json``). Nothing is downloaded: random-weight CLIPs, generated images.

  A. Real train.py runs on the tiny demo data with the small CLIP on the GPU, per precision
     (fp16, amp): full and shared_prefix, and shared_prefix killed after epoch 1 and run again.
     Checked: resume bit for bit (prompts, optimizer, GradScaler, and the CUDA generator's
     state, which the CPU suite cannot check), shared_prefix vs full within the CPU suite's
     bound (amp at a scale that skips no step, so both take the same steps), --eval-only
     equal to the trained metrics, and the fp16 run's distance to the same run on the CPU
     (other kernels: not bit-identical, measured).
  B. benchmarks/bench_train_step.py at the ViT-B/16 shape, 10 / 100 / 1000 classes, batch
     32, fp32 / fp16 / amp side by side: step time full vs shared_prefix, the CUDA
     allocator's peak (ImageNet's 1000 classes), and the FLOP rate as a fraction of a large
     matmul's in the same dtype (MFU against the measured peak; ``--peak-tflops`` adds MFU
     against a nominal peak).
  C. Two short train.py runs at 1000 generated classes (ImageNet layout, 1 shot, 2 epochs,
     fp16, ViT-B/16 shape), one per text encoder: wall time, peak GPU memory in use
     (nvidia-smi), the final prompts' difference.

    python benchmarks/gpu_check.py [--out DIR]
    python benchmarks/gpu_check.py --smoke --out /tmp/smoke   # tiny sizes on the CPU (fp16 on
                                                              # the CPU: checks the script)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent

Row = dict[str, Any]


def row(section: str, check: str, value: Any, expect: str, ok: bool | None) -> Row:
    return {"section": section, "check": check, "value": value, "expect": expect,
            "ok": "info" if ok is None else ("ok" if ok else "FAIL")}


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


# ----------------------------------------------------------------- A. train.py on the GPU
def section_a(out: Path, smoke: bool) -> list[Row]:
    from tests.integration import (output_dir_of, prepared_workdir, read_result,
                                   run_killed_after_epoch, run_train, train_command)
    from tests.test_precision import NO_SKIP_POWER, SHARED_PREFIX_BOUND, with_scale

    work = prepared_workdir(out / "a_work")
    rows: list[Row] = []

    def command(precision: str, encoder: str, name: str, *extra: str) -> list[str]:
        cmd = train_command(work, "random", "TRAINER.DAPT_INIT.PREC", precision,
                            "TRAINER.DAPT_INIT.CPU_FP32", "False",
                            "TRAINER.DAPT_INIT.TEXT_ENCODER", encoder, *extra,
                            output_dir=out / "a_runs" / name)
        cmd[cmd.index("USE_CUDA") + 1] = str(smoke is False)  # the demo's is False
        return cmd

    def must(done: subprocess.CompletedProcess, what: str) -> None:
        if done.returncode != 0:
            raise SystemExit(f"error: {what} failed:\n{done.stderr[-3000:]}")

    def final(cmd: list[str]) -> dict:
        return load(output_dir_of(cmd) / "prompt_learner/model.pth.tar-3")

    for precision in ("fp16",) if smoke else ("fp16", "amp"):
        runs = {e: command(precision, e, f"{precision}-{e}") for e in ("full", "shared_prefix")}
        for encoder, cmd in runs.items():
            must(run_train(cmd, timeout=600), f"{precision} {encoder}")
        resumed = command(precision, "shared_prefix", f"{precision}-resumed")
        killed = run_killed_after_epoch(resumed, 1)
        if killed.returncode != 9:
            raise SystemExit(f"error: the killed run ended {killed.returncode}: "
                             f"{killed.stderr[-2000:]}")
        must(run_train(resumed, timeout=600), f"{precision} resumed")
        mine, theirs = final(resumed), final(runs["shared_prefix"])
        keys = [k for k in ("state_dict", "optimizer", "scheduler", "scaler") if k in theirs]
        equal = all(same(mine.get(k), theirs[k]) for k in keys)
        rows.append(row("A", f"{precision}: kill -9 after epoch 1, rerun = uninterrupted "
                             f"({', '.join(keys)})", equal, "bit for bit", equal))
        cuda_state = mine["rng"].get("torch_cuda")
        cuda_same = same(cuda_state, theirs["rng"].get("torch_cuda"))
        rows.append(row("A", f"{precision}: CUDA generator state after the resume",
                        f"{len(cuda_state or [])} device state(s), equal: {cuda_same}",
                        "saved and equal" if not smoke else "none on the CPU",
                        cuda_same and (bool(cuda_state) or smoke)))
        trained = output_dir_of(runs["full"])
        evaluate = command(precision, "full", f"{precision}-eval")
        evaluate = evaluate[:2] + ["--eval-only", "--model-dir", str(trained),
                                   "--load-epoch", "3"] + evaluate[2:]
        must(run_train(evaluate, timeout=600), f"{precision} --eval-only")
        equal = (read_result(output_dir_of(evaluate))["metrics"]
                 == read_result(trained)["metrics"])
        rows.append(row("A", f"{precision}: --eval-only metrics = trained metrics", equal,
                        "equal", equal))
        pair = runs
        if precision == "amp":  # the same steps on both paths (see tests/test_precision.py)
            pair = {e: command("amp", e, f"amp-noskip-{e}") for e in runs}
            for encoder, cmd in pair.items():
                must(run_train(with_scale(cmd, NO_SKIP_POWER), timeout=600), f"amp {encoder}")
            for encoder, cmd in runs.items():
                scale = final(cmd)["scaler"]["scale"]
                rows.append(row("A", f"amp {encoder}: steps the GradScaler skipped (init 2^16)",
                                16 - int(math.log2(scale)), "finished anyway", None))
        fast, full = final(pair["shared_prefix"]), final(pair["full"])
        worst = max(relative_difference(fast["state_dict"][k], full["state_dict"][k])
                    for k in full["state_dict"])
        rows.append(row("A", f"{precision}: shared_prefix vs full, final prompts (rel.)",
                        f"{worst:.2e}", f"< {SHARED_PREFIX_BOUND[precision]:g}",
                        worst < SHARED_PREFIX_BOUND[precision]))
    if not smoke:  # the GPU's fp16 kernels against the CPU's, same code path
        cpu = train_command(work, "random", "TRAINER.DAPT_INIT.PREC", "fp16",
                            "TRAINER.DAPT_INIT.CPU_FP32", "False",
                            "TRAINER.DAPT_INIT.TEXT_ENCODER", "full",
                            output_dir=out / "a_runs" / "fp16-full-cpu")
        must(run_train(cpu, timeout=600), "fp16 full on the CPU")
        gpu = final(command("fp16", "full", "fp16-full"))["state_dict"]
        host = final(cpu)["state_dict"]
        worst = max(relative_difference(gpu[k], host[k]) for k in host)
        rows.append(row("A", "fp16 full: GPU vs CPU final prompts (rel.)", f"{worst:.2e}",
                        "small, not 0 (other kernels)", None))
    return rows


# ------------------------------------------------------------- B. the training-step bench
def section_b(out: Path, smoke: bool, peak_tflops: float) -> list[Row]:
    import bench_train_step  # beside this script (run as a script, its folder is on the path)

    args = (["--size", "small", "--device", "cpu", "--classes", "3", "5", "--batch", "2",
             "--repeats", "1", "--matmul-size", "128"] if smoke else
            ["--size", "vit-b16", "--device", "cuda", "--classes", "10", "100", "1000",
             "--batch", "32", "--repeats", "5"])
    record = bench_train_step.main(args + ["--json", str(out / "bench_train_step.json")])
    rows = []
    for r in record["rows"]:
        setting = f"{r['classes']} classes, {r['precision']}"
        rows.append(row("B", f"{setting}: step ms full / shared_prefix (speed-up)",
                        f"{r['full_s'] * 1e3:.1f} / {r['shared_prefix_s'] * 1e3:.1f} "
                        f"({r['speedup']:.2f}x)", "shared faster at many classes", None))
        if "full_vs_fp32" in r and r["precision"] != "fp32":
            rows.append(row("B", f"{setting}: step time fp32 / this (full, shared_prefix)",
                            f"{r['full_vs_fp32']:.2f}x, {r['shared_prefix_vs_fp32']:.2f}x",
                            "> 1 on a GPU", None))
        mfu = f"{r['full_peak_fraction']:.3f} / {r['shared_prefix_peak_fraction']:.3f}"
        if peak_tflops:
            nominal = [r[f"{e}_flops"] / r[f"{e}_s"] / (peak_tflops * 1e12)
                       for e in ("full", "shared_prefix")]
            mfu += f" (nominal: {nominal[0]:.3f} / {nominal[1]:.3f})"
        rows.append(row("B", f"{setting}: MFU vs measured matmul, full / shared", mfu, "", None))
        if "full_peak_total_bytes" in r:
            rows.append(row("B", f"{setting}: peak allocated GiB, full / shared_prefix",
                            f"{r['full_peak_total_bytes'] / 2 ** 30:.2f} / "
                            f"{r['shared_prefix_peak_total_bytes'] / 2 ** 30:.2f}", "", None))
        rows.append(row("B", f"{setting}: Δ prompts after one step (rel.)",
                        f"{r['max_prompt_diff_rel']:.1e}",
                        "< 1e-5" if r["precision"] == "fp32" else "< 5e-2",
                        0 < r["max_prompt_diff_rel"] < (1e-5 if r["precision"] == "fp32"
                                                        else 5e-2)))
    return rows


# ------------------------------------------------------- C. 1000 classes through train.py
def section_c(out: Path, smoke: bool) -> list[Row]:
    from benchmarks.bench_train_step import VIT_B16
    from tools.small_clip import save_small_clip

    classes, size = (4, 32) if smoke else (1000, 224)
    data = out / "c_data"
    if not (data / "imagenet/classnames.txt").is_file():
        subprocess.run([sys.executable, str(REPO / "benchmarks/many_classes_data.py"),
                        str(data), "--classes", str(classes), "--image-size", str(size)],
                       check=True)
    weights = out / "c_clip.pt"
    if not weights.is_file():
        save_small_clip(str(weights), 0, **({} if smoke else VIT_B16))
    config = "demo_small.yaml" if smoke else "vit_b16.yaml"
    rows, prompts = [], {}
    for encoder in ("shared_prefix", "full"):
        run_dir = out / f"c_train_{encoder}"
        shutil.rmtree(run_dir, ignore_errors=True)
        sampler = None
        if not smoke:  # the GPU's memory in use, every 200 ms
            memory_file = open(out / f"c_memory_{encoder}.txt", "w")
            sampler = subprocess.Popen(["nvidia-smi", "--query-gpu=memory.used",
                                        "--format=csv,noheader,nounits", "-lms", "200"],
                                       stdout=memory_file)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "train.py", "--root", str(data), "--seed", "1",
             "--trainer", "DAPT_Init", "--dataset-config-file", "configs/datasets/imagenet.yaml",
             "--config-file", f"configs/trainers/DAPT_Init/{config}", "--output-dir",
             str(run_dir), "TRAINER.DAPT_INIT.CLIP_WEIGHTS", str(weights),
             "TRAINER.DAPT_INIT.TEXT_ENCODER", encoder, "TRAINER.DAPT_INIT.PREC", "fp16",
             "TRAINER.DAPT_INIT.CPU_FP32", "False",
             "TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR", str(out / "c_prototypes"),
             "INPUT.SIZE", f"({size}, {size})", "DATASET.NUM_SHOTS", "1",
             "OPTIM.MAX_EPOCH", "2", "DATALOADER.NUM_WORKERS", "0" if smoke else "8",
             *(["USE_CUDA", "False"] if smoke else [])],
            cwd=REPO, capture_output=True, text=True, timeout=900)
        seconds = time.perf_counter() - start
        if sampler is not None:
            sampler.terminate()
            sampler.wait()
        if done.returncode != 0:
            raise SystemExit(f"error: the {classes}-class {encoder} run failed:\n"
                             f"{done.stderr[-3000:]}")
        used = ([int(v) for v in (out / f"c_memory_{encoder}.txt").read_text().split()]
                if not smoke else [])
        peak = f", peak {max(used)} MiB in use" if used else ""
        rows.append(row("C", f"{classes} classes fp16 train.py, {encoder}",
                        f"{seconds:.1f} s wall{peak}", "", None))
        prompts[encoder] = load(run_dir / "prompt_learner/model.pth.tar-2")["state_dict"]
    worst = max(relative_difference(prompts["shared_prefix"][k], prompts["full"][k])
                for k in prompts["full"])
    rows.append(row("C", f"{classes} classes fp16: shared_prefix vs full prompts (rel.)",
                    f"{worst:.2e}", "< 1e-2", worst < 1e-2))
    return rows


def table(rows: list[Row]) -> str:
    from tabulate import tabulate

    return tabulate([[r["section"], r["check"], r["value"], r["expect"], r["ok"]] for r in rows],
                    headers=["", "check", "measured", "expected", "verdict"],
                    tablefmt="github")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check_output"))
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes on the CPU (checks this script, measures nothing)")
    parser.add_argument("--sections", default="ABC", help="which sections to run (default ABC)")
    parser.add_argument("--peak-tflops", type=float, default=0.0,
                        help="the GPU's nominal dense fp16 TFLOP/s, for MFU against it")
    args = parser.parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        parser.error("no CUDA device: run it on a GPU machine, or --smoke on the CPU")
    os.chdir(REPO)
    os.environ.update(PYTHONWARNINGS="ignore", OUTDATED_IGNORE="1", PYTHONUNBUFFERED="1")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    machine = (torch.cuda.get_device_name(0) if torch.cuda.is_available() and not args.smoke
               else "CPU (smoke)")
    print(f"gpu_check on {machine}, torch {torch.__version__}, cuda {torch.version.cuda}")
    started, rows = time.perf_counter(), []
    for section in args.sections:
        begin = time.perf_counter()
        if section == "A":
            rows += section_a(out, args.smoke)
        elif section == "B":
            rows += section_b(out, args.smoke, args.peak_tflops)
        elif section == "C":
            rows += section_c(out, args.smoke)
        print(f"section {section}: {time.perf_counter() - begin:.0f} s", flush=True)
    total = time.perf_counter() - started
    rows.append(row("", "total wall time", f"{total:.0f} s", "< 480 s", total < 480 or None))
    print(table(rows))
    (out / "gpu_check.json").write_text(json.dumps({"machine": machine, "rows": rows},
                                                   indent=2) + "\n")
    return 1 if any(r["ok"] == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
