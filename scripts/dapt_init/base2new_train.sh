#!/usr/bin/env bash
# Base-to-new generalisation, part 1: train DAPT_Init on the base half of the classes (16 shots).
# `bash scripts/dapt_init/base2new_train.sh --help` (study/help.py) says what it does.
# One line: python -m study (study/scripts.py) checks, plans and runs each seed's train.py.
cd "$(dirname -- "${BASH_SOURCE[0]}")/../.." && DAPT_CALLER_DIR=$OLDPWD exec "${STUDY_PYTHON:-python3}" -m study base2new_train "$@"
