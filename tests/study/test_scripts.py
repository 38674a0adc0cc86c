"""The experiment scripts in scripts/dapt_init/ (main, sweep, eval, base2new_train/test).

Most tests run the scripts with ``bash`` and a stand-in for python (``fake_python`` below) that
records each train.py command and leaves a finished run behind, so argument checks, config
choice, folder layout, skip/resume and the GPU pool are tested without the toolbox. The tests
marked ``requires_toolbox`` run the real train.py on tiny generated data with a small random
CLIP. Every script runs with a working directory outside the repository (they cd there).
"""
from __future__ import annotations


import pytest

from tests.support.scripts_helpers import arg, error_lines, fake  # noqa: F401  (fake: a fixture)

BAD_INPUT = [
    # (script, args, environment changes, expected message)
    ("main.sh", [], {}, "expected 3 to 4 arguments"),
    ("main.sh", ["eurosat", "diff"], {}, "expected 3 to 4 arguments"),
    ("main.sh", ["eurosat", "diff", "1", "0", "OPTIM.LR", "1"], {}, "expected 3 to 4 arguments"),
    ("main.sh", ["cifar10", "diff", "1"], {},
     ("unknown dataset 'cifar10'; valid datasets: caltech101 dtd eurosat fgvc_aircraft food101 "
      "imagenet oxford_flowers oxford_pets stanford_cars sun397 ucf101")),
    ("main.sh", ["imagenet_a", "diff", "1"], {}, "'imagenet_a' is a test-only target set"),
    ("main.sh", ["eurosat", "sideways", "1"], {},
     "unknown init method 'sideways'; valid init methods: random same diff"),
    ("main.sh", ["eurosat", "diff", "0"], {}, "shots must be a positive integer"),
    ("main.sh", ["eurosat", "diff", "-4"], {}, "shots must be a positive integer"),
    ("main.sh", ["eurosat", "diff", "two"], {}, "shots must be a positive integer"),
    ("main.sh", ["eurosat", "diff", "1.5"], {}, "shots must be a positive integer"),
    ("main.sh", ["eurosat", "diff", "3"], {}, "no default trainer config for 3 shots"),
    ("main.sh", ["eurosat", "diff", "1"], {"CFG": "vit_b99"},
     "unknown trainer config CFG='vit_b99'; valid configs"),
    ("main.sh", ["eurosat", "diff", "1"], {"DATA_ROOT": ""}, "DATA_ROOT is not set"),
    ("main.sh", ["eurosat", "diff", "1"], {"DATA_ROOT": "/nonexistent/data"},
     "DATA_ROOT='/nonexistent/data' is not a directory"),
    ("main.sh", ["eurosat", "diff", "1"], {"SEEDS": "1 two"}, "SEEDS must be non-negative"),
    ("main.sh", ["eurosat", "diff", "1", "0;ls"], {}, "GPU must be a device index"),
    ("main.sh", ["eurosat", "diff", "1", "--", "OPTIM.LR"], {}, "come in KEY VALUE pairs"),
    ("main.sh", ["eurosat", "diff", "1", "--", "--eval-only", "x"], {},
     "'--eval-only' is not a config key"),
    ("main.sh", ["eurosat", "diff", "1", "--", "DATASET.NUM_SHOTS", "4"], {},
     "DATASET.NUM_SHOTS is set by this script from the SHOTS argument"),
    ("main.sh", ["eurosat", "diff", "1", "--", "SEED", "4"], {}, "SEED is set by this script"),
    ("eval.sh", ["diff"], {}, "expected 2 to 3 arguments"),
    ("eval.sh", ["sideways", "16"], {}, "unknown init method 'sideways'"),
    ("eval.sh", ["diff", "sixteen"], {}, "shots must be a positive integer"),
    ("eval.sh", ["diff", "16"], {"TARGETS": "imagenetv2 imagenet_z"},
     "unknown dataset 'imagenet_z'"),
    ("eval.sh", ["diff", "16"], {"DATA_ROOT": ""}, "DATA_ROOT is not set"),
    ("base2new_train.sh", ["eurosat"], {}, "expected 2 to 3 arguments"),
    ("base2new_train.sh", ["cifar10", "diff"], {}, "unknown dataset 'cifar10'"),
    ("base2new_train.sh", ["eurosat", "diff", "0", "--", "DATASET.SUBSAMPLE_CLASSES", "all"], {},
     "DATASET.SUBSAMPLE_CLASSES is set by this script"),
    ("base2new_test.sh", ["eurosat", "sideways"], {}, "unknown init method 'sideways'"),
    ("base2new_test.sh", ["eurosat", "diff"], {"DATA_ROOT": "/nonexistent/data"},
     "is not a directory"),
    ("sweep.sh", ["--bogus"], {}, "unknown argument '--bogus'"),
    ("sweep.sh", ["--dry-run", "--slurm"], {}, "give at most one of --dry-run and --slurm"),
    ("sweep.sh", [], {"DATASETS": "eurosat cifar10"}, "unknown dataset 'cifar10'"),
    ("sweep.sh", [], {"INITS": "random sideways"}, "unknown init method 'sideways'"),
    ("sweep.sh", [], {"SHOTS": "1 0"},
     "shots must be a positive integer (1, 2, 4, 8, 16, ...), got '0'"),
    ("sweep.sh", [], {"SHOTS": "1 32"}, "no default trainer config for 32 shots"),
    ("sweep.sh", [], {"SEEDS": "1 -2"}, "SEEDS must be non-negative"),
    ("sweep.sh", [], {"GPUS": "0 1;2"}, "GPU must be a device index"),
    ("sweep.sh", [], {"DATA_ROOT": ""}, "DATA_ROOT is not set"),
    ("sweep.sh", ["--", "OPTIM.MAX_EPOCH"], {}, "come in KEY VALUE pairs"),
    ("sweep.sh", [], {"GRID": "OPTIM.LR=1"}, "GRID is main.sh's (one point of a grid)"),
    ("sweep.sh", ["--grid", "OPTIM.MAX_EPOCH"], {}, "--grid takes KEY=VALUE1,VALUE2,..., got "),
    ("sweep.sh", ["--grid", "OPTIM.MAX_EPOCH=1,,2"], {}, "--grid takes KEY=VALUE1,VALUE2"),
    ("sweep.sh", ["--grid", "SEED=1,2"], {}, "SEED is set by this script from SEEDS"),
    ("sweep.sh", ["--grid", "optim.lr=1,2"], {}, "'optim.lr' is not a config key"),
    ("sweep.sh", ["--grid", "OPTIM.MAX_EPOCH=1,2"], {"EPOCHS": "5"},
     "OPTIM.MAX_EPOCH has two grids"),
    ("sweep.sh", ["--grid", "OPTIM.LR=1,2", "--", "OPTIM.LR", "3"], {},
     "OPTIM.LR is set by the grid; don't pass it as an override too"),
]


BAD_INPUT_IDS = [f"{s}:{' '.join(a) or '-'}:{' '.join(e)}" for s, a, e, _ in BAD_INPUT]


@pytest.mark.parametrize("script,args,env,message", BAD_INPUT, ids=BAD_INPUT_IDS)
def test_bad_input_gives_one_message_and_runs_nothing(fake, script, args, env, message):
    done = fake.run(script, *args, **env)
    assert done.returncode == 2, done.stdout + done.stderr
    errors = error_lines(done)
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert fake.calls() == [] and not fake.out.exists()


@pytest.mark.parametrize("script", ["main.sh", "eval.sh", "base2new_train.sh",
                                    "base2new_test.sh", "sweep.sh"])
def test_usage_line_on_wrong_arguments_and_help(fake, script):
    done = fake.run(script, "a", "b", "c", "d", "e", "f")
    assert done.returncode == 2
    assert done.stderr.startswith(f"usage: bash scripts/dapt_init/{script} ")
    helped = fake.run(script, "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: ")
    assert "DATA_ROOT" in helped.stdout and fake.calls() == []


# ------------------------------------------------------------------------------ main.sh


@pytest.mark.parametrize("dataset,shots,cfg", [
    ("eurosat", "1", "vit_b16_ep50"), ("eurosat", "2", "vit_b16_ep100"),
    ("oxford_pets", "4", "vit_b16_ep100"), ("eurosat", "8", "vit_b16"),
    ("eurosat", "16", "vit_b16"), ("imagenet", "16", "vit_b16_ep50"),
    ("imagenet", "2", "vit_b16_ep50"),
])
def test_trainer_config_is_chosen_by_shots_as_dapt_does(fake, dataset, shots, cfg):
    done = fake.run("main.sh", dataset, "random", shots, SEEDS="1")
    assert done.returncode == 0, done.stderr
    [(_, args)] = fake.calls()
    assert arg(args, "--config-file") == f"configs/trainers/DAPT_Init/{cfg}.yaml"
    assert arg(args, "--output-dir") == str(
        fake.out / dataset / "DAPT_Init/random" / f"{cfg}_{shots}shots/seed1")


def test_cfg_environment_variable_overrides_the_choice(fake):
    # demo_small's 32x32 input is refused for ViT-B/16 before anything runs: give its size.
    done = fake.run("main.sh", "eurosat", "same", "3", "--", "INPUT.SIZE", "(224, 224)",
                    SEEDS="2", CFG="demo_small")
    assert done.returncode == 0, done.stderr
    [(_, args)] = fake.calls()
    assert arg(args, "--config-file") == "configs/trainers/DAPT_Init/demo_small.yaml"
    assert arg(args, "--output-dir").endswith("eurosat/DAPT_Init/same/demo_small_3shots/seed2")


def test_main_runs_each_seed_with_the_full_command_then_skips_them(fake):
    # A value with a space and parentheses, one ViT-B/16 accepts (the skip test below is the
    # real train.py's finished rule, which refuses a 32x32 input for that CLIP).
    done = fake.run("main.sh", "eurosat", "diff", "4", "1", "--", "OPTIM.MAX_EPOCH", "7",
                    "INPUT.SIZE", "(224, 224)")
    assert done.returncode == 0, done.stderr
    calls = fake.calls()
    assert [arg(args, "--seed") for _, args in calls] == ["1", "2", "3"]
    for (gpu, args), seed in zip(calls, "123"):
        run_dir = fake.out / f"eurosat/DAPT_Init/diff/vit_b16_ep100_4shots/seed{seed}"
        assert gpu == "1"
        assert args[:2] == ["train.py", "--root"] and arg(args, "--root") == str(fake.data)
        assert arg(args, "--trainer") == "DAPT_Init"
        assert arg(args, "--dataset-config-file") == "configs/datasets/eurosat.yaml"
        assert arg(args, "--output-dir") == str(run_dir)
        tail = " ".join(args[args.index("TRAINER.DAPT_INIT.INIT_METHOD"):])
        assert tail == "TRAINER.DAPT_INIT.INIT_METHOD diff TRAINER.DAPT_INIT.VIS_INIT_METHOD " \
                       "random DATASET.NUM_SHOTS 4 OPTIM.MAX_EPOCH 7 INPUT.SIZE (224, 224)"
        assert (run_dir / "result.json").exists()
    printed = [line for line in done.stdout.splitlines() if line.startswith("+ ")]
    assert len(printed) == 3 and printed[0].startswith("+ CUDA_VISIBLE_DEVICES=1 ")
    assert "train.py" in printed[0] and "seed1" in printed[0]

    again = fake.run("main.sh", "eurosat", "diff", "4", "1", "--", "OPTIM.MAX_EPOCH", "7",
                     "INPUT.SIZE", "(224, 224)")
    assert again.returncode == 0
    assert again.stdout.splitlines() == [
        f"skip (finished): {fake.out}/eurosat/DAPT_Init/diff/vit_b16_ep100_4shots/seed{s}"
        for s in "123"]
    assert len(fake.calls()) == 3


def test_relative_roots_are_taken_from_the_callers_directory(fake):
    done = fake.run("main.sh", "eurosat", "random", "1", SEEDS="5", DATA_ROOT="data",
                    OUTPUT_ROOT="rel_out")
    assert done.returncode == 0, done.stderr
    [(gpu, args)] = fake.calls()
    assert gpu == "unset"  # no GPU argument: CUDA_VISIBLE_DEVICES left alone
    assert arg(args, "--root") == str(fake.data)
    assert (fake.root / "rel_out/eurosat/DAPT_Init/random/vit_b16_ep50_1shots/seed5"
            / "result.json").exists()


def test_the_first_failing_run_stops_main_with_its_exit_status(fake):
    done = fake.run("main.sh", "eurosat", "same", "2", FAKE_FAIL="seed2")
    assert done.returncode == 7
    assert [arg(args, "--seed") for _, args in fake.calls()] == ["1", "2"]
    assert "error: exit status 7 from the run in" in done.stderr
    assert not (fake.out / "eurosat/DAPT_Init/same/vit_b16_ep100_2shots/seed3").exists()


def test_only_a_run_with_a_result_counts_as_finished(fake):
    base = fake.out / "eurosat/DAPT_Init/random/vit_b16_ep100_2shots"
    logs = {
        # A log alone does not say which settings made it (train.py's rule needs result.json).
        "1": "epoch [2/2]\nFinish training\n=> result\n* total: 10\n* accuracy: 50.0%\n",
        # Killed mid-training, after a validation printed a result: run again.
        "2": "epoch [1/2]\n=> result\n* total: 10\n* accuracy: 40.0%\nepoch [2/2]\n",
        # Training finished but the final test never printed its accuracy: run again.
        "3": "epoch [2/2]\nFinish training\nEvaluate on the *test* set\n",
    }
    for seed, text in logs.items():
        (base / f"seed{seed}").mkdir(parents=True)
        (base / f"seed{seed}/log.txt").write_text(text)
    done = fake.run("main.sh", "eurosat", "random", "2")
    assert done.returncode == 0, done.stderr
    assert [arg(args, "--seed") for _, args in fake.calls()] == ["1", "2", "3"]
    assert f"unfinished run in {base}/seed1: running it again" in done.stdout
    assert f"unfinished run in {base}/seed2: running it again" in done.stdout


# ------------------------------------------------------------------------- eval / base2new


def test_eval_names_the_missing_model_and_the_command_that_makes_it(fake):
    done = fake.run("eval.sh", "diff", "16", SEEDS="1 2")
    assert done.returncode == 2
    [error] = error_lines(done)
    model = fake.out / "imagenet/DAPT_Init/diff/vit_b16_ep50_16shots/seed1"
    assert f"trained model folder {model} is missing" in error
    assert "bash scripts/dapt_init/main.sh imagenet diff 16" in error
    assert "SEEDS=1\\ 2" in error and fake.calls() == []

    model.mkdir(parents=True)  # started, never finished
    (model / "log.txt").write_text("epoch [1/50]\n")
    done = fake.run("eval.sh", "diff", "16", SEEDS="1")
    assert done.returncode == 2 and f"{model} holds an unfinished run" in done.stderr
    assert fake.calls() == [] and not (fake.out / "evaluation").exists()


def test_eval_tests_each_seed_on_the_four_imagenet_variants(fake):
    fake.finish("main.sh", "imagenet", "same", "4", "--", "USE_CUDA", "False", SEEDS="1 2")
    done = fake.run("eval.sh", "same", "4", "0", "--", "USE_CUDA", "False", SEEDS="1 2")
    assert done.returncode == 0, done.stderr
    calls = fake.calls()
    targets = ["imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"]
    assert [(arg(a, "--dataset-config-file"), arg(a, "--seed")) for _, a in calls] == [
        (f"configs/datasets/{t}.yaml", s) for t in targets for s in "12"]
    for gpu, args in calls:
        seed, target = arg(args, "--seed"), arg(args, "--dataset-config-file")[17:-5]
        assert gpu == "0" and "--eval-only" in args and arg(args, "--load-epoch") == "50"
        assert arg(args, "--config-file") == "configs/trainers/DAPT_Init/vit_b16_ep50.yaml"
        assert arg(args, "--model-dir") == str(
            fake.out / f"imagenet/DAPT_Init/same/vit_b16_ep50_4shots/seed{seed}")
        assert arg(args, "--output-dir") == str(
            fake.out / f"evaluation/{target}/DAPT_Init/same/vit_b16_ep50_4shots/seed{seed}")
        assert args[-2:] == ["USE_CUDA", "False"]
    again = fake.run("eval.sh", "same", "4", "0", "--", "USE_CUDA", "False", SEEDS="1 2")
    assert again.stdout.count("skip (finished): ") == 8 and len(fake.calls()) == 8


@pytest.mark.parametrize("env,overrides,epoch", [
    ({}, [], "50"),
    ({"LOAD_EPOCH": "12"}, [], "12"),
    ({}, ["OPTIM.MAX_EPOCH", "5"], "5"),
])
def test_eval_loads_the_configs_last_epoch_unless_told(fake, env, overrides, epoch):
    extra = ["--", *overrides] if overrides else []
    fake.finish("main.sh", "imagenet", "random", "1", *extra, SEEDS="3")
    done = fake.run("eval.sh", "random", "1", *extra, SEEDS="3", TARGETS="imagenet_r", **env)
    assert done.returncode == 0, done.stderr
    [(_, args)] = fake.calls()
    assert arg(args, "--load-epoch") == epoch


def test_base2new_trains_on_base_classes_and_tests_on_new_ones(fake):
    missing = fake.run("base2new_test.sh", "oxford_pets", "diff", SEEDS="1")
    assert missing.returncode == 2
    assert "bash scripts/dapt_init/base2new_train.sh oxford_pets diff" in missing.stderr
    trained = fake.run("base2new_train.sh", "oxford_pets", "diff", SEEDS="1")
    assert trained.returncode == 0, trained.stderr
    tested = fake.run("base2new_test.sh", "oxford_pets", "diff", SEEDS="1")
    assert tested.returncode == 0, tested.stderr
    (_, train), (_, test) = fake.calls()
    tail = "oxford_pets/shots_16/DAPT_Init/diff/vit_b16/seed1"
    assert arg(train, "--output-dir") == str(fake.out / "base2new/train_base" / tail)
    assert " ".join(train[train.index("DATASET.NUM_SHOTS"):]) == \
        "DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base"
    assert arg(test, "--output-dir") == str(fake.out / "base2new/test_new" / tail)
    assert arg(test, "--model-dir") == str(fake.out / "base2new/train_base" / tail)
    assert "--eval-only" in test and arg(test, "--load-epoch") == "200"
    assert " ".join(test[test.index("DATASET.NUM_SHOTS"):]) == \
        "DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES new"
