#!/usr/bin/env bash
# One-command set-up: the project's requirements, what the Dassl toolbox imports, the toolbox
# itself at the pinned upstream commit, then a check that dassl and clip import.
#
#   bash scripts/setup.sh                                   # toolbox from GitHub
#   TOOLBOX_SRC=/path/Dassl.pytorch-c61a1b5.tar.gz bash scripts/setup.sh   # offline: archive
#   TOOLBOX_SRC=/path/Dassl.pytorch bash scripts/setup.sh   # or a clone at the pinned commit
#   bash scripts/setup.sh --cpu                             # CPU-only torch (no CUDA libraries)
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu bash scripts/setup.sh  # an index you name
#
# Installs into the environment of PYTHON (default: python3; activate a virtual environment
# first to keep it there). Safe to run again: what is installed already is left as it is.
# A failed step ends with one "error:" line naming the step.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
fail() {
    printf 'error: %s\n' "$*" >&2
    exit "${FAIL_STATUS:-1}"
}

# torch from the index PyPI serves is the CUDA build (~3 GB of CUDA libraries on Linux): --cpu
# takes torch and torchvision from PyTorch's CPU wheel index instead, TORCH_INDEX_URL from an
# index the user names (a mirror, another CUDA version). Installed first, so step 1 finds them.
CPU_INDEX_URL=https://download.pytorch.org/whl/cpu
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}
for arg in "$@"; do
    case $arg in
        --cpu) TORCH_INDEX_URL=${TORCH_INDEX_URL:-$CPU_INDEX_URL} ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) FAIL_STATUS=2 fail "unknown argument '$arg' (setup.sh takes --cpu; TORCH_INDEX_URL and TOOLBOX_SRC are variables)" ;;
    esac
done
if [[ -n $TORCH_INDEX_URL && ! $TORCH_INDEX_URL =~ ^(https?|file)://[^[:space:]]+$ ]]; then
    FAIL_STATUS=2 fail "TORCH_INDEX_URL must be the URL of a pip index (e.g. $CPU_INDEX_URL), got '$TORCH_INDEX_URL'"
fi

command -v "$PYTHON" >/dev/null 2>&1 || FAIL_STATUS=2 fail "no '$PYTHON' on PATH: set PYTHON to a Python 3.10+ interpreter"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    FAIL_STATUS=2 fail "$("$PYTHON" -V 2>&1) is too old: DAPT_Init needs Python 3.10 or newer (set PYTHON=python3.11, or use such a virtual environment)"
"$PYTHON" -m pip --version >/dev/null 2>&1 || FAIL_STATUS=2 fail "$PYTHON has no pip: install it (python -m ensurepip) or use a virtual environment"

# pip install showing what it fetches and installs as it goes (a first install downloads torch:
# minutes, which --quiet spent in silence) but not the lines for what is installed already, so
# a second run stays short. Returns pip's status.
pip_install_shown() {
    "$PYTHON" -m pip install --disable-pip-version-check --progress-bar off "$@" 2>&1 |
        { grep --line-buffered -v -e '^Requirement already satisfied' -e '^  Using cached' || true; }
    return "${PIPESTATUS[0]}"
}

if [[ -n $TORCH_INDEX_URL ]]; then
    echo "[0/4] torch and torchvision from $TORCH_INDEX_URL"
    # The versions requirements.txt asks for, from that index only (no CUDA build from PyPI).
    torch_reqs=$(grep -E '^(torch|torchvision)[<>=!~ ]' requirements.txt)
    # shellcheck disable=SC2086  # one requirement per word: they hold no spaces
    pip_install_shown --index-url "$TORCH_INDEX_URL" $torch_reqs ||
        fail "step 0/4: pip could not install torch from TORCH_INDEX_URL=$TORCH_INDEX_URL (its output is above)"
fi

echo "[1/4] requirements.txt and the toolbox's runtime imports (requirements-toolbox.txt)"
pip_install_shown -r requirements.txt -r requirements-toolbox.txt ||
    fail "step 1/4: pip could not install requirements.txt / requirements-toolbox.txt (its output is above; no access to the package index?)"

echo "[2/4] the Dassl toolbox, pinned to upstream commit c61a1b5 (0.6.3)"
"$PYTHON" tools/install_toolbox.py || exit $?

echo "[3/4] this repository, installed in editable mode (its packages import from any folder)"
# Idempotent: skipped when pip already records an editable install of this checkout.
if ! "$PYTHON" - "$PWD" <<'PY'
import json, sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
try:
    info = json.loads(distribution("dapt-init").read_text("direct_url.json") or "{}")
except PackageNotFoundError:
    sys.exit(1)
url = info.get("url", "")
editable = info.get("dir_info", {}).get("editable", False)
sys.exit(0 if editable and url == Path(sys.argv[1]).resolve().as_uri() else 1)
PY
then
    pip_install_shown --no-deps --no-build-isolation -e . ||
        fail "step 3/4: pip could not install this repository in editable mode (its output is above)"
    rm -rf dapt_init.egg-info
fi

echo "[4/4] check"
"$PYTHON" - <<'PY' || fail "step 4/4: dassl or clip does not import (the traceback is above)"
import warnings
warnings.filterwarnings("ignore")
from importlib.metadata import version
import torch, dassl, clip  # noqa: F401,E401
print(f"ok: torch {torch.__version__}, dassl {dassl.__version__}, "
      f"openai-clip {version('openai-clip')}, CUDA {'yes' if torch.cuda.is_available() else 'no'}")
PY
# The repository's packages must import from outside the checkout (the editable install).
(cd / && "$PYTHON" -c 'import study, results, reporting, trainers.dapt_init') ||
    fail "step 4/4: this repository's packages do not import outside the checkout (is step 3/4's editable install in another environment?)"
