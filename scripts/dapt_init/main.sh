#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2016  # help text and the SLURM script show $NAMES literally
# Few-shot training of DAPT_Init on one data set with one text-prompt init, for each seed.
USAGE='bash scripts/dapt_init/main.sh DATASET INIT SHOTS [GPU] [-- KEY VALUE ...]'
HELP='Trains DAPT_Init on DATASET (e.g. eurosat) with text-prompt init INIT (random, same, diff)
and SHOTS images per class, once per seed, into
  $OUTPUT_ROOT/DATASET/DAPT_Init/INIT/<cfg>_<SHOTS>shots/seed<k>/
(INIT_vis-<VIS_INIT> instead of INIT when VIS_INIT is not random).
GPU (optional) sets CUDA_VISIBLE_DEVICES. Words after "--" are KEY VALUE config overrides
passed to train.py (paths in them are relative to the repository root).

A run is finished when its result.json records these settings (train.py --check-finished
decides: same fingerprint and CLIP weights); it is then skipped with one line. A finished run
with other settings stops the script with one error line naming the keys. An unfinished run is
run again with the same command and resumes from its last checkpoint, bit for bit. A run that
another process holds (its folder is locked) is noted and left alone; the script then exits 4.
The first failing run stops the script with its exit status. Runs from any directory.

Environment:
  DATA_ROOT    (required) folder holding the data sets (eurosat/, oxford_pets/, ...)
  SEEDS        seeds to run (default "1 2 3")
  CFG          trainer config in configs/trainers/DAPT_Init/ (default by shots: 1 ->
               vit_b16_ep50, 2 and 4 -> vit_b16_ep100, 8 and 16 -> vit_b16; imagenet ->
               vit_b16_ep50)
  VIS_INIT     visual-prompt init: random (DAPT'"'"'s, default), same or diff (from CLIP'"'"'s CLS
               embedding; TRAINER.DAPT_INIT.VIS_INIT_METHOD)
  OUTPUT_ROOT  output folder (default: <repository>/output)
  PYTHON       interpreter for train.py (default: python)
  TAG          appended to the run folder: <cfg>_<SHOTS>shots_<TAG> (e.g. TAG=ep25 for a
               25-epoch variant: -- OPTIM.MAX_EPOCH 25)
  CODEBASE     another CoOp-family codebase with the drop-in unit: its train.py, configs/
               and output/ are used (default: this repository)
  TRIAL        1: try it on any CPU with nothing downloaded: the demo'"'"'s small random CLIP and
               tiny EuroSAT (<repository>/demo_output, made when missing; DATA_ROOT not
               needed), config demo_small (3 epochs), seeds "1 2", folders tagged "trial" under
               <repository>/output_trial. Its accuracy means nothing.

Examples: TRIAL=1 bash scripts/dapt_init/main.sh eurosat diff 4
          DATA_ROOT=/data bash scripts/dapt_init/main.sh eurosat diff 4 0'
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

dapt_parse_args "$@"
dapt_check_arg_count 3 4
DATASET=${DAPT_ARGS[0]}
INIT=${DAPT_ARGS[1]}
SHOTS=${DAPT_ARGS[2]}
GPU=${DAPT_ARGS[3]:-}
dapt_check_dataset "$DATASET" train
dapt_check_init "$INIT"
dapt_check_vis_init
dapt_check_shots "$SHOTS"
dapt_check_gpu "$GPU"
dapt_check_overrides
dapt_choose_cfg "$DATASET" "$SHOTS"
dapt_prepare_run

INIT_DIR=$(dapt_init_folder "$INIT" "$DAPT_VIS_INIT")
dapt_enter_repo "$GPU"
for seed in "${DAPT_SEEDS[@]}"; do
    dir=$(dapt_main_dir "$DATASET" "$INIT_DIR" "$DAPT_CFG" "$SHOTS" "$seed")
    dapt_train_py train "$dir" "$seed" "$DATASET" \
        TRAINER.DAPT_INIT.INIT_METHOD "$INIT" \
        TRAINER.DAPT_INIT.VIS_INIT_METHOD "$DAPT_VIS_INIT" \
        DATASET.NUM_SHOTS "$SHOTS"
done
dapt_finish
