#!/usr/bin/env bash
# The first-GPU check (one GPU, under 8 minutes): benchmarks/gpu_check.py does the work and
# prints one table; see its docstring for what it checks.
#   bash benchmarks/gpu_check.sh [OUT_DIR]                      # default: gpu_check_output
#   GPU_CHECK_SMOKE=1 bash benchmarks/gpu_check.sh /tmp/smoke   # tiny sizes on the CPU
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-gpu_check_output}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
SMOKE=()
[[ "${GPU_CHECK_SMOKE:-0}" == 1 ]] && SMOKE=(--smoke)
cd "$REPO"
exec python benchmarks/gpu_check.py --out "$OUT" "${SMOKE[@]}"
