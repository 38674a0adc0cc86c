#!/usr/bin/env bash
# Domain generalisation: ImageNet-trained DAPT_Init prompts tested on the ImageNet variants.
# A loop over seeds: `bash scripts/dapt_init/eval.sh --help` (study/help.py) says what it does.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
dapt_run_all eval "$@"
