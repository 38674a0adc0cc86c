#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2016  # help text and the SLURM script show $NAMES literally
# The whole study: datasets x inits x visual inits x shots x seeds (x epochs), one main.sh job
# per combination, run on a pool of GPUs (one job per GPU at a time) or emitted as a SLURM job
# array. A job is "DATASET INIT SHOTS SEED", plus " vis-<v>" when its visual init is not
# random and " ep<N>" in an EPOCHS grid.
USAGE='bash scripts/dapt_init/sweep.sh [--dry-run | --slurm] [-- KEY VALUE ...]'
HELP='Runs every job of the study with main.sh ([TAG=<tag>] SEEDS=<seed> [VIS_INIT=<v>] main.sh
DATASET INIT SHOTS GPU), keeping each GPU of GPUS busy with one job at a time. Each job'"'"'s output
goes to $SWEEP_LOG_DIR/<dataset>_<init>[_vis-<v>]_<shots>shots[_<tag>]_seed<k>.log. Finished runs are skipped (so a
re-run of the sweep does only what is missing, and resumes what was cut off); finished is
as train.py --check-finished decides (same settings and CLIP weights). A job whose
folder another process holds (its lock) is "running elsewhere": left alone, not a failure.
When a job fails the others still run; the sweep then lists the failed jobs and exits with
status 1.
Words after "--" are KEY VALUE config overrides passed to every run.

  --dry-run   print the jobs (and which are finished already); run nothing
  --slurm     print a SLURM job-array batch script instead (one array task per job; save it
              and submit it with sbatch)

Environment (lists are space-separated):
  DATASETS     default "eurosat oxford_pets" (TRIAL=1: "eurosat")
  INITS        default "random same diff"
  VIS_INITS    visual-prompt inits (random, same, diff), default "$VIS_INIT" or "random";
               not random adds "_vis-<v>" to a run'"'"'s init folder (main.sh'"'"'s VIS_INIT)
  SHOTS        default "1 2 4 8 16" (TRIAL=1: "1 2 4")
  SEEDS        default "1 2 3" (TRIAL=1: "1 2")
  EPOCHS       optional epoch grid, e.g. "25 50 100": each job runs once per value N with
               OPTIM.MAX_EPOCH N into its own folder, tagged "ep<N>" (<cfg>_<shots>shots_ep<N>)
  TAG          appended to every run folder (with EPOCHS: "<TAG>_ep<N>")
  GPUS         GPUs to use, one job each at a time (default "0", or "cpu" where nvidia-smi
               lists no GPU: one job at a time on the CPU); e.g. "0 1 2 3"
               (name a GPU twice, "0 0 1 1", to run two jobs on each)
  DATA_ROOT    (required to run; baked into the --slurm script when set) data set folder
  CFG          trainer config for every job (default: chosen by shots, as in main.sh)
  OUTPUT_ROOT  output folder (default: <repository>/output)
  SWEEP_LOG_DIR  per-job logs (default: $OUTPUT_ROOT/sweep_logs)
  PYTHON       interpreter for train.py (default: python)
  CODEBASE     another CoOp-family codebase with the drop-in unit (see main.sh --help)
  TRIAL        1: a trial on any CPU with the demo'"'"'s small CLIP and tiny data (see main.sh
               --help), into <repository>/output_trial, tagged "trial"
  --slurm only: SWEEP_JOB_NAME (dapt_init), SWEEP_TIME (24:00:00), SWEEP_CPUS (8),
               SWEEP_MAX_PARALLEL (array throttle, e.g. 8), SWEEP_SBATCH (extra sbatch
               options, e.g. "--partition=gpu --account=lab"). Tasks ask for --requeue and
               append to their output file (--open-mode=append): a pre-empted task restarts,
               resumes from its checkpoint bit for bit, and keeps the output of the first attempt.

Examples:
  TRIAL=1 bash scripts/dapt_init/sweep.sh     # a few minutes on a CPU; then:
  python parse_test_res.py --study output_trial
  DATA_ROOT=/data GPUS="0 1 2 3" bash scripts/dapt_init/sweep.sh
  DATASETS=eurosat SHOTS="1 2" bash scripts/dapt_init/sweep.sh --dry-run
  DATASETS=eurosat INITS=diff VIS_INITS="random same diff" bash scripts/dapt_init/sweep.sh --dry-run
  DATA_ROOT=/data bash scripts/dapt_init/sweep.sh --slurm > dapt_init.sbatch
  sbatch dapt_init.sbatch'
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

MODE=run
OPTIONS=()
while (($#)); do
    case "$1" in
        --dry-run | --slurm)
            [[ "$MODE" == run ]] || dapt_usage_error "give at most one of --dry-run and --slurm"
            MODE=${1#--}
            ;;
        --)
            OPTIONS+=("$@")
            break
            ;;
        -h | --help)
            dapt_print_help
            exit 0
            ;;
        *) dapt_usage_error "unknown argument '$1' (config overrides go after '--')" ;;
    esac
    shift
done
dapt_parse_args ${OPTIONS[@]+"${OPTIONS[@]}"}
dapt_check_overrides

read_list() {  # read_list NAME DEFAULT: the words of $NAME (or DEFAULT) into LIST
    read -r -a LIST <<<"${!1:-$2}"
    ((${#LIST[@]} > 0)) || dapt_die "$1 is empty"
}
if [[ -n "${DAPT_TRIAL:-}" ]]; then  # the demo's data: a tiny EuroSAT, 4 training images a class
    read_list DATASETS "eurosat"
else
    read_list DATASETS "eurosat oxford_pets"
fi
DATASET_LIST=("${LIST[@]}")
read_list INITS "random same diff"
INIT_LIST=("${LIST[@]}")
read_list SHOTS "$([[ -n "${DAPT_TRIAL:-}" ]] && echo "1 2 4" || echo "1 2 4 8 16")"
SHOTS_LIST=("${LIST[@]}")
dapt_check_seeds
dapt_check_tag
EPOCH_LIST=(-)  # "-": the config's epochs, no epoch tag
if [[ -n "${EPOCHS:-}" ]]; then
    read_list EPOCHS ""
    EPOCH_LIST=("${LIST[@]}")
    for epochs in "${EPOCH_LIST[@]}"; do
        [[ "$epochs" =~ ^[1-9][0-9]*$ ]] ||
            dapt_die "EPOCHS must be positive integers separated by spaces, got '$epochs'"
    done
    for ((i = 0; i < ${#DAPT_OVERRIDES[@]}; i += 2)); do
        [[ "${DAPT_OVERRIDES[i]}" != OPTIM.MAX_EPOCH ]] ||
            dapt_die "OPTIM.MAX_EPOCH is set by EPOCHS; don't pass it as an override too"
    done
fi
for dataset in "${DATASET_LIST[@]}"; do
    dapt_check_dataset "$dataset" train
done
for init in "${INIT_LIST[@]}"; do
    dapt_check_init "$init"
done
read_list VIS_INITS "${VIS_INIT:-random}"
VIS_INIT_LIST=("${LIST[@]}")
for vis_init in "${VIS_INIT_LIST[@]}"; do
    VIS_INIT=$vis_init dapt_check_vis_init
done
declare -A CFG_OF=()  # "dataset shots" -> trainer config (to find finished runs)
for dataset in "${DATASET_LIST[@]}"; do
    for shots in "${SHOTS_LIST[@]}"; do
        dapt_check_shots "$shots"
        dapt_choose_cfg "$dataset" "$shots"
        CFG_OF["$dataset $shots"]=$DAPT_CFG
    done
done
# The default pool: GPU 0 where nvidia-smi lists one, else one job at a time on the CPU.
default_gpus() {
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
        echo 0
    else
        echo cpu
    fi
}
if [[ "$MODE" == run ]]; then
    read_list GPUS "$(default_gpus)"
    GPU_LIST=("${LIST[@]}")
    for gpu in "${GPU_LIST[@]}"; do
        dapt_check_gpu "$gpu"
    done
    dapt_require_data_root
    dapt_resolve_python
elif [[ -n "${DATA_ROOT:-}" ]]; then
    dapt_require_data_root
fi
dapt_resolve_output_root
SWEEP_LOG_DIR=${SWEEP_LOG_DIR:-$OUTPUT_ROOT/sweep_logs}
[[ "$SWEEP_LOG_DIR" == /* ]] || SWEEP_LOG_DIR="$DAPT_CALLER_DIR/$SWEEP_LOG_DIR"

# The jobs, in order: dataset, init, visual init, shots, seed, epochs. A job is "DATASET INIT
# SHOTS SEED", plus " vis-<v>" for a visual init other than random and " ep<N>" in an EPOCHS grid.
JOBS=()
for dataset in "${DATASET_LIST[@]}"; do
    for init in "${INIT_LIST[@]}"; do
        for vis_init in "${VIS_INIT_LIST[@]}"; do
            vis_field=""
            [[ "$vis_init" == random ]] || vis_field=" vis-$vis_init"
            for shots in "${SHOTS_LIST[@]}"; do
                for seed in "${DAPT_SEEDS[@]}"; do
                    for epochs in "${EPOCH_LIST[@]}"; do
                        JOBS+=("$dataset $init $shots $seed$vis_field${EPOCHS:+ ep$epochs}")
                    done
                done
            done
        done
    done
done
N_JOBS=${#JOBS[@]}

# The words of a job, as read by the pool and by the SLURM script: sets dataset, init, shots,
# seed, vis_init (random when absent) and epochs ("-" when absent) in the caller's scope.
READ_JOB='read -r dataset init shots seed extra_1 extra_2 <<<"$job"
vis_init=random epochs=-
for word in ${extra_1:-} ${extra_2:-}; do
    case "$word" in
        vis-*) vis_init=${word#vis-} ;;
        ep*) epochs=${word#ep} ;;
    esac
done'

job_tag() {  # job_tag EPOCHS: the job's TAG (the user's, plus ep<N> for an epoch grid)
    if [[ "$1" == - || -z "$1" ]]; then
        printf '%s' "${TAG:-}"
    else
        printf '%s' "${TAG:+${TAG}_}ep$1"
    fi
}

job_overrides() {  # job_overrides EPOCHS: sets JOB_OVERRIDES (the user's, plus the epochs)
    JOB_OVERRIDES=(${DAPT_OVERRIDES[@]+"${DAPT_OVERRIDES[@]}"})
    if [[ "$1" != - && -n "$1" ]]; then
        JOB_OVERRIDES+=(OPTIM.MAX_EPOCH "$1")
    fi
}

# job_state JOB: train.py's verdict on the job's folder, as main.sh
# would ask it: finished, other-settings, running-elsewhere or todo.
job_state() {
    local job=$1 dataset init shots seed extra_1 extra_2 vis_init epochs word status=0
    eval "$READ_JOB"
    job_overrides "$epochs"
    TAG=$(job_tag "$epochs") DAPT_CHECK_ONLY=1 SEEDS="$seed" VIS_INIT="$vis_init" \
        bash "$DAPT_SCRIPT_DIR/main.sh" "$dataset" "$init" "$shots" -- \
        ${JOB_OVERRIDES[@]+"${JOB_OVERRIDES[@]}"} </dev/null >/dev/null 2>&1 || status=$?
    case "$status" in
        "$DAPT_FINISHED") echo finished ;;
        2) echo other-settings ;;
        "$DAPT_RUNNING_ELSEWHERE") echo running-elsewhere ;;
        *) echo todo ;;
    esac
}

job_command() {  # job_command JOB GPU: its main.sh command, as text
    local job=$1 dataset init shots seed extra_1 extra_2 vis_init epochs word tag vis_text=""
    eval "$READ_JOB"
    tag=$(job_tag "$epochs")
    job_overrides "$epochs"
    [[ "$vis_init" == random ]] || vis_text="VIS_INIT=$vis_init "
    printf '%s%sSEEDS=%s %sbash scripts/dapt_init/main.sh %s %s %s%s' "${DAPT_TRIAL:+TRIAL=1 }" \
        "${tag:+TAG=$tag }" "$seed" "$vis_text" "$dataset" "$init" "$shots" "${2:+ $2}"
    if ((${#JOB_OVERRIDES[@]} > 0)); then
        printf ' --'
        printf ' %q' "${JOB_OVERRIDES[@]}"
    fi
}

grid_text() {  # "2 datasets x 3 inits [x 2 visual inits] x 5 shots x 3 seeds [x 2 epochs]"
    local vis=""
    if ((${#VIS_INIT_LIST[@]} > 1)) || [[ "${VIS_INIT_LIST[0]}" != random ]]; then
        vis=" x ${#VIS_INIT_LIST[@]} visual inits"
    fi
    printf '%d datasets x %d inits%s x %d shots x %d seeds%s' "${#DATASET_LIST[@]}" \
        "${#INIT_LIST[@]}" "$vis" "${#SHOTS_LIST[@]}" "${#DAPT_SEEDS[@]}" \
        "${EPOCHS:+ x ${#EPOCH_LIST[@]} epochs}"
}

# ------------------------------------------------------------------------------------ dry run
if [[ "$MODE" == dry-run ]]; then
    declare -A n_state=([finished]=0 [todo]=0 [other-settings]=0 [running-elsewhere]=0)
    for ((j = 0; j < N_JOBS; j++)); do
        state=$(job_state "${JOBS[j]}")
        n_state[$state]=$((n_state[$state] + 1))
        printf 'job %d [%s]: %s\n' "$j" "$state" "$(job_command "${JOBS[j]}" GPU)"
    done
    # Every job in exactly one count: a folder finished with other settings is neither done
    # nor going to run (main.sh refuses it, naming the keys).
    summary="${n_state[finished]} finished, ${n_state[todo]} to run"
    if ((n_state[other-settings] > 0)); then
        summary+=", ${n_state[other-settings]} finished with other settings (refused: run main.sh"
        summary+=" for one of them to see the keys; another TAG or OUTPUT_ROOT keeps both)"
    fi
    if ((n_state[running-elsewhere] > 0)); then
        summary+=", ${n_state[running-elsewhere]} running elsewhere"
    fi
    printf '%d jobs (%s): %s\n' "$N_JOBS" "$(grid_text)" "$summary"
    if [[ -z "${DATA_ROOT:-}" && -z "${DAPT_TRIAL:-}" ]]; then
        echo "note: DATA_ROOT is not set; the jobs need it"
    fi
    exit 0
fi

# ------------------------------------------------------------------------------------- SLURM
if [[ "$MODE" == slurm ]]; then
    last=$((N_JOBS - 1))
    throttle=""
    if [[ -n "${SWEEP_MAX_PARALLEL:-}" ]]; then
        [[ "$SWEEP_MAX_PARALLEL" =~ ^[1-9][0-9]*$ ]] ||
            dapt_die "SWEEP_MAX_PARALLEL must be a positive integer, got '$SWEEP_MAX_PARALLEL'"
        throttle="%$SWEEP_MAX_PARALLEL"
    fi
    [[ "${SWEEP_CPUS:-8}" =~ ^[1-9][0-9]*$ ]] ||
        dapt_die "SWEEP_CPUS must be a positive integer, got '${SWEEP_CPUS}'"
    read -r -a extra_sbatch <<<"${SWEEP_SBATCH:-}"
    echo '#!/bin/bash'
    printf '#SBATCH --job-name=%s\n' "${SWEEP_JOB_NAME:-dapt_init}"
    printf '#SBATCH --array=0-%d%s\n' "$last" "$throttle"
    echo '#SBATCH --gres=gpu:1'
    printf '#SBATCH --cpus-per-task=%s\n' "${SWEEP_CPUS:-8}"
    printf '#SBATCH --time=%s\n' "${SWEEP_TIME:-24:00:00}"
    echo '#SBATCH --output=%x_%A_%a.out'
    echo '#SBATCH --open-mode=append'  # a requeued task keeps its first attempt's output
    echo '#SBATCH --requeue'  # pre-empted tasks restart and resume from their checkpoint
    for option in ${extra_sbatch[@]+"${extra_sbatch[@]}"}; do
        printf '#SBATCH %s\n' "$option"
    done
    cat <<EOF
#
# DAPT_Init study as a SLURM job array: $N_JOBS jobs ($(grid_text)), one per array task.
# Made by scripts/dapt_init/sweep.sh --slurm on $(date '+%Y-%m-%d %H:%M').
# Submit: sbatch <this file>.
# Each task runs main.sh for one dataset/init/shots/seed on the GPU SLURM gives it. Finished
# runs are skipped and unfinished ones resume, so resubmitting redoes only what is missing
# (or resubmit chosen tasks: sbatch --array=3,7 <this file>).
set -euo pipefail
EOF
    printf 'cd %q\n' "$DAPT_REPO_ROOT"
    if [[ -n "${DATA_ROOT:-}" ]]; then
        printf 'export DATA_ROOT=%q\n' "$DATA_ROOT"
    fi
    printf 'export OUTPUT_ROOT=%q\n' "$OUTPUT_ROOT"
    if [[ -n "${CODEBASE:-}" ]]; then
        printf 'export CODEBASE=%q\n' "$DAPT_CODEBASE"
    fi
    for name in CFG PYTHON TAG TRIAL; do
        if [[ -n "${!name:-}" ]]; then
            printf 'export %s=%q\n' "$name" "${!name}"
        fi
    done
    echo '# task index: "dataset init shots seed [vis-<visual init>] [ep<epochs>]"'
    echo 'JOBS=('
    for ((j = 0; j < N_JOBS; j++)); do
        printf '    "%s"  # %d\n' "${JOBS[j]}" "$j"
    done
    echo ')'
    echo ': "${SLURM_ARRAY_TASK_ID:?submit this file with sbatch (it is a job array)}"'
    echo 'echo "task $SLURM_ARRAY_TASK_ID (restart ${SLURM_RESTART_COUNT:-0}) on $(hostname), $(date)"'
    echo 'job=${JOBS[$SLURM_ARRAY_TASK_ID]}'
    printf '%s\n' "$READ_JOB"
    if [[ -n "${EPOCHS:-}" ]]; then
        overrides=$(dapt_overrides_text)
        printf 'TAG="${TAG:+${TAG}_}ep$epochs" SEEDS="$seed" VIS_INIT="$vis_init" exec bash'
        printf ' scripts/dapt_init/main.sh "$dataset" "$init" "$shots"%s OPTIM.MAX_EPOCH "$epochs"\n' \
            "${overrides:- --}"
    else
        printf 'SEEDS="$seed" VIS_INIT="$vis_init" exec bash scripts/dapt_init/main.sh "$dataset"'
        printf ' "$init" "$shots"%s\n' "$(dapt_overrides_text)"
    fi
    exit 0
fi

# -------------------------------------------------------------------------------- local pool
((BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 3))) ||
    dapt_die "the GPU pool needs bash 4.3 or newer (wait -n); this is $BASH_VERSION." \
        "Use --slurm, or run main.sh per job"

STATUS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dapt_init_sweep.XXXXXX")
declare -A SLOT_JOB=()  # slot (index into GPU_LIST) -> index of the job it runs
declare -A SLOT_PID=()  # slot -> pid of that job's subshell
FAILED=()
ELSEWHERE=()
N_RAN=0

kill_tree() {  # TERM a process and its descendants (the job subshell, main.sh, train.py)
    local child
    for child in $(pgrep -P "$1" 2>/dev/null || true); do
        kill_tree "$child"
    done
    kill -TERM "$1" 2>/dev/null || true
}

on_signal() {  # on_signal EXIT_STATUS
    trap - INT TERM
    echo "sweep: interrupted; stopping ${#SLOT_PID[@]} running job(s) (run the sweep again to" \
        "resume them)" >&2
    local slot
    for slot in "${!SLOT_PID[@]}"; do
        kill_tree "${SLOT_PID[$slot]}"
    done
    wait || true
    rm -rf -- "$STATUS_DIR"
    exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'rm -rf -- "$STATUS_DIR"' EXIT

job_log() {  # job_log JOB
    local job=$1 dataset init shots seed extra_1 extra_2 vis_init epochs word tag name
    eval "$READ_JOB"
    tag=$(job_tag "$epochs")
    name="${dataset}_$(dapt_init_folder "$init" "$vis_init")_${shots}shots${tag:+_$tag}"
    printf '%s' "$SWEEP_LOG_DIR/${name}_seed${seed}.log"
}

job_text() {  # job_text JOB: the job with its fields named (eurosat init=diff shots=4 seed=1)
    local job=$1 dataset init shots seed extra_1 extra_2 vis_init epochs word
    eval "$READ_JOB"
    printf '%s init=%s' "$dataset" "$init"
    [[ "$vis_init" == random ]] || printf ' vis_init=%s' "$vis_init"
    printf ' shots=%s seed=%s' "$shots" "$seed"
    [[ "$epochs" == - ]] || printf ' epochs=%s' "$epochs"
}

slot_name() {  # slot_name SLOT: "gpu N" or "cpu"
    local gpu=${GPU_LIST[$1]}
    if [[ "$gpu" == cpu ]]; then
        printf 'cpu'
    else
        printf 'gpu %s' "$gpu"
    fi
}

start_job() {  # start_job INDEX SLOT
    local index=$1 slot=$2 gpu=${GPU_LIST[$2]} job=${JOBS[$1]} dataset init shots seed extra_1
    local extra_2 vis_init epochs word log tag
    eval "$READ_JOB"
    log=$(job_log "$job")
    tag=$(job_tag "$epochs")
    job_overrides "$epochs"
    [[ "$gpu" != cpu ]] || gpu=""  # main.sh without a GPU: CUDA_VISIBLE_DEVICES left alone
    printf '[start] %s: job %d: %s (log: %s)\n' "$(slot_name "$slot")" "$index" \
        "$(job_command "${JOBS[index]}" "$gpu")" "$log"
    (
        status=0
        TAG="$tag" SEEDS="$seed" VIS_INIT="$vis_init" bash "$DAPT_SCRIPT_DIR/main.sh" "$dataset" \
            "$init" "$shots" "$gpu" -- ${JOB_OVERRIDES[@]+"${JOB_OVERRIDES[@]}"} </dev/null >>"$log" 2>&1 ||
            status=$?
        printf '%s\n' "$status" >"$STATUS_DIR/$index.tmp"
        mv -f -- "$STATUS_DIR/$index.tmp" "$STATUS_DIR/$index"
    ) &
    SLOT_JOB[$slot]=$index
    SLOT_PID[$slot]=$!
    N_RAN=$((N_RAN + 1))
}

finish_job() {  # finish_job SLOT STATUS
    local slot=$1 status=$2 index=${SLOT_JOB[$1]} name
    name=$(slot_name "$slot")
    unset 'SLOT_JOB[$slot]' 'SLOT_PID[$slot]'
    if [[ "$status" == 0 ]]; then
        printf '[done] %s: job %d: %s\n' "$name" "$index" "$(job_text "${JOBS[index]}")"
    elif [[ "$status" == "$DAPT_RUNNING_ELSEWHERE" ]]; then  # not a failure: another process has it
        printf '[running elsewhere] %s: job %d: %s\n' "$name" "$index" \
            "$(job_text "${JOBS[index]}")"
        ELSEWHERE+=("$index")
    else
        printf '[FAILED] %s: job %d: %s: exit status %s (log: %s)\n' "$name" "$index" \
            "$(job_text "${JOBS[index]}")" "$status" "$(job_log "${JOBS[index]}")"
        FAILED+=("$index:$status")
    fi
}

PENDING=()
for ((j = 0; j < N_JOBS; j++)); do
    state=$(job_state "${JOBS[j]}")
    if [[ "$state" == finished ]]; then
        printf 'skip (finished): job %d: %s\n' "$j" "$(job_text "${JOBS[j]}")"
    elif [[ "$state" == running-elsewhere ]]; then
        printf 'running elsewhere: job %d: %s\n' "$j" "$(job_text "${JOBS[j]}")"
        ELSEWHERE+=("$j")
    else  # todo, or other settings: main.sh then fails with the reason in the job's log
        PENDING+=("$j")
    fi
done
if [[ " ${GPU_LIST[*]} " == *" cpu "* ]]; then
    where="on the CPU ($(dapt_join ' ' "${GPU_LIST[@]}") slots)"
    ((${#GPU_LIST[@]} > 1)) || where="on the CPU, one at a time"
else
    where="on GPUs ${GPU_LIST[*]}"
fi
printf 'sweep: %d jobs, %d to run %s\n' "$N_JOBS" "${#PENDING[@]}" "$where"
if ((${#PENDING[@]} > 0)); then
    mkdir -p -- "$SWEEP_LOG_DIR"
fi

next=0
while ((next < ${#PENDING[@]} || ${#SLOT_JOB[@]} > 0)); do
    for slot in "${!GPU_LIST[@]}"; do
        if [[ -z "${SLOT_JOB[$slot]+set}" ]] && ((next < ${#PENDING[@]})); then
            start_job "${PENDING[next]}" "$slot"
            next=$((next + 1))
        fi
    done
    wait_status=0
    wait -n || wait_status=$?
    for slot in "${!SLOT_JOB[@]}"; do
        status_file="$STATUS_DIR/${SLOT_JOB[$slot]}"
        if [[ -f "$status_file" ]]; then
            finish_job "$slot" "$(<"$status_file")"
        elif ((wait_status == 127)); then  # no child left, yet no status: it was killed
            finish_job "$slot" "killed"
        fi
    done
done

if ((${#FAILED[@]} > 0)); then
    printf 'sweep: %d of %d jobs run failed:\n' "${#FAILED[@]}" "$N_RAN" >&2
    for entry in "${FAILED[@]}"; do
        index=${entry%%:*}
        printf '  job %d: %s: exit status %s (log: %s)\n' "$index" "$(job_text "${JOBS[index]}")" \
            "${entry#*:}" "$(job_log "${JOBS[index]}")" >&2
    done
    exit 1
fi
if ((${#ELSEWHERE[@]} > 0)); then
    printf 'sweep: %d jobs done or finished (%d run now), %d running elsewhere (not failures;' \
        "$((N_JOBS - ${#ELSEWHERE[@]}))" "$N_RAN" "${#ELSEWHERE[@]}"
    printf ' run the sweep again once they end)\n'
    exit 0
fi
printf 'sweep: all %d jobs finished (%d run now)\n' "$N_JOBS" "$N_RAN"
