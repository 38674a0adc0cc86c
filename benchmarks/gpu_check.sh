#!/usr/bin/env bash
# GPU check of the shared-prefix text encoder (one GPU, under 8 minutes on an H100):
#   1. benchmarks/bench_train_step.py at the ViT-B/16 shape, 10 / 100 / 1000 classes, batch 32,
#      in fp16 and in amp (full vs shared_prefix: speed-up, peak memory, agreement);
#   2. a short real train.py run (ImageNet layout, 1000 generated classes, 1 shot, 2 epochs,
#      fp16, a random-weight ViT-B/16 CLIP) with each text encoder: wall time, the GPU's peak
#      memory in use (nvidia-smi), accuracy, and the largest difference of the final prompts.
# Nothing is downloaded; the accuracy means nothing (random CLIP, noise images).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # default: gpu_check_output
#   GPU_CHECK_SMOKE=1 bash benchmarks/gpu_check.sh /tmp/smoke   # tiny sizes on the CPU
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${1:-gpu_check_output}" && cd "${1:-gpu_check_output}" && pwd)"
cd "$REPO"
export PYTHONWARNINGS=ignore OUTDATED_IGNORE=1 PYTHONUNBUFFERED=1

if [[ "${GPU_CHECK_SMOKE:-0}" == 1 ]]; then
    # The same steps at tiny sizes on the CPU, to check the script itself.
    SIZE=small; DEVICE=cpu; PRECISIONS=(fp32); CLASSES=(3 5); BATCH=2; REPEATS=1
    TRAIN_CLASSES=4; IMAGE_SIZE=32; TRAIN_PREC=fp32; WORKERS=0
    TRAIN_CONFIG=configs/trainers/DAPT_Init/demo_small.yaml; EXTRA=(USE_CUDA False)
else
    SIZE=vit-b16; DEVICE=cuda; PRECISIONS=(fp16 amp); CLASSES=(10 100 1000); BATCH=32
    REPEATS=5; TRAIN_CLASSES=1000; IMAGE_SIZE=224; TRAIN_PREC=fp16; WORKERS=8
    TRAIN_CONFIG=configs/trainers/DAPT_Init/vit_b16.yaml; EXTRA=()
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

echo "== 1. training step, full vs shared_prefix ($SIZE) =="
for prec in "${PRECISIONS[@]}"; do
    python benchmarks/bench_train_step.py --size "$SIZE" --device "$DEVICE" \
        --precision "$prec" --classes "${CLASSES[@]}" --batch "$BATCH" --repeats "$REPEATS" \
        --json "$OUT/bench_train_step_${SIZE}_${prec}.json"
done

echo "== 2. train.py, $TRAIN_CLASSES generated classes =="
DATA="$OUT/data"
if [[ ! -f "$DATA/imagenet/classnames.txt" ]]; then
    python benchmarks/many_classes_data.py "$DATA" --classes "$TRAIN_CLASSES" \
        --image-size "$IMAGE_SIZE"
fi
CLIP_FILE="$OUT/random_clip_${SIZE}.pt"
if [[ ! -f "$CLIP_FILE" ]]; then
    python - "$CLIP_FILE" "$SIZE" <<'PY'
import sys
sys.path.insert(0, ".")
from benchmarks.bench_train_step import VIT_B16
from tools.small_clip import save_small_clip
path, size = sys.argv[1], sys.argv[2]
save_small_clip(path, 0, **(VIT_B16 if size == "vit-b16" else {}))
PY
fi

for encoder in shared_prefix full; do
    run_dir="$OUT/train_$encoder"
    rm -rf "$run_dir"
    sampler=""
    if [[ "$DEVICE" == cuda ]]; then  # the GPU's memory in use, sampled every 200 ms
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 \
            > "$OUT/memory_$encoder.txt" &
        sampler=$!
    fi
    start=$(date +%s.%N)
    python train.py --root "$DATA" --seed 1 --trainer DAPT_Init \
        --dataset-config-file configs/datasets/imagenet.yaml --config-file "$TRAIN_CONFIG" \
        --output-dir "$run_dir" \
        TRAINER.DAPT_INIT.CLIP_WEIGHTS "$CLIP_FILE" TRAINER.DAPT_INIT.TEXT_ENCODER "$encoder" \
        TRAINER.DAPT_INIT.PREC "$TRAIN_PREC" TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR "$OUT/prototypes" \
        INPUT.SIZE "($IMAGE_SIZE, $IMAGE_SIZE)" DATASET.NUM_SHOTS 1 OPTIM.MAX_EPOCH 2 \
        DATALOADER.NUM_WORKERS "$WORKERS" "${EXTRA[@]}" > "$OUT/train_$encoder.log" 2>&1 \
        || { tail -n 30 "$OUT/train_$encoder.log"; exit 1; }
    end=$(date +%s.%N)
    [[ -n "$sampler" ]] && kill "$sampler"
    echo "$encoder: $(python -c "print(f'{$end - $start:.1f}')") s wall" > "$OUT/time_$encoder.txt"
done

python - "$OUT" <<'PY'
import json, os, sys
sys.path.insert(0, ".")
from trainers.dapt_init.checkpoint import read_checkpoint
out = sys.argv[1]
prompts = {}
for encoder in ("shared_prefix", "full"):
    run = os.path.join(out, f"train_{encoder}")
    result = json.load(open(os.path.join(run, "result.json")))
    state = read_checkpoint(os.path.join(run, "prompt_learner", "model.pth.tar-2"))["state_dict"]
    prompts[encoder] = state
    memory = os.path.join(out, f"memory_{encoder}.txt")
    used = [int(v) for v in open(memory).read().split()] if os.path.exists(memory) else []
    peak = f", GPU memory in use at most {max(used)} MiB" if used else ""
    print(f"{open(os.path.join(out, f'time_{encoder}.txt')).read().strip()}{peak}, "
          f"accuracy {result['metrics']['accuracy']:.2f} (meaningless: random CLIP)")
for name in ("vis_ctx", "txt_ctx"):
    a, b = prompts["full"][name].float(), prompts["shared_prefix"][name].float()
    print(f"{name} after 2 epochs: max |full - shared_prefix| = {(a - b).abs().max():.2e} "
          f"(max |value| {a.abs().max():.2e})")
PY
