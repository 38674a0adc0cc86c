#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2016  # help text and the SLURM script show $NAMES literally
# Base-to-new generalisation, part 1: train DAPT_Init on the base half of the classes (16 shots).
USAGE='bash scripts/dapt_init/base2new_train.sh DATASET INIT [GPU] [-- KEY VALUE ...]'
HELP='Trains DAPT_Init with 16 shots on the base classes (DATASET.SUBSAMPLE_CLASSES base) of
DATASET with text-prompt init INIT, once per seed, into
  $OUTPUT_ROOT/base2new/train_base/DATASET/shots_16/DAPT_Init/INIT/<cfg>/seed<k>/
Its final test is on the base classes; base2new_test.sh then tests on the new ones.
GPU (optional) sets CUDA_VISIBLE_DEVICES. Words after "--" are KEY VALUE config overrides
passed to train.py. Finished runs are skipped, unfinished ones resume; the first failure stops
the script with its exit status.

Environment:
  DATA_ROOT    (required) folder holding the data sets
  SEEDS        seeds (default "1 2 3")
  VIS_INIT     visual-prompt init of the runs (random, same, diff; default random): the
               INIT folder becomes INIT_vis-<VIS_INIT> when it is not random
  CFG          trainer config (default vit_b16, the 16-shot one; imagenet: vit_b16_ep50)
  OUTPUT_ROOT  output folder (default: <repository>/output)
  PYTHON       interpreter for train.py (default: python)
  TAG          run-folder tag, as in main.sh

Example: DATA_ROOT=/data bash scripts/dapt_init/base2new_train.sh eurosat diff 0'
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

SHOTS=16

dapt_parse_args "$@"
dapt_check_arg_count 2 3
DATASET=${DAPT_ARGS[0]}
INIT=${DAPT_ARGS[1]}
GPU=${DAPT_ARGS[2]:-}
dapt_check_dataset "$DATASET" train
dapt_check_init "$INIT"
dapt_check_vis_init
dapt_check_gpu "$GPU"
dapt_check_overrides
dapt_choose_cfg "$DATASET" "$SHOTS"
dapt_prepare_run
INIT_DIR=$(dapt_init_folder "$INIT" "$DAPT_VIS_INIT")

dapt_enter_repo "$GPU"
for seed in "${DAPT_SEEDS[@]}"; do
    dir=$(dapt_base2new_dir train_base "$DATASET" "$INIT_DIR" "$DAPT_CFG" "$seed")
    dapt_train_py train "$dir" "$seed" "$DATASET" \
        TRAINER.DAPT_INIT.INIT_METHOD "$INIT" \
        TRAINER.DAPT_INIT.VIS_INIT_METHOD "$DAPT_VIS_INIT" \
        DATASET.NUM_SHOTS "$SHOTS" \
        DATASET.SUBSAMPLE_CLASSES base
done
dapt_finish
