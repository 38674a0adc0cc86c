"""Training-step cost of the two text encoders (full vs shared_prefix) per precision, side by side.

For each class count and precision (fp32, fp16, amp; on the CPU too) it builds two DAPT models
on one random-weight CLIP (no download) with the same prompts, and measures one training step
(forward, DAPT's loss, backward, SGD step) with ``TRAINER.DAPT_INIT.TEXT_ENCODER full`` and
``shared_prefix``: time, speed-up, peak memory, the largest differences in loss and in the
prompts after one SGD step, the achieved FLOP rate as a fraction of a large matmul's rate (in
the precision's dtype) measured in the same run, and each precision's step time against
fp32's. All steps of one class count are timed in turn, so every ratio compares runs under the
same machine load.

Peak memory: on a GPU the CUDA allocator's peak during the step, above what was allocated
before it (and, in the JSON and below the table, the peak including the model); on a CPU
the bytes of the tensors autograd saves for the backward pass (parameters excluded), the
memory a step holds at its peak beyond the model.

    python benchmarks/bench_train_step.py                                  # small CLIP, CPU
    python benchmarks/bench_train_step.py --size vit-b16 --device cuda --precision fp16 fp32
    python benchmarks/bench_train_step.py --classes 3 5 --batch 2 --repeats 1 --json out.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.nn import functional as F


from tools.small_clip import small_clip_state_dict  # noqa: E402
from trainers.dapt_init.clip_model import build_clip_model  # noqa: E402
from trainers.dapt_init.losses import dapt_loss  # noqa: E402
from trainers.dapt_init.model import AMP_DTYPE, DAPTModel, PromptSettings  # noqa: E402

VIT_B16 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
               vision_patch_size=16, transformer_width=512, transformer_heads=8,
               transformer_layers=12)
ENCODERS = ("full", "shared_prefix")
PRECISIONS = ("fp32", "fp16", "amp")
# Class names of 1 to 4 words, so the classes' EOS positions differ as in real label sets.
WORDS = ["red", "annual crop", "sea", "lake", "great white", "shark", "industrial", "river",
         "herbaceous vegetation", "land", "highway", "road", "pasture", "forest"]


def class_names(count: int) -> list[str]:
    return [" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(1 + i % 4)) + f" {i}"
            for i in range(count)]


def build_clip(size: str, precision: str, device: torch.device) -> torch.nn.Module:
    overrides = VIT_B16 if size == "vit-b16" else {}
    clip_model = build_clip_model(small_clip_state_dict(0, **overrides))  # fp16, as shipped
    if precision != "fp16":
        clip_model.float()
    return clip_model.to(device)


def build_model(clip_model: torch.nn.Module, names: list[str], encoder: str,
                txt_tokens: int, device: torch.device) -> DAPTModel:
    torch.manual_seed(0)  # both encoders start from the same prompts
    model = DAPTModel(clip_model, names, PromptSettings(txt_tokens=txt_tokens,
                                                        text_encoder=encoder))
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("prompt_learner."))
    return model.to(device).train()


class Step:
    """One training step of ``model`` on a fixed batch: as the trainer takes it."""

    def __init__(self, model: DAPTModel, batch: dict[str, torch.Tensor], precision: str,
                 lr: float):
        self.model, self.batch, self.precision = model, batch, precision
        self.params = [p for p in model.prompt_learner.parameters() if p.requires_grad]
        self.optim = torch.optim.SGD(self.params, lr=lr)
        device = batch["images"].device.type
        # A small initial scale: at the default 2**16 the first steps overflow and are
        # skipped (the scaler's search), and the compared step must be one that is taken.
        self.scaler = (torch.amp.GradScaler(device, init_scale=2.0 ** 8)
                       if precision == "amp" else None)
        self.autocast = ((lambda: torch.autocast(device, dtype=AMP_DTYPE))
                         if precision == "amp" else _null)

    def loss(self) -> torch.Tensor:
        with self.autocast():
            out = self.model.features(self.batch["images"])
            return dapt_loss(out.logits, self.batch["labels"], out.image_features,
                             out.text_features, self.batch["prototypes"], 0.1, 0.1, 2.0).total

    def __call__(self) -> float:
        self.optim.zero_grad()
        loss = self.loss()
        if self.scaler is None:
            loss.backward()
            self.optim.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optim)
            self.scaler.update()
        return loss.item()


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(run: Callable[[], Any], device: torch.device, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        run()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_bytes(step: Step, device: torch.device) -> tuple[int, int | None]:
    """(step peak, peak in total). CUDA: the allocator's peak above what was allocated before
    the step, and its peak including the model; CPU: bytes autograd saves (parameters
    excluded), and no total."""
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        step()
        sync(device)
        peak = torch.cuda.max_memory_allocated(device)
        return peak - start, peak
    owned = {t.untyped_storage().data_ptr()
             for t in list(step.model.parameters()) + list(step.model.buffers())}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in owned:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    return sum(saved.values()), None


def _cpu_flash_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count
    return sdpa_flop_count(query, key, value)


def _cpu_flash_backward_flops(grad_out, query, key, value, *args, out_shape=None,
                              **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_backward_flop_count
    return sdpa_backward_flop_count(grad_out, query, key, value)


def step_flops(step: Step) -> int:
    """Floating-point operations of one step (matmuls and attention, torch's flop counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    mapping = {}  # the CPU attention kernel is missing from torch's own table
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        mapping[aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_flash_flops
        mapping[aten._scaled_dot_product_flash_attention_for_cpu_backward] = \
            _cpu_flash_backward_flops
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter:
        step()
    return counter.get_total_flops()


def matmul_rate(size: int, dtype: torch.dtype, device: torch.device, repeats: int) -> float:
    """FLOP/s of one large square matmul: the machine's practical peak in this run."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    return 2 * size ** 3 / seconds_per_call(lambda: a @ b, device, repeats)


def make_batch(model: DAPTModel, classes: int, batch: int,
               device: torch.device) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    resolution = model.image_encoder.visual.input_resolution
    dim = model.image_encoder.visual.output_dim
    return {
        "images": torch.randn(batch, 3, resolution, resolution, generator=generator).to(device),
        "labels": torch.randint(classes, (batch,), generator=generator).to(device),
        "prototypes": F.normalize(torch.randn(classes, dim, generator=generator), dim=-1
                                  ).to(device),
    }


def timed_once(step: Step, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - start


def compare(clips: dict[str, torch.nn.Module], classes: int, args: argparse.Namespace,
            device: torch.device, peak_rates: dict[str, float]) -> list[dict[str, Any]]:
    """One row per precision for ``classes`` classes; every step timed in turn."""
    names = class_names(classes)
    rows: dict[str, dict[str, Any]] = {}
    steps: dict[tuple[str, str], Step] = {}
    for precision, clip_model in clips.items():
        row = rows[precision] = {"classes": classes, "precision": precision}
        losses, updates, start = {}, {}, {}
        for encoder in ENCODERS:
            model = build_model(clip_model, names, encoder, args.txt_tokens, device)
            steps[precision, encoder] = step = Step(
                model, make_batch(model, classes, args.batch, device), precision, args.lr)
            start[encoder] = [p.detach().float().clone() for p in step.params]
            losses[encoder] = step()  # the compared step: both from the same prompts
            updates[encoder] = [p.detach().float().clone() for p in step.params]
        if not all(torch.equal(a, b) for a, b in zip(start["full"], start["shared_prefix"])):
            raise RuntimeError("the two models did not start from the same prompts")
        row["loss_full"], row["loss_shared_prefix"] = losses["full"], losses["shared_prefix"]
        row["max_loss_diff"] = abs(losses["full"] - losses["shared_prefix"])
        # Prompts after one step: the largest difference relative to the prompts' largest
        # value, and (stricter, independent of the LR) relative to the step itself.
        pairs = list(zip(updates["full"], updates["shared_prefix"], start["full"]))
        diff = max((a - b).abs().max().item() for a, b, _ in pairs)
        size = max(a.abs().max().item() for a, _, _ in pairs)
        moved = max((a - p).abs().max().item() for a, _, p in pairs)
        row["max_prompt_diff"] = diff
        row["max_prompt_diff_rel"] = diff / size
        row["max_step_diff_rel"] = diff / moved if moved > 0 else math.inf
    # Alternate every path so all see the same machine load; the median resists noise.
    times: dict[tuple[str, str], list[float]] = {key: [] for key in steps}
    for _ in range(args.repeats):
        for key, step in steps.items():
            times[key].append(timed_once(step, device))
    for (precision, encoder), step in steps.items():
        row = rows[precision]
        row[f"{encoder}_s"] = statistics.median(times[precision, encoder])
        row[f"{encoder}_peak_bytes"], total = peak_bytes(step, device)
        if total is not None:
            row[f"{encoder}_peak_total_bytes"] = total
        row[f"{encoder}_flops"] = flops = step_flops(step)
        row[f"{encoder}_peak_fraction"] = flops / row[f"{encoder}_s"] / peak_rates[precision]
    for row in rows.values():
        row["speedup"] = row["full_s"] / row["shared_prefix_s"]
        row["memory_ratio"] = row["shared_prefix_peak_bytes"] / max(row["full_peak_bytes"], 1)
        if "fp32" in rows:  # > 1: this precision's step is faster than fp32's
            for encoder in ENCODERS:
                row[f"{encoder}_vs_fp32"] = rows["fp32"][f"{encoder}_s"] / row[f"{encoder}_s"]
    return list(rows.values())


def machine(device: torch.device) -> dict[str, Any]:
    info = {"torch": torch.__version__, "device": str(device), "python": platform.python_version(),
            "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "cpu": platform.processor() or platform.machine()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _ratio(row: dict[str, Any], encoder: str) -> str:
    ratio = row.get(f"{encoder}_vs_fp32")
    return "" if ratio is None else f"{ratio:.2f}x"


def table(rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    mib = 1024 ** 2
    body = [[r["classes"], r["precision"], f"{r['speedup']:.2f}x", f"{r['memory_ratio']:.3f}",
             f"{r['full_s'] * 1000:.1f}", f"{r['shared_prefix_s'] * 1000:.1f}",
             f"{r['full_peak_bytes'] / mib:.1f}", f"{r['shared_prefix_peak_bytes'] / mib:.1f}",
             f"{r['max_loss_diff']:.1e}", f"{r['max_prompt_diff_rel']:.1e}",
             f"{r['max_step_diff_rel']:.1e}",
             f"{r['full_peak_fraction']:.3f}", f"{r['shared_prefix_peak_fraction']:.3f}",
             _ratio(r, "full"), _ratio(r, "shared_prefix")]
            for r in rows]
    headers = ["classes", "precision", "speed-up", "memory shared/full", "full ms", "shared ms",
               "full MiB", "shared MiB", "|Δ loss|", "Δ prompts (rel.)", "Δ step (rel.)",
               "full FLOP/peak", "shared FLOP/peak", "full fp32/this", "shared fp32/this"]
    return tabulate(body, headers=headers, tablefmt="github")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("small", "vit-b16"), default="small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=PRECISIONS, nargs="+", default=list(PRECISIONS),
                        help="precisions to compare (fp32 first gives the ratio columns)")
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--txt-tokens", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2.0,
                        help="SGD learning rate (DAPT's for ImageNet)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed steps per path (after one warm-up step); the median counts")
    parser.add_argument("--matmul-size", type=int, default=0,
                        help="side of the reference matmul (default 1024 CPU, 8192 GPU)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    precisions = list(dict.fromkeys(args.precision))  # in the order given, once each
    size = args.matmul_size or (8192 if device.type == "cuda" else 1024)
    peak_rates = {precision: matmul_rate(size, torch.float32 if precision == "fp32"
                                         else torch.float16, device, max(args.repeats, 3))
                  for precision in precisions}
    clips = {precision: build_clip(args.size, precision, device) for precision in precisions}
    rows = [row for classes in args.classes
            for row in compare(clips, classes, args, device, peak_rates)]

    result = {"format": "dapt_init.bench_train_step/2", "machine": machine(device),
              "size": args.size, "precisions": precisions, "batch": args.batch,
              "txt_tokens": args.txt_tokens, "repeats": args.repeats,
              "matmul": {"size": size, "flops_per_s": peak_rates}, "rows": rows}
    rates = ", ".join(f"{p} {r / 1e9:.1f}" for p, r in peak_rates.items())
    print(f"{args.size} CLIP, {'/'.join(precisions)}, batch {args.batch}, {args.txt_tokens} text "
          f"tokens on {device} (torch {torch.__version__}, {torch.get_num_threads()} threads); "
          f"reference matmul {size}x{size} (GFLOP/s): {rates}")
    print(table(rows))
    for row in rows:
        if "full_peak_total_bytes" in row:
            print(f"{row['classes']} classes, {row['precision']}, peak allocated including the model: full "
                  f"{row['full_peak_total_bytes'] / 1024 ** 3:.2f} GiB, shared_prefix "
                  f"{row['shared_prefix_peak_total_bytes'] / 1024 ** 3:.2f} GiB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"Wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
