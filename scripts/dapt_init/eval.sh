#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2016  # help text and the SLURM script show $NAMES literally
# Domain generalisation: ImageNet-trained DAPT_Init prompts tested on the ImageNet variants.
USAGE='bash scripts/dapt_init/eval.sh INIT SHOTS [GPU] [-- KEY VALUE ...]'
HELP='Tests the prompts trained by "main.sh imagenet INIT SHOTS", i.e. the runs in
  $OUTPUT_ROOT/imagenet/DAPT_Init/INIT/<cfg>_<SHOTS>shots/seed<k>/
(--eval-only, loading the checkpoint of the config'"'"'s last epoch) on each target data set, into
  $OUTPUT_ROOT/evaluation/<target>/DAPT_Init/INIT/<cfg>_<SHOTS>shots/seed<k>/
Every trained model is checked before anything runs; a missing one is named with the command
that makes it. GPU (optional) sets CUDA_VISIBLE_DEVICES. Words after "--" are KEY VALUE config
overrides passed to train.py (give the ones the training run had, e.g. a CLIP_WEIGHTS file).
Finished evaluations are skipped; the first failure stops the script with its exit status.

Environment:
  DATA_ROOT    (required) folder holding the data sets
  TARGETS      target data sets (default "imagenetv2 imagenet_sketch imagenet_a imagenet_r";
               any data set with a config, e.g. for cross-data-set transfer)
  SEEDS        seeds (default "1 2 3")
  VIS_INIT     visual-prompt init of the runs (random, same, diff; default random): the
               INIT folder becomes INIT_vis-<VIS_INIT> when it is not random
  CFG          trainer config of the ImageNet runs (default vit_b16_ep50)
  LOAD_EPOCH   checkpoint epoch to load (default: the config'"'"'s MAX_EPOCH, or OPTIM.MAX_EPOCH
               among the overrides)
  OUTPUT_ROOT  output folder (default: <repository>/output)
  PYTHON       interpreter for train.py (default: python)
  TAG          run-folder tag, as in main.sh (the trained models are looked up with it too)

Example: DATA_ROOT=/data bash scripts/dapt_init/eval.sh diff 16 0'
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

SOURCE_DATASET=imagenet
DEFAULT_TARGETS="${DAPT_DG_TARGETS[*]}"

dapt_parse_args "$@"
dapt_check_arg_count 2 3
INIT=${DAPT_ARGS[0]}
SHOTS=${DAPT_ARGS[1]}
GPU=${DAPT_ARGS[2]:-}
dapt_check_init "$INIT"
dapt_check_vis_init
dapt_check_shots "$SHOTS"
dapt_check_gpu "$GPU"
dapt_check_overrides
dapt_choose_cfg "$SOURCE_DATASET" "$SHOTS"
dapt_cfg_epochs "$DAPT_CFG"
read -r -a TARGET_LIST <<<"${TARGETS:-$DEFAULT_TARGETS}"
((${#TARGET_LIST[@]} > 0)) || dapt_die "TARGETS is empty"
for target in "${TARGET_LIST[@]}"; do
    dapt_check_dataset "$target" any
done
dapt_prepare_run
INIT_DIR=$(dapt_init_folder "$INIT" "$DAPT_VIS_INIT")

train_how=$(dapt_train_hint main.sh "$SOURCE_DATASET" "$INIT" "$SHOTS")
for seed in "${DAPT_SEEDS[@]}"; do
    dapt_require_trained "$(dapt_main_dir "$SOURCE_DATASET" "$INIT_DIR" "$DAPT_CFG" "$SHOTS" \
        "$seed")" \
        "$train_how"
done

dapt_enter_repo "$GPU"
for target in "${TARGET_LIST[@]}"; do
    for seed in "${DAPT_SEEDS[@]}"; do
        model_dir=$(dapt_main_dir "$SOURCE_DATASET" "$INIT_DIR" "$DAPT_CFG" "$SHOTS" "$seed")
        dir=$(dapt_eval_dir "$target" "$INIT_DIR" "$DAPT_CFG" "$SHOTS" "$seed")
        dapt_train_py eval "$dir" "$seed" "$target" \
            --model-dir "$model_dir" \
            --load-epoch "$DAPT_EPOCHS" \
            --eval-only \
            TRAINER.DAPT_INIT.INIT_METHOD "$INIT" \
            TRAINER.DAPT_INIT.VIS_INIT_METHOD "$DAPT_VIS_INIT" \
            DATASET.NUM_SHOTS "$SHOTS"
    done
done
dapt_finish
