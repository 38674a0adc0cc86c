"""What main.sh, eval.sh and base2new_*.sh ask before their loop over seeds: every check and
rule, and the runs as shell assignments (the folder, the train.py command of each seed)."""
from __future__ import annotations

import os
import shlex
from dataclasses import replace
from typing import Mapping

from trainers.dapt_init import runstate
from trainers.dapt_init.runstate import FINISHED, NOT_FINISHED, OTHER_SETTINGS

from .help import HELP, USAGE
from .plan import (Setup, bash_quote, check_arg_count, check_dataset, check_gpu, check_init,
                   check_overrides, check_shots, require_data_root, run_overrides, run_state,
                   setup, split_args, train_argv)
from .run import (BASE2NEW_SHOTS, DG_TARGETS, EVAL_SOURCE, VIS_INIT_KEY, RunSpec, StudyError,
                   choose_config, config_epochs, full_tag)

# script -> (kind, positional arguments: min, max)
SCRIPTS = {"main": ("train", 3, 4), "eval": ("eval", 2, 3),
           "base2new_train": ("base2new_train", 2, 3), "base2new_test": ("base2new_test", 2, 3)}


def plan_script(script: str, argv: list[str], env: Mapping[str, str], caller: str) -> str:
    kind, low, high = SCRIPTS[script]
    words, overrides, wants_help = split_args(argv)
    if wants_help:
        return f"printf 'usage: %s\\n\\n%s\\n' {shlex.quote(USAGE[script])} {shlex.quote(HELP[script])}; exit 0"
    s = setup(env, caller)
    check_arg_count(words, low, high)
    if kind == "eval":
        dataset, (init, shots_text), gpu = EVAL_SOURCE, words[:2], words[2:3]
    elif kind == "train":
        dataset, init, shots_text, gpu = words[0], words[1], words[2], words[3:4]
        check_dataset(dataset, True, s.codebase)
    else:
        dataset, init, shots_text, gpu = words[0], words[1], str(BASE2NEW_SHOTS), words[2:3]
        check_dataset(dataset, True, s.codebase)
    check_init(init)
    vis_init = s.grid.get(VIS_INIT_KEY) or s.get("VIS_INIT", "random")
    check_init(vis_init, visual=True)
    shots = check_shots(shots_text)
    gpu_text = gpu[0] if gpu else ""
    check_gpu(gpu_text)
    s.overrides = overrides
    check_overrides(overrides, s.grid)
    config = choose_config(dataset, shots, s.cfg(), s.codebase)
    # The visual init is a field of its own, not a grid value (GRID may name it).
    grid = {k: v for k, v in s.grid.items() if k != VIS_INIT_KEY}
    spec = RunSpec(kind, dataset, init, vis_init, config, shots, 0, full_tag(s.tag, grid), grid)
    epochs = 0
    targets = [dataset]
    if kind in ("eval", "base2new_test"):
        epochs = config_epochs(config, run_overrides(s), s.get("LOAD_EPOCH"), s.codebase)
    if kind == "eval":
        targets = s.get("TARGETS", " ".join(DG_TARGETS)).split()
        if not targets:
            raise StudyError("TARGETS is empty")
        for target in targets:
            check_dataset(target, False, s.codebase)
    require_data_root(s, caller)
    os.chdir(s.codebase)  # the train.py commands' paths are relative to the codebase
    lines = [f"DAPT_CODEBASE={shlex.quote(str(s.codebase))}",
             f"DAPT_GPU={shlex.quote(gpu_text)}",
             f"DAPT_HAS_CHECK_FINISHED={'1' if s.has_check_finished else ''}",
             # train.py's exit statuses, from their one definition (the loop tests them).
             f"DAPT_FINISHED={runstate.FINISHED} DAPT_NOT_FINISHED={runstate.NOT_FINISHED} "
             f"DAPT_RUNNING_ELSEWHERE={runstate.RUNNING_ELSEWHERE} "
             f"DAPT_USER_ERROR={runstate.USER_ERROR} DAPT_INTERRUPTED={runstate.INTERRUPTED}"]
    runs = []
    if kind in ("eval", "base2new_test"):
        check_models(spec, s, script, words)
    for target in targets:
        for seed in s.seeds:
            run = replace(spec, dataset=target, seed=seed)
            model = run.model_spec()
            model_dir = model.folder(s.output_root) if model else ""
            runs.append(train_argv(run, s, model_dir, epochs))
    lines.append(f"DAPT_RUNS={len(runs)}")
    for i, argv in enumerate(runs):
        lines.append(f"DAPT_DIR_{i}={shlex.quote(argv[argv.index('--output-dir') + 1])}")
        lines.append(f"DAPT_CMD_{i}=({shlex.join(argv)})")
    return "\n".join(lines)


def check_models(spec: RunSpec, s: Setup, script: str, words: list[str]) -> None:
    """Every model an evaluation loads must be a finished training run (the finished rule of
    its training command), before anything runs."""
    model = spec.model_spec()
    train_script = "main.sh" if spec.kind == "eval" else "base2new_train.sh"
    how = train_hint(s, train_script, [model.dataset, spec.init] +
                     ([str(spec.shots)] if spec.kind == "eval" else []))
    for seed in s.seeds:
        run = replace(model, seed=seed)
        folder = run.folder(s.output_root)
        if not os.path.isdir(folder):
            raise StudyError(f"trained model folder {folder} is missing; train it first with: "
                             f"{how}")
        status, message = run_state(train_argv(run, s), s)
        if status == OTHER_SETTINGS:
            raise StudyError(message)
        if status != FINISHED:
            raise StudyError(f"trained model folder {folder} holds an unfinished run; finish it "
                             f"with: {how}")


def train_hint(s: Setup, script: str, args: list[str]) -> str:
    """The command line (this environment, the overrides) that makes the models needed."""
    words = [f"DATA_ROOT={bash_quote(s.data_root)}", f"OUTPUT_ROOT={bash_quote(s.output_root)}",
             f"SEEDS={bash_quote(' '.join(map(str, s.seeds)))}"]
    if s.cfg():
        words.append(f"CFG={bash_quote(s.cfg())}")
    if s.get("VIS_INIT", "random") != "random":
        words.append(f"VIS_INIT={bash_quote(s.get('VIS_INIT'))}")
    words += ["bash", f"scripts/dapt_init/{script}", *map(bash_quote, args)]
    over = run_overrides(s)
    return " ".join(words + (["--", *map(bash_quote, over)] if over else []))


__all__ = ["plan_script", "NOT_FINISHED"]
