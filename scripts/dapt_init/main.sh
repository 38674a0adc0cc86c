#!/usr/bin/env bash
# Few-shot training of DAPT_Init on one data set with one text-prompt init, for each seed.
# A loop over seeds: `bash scripts/dapt_init/main.sh --help` (study/help.py) says what it does.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
dapt_run_all main "$@"
