"""What makes a run folder finished, for which settings (trainers/dapt_init/runstate.py),
and who may run in it (trainers/dapt_init/run_folder.py), plus the scripts' TAG, EPOCHS grid
and SLURM options.

Pure functions and the lock are tested in-process (the lock's holder is a child process);
the scripts run with tests/support/scripts_helpers.py's stand-in python. The same rule on real
train.py runs is in tests/end_to_end/test_resume_exact.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.scripts_helpers import Fake, arg
from trainers.dapt_init import run_folder, runstate
from trainers.dapt_init.config import add_dapt_init_config
from trainers.dapt_init.errors import DaptInitError


@pytest.fixture()
def fake(tmp_path) -> Fake:
    return Fake(tmp_path)


def resolved_config(*opts):
    """A config as train.py resolves it (toolbox defaults, our keys, overrides)."""
    dassl_config = pytest.importorskip("dassl.config")
    cfg = dassl_config.get_cfg_default()
    add_dapt_init_config(cfg)
    cfg.merge_from_list(list(opts))
    return cfg


def leaves(node, prefix=""):
    for key in node:
        value = node[key]
        if hasattr(value, "keys"):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


# --------------------------------------------------------------------------- fingerprint

def test_fingerprint_hashes_every_key_but_the_deny_list_including_new_ones():
    cfg = resolved_config()
    cfg.TRAINER.DAPT_INIT.SOME_NEW_KEY = 3  # added by a later feature: included, unlisted
    keys = runstate.fingerprint_keys(cfg)
    # Keys at a default they had before they existed (DEFAULT_OMITTED_KEYS) are left out too.
    assert set(keys) == (set(leaves(cfg)) - runstate.NOT_RESULT_KEYS
                         - set(runstate.DEFAULT_OMITTED_KEYS))
    assert keys["TRAINER.DAPT_INIT.SOME_NEW_KEY"] == 3 and keys["OPTIM.LR"] == cfg.OPTIM.LR
    assert keys["INPUT.SIZE"] == list(cfg.INPUT.SIZE)  # JSON-plain
    expected = hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()
    assert runstate.fingerprint(keys) == expected


def test_only_keys_that_can_change_the_result_change_the_fingerprint():
    base = runstate.fingerprint(runstate.fingerprint_keys(resolved_config()))
    harmless = resolved_config("OUTPUT_DIR", "/elsewhere", "TRAIN.PRINT_FREQ", "1",
                               "DATASET.ROOT", "/other/data", "TRAIN.CHECKPOINT_FREQ", "5",
                               "TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR", "/cache")
    assert runstate.fingerprint(runstate.fingerprint_keys(harmless)) == base
    for key, value in [("OPTIM.LR", "0.5"), ("OPTIM.MAX_EPOCH", "7"),
                       ("DATALOADER.TRAIN_X.BATCH_SIZE", "4"), ("OPTIM.LR_SCHEDULER", "cosine"),
                       ("TRAINER.DAPT_INIT.VIS_BETA", "0.3"),
                       ("TRAINER.DAPT_INIT.INIT_NOISE_SCALE", "0.2")]:
        changed = runstate.fingerprint_keys(resolved_config(key, value))
        assert runstate.fingerprint(changed) != base, key


def test_clip_weights_identity_is_the_bytes_not_the_path(tmp_path):
    weights = tmp_path / "a.pt"
    weights.write_bytes(b"weights" * 1000)
    identity = runstate.clip_weights_identity("ViT-B/16", str(weights))
    assert identity["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert identity["size"] == 7000 and identity["path"] == str(weights)
    copy = tmp_path / "moved.pt"
    shutil.copy(weights, copy)
    assert runstate.same_weights(identity, runstate.clip_weights_identity("ViT-B/16", str(copy)))
    weights.write_bytes(b"Weights" * 1000)  # same size, other bytes
    assert not runstate.same_weights(identity,
                                     runstate.clip_weights_identity("ViT-B/16", str(weights)))
    assert runstate.clip_weights_identity("ViT-B/16", "") == {"name": "ViT-B/16"}


def test_an_unchanged_file_is_not_hashed_again(tmp_path):
    weights = tmp_path / "a.pt"
    weights.write_bytes(b"x" * 10)
    known = {**runstate.clip_weights_identity("", str(weights)), "sha256": "recorded"}
    assert runstate.clip_weights_identity("", str(weights), known)["sha256"] == "recorded"
    os.utime(weights, ns=(1, 1))  # touched: hashed again
    assert runstate.clip_weights_identity("", str(weights), known)["sha256"] != "recorded"


# ------------------------------------------------------------------------------ verdict

def write_result(run_dir: Path, identity: runstate.RunIdentity | None) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"metrics": {"accuracy": 50.0}}
    if identity is not None:
        record.update(fingerprint=identity.fingerprint, fingerprint_keys=identity.keys,
                      clip={"weights": identity.weights, "loaded": {}})
    (run_dir / "result.json").write_text(json.dumps(record))


def test_finished_only_for_the_same_settings(tmp_path):
    run_dir = tmp_path / "run"
    made = runstate.run_identity(resolved_config())
    assert runstate.finished_verdict(str(run_dir), made).status == runstate.NOT_FINISHED
    write_result(run_dir, made)
    same = runstate.finished_verdict(str(run_dir), runstate.run_identity(resolved_config(
        "TRAIN.PRINT_FREQ", "1")))
    assert same == runstate.Verdict(runstate.FINISHED, f"skip (finished): {run_dir}")

    other = runstate.finished_verdict(str(run_dir), runstate.run_identity(resolved_config(
        "OPTIM.LR", "0.5", "OPTIM.MAX_EPOCH", "9")))
    assert other.status == runstate.OTHER_SETTINGS
    assert other.message.startswith(
        f"{run_dir} holds a finished run with other settings: OPTIM.LR 0.0003 -> 0.5; "
        "OPTIM.MAX_EPOCH 10 -> 9. ")
    assert "another OUTPUT_ROOT or TAG" in other.message and "remove that folder" in other.message
    assert "\n" not in other.message

    write_result(run_dir, None)  # a result from before fingerprints: settings unknown
    old = runstate.finished_verdict(str(run_dir), made)
    assert old.status == runstate.OTHER_SETTINGS and "no fingerprint" in old.message


def test_other_clip_weights_are_other_settings(tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    made = runstate.run_identity(resolved_config("TRAINER.DAPT_INIT.CLIP_WEIGHTS", str(a)))
    write_result(tmp_path / "run", made)
    now = runstate.run_identity(resolved_config("TRAINER.DAPT_INIT.CLIP_WEIGHTS", str(b)))
    verdict = runstate.finished_verdict(str(tmp_path / "run"), now)
    assert verdict.status == runstate.OTHER_SETTINGS and "CLIP weights" in verdict.message


# --------------------------------------------------------------------------------- lock

HOLDER = (
    "import os, sys\n"
    "from trainers.dapt_init.run_folder import RunLock\n"
    "os.makedirs({folder!r}, exist_ok=True)\n"
    "lock = RunLock({folder!r}); lock.write_pid(); print('locked', flush=True); sys.stdin.read()\n"
)


def test_one_process_per_run_folder_and_kill_9_leaves_no_stale_lock(tmp_path):
    folder = tmp_path / "run"
    repo = str(Path(__file__).resolve().parents[2])
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(repo=repo, folder=str(folder))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        lock_file = folder / run_folder.LOCK_FILE
        before = (lock_file.read_text(), sorted(os.listdir(folder)))
        with pytest.raises(run_folder.RunLocked) as refused:
            run_folder.RunLock(str(folder))
        assert f"{folder} is in use by PID {holder.pid}" in str(refused.value)
        assert (lock_file.read_text(), sorted(os.listdir(folder))) == before  # untouched
        assert f"PID {holder.pid}" in run_folder.lock_holder(str(folder))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert run_folder.lock_holder(str(folder)) is None  # the OS released it
    lock = run_folder.RunLock(str(folder))
    lock.write_pid()
    try:
        assert lock_file.read_text() == f"{os.getpid()}\n"
    finally:
        lock.release()


def test_a_folder_never_locked_is_free_and_the_probe_creates_nothing(tmp_path):
    assert run_folder.lock_holder(str(tmp_path / "absent")) is None
    assert not (tmp_path / "absent").exists()


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    (tmp_path / "prompt_learner").mkdir()
    stale = [tmp_path / ".tmp-abc_result.json", tmp_path / "prompt_learner/.tmp-x_model.pth.tar-2"]
    kept = [tmp_path / "result.json", tmp_path / "prompt_learner/model.pth.tar-1",
            tmp_path / "prompt_learner/checkpoint"]
    for path in stale + kept:
        path.write_text("x")
    assert sorted(run_folder.remove_stale_temporaries(str(tmp_path))) == sorted(map(str, stale))
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale)


# ----------------------------------------------------------------------------- claim

def test_a_claim_locks_first_cleans_and_holds_until_released(tmp_path):
    folder = tmp_path / "run"
    (folder / "prompt_learner").mkdir(parents=True)
    stale = folder / "prompt_learner/.tmp-x_model.pth.tar-2"
    stale.write_text("x")
    claim = run_folder.claim(str(folder), runstate.run_identity(resolved_config()))
    try:
        assert claim.claimed and run_folder.holds(str(folder))
        assert claim.removed == (str(stale),) and not stale.exists()
        assert (folder / run_folder.LOCK_FILE).read_text() == f"{os.getpid()}\n"
        assert f"PID {os.getpid()}" in run_folder.lock_holder(str(folder))
        again = run_folder.claim(str(folder), None)  # this process holds it: a no-op
        assert again.claimed and again.removed == ()
    finally:
        run_folder.release(str(folder))
    assert run_folder.lock_holder(str(folder)) is None and not run_folder.holds(str(folder))


def test_a_finished_run_is_skipped_and_other_settings_refused_leaving_the_folder_as_it_was(
        tmp_path):
    made = runstate.run_identity(resolved_config())
    folder = tmp_path / "run"
    write_result(folder, made)
    before = sorted(os.listdir(folder))
    claim = run_folder.claim(str(folder), made)
    assert claim.skip and claim.message == f"skip (finished): {folder}"
    assert sorted(os.listdir(folder)) == before and not run_folder.holds(str(folder))
    other = runstate.run_identity(resolved_config("OPTIM.LR", "0.5"))
    claim = run_folder.claim(str(folder), other)
    assert claim.refused and claim.status == runstate.OTHER_SETTINGS
    assert "OPTIM.LR 0.0003 -> 0.5" in claim.message
    assert sorted(os.listdir(folder)) == before  # no lock file left behind


def test_a_held_folder_is_refused_and_an_abandoned_claim_removes_the_folders_it_made(tmp_path):
    folder = tmp_path / "a" / "run"
    lock = run_folder.RunLock(str(tmp_path))
    lock.write_pid()
    try:
        claim = run_folder.claim(str(tmp_path), None)
        assert claim.refused and claim.status == runstate.RUNNING_ELSEWHERE
        assert f"{tmp_path} is in use by PID {os.getpid()}" in claim.message
    finally:
        lock.release(remove=True)
    assert run_folder.claim(str(folder), None).claimed and folder.is_dir()
    run_folder.release(str(folder), abandon=True)  # building failed: nothing was written
    assert not (tmp_path / "a").exists()


def test_a_lost_lock_is_detected_and_a_passed_lock_is_adopted_without_asking_again(tmp_path):
    folder = tmp_path / "run"
    made = runstate.run_identity(resolved_config())
    assert run_folder.claim(str(folder), made).claimed
    try:
        run_folder.check_held(str(folder))  # held: nothing to say
        fd = run_folder.lock_fd(str(folder))
        os.environ[run_folder.LOCK_FD_ENV] = str(fd)
        # Forget the claim as a child process would not know it, then adopt the passed lock:
        # even a finished result would not be asked about (the parent asked under this lock).
        held = run_folder._HELD.pop(os.path.realpath(folder))
        write_result(folder, made)
        adopted = run_folder.claim(str(folder), made)
        assert adopted.claimed and run_folder.LOCK_FD_ENV not in os.environ
        (folder / run_folder.LOCK_FILE).unlink()  # someone deletes the lock mid-run
        with pytest.raises(DaptInitError, match="was deleted or replaced"):
            run_folder.check_held(str(folder))
    finally:
        os.environ.pop(run_folder.LOCK_FD_ENV, None)
        run_folder._HELD.pop(os.path.realpath(folder), None)
        held.lock.release()


# ------------------------------------------------------------------------------ scripts

def test_tag_gives_a_run_its_own_folder(fake):
    fake.finish("main.sh", "eurosat", "diff", "4", SEEDS="1")  # the untagged run
    done = fake.run("main.sh", "eurosat", "diff", "4", "--", "OPTIM.MAX_EPOCH", "25",
                    SEEDS="1", TAG="ep25")
    assert done.returncode == 0, done.stderr
    [(_, args)] = fake.calls()  # the untagged finished run did not count
    assert arg(args, "--output-dir") == str(
        fake.out / "eurosat/DAPT_Init/diff/vit_b16_ep100_4shots_ep25/seed1")
    bad = fake.run("main.sh", "eurosat", "diff", "4", SEEDS="1", TAG="a/b")
    assert bad.returncode == 2 and bad.stderr.startswith("error: TAG must be")


def test_sweep_epochs_grid_runs_each_epoch_count_in_its_own_folder(fake):
    env = {"DATASETS": "eurosat", "INITS": "same", "SHOTS": "2", "SEEDS": "1",
           "EPOCHS": "5 10", "GPUS": "0"}
    done = fake.run("sweep.sh", "--", "USE_CUDA", "True", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = {arg(a, "--output-dir"): a[a.index("USE_CUDA"):] for _, a in fake.calls()}
    base = fake.out / "eurosat/DAPT_Init/same/vit_b16_ep100_2shots"
    assert runs == {f"{base}_ep5/seed1": ["USE_CUDA", "True", "OPTIM.MAX_EPOCH", "5"],
                    f"{base}_ep10/seed1": ["USE_CUDA", "True", "OPTIM.MAX_EPOCH", "10"]}
    assert (fake.out / "sweep_logs/eurosat_same_2shots_ep10_seed1.log").exists()
    dry = fake.run("sweep.sh", "--dry-run", **env)
    assert "2 jobs (1 datasets x 1 inits x 1 shots x 1 seeds x 2 epochs): 2 finished" in dry.stdout

    clash = fake.run("sweep.sh", "--dry-run", "--", "OPTIM.MAX_EPOCH", "3", **env)
    assert clash.returncode == 2 and "OPTIM.MAX_EPOCH is set by the grid" in clash.stderr
    bad = fake.run("sweep.sh", "--dry-run", **{**env, "EPOCHS": "5 x"})
    assert bad.returncode == 2 and "EPOCHS must be positive integers" in bad.stderr


def test_slurm_tasks_requeue_append_and_run_their_epoch_tag(fake):
    env = {"DATASETS": "eurosat", "INITS": "diff", "SHOTS": "1", "SEEDS": "1 2",
           "EPOCHS": "3 6"}
    done = fake.run("sweep.sh", "--slurm", "--", "USE_CUDA", "True", **env)
    assert done.returncode == 0, done.stderr
    script = done.stdout
    for line in ("#SBATCH --open-mode=append", "#SBATCH --requeue", "#SBATCH --array=0-3"):
        assert line + "\n" in script
    batch = fake.root / "sweep.sbatch"
    batch.write_text(script)
    env = {k: v for k, v in os.environ.items() if k not in ("TAG", "EPOCHS", "SEEDS")}
    env.update(PYTHON=str(fake.python), FAKE_LOG=str(fake.calls_file), SLURM_ARRAY_TASK_ID="3",
               REAL_PYTHON=fake.env["REAL_PYTHON"], FAKE_TRAIN=fake.env["FAKE_TRAIN"])
    task = subprocess.run(["bash", str(batch)], cwd=fake.root, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert task.returncode == 0, task.stderr
    [(_, args)] = fake.calls()  # task 3: seed 2, 6 epochs
    assert arg(args, "--output-dir") == str(
        fake.out / "eurosat/DAPT_Init/diff/vit_b16_ep50_1shots_ep6/seed2")
    assert args[-4:] == ["USE_CUDA", "True", "OPTIM.MAX_EPOCH", "6"]


@pytest.mark.skipif(shutil.which("sbatch") is None,
                    reason="no SLURM here (sbatch not found): the requeue test on a live "
                           "cluster is skipped; the generated script is checked above")
def test_live_slurm_accepts_the_script(fake):
    done = fake.run("sweep.sh", "--slurm", DATASETS="eurosat", INITS="diff", SHOTS="1",
                    SEEDS="1")
    batch = fake.root / "sweep.sbatch"
    batch.write_text(done.stdout)
    test_only = subprocess.run(["sbatch", "--test-only", str(batch)], capture_output=True,
                               text=True, timeout=60, check=False)
    assert test_only.returncode == 0, test_only.stderr


# ------------------------------------------------------------------------------- resume

def test_resuming_with_another_training_setting_is_refused_naming_the_keys():
    resume = pytest.importorskip("trainers.dapt_init.resume")
    from trainers.dapt_init.errors import DaptInitError

    written = runstate.run_identity(resolved_config("OPTIM.LR", "0.002",
                                                    "TRAINER.DAPT_INIT.PROTOTYPE_VIEW", "test"))
    checkpoint = {"run": written.record()}
    same = runstate.run_identity(resolved_config("OPTIM.LR", "0.002",
                                                 "TRAINER.DAPT_INIT.PROTOTYPE_VIEW", "test",
                                                 "TRAIN.PRINT_FREQ", "1"))
    resume.check_resumable(checkpoint, "ckpt", same)  # resumes: no error
    changed = runstate.run_identity(resolved_config(
        "OPTIM.LR", "0.5", "TRAINER.DAPT_INIT.PROTOTYPE_VIEW", "train",
        "DATALOADER.TRAIN_X.BATCH_SIZE", "4"))
    with pytest.raises(DaptInitError) as refused:
        resume.check_resumable(checkpoint, "ckpt", changed)
    assert str(refused.value).startswith(
        "ckpt belongs to another run (DATALOADER.TRAIN_X.BATCH_SIZE 32 -> 4; OPTIM.LR 0.002 -> "
        "0.5; TRAINER.DAPT_INIT.PROTOTYPE_VIEW 'test' -> 'train'), so it is not resumed.")


def test_the_parser_reads_the_scripts_tag_from_the_run_folder():
    from study.run import spec_from_path

    tagged = spec_from_path(
        ["eurosat", "DAPT_Init", "diff", "vit_b16_ep100_4shots_ep25", "seed1"])
    assert (tagged.config, tagged.shots, tagged.init, tagged.tag) == (
        "vit_b16_ep100", 4, "diff", "ep25")
    plain = spec_from_path(
        ["eurosat", "DAPT_Init", "diff", "vit_b16_ep100_4shots", "seed1"])
    assert plain.tag == "" and plain != tagged
