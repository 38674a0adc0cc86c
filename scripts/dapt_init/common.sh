# shellcheck shell=bash
# Shared by main.sh, eval.sh and base2new_*.sh (source it): they loop over the runs that
# `python -m study plan` lists (every check, rule and folder is there, in study/), asking
# train.py --check-finished before each. Environment: see any script's --help; PYTHON runs
# train.py, STUDY_PYTHON (default python3) the study's own helper.
DAPT_REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)"
# train.py's exit statuses (DAPT_FINISHED, ...) come with the plan, from runstate.py. Before
# it, an interrupt ends with the shell's own status for SIGINT (128 + 2).
DAPT_INTERRUPTED=130
DAPT_ELSEWHERE=()

dapt_on_interrupt() {  # Ctrl-C between runs: one line, status 130
    printf 'error: interrupted (SIGINT); run the same command again: finished runs are' >&2
    printf ' skipped and an unfinished one resumes from its last checkpoint\n' >&2
    exit "$DAPT_INTERRUPTED"
}
trap dapt_on_interrupt INT

dapt_die() {
    printf 'error: %s\n' "$*" >&2
    exit 2
}

# dapt_plan SCRIPT ARG...: the checked settings and runs (DAPT_RUNS, DAPT_CMD_<i>), then cd.
dapt_plan() {
    local plan status=0 study_python=${STUDY_PYTHON:-python3}
    DAPT_PYTHON=${PYTHON:-$(command -v python >/dev/null 2>&1 && echo python || echo python3)}
    command -v "$DAPT_PYTHON" >/dev/null 2>&1 ||
        dapt_die "python interpreter '$DAPT_PYTHON' not found; set PYTHON to the one with the" \
            "project's requirements installed"
    plan=$(cd "$DAPT_REPO_ROOT" && DAPT_CALLER_DIR=$OLDPWD "$study_python" -m study plan "$@") ||
        status=$?
    ((status == 0)) || exit "$status"
    eval "$plan"
    cd "$DAPT_CODEBASE"
    [[ -z "$DAPT_GPU" ]] || export CUDA_VISIBLE_DEVICES="$DAPT_GPU"
}

# dapt_check_run DIR PYTHON train.py ARG...: train.py's finished rule (it prints the verdict);
# a host's train.py without it: a result.json is all there is to go by.
dapt_check_run() {
    local dir=$1 status=0
    shift
    [[ -e "$dir" ]] || return "$DAPT_NOT_FINISHED"
    if [[ -z "$DAPT_HAS_CHECK_FINISHED" ]]; then
        [[ -f "$dir/result.json" ]] || return "$DAPT_NOT_FINISHED"
        printf 'skip (finished): %s (result.json present; %s/train.py has no' "$dir" \
            "$DAPT_CODEBASE"
        printf ' --check-finished, so its settings were not compared)\n'
        return "$DAPT_FINISHED"
    fi
    "$1" "$2" --check-finished "${@:3}" || status=$?
    return "$status"
}

# dapt_run_step DIR COMMAND...: skip a finished run, stop on other settings, note one another
# process holds, else print and run it (train.py resumes an unfinished one).
dapt_run_step() {
    local dir=$1 status check=0
    shift
    dapt_check_run "$dir" "$@" || check=$?
    case "$check" in
        "$DAPT_FINISHED") return 0 ;;
        "$DAPT_RUNNING_ELSEWHERE") DAPT_ELSEWHERE+=("$dir") && return 0 ;;
        "$DAPT_NOT_FINISHED") ;;
        *) exit "$check" ;;  # train.py printed the error line
    esac
    [[ ! -d "$dir" ]] || printf 'unfinished run in %s: running it again (%s)\n' "$dir" \
        "train.py resumes from its last checkpoint"
    printf '+'
    [[ -z "${CUDA_VISIBLE_DEVICES+set}" ]] || printf ' CUDA_VISIBLE_DEVICES=%q' "$CUDA_VISIBLE_DEVICES"
    printf ' %q' "$@"
    printf '\n'
    status=0
    trap ':' INT  # while train.py runs, Ctrl-C is its to report (one line, status 130)
    "$@" || status=$?
    trap dapt_on_interrupt INT
    ((status != DAPT_INTERRUPTED)) || exit "$status"
    if ((status == DAPT_USER_ERROR)); then
        # Refused because another process holds the folder, or finished it meanwhile (two
        # identical sweeps)? Then not a failure: running elsewhere, or done elsewhere.
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
        exit "$status"
    fi
    if ((status != 0)); then
        printf 'error: exit status %s from the run in %s; fix the cause and re-run the same' \
            "$status" "$dir" >&2
        printf ' command (finished runs are skipped, this one resumes)\n' >&2
        exit "$status"
    fi
}

# dapt_run_all SCRIPT ARG...: the script's whole body: plan, then each seed's run in turn.
# Runs another process holds are not failures, but the exit status is then 4.
dapt_run_all() {
    local i
    dapt_plan "$@"
    for ((i = 0; i < DAPT_RUNS; i++)); do
        local -n dir="DAPT_DIR_$i" cmd="DAPT_CMD_$i"
        dapt_run_step "$dir" "$DAPT_PYTHON" "${cmd[@]}"
        unset -n dir cmd
    done
    if ((${#DAPT_ELSEWHERE[@]} > 0)); then
        printf 'note: %d run(s) are running elsewhere; run this again once they end\n' \
            "${#DAPT_ELSEWHERE[@]}"
        exit "$DAPT_RUNNING_ELSEWHERE"
    fi
    exit 0
}
