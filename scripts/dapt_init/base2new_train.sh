#!/usr/bin/env bash
# Base-to-new generalisation, part 1: train DAPT_Init on the base half of the classes (16 shots).
# A loop over seeds: `bash scripts/dapt_init/base2new_train.sh --help` (study/help.py) says what it does.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
dapt_run_all base2new_train "$@"
