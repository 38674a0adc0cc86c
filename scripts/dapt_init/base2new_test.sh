#!/usr/bin/env bash
# Base-to-new generalisation, part 2: test the base-class prompts on the new classes.
# `bash scripts/dapt_init/base2new_test.sh --help` (study/help.py) says what it does.
# One line: python -m study (study/scripts.py) checks, plans and runs each seed's train.py.
cd "$(dirname -- "${BASH_SOURCE[0]}")/../.." && DAPT_CALLER_DIR=$OLDPWD exec "${STUDY_PYTHON:-python3}" -m study base2new_test "$@"
