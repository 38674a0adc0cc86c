"""The fake python's train.py (tests/scripts_helpers.py): writes the result.json a finished run
of this command would have (its real fingerprint, weights and spec), trains nothing."""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import train  # noqa: E402
from trainers.dapt_init import runstate  # noqa: E402

args = train.parse_args(sys.argv[1:])
out = args.output_dir
os.makedirs(out, exist_ok=True)
try:
    _, identity = train.resolved_run(args)
except Exception:  # a host's configs: only result.json's presence counts there
    identity = None
record = {"metrics": {"accuracy": 50.0}}
if identity is not None:
    record.update(fingerprint=identity.fingerprint, fingerprint_keys=identity.keys,
                  clip={"weights": identity.weights})
if args.spec:
    record["spec"] = json.loads(args.spec)
with open(os.path.join(out, runstate.RESULT_FILE), "w", encoding="utf-8") as file:
    json.dump(record, file)
