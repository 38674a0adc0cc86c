#!/usr/bin/env bash
# Base-to-new generalisation, part 2: test the base-class prompts on the new classes.
# A loop over seeds: `bash scripts/dapt_init/base2new_test.sh --help` (study/help.py) says what it does.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
dapt_run_all base2new_test "$@"
