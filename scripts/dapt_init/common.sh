# shellcheck shell=bash
# Shared by the scripts in scripts/dapt_init/ (source it, don't run it): argument checks, the
# trainer config chosen for a shot count, run folders, "is this run finished", and running one
# train.py command. Every check fails with one "error: ..." line on stderr and exit status 2
# before anything is created or run, as train.py does for user errors.
#
# Environment read here (all optional except DATA_ROOT where a script runs train.py):
#   DATA_ROOT    folder holding the data sets (eurosat/, oxford_pets/, ...); required
#   OUTPUT_ROOT  where run folders go (default: <repository>/output); relative = to the caller's
#                working directory
#   SEEDS        seeds to run (default "1 2 3")
#   CFG          trainer config name in configs/trainers/DAPT_Init/ (default: chosen by shots)
#   VIS_INIT     visual-prompt init (random, same, diff; default random); not random adds
#                "_vis-<VIS_INIT>" to the init folder of a run (diff_vis-same)
#   LOAD_EPOCH   (eval scripts) checkpoint epoch to load (default: the config's MAX_EPOCH, or
#                OPTIM.MAX_EPOCH when it is among the overrides)
#   PYTHON       python interpreter that runs train.py (default: python, else python3)
#   TAG          appended to the <cfg>_<shots>shots folder ("<cfg>_<shots>shots_<TAG>"), so a
#                sweep over epochs or LRs gets folders of its own
#   TRIAL        1: a trial on any CPU, nothing downloaded: the demo's small random CLIP and tiny
#                EuroSAT (<repository>/demo_output, made when missing), the demo config (3
#                epochs), seeds "1 2", runs tagged "trial" under <repository>/output_trial
#   DEMO_DIR     the demo's folder for TRIAL=1 (default <repository>/demo_output)
#   CODEBASE     a CoOp-family codebase holding the drop-in unit (README, "Drop into another
#                CoOp-family codebase"): its train.py, configs/ and output/ are used instead of
#                this repository's, so the same scripts loop seeds and shots there

if [[ -n "${DAPT_COMMON_SOURCED:-}" ]]; then
    return 0
fi
DAPT_COMMON_SOURCED=1

DAPT_TRAINER="DAPT_Init"
DAPT_INITS=(random same diff)
# ImageNet variants with a test split only: targets of the domain-generalisation evaluation.
DAPT_DG_TARGETS=(imagenetv2 imagenet_sketch imagenet_a imagenet_r)
DAPT_DEFAULT_SEEDS="1 2 3"
DAPT_SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
DAPT_REPO_ROOT="$(cd -- "$DAPT_SCRIPT_DIR/../.." && pwd)"
DAPT_CALLER_DIR="$PWD"
# The codebase whose train.py and configs/ run (dapt_apply_codebase: CODEBASE, else this one).
DAPT_CODEBASE=$DAPT_REPO_ROOT
DAPT_TRAINER_CONFIGS="$DAPT_REPO_ROOT/configs/trainers/$DAPT_TRAINER"
DAPT_DATASET_CONFIGS="$DAPT_REPO_ROOT/configs/datasets"
DAPT_HAS_CHECK_FINISHED=1  # train.py answers --check-finished (a host's may not)

# Config keys the scripts set from their arguments: an override would make the run disagree
# with its folder name, so they are refused.
declare -A DAPT_RESERVED_KEYS=(
    [DATASET.NUM_SHOTS]="the SHOTS argument"
    [TRAINER.DAPT_INIT.INIT_METHOD]="the INIT argument"
    [TRAINER.DAPT_INIT.VIS_INIT_METHOD]="VIS_INIT"
    [DATASET.SUBSAMPLE_CLASSES]="the script (base2new_*.sh set base / new)"
    [SEED]="SEEDS"
    [OUTPUT_DIR]="OUTPUT_ROOT"
    [DATASET.ROOT]="DATA_ROOT"
    [TRAINER.NAME]="the script ($DAPT_TRAINER)"
)

# TRIAL=1 (dapt_apply_trial below): where the demo keeps its small CLIP and tiny data.
# DEMO_DIR names another (tools/demo.py --workdir DIR).
DAPT_TRIAL_DIR=${DEMO_DIR:-$DAPT_REPO_ROOT/demo_output}

# ------------------------------------------------------------------------------------ messages

# Ctrl-C between runs: one line, status 130; finished runs are skipped on the next call.
DAPT_INTERRUPTED=130
dapt_on_interrupt() {
    printf 'error: interrupted (SIGINT); run the same command again: finished runs are' >&2
    printf ' skipped and an unfinished one resumes from its last checkpoint\n' >&2
    exit "$DAPT_INTERRUPTED"
}
trap dapt_on_interrupt INT

dapt_die() {
    printf 'error: %s\n' "$*" >&2
    exit 2
}

# USAGE (one line) and HELP (a paragraph) are set by each script before sourcing this file.
dapt_usage_error() {
    printf 'usage: %s\n' "${USAGE:-?}" >&2
    dapt_die "$*"
}

dapt_print_help() {
    printf 'usage: %s\n\n%s\n' "${USAGE:-?}" "${HELP:-}"
}

dapt_join() {  # dapt_join SEPARATOR WORD... -> words joined by SEPARATOR
    local separator=$1 out="" word
    shift
    for word in "$@"; do
        out+="${out:+$separator}$word"
    done
    printf '%s' "$out"
}

dapt_contains() {  # dapt_contains WORD LIST... -> status 0 when WORD is in LIST
    local word=$1 item
    shift
    for item in "$@"; do
        [[ "$item" == "$word" ]] && return 0
    done
    return 1
}

# ----------------------------------------------------------------------------------- arguments

# Split "$@" at "--": DAPT_ARGS (positional) and DAPT_OVERRIDES (KEY VALUE pairs for train.py).
dapt_parse_args() {
    DAPT_ARGS=()
    DAPT_OVERRIDES=()
    while (($#)); do
        case "$1" in
            --)
                shift
                DAPT_OVERRIDES=("$@")
                break
                ;;
            -h | --help)
                dapt_print_help
                exit 0
                ;;
            *) DAPT_ARGS+=("$1") ;;
        esac
        shift
    done
}

dapt_check_arg_count() {  # dapt_check_arg_count MIN MAX
    local count=${#DAPT_ARGS[@]}
    if ((count < $1 || count > $2)); then
        local expected="$1"
        (($1 != $2)) && expected="$1 to $2"
        dapt_usage_error "expected $expected arguments before any '--', got $count" \
            "(config overrides go after '--': ... -- OPTIM.MAX_EPOCH 10)"
    fi
}

dapt_known_datasets() {  # prints the data set names that have a config, one per line
    local file
    for file in "$DAPT_DATASET_CONFIGS"/*.yaml; do
        [[ -f "$file" ]] || continue
        file=${file##*/}
        printf '%s\n' "${file%.yaml}"
    done
}

# dapt_check_dataset NAME train|any: "train" refuses the test-only ImageNet variants.
dapt_check_dataset() {
    local name=$1 kind=$2 known=() valid=() item
    mapfile -t known < <(dapt_known_datasets)
    if [[ "$kind" == train ]]; then
        for item in "${known[@]}"; do
            dapt_contains "$item" "${DAPT_DG_TARGETS[@]}" || valid+=("$item")
        done
    else
        valid=("${known[@]}")
    fi
    if [[ "$kind" == train ]] && dapt_contains "$name" "${DAPT_DG_TARGETS[@]}"; then
        dapt_die "dataset '$name' is a test-only target set: train on imagenet" \
            "(main.sh imagenet INIT SHOTS), then evaluate on it with eval.sh INIT SHOTS."
    fi
    dapt_contains "$name" "${valid[@]}" ||
        dapt_die "unknown dataset '$name'; valid datasets: $(dapt_join ' ' "${valid[@]}")"
}

dapt_check_init() {
    dapt_contains "$1" "${DAPT_INITS[@]}" ||
        dapt_die "unknown init method '$1'; valid init methods: $(dapt_join ' ' "${DAPT_INITS[@]}")"
}

dapt_check_vis_init() {  # sets DAPT_VIS_INIT from VIS_INIT (default random)
    DAPT_VIS_INIT=${VIS_INIT:-random}
    dapt_contains "$DAPT_VIS_INIT" "${DAPT_INITS[@]}" ||
        dapt_die "unknown visual init method '$DAPT_VIS_INIT' (VIS_INIT, VIS_INITS); valid init" \
            "methods: $(dapt_join ' ' "${DAPT_INITS[@]}")"
}

dapt_check_shots() {
    [[ "$1" =~ ^[1-9][0-9]*$ ]] ||
        dapt_die "shots must be a positive integer (1, 2, 4, 8, 16, ...), got '$1'"
}

# GPU: what CUDA_VISIBLE_DEVICES gets (an index, a comma list, or a GPU-/MIG- UUID).
dapt_check_gpu() {
    [[ -z "$1" || "$1" =~ ^[A-Za-z0-9][A-Za-z0-9,:_/-]*$ ]] ||
        dapt_die "GPU must be a device index or list for CUDA_VISIBLE_DEVICES (e.g. 0 or 0,1)," \
            "got '$1'"
}

dapt_check_overrides() {
    local count=${#DAPT_OVERRIDES[@]} i key
    ((count % 2 == 0)) ||
        dapt_die "config overrides after '--' come in KEY VALUE pairs; got $count words:" \
            "${DAPT_OVERRIDES[*]}"
    for ((i = 0; i < count; i += 2)); do
        key=${DAPT_OVERRIDES[i]}
        [[ "$key" =~ ^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$ ]] ||
            dapt_die "'$key' is not a config key; after '--' give KEY VALUE pairs" \
                "(e.g. OPTIM.MAX_EPOCH 10)"
        if [[ -n "${DAPT_RESERVED_KEYS[$key]:-}" ]]; then
            dapt_die "$key is set by this script from ${DAPT_RESERVED_KEYS[$key]}; don't pass it" \
                "as an override"
        fi
    done
}

dapt_check_tag() {  # TAG becomes part of a folder name
    [[ -z "${TAG:-}" || "$TAG" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] ||
        dapt_die "TAG must be letters, digits, '.', '_' or '-' (it names a folder), got '$TAG'"
}

dapt_check_seeds() {  # sets DAPT_SEEDS from SEEDS (default 1 2 3)
    local seed
    read -r -a DAPT_SEEDS <<<"${SEEDS:-$DAPT_DEFAULT_SEEDS}"
    ((${#DAPT_SEEDS[@]} > 0)) || dapt_die "SEEDS is empty"
    for seed in "${DAPT_SEEDS[@]}"; do
        [[ "$seed" =~ ^[0-9]+$ ]] ||
            dapt_die "SEEDS must be non-negative integers separated by spaces" \
                "(e.g. SEEDS=\"1 2 3\"), got '$seed'"
    done
}

dapt_trainer_configs() {  # prints the trainer config names, one per line
    local file
    for file in "$DAPT_TRAINER_CONFIGS"/*.yaml; do
        [[ -f "$file" ]] || continue
        file=${file##*/}
        printf '%s\n' "${file%.yaml}"
    done
}

# dapt_choose_cfg DATASET SHOTS: sets DAPT_CFG. DAPT's choice (ImageNet: vit_b16_ep50; 1 shot:
# vit_b16_ep50; 2, 4: vit_b16_ep100; 8, 16: vit_b16) unless CFG is set.
dapt_choose_cfg() {
    local dataset=$1 shots=$2 valid
    valid=$(dapt_trainer_configs | tr '\n' ' ')
    if [[ -n "${CFG:-}" ]]; then
        DAPT_CFG=$CFG
    elif [[ "$dataset" == imagenet ]]; then
        DAPT_CFG=vit_b16_ep50
    else
        case "$shots" in
            1) DAPT_CFG=vit_b16_ep50 ;;
            2 | 4) DAPT_CFG=vit_b16_ep100 ;;
            8 | 16) DAPT_CFG=vit_b16 ;;
            *)
                dapt_die "no default trainer config for $shots shots (DAPT's: 1 -> vit_b16_ep50," \
                    "2 and 4 -> vit_b16_ep100, 8 and 16 -> vit_b16); set CFG to one of: ${valid% }"
                ;;
        esac
    fi
    [[ "$DAPT_CFG" =~ ^[A-Za-z0-9_.-]+$ && -f "$DAPT_TRAINER_CONFIGS/$DAPT_CFG.yaml" ]] ||
        dapt_die "unknown trainer config CFG='$DAPT_CFG'; valid configs (in" \
            "configs/trainers/$DAPT_TRAINER/): ${valid% }"
}

# dapt_cfg_epochs CFG: sets DAPT_EPOCHS, the epoch whose checkpoint an eval run loads.
# LOAD_EPOCH wins, then OPTIM.MAX_EPOCH among the overrides, then MAX_EPOCH in the config file.
dapt_cfg_epochs() {
    local file="$DAPT_TRAINER_CONFIGS/$1.yaml" i
    DAPT_EPOCHS=""
    if [[ -n "${LOAD_EPOCH:-}" ]]; then
        DAPT_EPOCHS=$LOAD_EPOCH
    else
        for ((i = 0; i + 1 < ${#DAPT_OVERRIDES[@]}; i += 2)); do
            if [[ "${DAPT_OVERRIDES[i]}" == OPTIM.MAX_EPOCH ]]; then
                DAPT_EPOCHS=${DAPT_OVERRIDES[i + 1]}
            fi
        done
        if [[ -z "$DAPT_EPOCHS" ]]; then
            DAPT_EPOCHS=$(sed -n 's/^[[:space:]]*MAX_EPOCH:[[:space:]]*\([0-9][0-9]*\).*$/\1/p' \
                "$file" | tail -n 1)
        fi
    fi
    [[ "$DAPT_EPOCHS" =~ ^[1-9][0-9]*$ ]] ||
        dapt_die "cannot tell which epoch to load for config '$1' (got '${DAPT_EPOCHS}');" \
            "set LOAD_EPOCH to the trained run's last epoch"
}

# ------------------------------------------------------------------------------- environment

dapt_require_data_root() {  # DATA_ROOT must name a folder; made absolute
    if [[ -n "${DAPT_TRIAL:-}" && -z "${DATA_ROOT:-}" ]]; then
        dapt_trial_data
    fi
    [[ -n "${DATA_ROOT:-}" ]] ||
        dapt_die "DATA_ROOT is not set; export DATA_ROOT=/path/to/datasets (the folder that" \
            "holds eurosat/, oxford_pets/, ...)"
    [[ -d "$DATA_ROOT" ]] ||
        dapt_die "DATA_ROOT='$DATA_ROOT' is not a directory; point it at the folder that holds" \
            "the data sets (eurosat/, oxford_pets/, ...)"
    DATA_ROOT=$(cd -- "$DATA_ROOT" && pwd)
}

dapt_resolve_output_root() {  # OUTPUT_ROOT made absolute (default <repository>/output)
    OUTPUT_ROOT=${OUTPUT_ROOT:-$DAPT_CODEBASE/output}
    [[ "$OUTPUT_ROOT" == /* ]] || OUTPUT_ROOT="$DAPT_CALLER_DIR/$OUTPUT_ROOT"
    OUTPUT_ROOT=${OUTPUT_ROOT%/}
}

dapt_resolve_python() {  # sets DAPT_PYTHON from PYTHON (default python, else python3)
    if [[ -n "${PYTHON:-}" ]]; then
        DAPT_PYTHON=$PYTHON
    elif command -v python >/dev/null 2>&1; then
        DAPT_PYTHON=python
    else
        DAPT_PYTHON=python3
    fi
    command -v "$DAPT_PYTHON" >/dev/null 2>&1 ||
        dapt_die "python interpreter '$DAPT_PYTHON' not found; set PYTHON to the one with the" \
            "project's requirements installed"
}

# -------------------------------------------------------------------------------- run folders

# dapt_init_folder INIT VIS_INIT: a run's init folder, "INIT" or "INIT_vis-VIS_INIT" (the
# default visual init, random, leaves DAPT's folder names as they were). The *_dir functions
# below take this folder as their INIT.
dapt_init_folder() {
    if [[ "$2" == random ]]; then
        printf '%s' "$1"
    else
        printf '%s_vis-%s' "$1" "$2"
    fi
}

dapt_main_dir() {  # dapt_main_dir DATASET INIT CFG SHOTS SEED
    printf '%s' "$OUTPUT_ROOT/$1/$DAPT_TRAINER/$2/${3}_${4}shots${TAG:+_$TAG}/seed$5"
}

dapt_eval_dir() {  # dapt_eval_dir TARGET INIT CFG SHOTS SEED
    printf '%s' "$OUTPUT_ROOT/evaluation/$1/$DAPT_TRAINER/$2/${3}_${4}shots${TAG:+_$TAG}/seed$5"
}

dapt_base2new_dir() {  # dapt_base2new_dir train_base|test_new DATASET INIT CFG SEED
    printf '%s' "$OUTPUT_ROOT/base2new/$1/$2/shots_16/$DAPT_TRAINER/$3/$4${TAG:+_$TAG}/seed$5"
}

# dapt_run_finished DIR train|eval: status 0 when the run in DIR has its final test result:
# result.json exists, or one of its logs shows the final accuracy (for a training run after
# "Finish training"; validation during training also prints "=> result"). Only the eval
# scripts' "is the model there" precondition; whether to skip a run is train.py's rule
# (dapt_check_run).
dapt_run_finished() {
    local dir=$1 mode=$2 log
    [[ -f "$dir/result.json" ]] && return 0
    for log in "$dir/log.txt" "$dir"/log.txt-*; do
        [[ -f "$log" ]] || continue
        awk -v mode="$mode" '
            mode == "train" && /Finish training/ { armed = 1 }
            mode == "eval" && /^=> result/ { armed = 1 }
            armed && /^\* accuracy:/ { found = 1 }
            END { exit !found }' "$log" && return 0
    done
    return 1
}

# Exit statuses of `train.py --check-finished` (trainers/dapt_init/runstate.py).
DAPT_FINISHED=0
DAPT_NOT_FINISHED=3
DAPT_RUNNING_ELSEWHERE=4
DAPT_ELSEWHERE=()  # run folders another process was running in

# dapt_check_run DIR PYTHON train.py ARG...: train.py's own finished rule for this command
# (same settings: "skip (finished)"; other settings: one error line), printed by train.py;
# returns its status. A folder that does not exist yet is not finished (no python started).
dapt_check_run() {
    local dir=$1 status=0
    shift
    [[ -e "$dir" ]] || return "$DAPT_NOT_FINISHED"
    if [[ -z "$DAPT_HAS_CHECK_FINISHED" ]]; then
        # A host's train.py without the finished rule: a result.json is all there is to go by.
        [[ -f "$dir/result.json" ]] || return "$DAPT_NOT_FINISHED"
        printf 'skip (finished): %s (result.json present; %s/train.py has no' "$dir" \
            "$DAPT_CODEBASE"
        printf ' --check-finished, so its settings were not compared)\n'
        return "$DAPT_FINISHED"
    fi
    "$1" "$2" --check-finished "${@:3}" || status=$?
    return "$status"
}

# dapt_run_step train|eval DIR COMMAND...: skip a finished run (train.py says so), stop on a
# finished run with other settings, note a run another process holds, else print the command
# and run it (an unfinished run is re-run: train.py resumes from its last checkpoint). A
# failing command stops the script with its exit status. With DAPT_CHECK_ONLY set, exit with
# the check's status instead of running anything (sweep.sh's job states).
dapt_run_step() {
    local dir=$2 status check=0
    shift 2
    dapt_check_run "$dir" "$@" || check=$?
    if [[ -n "${DAPT_CHECK_ONLY:-}" ]]; then
        exit "$check"
    fi
    case "$check" in
        "$DAPT_FINISHED") return 0 ;;
        "$DAPT_RUNNING_ELSEWHERE")
            DAPT_ELSEWHERE+=("$dir")
            return 0
            ;;
        "$DAPT_NOT_FINISHED") ;;
        *) exit "$check" ;;  # train.py printed the error line
    esac
    if [[ -d "$dir" ]]; then
        printf 'unfinished run in %s: running it again (%s)\n' "$dir" \
            "train.py resumes from its last checkpoint"
    fi
    printf '+'
    if [[ -n "${CUDA_VISIBLE_DEVICES+set}" ]]; then
        printf ' CUDA_VISIBLE_DEVICES=%q' "$CUDA_VISIBLE_DEVICES"
    fi
    printf ' %q' "$@"
    printf '\n'
    status=0
    # While train.py runs, Ctrl-C is its to report (one line, status 130); the script only
    # stops after it.
    trap ':' INT
    "$@" || status=$?
    trap dapt_on_interrupt INT
    if ((status == DAPT_INTERRUPTED)); then
        exit "$status"
    fi
    if ((status == 2)); then
        # Refused because another process holds the folder, or finished it meanwhile (two
        # identical sweeps)? Then it is not a failure: running elsewhere, or done elsewhere.
        check=0
        dapt_check_run "$dir" "$@" >/dev/null 2>&1 || check=$?
        if ((check == DAPT_RUNNING_ELSEWHERE)); then
            DAPT_ELSEWHERE+=("$dir")
            return 0
        fi
        if ((check == DAPT_FINISHED)); then
            printf 'done elsewhere: %s (another process finished this run meanwhile)\n' "$dir"
            return 0
        fi
        exit "$status"  # train.py refused it with one error line naming the fix
    fi
    if ((status != 0)); then
        printf 'error: exit status %s from the run in %s; fix the cause and re-run the same' \
            "$status" "$dir" >&2
        printf ' command (finished runs are skipped, this one resumes)\n' >&2
        exit "$status"
    fi
}

# dapt_finish: a script's last step. Runs that another process holds are not failures, but the
# script exits with status 4 (DAPT_RUNNING_ELSEWHERE) so a caller can tell they are not done.
dapt_finish() {
    if ((${#DAPT_ELSEWHERE[@]} > 0)); then
        printf 'note: %d run(s) are running elsewhere; run this again once they end\n' \
            "${#DAPT_ELSEWHERE[@]}"
        exit "$DAPT_RUNNING_ELSEWHERE"
    fi
    exit 0
}

# ---------------------------------------------------------------------------------- codebase

# dapt_apply_codebase: CODEBASE (a host with the drop-in unit) supplies train.py, the dataset
# and trainer configs and the default output root; every rule stays in these scripts.
dapt_apply_codebase() {
    [[ -n "${CODEBASE:-}" ]] || return 0
    [[ -f "$CODEBASE/train.py" ]] ||
        dapt_die "CODEBASE='$CODEBASE' has no train.py; point it at the root of the codebase" \
            "that holds the drop-in unit (its train.py, trainers/dapt_init/ and configs/)"
    DAPT_CODEBASE=$(cd -- "$CODEBASE" && pwd)
    DAPT_TRAINER_CONFIGS="$DAPT_CODEBASE/configs/trainers/$DAPT_TRAINER"
    DAPT_DATASET_CONFIGS="$DAPT_CODEBASE/configs/datasets"
    [[ -d "$DAPT_TRAINER_CONFIGS" ]] ||
        dapt_die "CODEBASE='$CODEBASE' has no configs/trainers/$DAPT_TRAINER/; copy" \
            "$DAPT_REPO_ROOT/configs/trainers/$DAPT_TRAINER/ there (drop-in step 3)"
    DAPT_HAS_CHECK_FINISHED=""
    if grep -q -e '--check-finished' "$DAPT_CODEBASE/train.py"; then
        DAPT_HAS_CHECK_FINISHED=1
    fi
}

# ------------------------------------------------------------------------------------- trial

# dapt_apply_trial: TRIAL=1 changes the defaults, never what the user set: CFG demo_small (the
# demo's 3-epoch recipe for a 32-px CLIP), SEEDS "1 2", OUTPUT_ROOT <repository>/output_trial,
# and "trial" added to TAG, so a trial never takes the real study's folders (parse_test_res.py
# shows the tag, and marks the small CLIP's rows wherever they meet a --reference).
dapt_apply_trial() {
    case "${TRIAL:-}" in
        "" | 0) return 0 ;;
        1) ;;
        *) dapt_die "TRIAL must be 1 (a trial with the demo's small CLIP and tiny data) or 0," \
            "got '$TRIAL'" ;;
    esac
    DAPT_TRIAL=1
    CFG=${CFG:-demo_small}
    DAPT_DEFAULT_SEEDS="1 2"
    OUTPUT_ROOT=${OUTPUT_ROOT:-$DAPT_CODEBASE/output_trial}
    [[ "_${TAG:-}_" == *_trial_* ]] || TAG="${TAG:+${TAG}_}trial"
}

# dapt_trial_data: DATA_ROOT for a trial, the demo's tiny data (made by tools/demo.py when
# missing, with its small CLIP).
dapt_trial_data() {
    DATA_ROOT="$DAPT_TRIAL_DIR/data"
    if [[ ! -f "$DATA_ROOT/eurosat/split_zhou_EuroSAT.json" ||
        ! -f "$DAPT_TRIAL_DIR/small_clip.pt" ]]; then
        dapt_resolve_python
        printf 'trial: making the demo'"'"'s small CLIP and tiny EuroSAT in %s\n' "$DAPT_TRIAL_DIR"
        "$DAPT_PYTHON" "$DAPT_REPO_ROOT/tools/demo.py" --prepare-only --workdir "$DAPT_TRIAL_DIR" ||
            dapt_die "could not make the trial's data and CLIP in $DAPT_TRIAL_DIR (see above)"
    fi
}

# dapt_trial_overrides: a trial's runs load the demo's small CLIP (unless the overrides name
# other weights).
dapt_trial_overrides() {
    local i
    [[ -n "${DAPT_TRIAL:-}" ]] || return 0
    for ((i = 0; i < ${#DAPT_OVERRIDES[@]}; i += 2)); do
        [[ "${DAPT_OVERRIDES[i]}" != TRAINER.DAPT_INIT.CLIP_WEIGHTS ]] || return 0
    done
    DAPT_OVERRIDES+=(TRAINER.DAPT_INIT.CLIP_WEIGHTS "$DAPT_TRIAL_DIR/small_clip.pt")
}

# dapt_prepare_run: the checks every run script makes after its arguments (seeds, data root,
# output root, interpreter).
dapt_prepare_run() {
    dapt_trial_overrides
    dapt_check_seeds
    dapt_check_tag
    if [[ -n "${DAPT_CHECK_ONLY:-}" && -z "${DATA_ROOT:-}" ]]; then
        DATA_ROOT=""  # the finished check reads no data
    else
        dapt_require_data_root
    fi
    dapt_resolve_output_root
    dapt_resolve_python
}

# dapt_enter_repo GPU: run from the codebase's root (this repository's unless CODEBASE); a given
# GPU becomes the only visible one.
dapt_enter_repo() {
    cd "$DAPT_CODEBASE"
    if [[ -n "$1" ]]; then
        export CUDA_VISIBLE_DEVICES="$1"
    fi
}

# dapt_train_py train|eval DIR SEED DATASET ARG...: dapt_run_step on train.py with the
# arguments every run shares; ARG... (flags first, then KEY VALUE pairs) and the user's
# overrides follow.
dapt_train_py() {
    local mode=$1 dir=$2 seed=$3 dataset=$4
    shift 4
    dapt_run_step "$mode" "$dir" "$DAPT_PYTHON" train.py \
        --root "$DATA_ROOT" \
        --seed "$seed" \
        --trainer "$DAPT_TRAINER" \
        --dataset-config-file "configs/datasets/$dataset.yaml" \
        --config-file "configs/trainers/$DAPT_TRAINER/$DAPT_CFG.yaml" \
        --output-dir "$dir" \
        "$@" \
        ${DAPT_OVERRIDES[@]+"${DAPT_OVERRIDES[@]}"}
}

# dapt_require_trained DIR HOW: the model an eval run loads must be a finished training run.
dapt_require_trained() {
    local dir=$1 how=$2
    if [[ ! -d "$dir" ]]; then
        dapt_die "trained model folder $dir is missing; train it first with: $how"
    fi
    dapt_run_finished "$dir" train ||
        dapt_die "trained model folder $dir holds an unfinished run; finish it with: $how"
}

# The overrides as text for a message (" -- KEY VALUE ..." or nothing).
dapt_overrides_text() {
    ((${#DAPT_OVERRIDES[@]} == 0)) && return 0
    printf ' --'
    printf ' %q' "${DAPT_OVERRIDES[@]}"
}

# dapt_train_hint SCRIPT ARGS...: the command line (with this environment and the overrides)
# that makes the trained models an eval script needs, for its error message.
dapt_train_hint() {
    local script=$1
    shift
    printf 'DATA_ROOT=%q OUTPUT_ROOT=%q SEEDS=%q' "$DATA_ROOT" "$OUTPUT_ROOT" "${DAPT_SEEDS[*]}"
    if [[ -n "${CFG:-}" ]]; then
        printf ' CFG=%q' "$CFG"
    fi
    if [[ "${DAPT_VIS_INIT:-random}" != random ]]; then
        printf ' VIS_INIT=%q' "$DAPT_VIS_INIT"
    fi
    printf ' bash scripts/dapt_init/%s' "$script"
    printf ' %q' "$@"
    dapt_overrides_text
}

dapt_apply_codebase
dapt_apply_trial
