#!/usr/bin/env bash
# The whole study: datasets x inits x visual inits x shots x seeds (x epochs), one main.sh job
# per combination, run on a pool of GPUs (one job per GPU at a time) or emitted as a SLURM job
# array. A job is "DATASET INIT SHOTS SEED", plus " vis-<v>" when its visual init is not
# random and " ep<N>" in an EPOCHS grid.
# The sweep is study/sweep.py (`bash scripts/dapt_init/sweep.sh --help`): same variables,
# plus --grid KEY=V1,V2 over any config key.
cd "$(dirname -- "${BASH_SOURCE[0]}")/../.." && DAPT_CALLER_DIR=$OLDPWD exec "${STUDY_PYTHON:-python3}" -m study sweep "$@"
