"""User errors (issue 7, item 5): one ``error:`` line, exit 2, nothing created or overwritten.

``train.run`` is called in-process: every case here fails before training, so no subprocess
is needed. Each case snapshots the folders it could touch and compares them afterwards.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

import parse_test_res
from tests.support.integration import REPO, prepared_workdir
from tests.support.toolbox import HAVE_TOOLBOX, requires_toolbox
from tools.small_clip import small_clip_state_dict
from tools.tiny_data import make_tiny_eurosat

if HAVE_TOOLBOX:
    import train


def snapshot(*folders: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file and folder under ``folders``: for files their size, mtime and bytes; for
    folders that they exist (a folder's own mtime moves when a refused claim makes its lock
    file and removes it again; what it holds must not change)."""
    state = {}
    for folder in folders:
        for path in [folder, *folder.rglob("*")] if folder.exists() else []:
            if path.is_dir() and not path.is_symlink():
                state[str(path)] = (0, 0, b"")
                continue
            stat = path.lstat()
            data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            state[str(path)] = (stat.st_size, stat.st_mtime_ns, data)
    return state


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    return lines[0]


def refused(capsys, argv: list[str], *watched: Path) -> str:
    """Run train.py in-process; assert exit 2, one error line, ``watched`` unchanged."""
    before = snapshot(*watched)
    status = train.run(argv)
    line = one_error_line(capsys.readouterr().err)
    assert status == 2
    assert snapshot(*watched) == before
    return line


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Tiny EuroSAT and a small CLIP, shared by the cases that do not change them."""
    return prepared_workdir(tmp_path_factory.mktemp("user_errors"))


def argv(workdir: Path, output: Path, *opts: str, flags: tuple[str, ...] = (),
         root: Path | None = None, clip: Path | str | None = None) -> list[str]:
    """The demo's train.py arguments (a valid run) with ``flags`` and trailing ``opts``."""
    return [
        "--root", str(root or workdir / "data"), "--seed", "1", "--trainer", "DAPT_Init",
        "--dataset-config-file", str(REPO / "configs/datasets/eurosat.yaml"),
        "--config-file", str(REPO / "configs/trainers/DAPT_Init/demo_small.yaml"),
        "--output-dir", str(output), *flags,
        "TRAINER.DAPT_INIT.CLIP_WEIGHTS", str(clip or workdir / "small_clip.pt"),
        "DATASET.NUM_SHOTS", "2", "USE_CUDA", "False", *opts,
    ]


# ----------------------------------------------------------------------------------------------
# Config values, keys and files
# ----------------------------------------------------------------------------------------------


@requires_toolbox
@pytest.mark.parametrize("opts, expected", [
    (["TRAINER.DAPT_INIT.INIT_NOISE_SCALE", "abc"],
     "TRAINER.DAPT_INIT.INIT_NOISE_SCALE is 'abc' (on the command line), but it takes a decimal"),
    (["TRAINER.DAPT_INIT.INIT_NOISE_SCALE", "nan"],  # yacs keeps 'nan' as text
     "TRAINER.DAPT_INIT.INIT_NOISE_SCALE is 'nan'"),
    (["TRAINER.DAPT_INIT.INIT_NOISE_SCALE", "1e400"],  # yacs reads this as float inf
     "TRAINER.DAPT_INIT.INIT_NOISE_SCALE is inf; it must be a finite number"),
    (["DATASET.NUM_SHOTS", "abc"],
     "DATASET.NUM_SHOTS is 'abc' (on the command line), but it takes a whole number"),
    (["TRAINER.DAPT_INIT.INIT_METOD", "diff"],
     "unknown config key 'TRAINER.DAPT_INIT.INIT_METOD' (on the command line); nearest valid "
     "keys: TRAINER.DAPT_INIT.INIT_METHOD"),
    (["INIT_METHOD", "diff"], "nearest valid keys: TRAINER.DAPT_INIT.INIT_METHOD"),
    (["TRAINER.DAPT_INIT.INIT_METHOD"], "'TRAINER.DAPT_INIT.INIT_METHOD' has no value"),
    (["TRAINER.DAPT_INIT", "diff"], "TRAINER.DAPT_INIT (on the command line) is a group of keys"),
    (["--seed", "2"], "option --seed comes after the KEY VALUE config overrides"),
    (["DATASET.NAME", "EuroSet"], "DATASET.NAME is 'EuroSet', which is not registered; did you "
                                  "mean EuroSAT?"),
])
def test_bad_overrides_fail_before_the_output_folder(capsys, workdir, tmp_path, opts, expected):
    output = tmp_path / "out" / "run"
    line = refused(capsys, argv(workdir, output, *opts), tmp_path)
    assert expected in line
    assert not (tmp_path / "out").exists()


@requires_toolbox
def test_nan_from_a_yaml_file_is_refused(capsys, workdir, tmp_path):
    config = tmp_path / "nan.yaml"
    config.write_text("TRAINER:\n  DAPT_INIT:\n    INIT_NOISE_SCALE: .nan\n")
    args = argv(workdir, tmp_path / "run")
    args[args.index("--config-file") + 1] = str(config)
    line = refused(capsys, args, tmp_path)
    assert "INIT_NOISE_SCALE is nan; it must be a finite number" in line


@requires_toolbox
def test_unknown_key_in_a_config_file_names_the_file(capsys, workdir, tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text("DATASET:\n  NUM_SHOT: 4\n")
    args = argv(workdir, tmp_path / "run")
    args[args.index("--dataset-config-file") + 1] = str(config)
    line = refused(capsys, args, tmp_path)
    assert f"unknown config key 'DATASET.NUM_SHOT' (in {config})" in line
    assert "nearest valid keys: DATASET.NUM_SHOTS" in line


@requires_toolbox
@pytest.mark.parametrize("flag", ["--config-file", "--dataset-config-file"])
def test_missing_config_file(capsys, workdir, tmp_path, flag):
    args = argv(workdir, tmp_path / "run")
    args[args.index(flag) + 1] = str(tmp_path / "nope.yaml")
    line = refused(capsys, args, tmp_path)
    assert line == f"error: {flag} {tmp_path / 'nope.yaml'}: no such file. Give the path of a " \
                   "yaml config (the ones shipped are under configs/datasets/ and " \
                   "configs/trainers/DAPT_Init/)."


@requires_toolbox
def test_unknown_trainer_lists_the_registered_ones(capsys, workdir, tmp_path):
    args = argv(workdir, tmp_path / "run")
    args[args.index("--trainer") + 1] = "DAPT_Inti"
    line = refused(capsys, args, tmp_path)
    assert "TRAINER.NAME is 'DAPT_Inti', which is not registered; did you mean DAPT_Init?" in line
    names = line.split("valid names: ")[1].rstrip(".").split(", ")
    from dassl.engine import TRAINER_REGISTRY

    assert names == sorted(TRAINER_REGISTRY.registered_names()) and "DAPT_Init" in names


# ----------------------------------------------------------------------------------------------
# Output folders
# ----------------------------------------------------------------------------------------------


@requires_toolbox
def test_output_folder_under_a_regular_file(capsys, workdir, tmp_path):
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder")
    line = refused(capsys, argv(workdir, blocker / "eurosat" / "seed1"), tmp_path)
    assert f"{blocker} is a file, not a folder" in line
    line = refused(capsys, argv(workdir, blocker), tmp_path)  # the output folder is the file
    assert f"{blocker} is a file, not a folder" in line


@requires_toolbox
def test_read_only_parent_is_refused_for_an_unprivileged_user():
    """Root writes through permission bits, so the check runs as 'nobody' in a forked child."""
    locked = Path(tempfile.mkdtemp(prefix="dapt_locked_"))  # /tmp: reachable by any user
    try:
        os.chmod(locked, 0o555)
        target = str(locked / "run")
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: drop privileges, run the check, report, exit without cleanup
            try:
                if os.geteuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                try:
                    train.check_output_dir(target)
                    message = "accepted"
                except train.DaptInitError as error:
                    message = str(error)
                os.write(write, message.encode())
            finally:
                os._exit(0)
        os.close(write)
        with io.open(read, "rb") as stream:
            message = stream.read().decode()
        os.waitpid(pid, 0)
        assert message.startswith(f"the output folder {target} cannot be written: creating a "
                                  f"file in {locked} fails (Permission denied)")
        assert os.listdir(locked) == []
    finally:
        os.chmod(locked, 0o755)
        shutil.rmtree(locked)


@requires_toolbox
def test_eval_only_refuses_a_symlink_to_the_model_folder(capsys, workdir, tmp_path):
    model = tmp_path / "model"
    (model / "prompt_learner").mkdir(parents=True)
    (model / "result.json").write_text(json.dumps({"metrics": {"accuracy": 81.5}}))
    link = tmp_path / "eval"
    link.symlink_to(model, target_is_directory=True)
    args = argv(workdir, link, flags=("--eval-only", "--model-dir", str(model)))
    line = refused(capsys, args, tmp_path)
    assert f"--output-dir {link} is the trained run's own folder {model}" in line


# ----------------------------------------------------------------------------------------------
# CLIP weights (checked while the trainer is built: still no output folder)
# ----------------------------------------------------------------------------------------------


def _list_file(path: Path) -> None:
    torch.save([1, 2, 3], path)


def _broken_torchscript(path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:  # looks like TorchScript (code/), is not
        archive.writestr("model/code/__torch__.py", "not torchscript")


def _missing_keys(path: Path) -> None:
    state = small_clip_state_dict()
    del state["ln_final.weight"], state["visual.ln_post.bias"]
    torch.save(state, path)


@requires_toolbox
@pytest.mark.parametrize("make, expected", [
    (_list_file, "holds a list that is not a state dict"),
    (_broken_torchscript, "cannot load the TorchScript archive"),
    (_missing_keys, "is not a complete ViT CLIP: it lacks ln_final.weight."),
])
def test_bad_clip_weights(capsys, workdir, tmp_path, make, expected):
    weights = tmp_path / "clip.pt"
    make(weights)
    output = tmp_path / "run"
    line = refused(capsys, argv(workdir, output, clip=weights), tmp_path)
    assert expected in line and str(weights) in line
    assert not output.exists()


@requires_toolbox
def test_missing_keys_past_the_shape_keys_are_named(capsys, workdir, tmp_path):
    weights = tmp_path / "clip.pt"
    state = small_clip_state_dict()
    del state["visual.ln_post.bias"], state["transformer.resblocks.1.mlp.c_fc.weight"]
    torch.save(state, weights)
    line = refused(capsys, argv(workdir, tmp_path / "run", clip=weights), tmp_path)
    assert "it lacks visual.ln_post.bias, transformer.resblocks.1.mlp.c_fc.weight." in line


# ----------------------------------------------------------------------------------------------
# Data: a class without training images, a corrupt test image (checked before training)
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def own_data(tmp_path) -> Path:
    """A tiny EuroSAT this test may damage (5 train, 2 val, 3 test images per class)."""
    make_tiny_eurosat(tmp_path / "data", images_per_class=10)
    return tmp_path / "data"


@requires_toolbox
def test_class_without_training_images(capsys, workdir, tmp_path, own_data):
    split_path = own_data / "eurosat" / "split_zhou_EuroSAT.json"
    split = json.loads(split_path.read_text())
    split["train"] = [item for item in split["train"] if item[1] != 3]  # label 3: Highway
    split_path.write_text(json.dumps(split))
    output = tmp_path / "run"
    line = refused(capsys, argv(workdir, output, root=own_data), output)
    assert "EuroSAT: 1 class(es) have no training image in split_zhou_EuroSAT.json: " \
           "3 (Highway or Road)." in line
    assert not output.exists()


@requires_toolbox
def test_corrupt_test_image_is_found_before_training(capsys, workdir, tmp_path, own_data):
    split = json.loads((own_data / "eurosat" / "split_zhou_EuroSAT.json").read_text())
    bad = own_data / "eurosat" / "2750" / split["test"][-1][0]
    bad.write_bytes(b"not a jpeg")
    output = tmp_path / "run"
    before = snapshot(output)
    assert train.run(argv(workdir, output, root=own_data)) == 2
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert line.startswith("error: EuroSAT: 1 image(s) this run would read cannot be decoded: "
                           f"test: {bad} (UnidentifiedImageError")  # the list, on the one line
    assert " Fix: " in line and captured.err.count("\n") == 1
    assert snapshot(output) == before == {}
    assert "epoch [" not in captured.out  # no training step ran


def test_a_passed_decode_check_is_not_paid_again(tmp_path):
    """The marker is keyed by path, size and mtime: an unchanged list is not decoded again (a
    file damaged behind the check's back with the same size and mtime passes, which shows the
    check was skipped); touching the file makes it count again."""
    from datasets.fewshot import DatasetError, read_split_file, require_decodable

    dataset_dir = make_tiny_eurosat(tmp_path, images_per_class=10)
    image_root = dataset_dir / "2750"
    test = read_split_file(dataset_dir / "split_zhou_EuroSAT.json", "EuroSAT").test
    require_decodable("EuroSAT", tmp_path, dataset_dir, image_root, {"test": test})
    assert len(list((dataset_dir / "split_fewshot" / "decoded").iterdir())) == 1

    victim = image_root / test[0].path
    stat = victim.stat()
    victim.write_bytes(b"\0" * stat.st_size)  # same size, garbage
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    require_decodable("EuroSAT", tmp_path, dataset_dir, image_root, {"test": test})

    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    with pytest.raises(DatasetError, match=r"1 image\(s\) this run would read"):
        require_decodable("EuroSAT", tmp_path, dataset_dir, image_root, {"test": test})


# ----------------------------------------------------------------------------------------------
# parse_test_res.py --plot
# ----------------------------------------------------------------------------------------------


def test_plot_into_a_folder_that_cannot_be_written(capsys, tmp_path):
    blocker = tmp_path / "plots"
    blocker.write_text("a file where the folder should be")
    root = REPO / "tests" / "fixtures" / "dapt_init_run"
    before = snapshot(tmp_path)
    status = parse_test_res.main(["--study", str(root), "--plot", str(blocker / "curves.png")])
    captured = capsys.readouterr()
    assert status == 2
    assert one_error_line(captured.err) == (
        f"error: --plot {blocker / 'curves.png'}: the folder {blocker} does not exist or is not "
        "a folder; give --plot a path in a folder you can write to.")
    assert captured.out == ""  # refused before any run was read
    assert snapshot(tmp_path) == before
