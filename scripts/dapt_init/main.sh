#!/usr/bin/env bash
# Few-shot training of DAPT_Init on one data set with one text-prompt init, for each seed.
# `bash scripts/dapt_init/main.sh --help` (study/help.py) says what it does.
# One line: python -m study (study/scripts.py) checks, plans and runs each seed's train.py.
cd "$(dirname -- "${BASH_SOURCE[0]}")/../.." && DAPT_CALLER_DIR=$OLDPWD exec "${STUDY_PYTHON:-python3}" -m study main "$@"
