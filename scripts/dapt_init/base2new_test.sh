#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2016  # help text and the SLURM script show $NAMES literally
# Base-to-new generalisation, part 2: test the base-class prompts on the new classes.
USAGE='bash scripts/dapt_init/base2new_test.sh DATASET INIT [GPU] [-- KEY VALUE ...]'
HELP='Tests the prompts trained by "base2new_train.sh DATASET INIT", i.e. the runs in
  $OUTPUT_ROOT/base2new/train_base/DATASET/shots_16/DAPT_Init/INIT/<cfg>/seed<k>/
(--eval-only, loading the checkpoint of the config'"'"'s last epoch) on the new half of the
classes (DATASET.SUBSAMPLE_CLASSES new), into
  $OUTPUT_ROOT/base2new/test_new/DATASET/shots_16/DAPT_Init/INIT/<cfg>/seed<k>/
Every trained model is checked before anything runs; a missing one is named with the command
that makes it. GPU (optional) sets CUDA_VISIBLE_DEVICES. Words after "--" are KEY VALUE config
overrides passed to train.py (give the ones the training run had). Finished evaluations are
skipped; the first failure stops the script with its exit status.

Environment:
  DATA_ROOT    (required) folder holding the data sets
  SEEDS        seeds (default "1 2 3")
  VIS_INIT     visual-prompt init of the runs (random, same, diff; default random): the
               INIT folder becomes INIT_vis-<VIS_INIT> when it is not random
  CFG          trainer config of the training runs (default vit_b16; imagenet: vit_b16_ep50)
  LOAD_EPOCH   checkpoint epoch to load (default: the config'"'"'s MAX_EPOCH, or OPTIM.MAX_EPOCH
               among the overrides)
  OUTPUT_ROOT  output folder (default: <repository>/output)
  PYTHON       interpreter for train.py (default: python)
  TAG          run-folder tag, as in main.sh (the trained models are looked up with it too)

Example: DATA_ROOT=/data bash scripts/dapt_init/base2new_test.sh eurosat diff 0'
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
dapt_cfg_epochs "$DAPT_CFG"
dapt_prepare_run
INIT_DIR=$(dapt_init_folder "$INIT" "$DAPT_VIS_INIT")

train_how=$(dapt_train_hint base2new_train.sh "$DATASET" "$INIT")
for seed in "${DAPT_SEEDS[@]}"; do
    dapt_require_trained \
        "$(dapt_base2new_dir train_base "$DATASET" "$INIT_DIR" "$DAPT_CFG" "$seed")" \
        "$train_how"
done

dapt_enter_repo "$GPU"
for seed in "${DAPT_SEEDS[@]}"; do
    model_dir=$(dapt_base2new_dir train_base "$DATASET" "$INIT_DIR" "$DAPT_CFG" "$seed")
    dir=$(dapt_base2new_dir test_new "$DATASET" "$INIT_DIR" "$DAPT_CFG" "$seed")
    dapt_train_py eval "$dir" "$seed" "$DATASET" \
        --model-dir "$model_dir" \
        --load-epoch "$DAPT_EPOCHS" \
        --eval-only \
        TRAINER.DAPT_INIT.INIT_METHOD "$INIT" \
        TRAINER.DAPT_INIT.VIS_INIT_METHOD "$DAPT_VIS_INIT" \
        DATASET.NUM_SHOTS "$SHOTS" \
        DATASET.SUBSAMPLE_CLASSES new
done
dapt_finish
