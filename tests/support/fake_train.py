"""The fake python's train.py (tests/support/scripts_helpers.py): claims the run folder by the real
rule (run_folder.claim, the finished rule once under the lock, as train.py and the trainer
do), then records the call in FAKE_LOG and writes the result.json a finished run of this
command would have (its real fingerprint, weights and spec); trains nothing."""
from __future__ import annotations

import json
import os
import sys

import train
from study.command import resolve_command
from study.config import command_identity
from trainers.dapt_init import run_folder, runstate

args = train.parse_args(sys.argv[1:])
out = args.output_dir
try:
    cfg = resolve_command(args).cfg
    identity = command_identity(cfg, args)
except Exception:  # a host's configs: its own trainer keys are unknown here
    identity = None
claim = run_folder.claim(out, identity)
if claim.skip:
    print(claim.message)
    sys.exit(runstate.SUCCESS)
if claim.status == runstate.RUNNING_ELSEWHERE:
    print(f"running elsewhere: {claim.message}")
    sys.exit(runstate.RUNNING_ELSEWHERE)
if claim.refused:
    print(f"error: {claim.message}", file=sys.stderr)
    sys.exit(runstate.USER_ERROR)
if identity is None and os.path.isfile(os.path.join(out, runstate.RESULT_FILE)):
    print(f"skip (finished): {out}")  # a host's run: its trainer compares; here, presence
    sys.exit(runstate.SUCCESS)
if os.environ.get("FAKE_LOG"):
    with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as log:
        gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        log.write(f"{gpu}|train.py {' '.join(sys.argv[1:])}\n")
if os.environ.get("FAKE_CWD"):
    with open(os.environ["FAKE_CWD"], "a", encoding="utf-8") as log:
        log.write(os.getcwd() + "\n")
if os.environ.get("FAKE_FAIL") and os.environ["FAKE_FAIL"] in out:
    print("fake failure", file=sys.stderr)
    sys.exit(7)
record = {"metrics": {"accuracy": 50.0}}
if identity is not None:
    record.update(fingerprint=identity.fingerprint, fingerprint_keys=identity.keys,
                  clip={"weights": identity.weights})
if args.spec:
    record["spec"] = json.loads(args.spec)
with open(os.path.join(out, runstate.RESULT_FILE), "w", encoding="utf-8") as file:
    json.dump(record, file)
