#!/usr/bin/env bash
# Domain generalisation: ImageNet-trained DAPT_Init prompts tested on the ImageNet variants.
# `bash scripts/dapt_init/eval.sh --help` (study/help.py) says what it does.
# One line: python -m study (study/scripts.py) checks, plans and runs each seed's train.py.
cd "$(dirname -- "${BASH_SOURCE[0]}")/../.." && DAPT_CALLER_DIR=$OLDPWD exec "${STUDY_PYTHON:-python3}" -m study eval "$@"
