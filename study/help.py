"""Usage lines and --help texts of the scripts in scripts/dapt_init/ (they ask for them here)."""

USAGE = {
    'main': 'bash scripts/dapt_init/main.sh DATASET INIT SHOTS [GPU] [--dry-run] [-- KEY VALUE ...]',
    'eval': 'bash scripts/dapt_init/eval.sh INIT SHOTS [GPU] [--dry-run] [-- KEY VALUE ...]',
    'base2new_train': 'bash scripts/dapt_init/base2new_train.sh DATASET INIT [GPU] [--dry-run] [-- KEY VALUE ...]',
    'base2new_test': 'bash scripts/dapt_init/base2new_test.sh DATASET INIT [GPU] [--dry-run] [-- KEY VALUE ...]',
    'sweep': ('bash scripts/dapt_init/sweep.sh [--dry-run | --slurm] [--grid KEY=V1,V2,... ...] '
              '[-- KEY VALUE ...]'),
}

HELP = {
    'main': """\
Trains DAPT_Init on DATASET (e.g. eurosat) with text-prompt init INIT (random, same, diff)
and SHOTS images per class, once per seed, into
  $OUTPUT_ROOT/DATASET/DAPT_Init/INIT/<cfg>_<SHOTS>shots/seed<k>/
(INIT_vis-<VIS_INIT> instead of INIT when VIS_INIT is not random).
GPU (optional) sets CUDA_VISIBLE_DEVICES. Words after "--" are KEY VALUE config overrides
passed to train.py (paths in them are relative to the repository root).

A run is finished when its result.json records these settings (same fingerprint and CLIP
weights; decided once, under the run folder's lock); it is then skipped with one line. A finished run
with other settings stops the script with one error line naming the keys. An unfinished run is
run again with the same command and resumes from its last checkpoint, bit for bit. A run that
another process holds (its folder is locked) is noted and left alone; the script then exits 4.
The first failing run stops the script with its exit status. Runs from any directory.
--dry-run prints each seed's train.py command (and whether it is finished) and runs nothing.

Environment:
  DATA_ROOT    (required) folder holding the data sets (eurosat/, oxford_pets/, ...)
  SEEDS        seeds to run (default "1 2 3")
  CFG          trainer config in configs/trainers/DAPT_Init/ (default by shots: 1 ->
               vit_b16_ep50, 2 and 4 -> vit_b16_ep100, 8 and 16 -> vit_b16; imagenet ->
               vit_b16_ep50)
  VIS_INIT     visual-prompt init: random (DAPT's, default), same or diff (from CLIP's CLS
               embedding; TRAINER.DAPT_INIT.VIS_INIT_METHOD)
  OUTPUT_ROOT  output folder (default: <repository>/output)
  PYTHON       interpreter for train.py (default: python)
  STUDY_PYTHON interpreter for the script itself, python -m study (default: python3; with
               the project's requirements and the toolbox)
  TAG          appended to the run folder: <cfg>_<SHOTS>shots_<TAG> (e.g. TAG=ep25 for a
               25-epoch variant: -- OPTIM.MAX_EPOCH 25)
  GRID         one point of a sweep's grid, "KEY=VALUE ..." (what sweep.sh --grid gives each
               job): each KEY VALUE is an override and tags the folder after TAG, e.g.
               GRID="OPTIM.MAX_EPOCH=25 TRAINER.DAPT_INIT.VIS_BETA=1" ->
               <cfg>_<SHOTS>shots_ep25_vis_beta1; result.json's "spec" records the values
  CODEBASE     another CoOp-family codebase with the drop-in unit: its train.py, configs/
               and output/ are used (default: this repository)
  TRIAL        1: try it on any CPU with nothing downloaded: the demo's small random CLIP and
               tiny EuroSAT (<repository>/demo_output, made when missing; DATA_ROOT not
               needed), config demo_small (3 epochs), seeds "1 2", folders tagged "trial" under
               <repository>/output_trial. Its accuracy means nothing.

Examples: TRIAL=1 bash scripts/dapt_init/main.sh eurosat diff 4
          DATA_ROOT=/data bash scripts/dapt_init/main.sh eurosat diff 4 0""",
    'eval': """\
Tests the prompts trained by "main.sh imagenet INIT SHOTS", i.e. the runs in
  $OUTPUT_ROOT/imagenet/DAPT_Init/INIT/<cfg>_<SHOTS>shots/seed<k>/
(--eval-only, loading the checkpoint of the config's last epoch) on each target data set, into
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
  LOAD_EPOCH   checkpoint epoch to load (default: the config's MAX_EPOCH, or OPTIM.MAX_EPOCH
               among the overrides)
  OUTPUT_ROOT  output folder (default: <repository>/output)
  PYTHON       interpreter for train.py (default: python)
  TAG          run-folder tag, as in main.sh (the trained models are looked up with it too)

Example: DATA_ROOT=/data bash scripts/dapt_init/eval.sh diff 16 0""",
    'base2new_train': """\
Trains DAPT_Init with 16 shots on the base classes (DATASET.SUBSAMPLE_CLASSES base) of
DATASET with text-prompt init INIT, once per seed, into
  $OUTPUT_ROOT/base2new/train_base/DATASET/shots_16/DAPT_Init/INIT/<cfg>/seed<k>/
Its final test is on the base classes; base2new_test.sh then tests on the new ones.
GPU (optional) sets CUDA_VISIBLE_DEVICES. Words after "--" are KEY VALUE config overrides
passed to train.py. Finished runs are skipped, unfinished ones resume; the first failure stops
the script with its exit status.

Environment:
  DATA_ROOT    (required) folder holding the data sets
  SEEDS        seeds (default "1 2 3")
  VIS_INIT     visual-prompt init of the runs (random, same, diff; default random): the
               INIT folder becomes INIT_vis-<VIS_INIT> when it is not random
  CFG          trainer config (default vit_b16, the 16-shot one; imagenet: vit_b16_ep50)
  OUTPUT_ROOT  output folder (default: <repository>/output)
  PYTHON       interpreter for train.py (default: python)
  TAG          run-folder tag, as in main.sh

Example: DATA_ROOT=/data bash scripts/dapt_init/base2new_train.sh eurosat diff 0""",
    'base2new_test': """\
Tests the prompts trained by "base2new_train.sh DATASET INIT", i.e. the runs in
  $OUTPUT_ROOT/base2new/train_base/DATASET/shots_16/DAPT_Init/INIT/<cfg>/seed<k>/
(--eval-only, loading the checkpoint of the config's last epoch) on the new half of the
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
  LOAD_EPOCH   checkpoint epoch to load (default: the config's MAX_EPOCH, or OPTIM.MAX_EPOCH
               among the overrides)
  OUTPUT_ROOT  output folder (default: <repository>/output)
  PYTHON       interpreter for train.py (default: python)
  TAG          run-folder tag, as in main.sh (the trained models are looked up with it too)

Example: DATA_ROOT=/data bash scripts/dapt_init/base2new_test.sh eurosat diff 0""",
    'sweep': """\
Runs every job of the study with main.sh ([TAG=<tag>] SEEDS=<seed> [VIS_INIT=<v>]
[GRID="KEY=VALUE ..."] main.sh DATASET INIT SHOTS GPU), keeping each GPU of GPUS busy with one
job at a time. Each job's output
goes to $SWEEP_LOG_DIR/<dataset>_<init>[_vis-<v>]_<shots>shots[_<tag>]_seed<k>.log. Finished runs are skipped (so a
re-run of the sweep does only what is missing, and resumes what was cut off); finished is
as main.sh decides under the run folder's lock (same settings and CLIP weights). A job whose
folder another process holds (its lock) is "running elsewhere": left alone, not a failure.
When a job fails the others still run; the sweep then lists the failed jobs and exits with
status 1.
Words after "--" are KEY VALUE config overrides passed to every run. Ctrl-C, SIGTERM or
SIGHUP (a closed terminal) is forwarded to the running jobs (each runs in a process group of
its own); the sweep waits for them to stop, prints one "error: interrupted" line and exits
130 (143, 129); a second one kills them.
Before any job starts (--dry-run and --slurm too), the whole sweep is checked: every grid key
exists, every value and override passes train.py's rules (type, range, finite; an integer is
fine for a decimal key), no list holds a value twice (1 and 1.0 are one value), no two jobs
share a run folder, at most 10000 jobs (a SLURM array: 1001). A problem is one error line
(exit 2) and no job runs.

  --dry-run   print the jobs, each with its folder (and which are finished already); run
              nothing
  --grid KEY=V1,V2,...   run every job once per value of config key KEY (repeat it for
              more keys: every combination), each into its own folder tagged after TAG with
              one word per value, <last part of KEY, lower case><V> (OPTIM.MAX_EPOCH: ep<V>).
              Loss balancing: --grid TRAINER.DAPT_INIT.VIS_BETA=0.01,0.1,1
              --grid TRAINER.DAPT_INIT.TXT_BETA=0.01,0.1,1 (folders ..._vis_beta0.1_txt_beta1);
              epochs: --grid OPTIM.MAX_EPOCH=25,50,100 (as EPOCHS). Each job gets its values
              as main.sh's GRID; result.json's "spec" records them
  --slurm     print a SLURM job-array batch script instead (one array task per job; save it
              and submit it with sbatch)

Environment (lists are space-separated):
  DATASETS     default "eurosat oxford_pets" (TRIAL=1: "eurosat")
  INITS        default "random same diff"
  VIS_INITS    visual-prompt inits (random, same, diff), default "$VIS_INIT" or "random";
               not random adds "_vis-<v>" to a run's init folder (main.sh's VIS_INIT)
  SHOTS        default "1 2 4 8 16" (TRIAL=1: "1 2 4")
  SEEDS        default "1 2 3" (TRIAL=1: "1 2")
  EPOCHS       optional epoch grid, e.g. "25 50 100": each job runs once per value N with
               OPTIM.MAX_EPOCH N into its own folder, tagged "ep<N>" (<cfg>_<shots>shots_ep<N>)
  TAG          appended to every run folder (with a grid: "<TAG>_ep<N>", ...)
  GPUS         GPUs to use, one job each at a time (default "0", or "cpu" where nvidia-smi
               lists no GPU: one job at a time on the CPU); e.g. "0 1 2 3"
               (name a GPU twice, "0 0 1 1", to run two jobs on each)
  DATA_ROOT    (required to run; baked into the --slurm script when set) data set folder
  CFG          trainer config for every job (default: chosen by shots, as in main.sh)
  OUTPUT_ROOT  output folder (default: <repository>/output)
  SWEEP_LOG_DIR  per-job logs (default: $OUTPUT_ROOT/sweep_logs)
  PYTHON       interpreter for train.py (default: python)
  STUDY_PYTHON interpreter for the sweep itself and the jobs' checks, python -m study
               (default: python3; it applies train.py's finished rule, so it needs the
               project's requirements and the toolbox)
  CODEBASE     another CoOp-family codebase with the drop-in unit (see main.sh --help)
  TRIAL        1: a trial on any CPU with the demo's small CLIP and tiny data (see main.sh
               --help), into <repository>/output_trial, tagged "trial"
  --slurm only: SWEEP_JOB_NAME (dapt_init; letters, digits, . _ + -), SWEEP_TIME
               (24:00:00; SLURM's formats: MINUTES, HH:MM:SS, DAYS-HH[:MM[:SS]]), SWEEP_CPUS (8),
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
  DATASETS=eurosat bash scripts/dapt_init/sweep.sh --dry-run --grid OPTIM.MAX_EPOCH=25,50
  DATA_ROOT=/data bash scripts/dapt_init/sweep.sh --slurm > dapt_init.sbatch
  sbatch dapt_init.sbatch""",
}
