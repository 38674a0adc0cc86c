"""tools/analyze_prompts.py nearest-words against a brute-force search written here.

A small random-weight CLIP (tools/small_clip.py) has CLIP's real 49408-token vocabulary, so
clip's tokenizer decodes its ids; the distances are checked with numpy over the whole
vocabulary, one vector at a time.
"""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import torch

from tests.support.toolbox import requires_toolbox
from tools import analyze_prompts

EOS_ID = 49407
K = 16


def brute_force(vector: np.ndarray, embedding: np.ndarray, k: int) -> tuple[list[int], list]:
    """Ids and distances of the k nearest rows, by sorting every Euclidean distance."""
    distances = np.sqrt(((embedding - vector) ** 2).sum(axis=1))
    order = np.argsort(distances, kind="stable")[:k]
    return order.tolist(), distances[order].tolist()


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_nearest_tokens_of_a_run_equal_a_brute_force_search(tmp_path, small_clip_file, capsys):
    from clip.simple_tokenizer import SimpleTokenizer
    from trainers.dapt_init.clip_loading import load_clip

    embedding = load_clip("ViT-B/16", small_clip_file).token_embedding.weight.detach().float()
    generator = torch.Generator().manual_seed(0)
    prompts = 0.02 * torch.randn(K, embedding.shape[1], generator=generator)
    prompts[3] = embedding[EOS_ID]  # exactly a token: distance 0, decoded as CLIP's EOS
    prompts[7] = embedding[320] + 1e-4  # close to a word
    run_dir = tmp_path / "run"
    (run_dir / "prompt_learner").mkdir(parents=True)
    torch.save({"state_dict": {"txt_ctx": prompts, "vis_ctx": torch.zeros(1, 2, 64)}, "epoch": 2},
               run_dir / "prompt_learner" / "model.pth.tar-2")
    (run_dir / "log.txt").write_text("SEED: 7\nBuilding DAPT model (text prompt init: same)\n")

    status = analyze_prompts.run(["nearest-words", "--clip-weights", small_clip_file,
                                  "--runs", str(run_dir), "-k", "4", "--format", "csv"])
    out, err = capsys.readouterr()
    assert status == 0, err
    rows = csv_rows(out)
    assert len(rows) == K * 4
    assert {(r["source"], r["init"], r["seed"], r["epoch"]) for r in rows} == {
        (str(run_dir), "same", "7", "2")}
    tokenizer = SimpleTokenizer()
    array = embedding.double().numpy()
    for position in range(K):
        ids, distances = brute_force(prompts[position].double().numpy(), array, 4)
        mine = [r for r in rows if r["position"] == str(position + 1)]
        assert [int(r["rank"]) for r in mine] == [1, 2, 3, 4]
        assert [int(r["token_id"]) for r in mine] == ids
        assert [float(r["distance"]) for r in mine] == pytest.approx(distances, abs=1e-9)
        assert [r["token"] for r in mine] == [tokenizer.decoder[i] for i in ids]
    eos_row = [r for r in rows if r["position"] == "4" and r["rank"] == "1"][0]
    assert (int(eos_row["token_id"]), float(eos_row["distance"])) == (EOS_ID, 0.0)
    assert eos_row["token"] == "<|endoftext|>"
    assert [r for r in rows if r["position"] == "8"][0]["token_id"] == "320"


def test_initial_prompts_of_an_init_and_the_table_format(small_clip_file, capsys):
    # diff with no noise starts every token at EOS: its nearest token, at distance 0.
    status = analyze_prompts.run(["nearest-words", "--clip-weights", small_clip_file,
                                  "--init", "diff", "--noise-scale", "0", "-k", "2",
                                  "--format", "csv"])
    out, _ = capsys.readouterr()
    assert status == 0
    first = [r for r in csv_rows(out) if r["rank"] == "1"]
    assert len(first) == K and {(r["source"], r["init"], r["epoch"]) for r in first} == {
        ("initial", "diff", "0")}
    assert {(int(r["token_id"]), float(r["distance"])) for r in first} == {(EOS_ID, 0.0)}
    status = analyze_prompts.run(["nearest-words", "--clip-weights", small_clip_file,
                                  "--init", "diff", "--noise-scale", "0", "-k", "2"])
    table = capsys.readouterr().out.splitlines()
    # title, header, rule, one row per context vector; a column per rank
    assert status == 0 and len(table) == 3 + K
    assert table[0] == "initial: init diff, seed 1, epoch 0"
    assert "| 0.0000 - " in table[3] and "| <|endoftext|> " in table[3]
    assert max(len(line) for line in table) <= 100


def test_nothing_to_interpret_and_a_missing_epoch_are_one_error_line(tmp_path, small_clip_file,
                                                                     capsys):
    assert analyze_prompts.run(["nearest-words", "--clip-weights", small_clip_file]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nothing to interpret") and err.count("\n") == 1
    run_dir = tmp_path / "run"
    (run_dir / "prompt_learner").mkdir(parents=True)
    torch.save({"state_dict": {"txt_ctx": torch.zeros(K, 64), "vis_ctx": torch.zeros(1, 2, 64)}},
               run_dir / "prompt_learner" / "model.pth.tar-3")
    assert analyze_prompts.run(["nearest-words", "--clip-weights", small_clip_file, "--runs",
                                str(run_dir), "--epoch", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "epoch 1" in err


def test_a_run_is_never_read_with_other_clip_weights_than_its_own(tmp_path, small_clip_file,
                                                                   capsys):
    """result.json records the run's weights: other weights are one error line, the run's own
    (the same bytes, at another path too) are read."""
    import json
    import shutil

    from tools.small_clip import save_small_clip
    from trainers.dapt_init.runstate import clip_weights_identity

    run_dir = tmp_path / "run"
    (run_dir / "prompt_learner").mkdir(parents=True)
    torch.save({"state_dict": {"txt_ctx": torch.zeros(2, 64), "vis_ctx": torch.zeros(1, 2, 64)},
                "epoch": 1}, run_dir / "prompt_learner" / "model.pth.tar-1")
    (run_dir / "log.txt").write_text("SEED: 1\nBuilding DAPT model (text prompt init: diff)\n")
    (run_dir / "result.json").write_text(json.dumps(
        {"clip": {"weights": clip_weights_identity("ViT-B/16", small_clip_file)}}))
    other = save_small_clip(str(tmp_path / "other_clip.pt"), seed=1)
    argv = ["nearest-words", "--runs", str(run_dir), "-k", "1", "--format", "csv"]

    assert analyze_prompts.run([*argv, "--clip-weights", other]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "other_clip.pt" in err and small_clip_file in err
    copy = shutil.copy(small_clip_file, tmp_path / "copy.pt")
    assert analyze_prompts.run([*argv, "--clip-weights", str(copy)]) == 0
    assert len(csv_rows(capsys.readouterr().out)) == 2


# ------------------------------------------------------- a real run (toolbox, ~25 s)
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One 1-epoch diff run on tiny EuroSAT-layout data, as train.py writes it."""
    from tests.support.integration import prepared_workdir, run_train, train_command

    workdir = prepared_workdir(tmp_path_factory.mktemp("nearest_words"))
    command = train_command(workdir, "diff", "OPTIM.MAX_EPOCH", "1",
                            output_dir=workdir / "runs" / "diff")
    done = run_train(command)
    assert done.returncode == 0, done.stderr[-2000:]
    return workdir, workdir / "runs" / "diff"


@requires_toolbox
def test_a_run_folder_alone_is_read_with_its_own_clip(trained_run, tmp_path, capsys):
    from tools.small_clip import save_small_clip

    workdir, run_dir = trained_run
    argv = ["nearest-words", "--runs", str(run_dir), "--epoch", "1", "-k", "3", "--format",
            "csv"]
    assert analyze_prompts.run(argv) == 0
    alone = capsys.readouterr().out
    assert analyze_prompts.run([*argv, "--clip-weights", str(workdir / "small_clip.pt")]) == 0
    assert capsys.readouterr().out == alone
    rows = csv_rows(alone)
    assert len(rows) == K * 3 and {(r["init"], r["seed"], r["epoch"]) for r in rows} == {
        ("diff", "1", "1")}

    # --init beside a run: the initial prompts are built with the run's CLIP and settings.
    assert analyze_prompts.run([*argv, "--init", "diff"]) == 0
    rows = csv_rows(capsys.readouterr().out)
    assert {r["source"] for r in rows} == {str(run_dir), "initial"}

    # Other weights given: refused with one line, naming both.
    other = save_small_clip(str(tmp_path / "other_clip.pt"), seed=1)
    assert analyze_prompts.run([*argv, "--clip-weights", other]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and other in err and str(workdir / "small_clip.pt") in err


@requires_toolbox
def test_a_moved_weights_file_is_asked_for_and_found_by_its_bytes(trained_run, tmp_path,
                                                                  capsys):
    import json
    import shutil

    workdir, run_dir = trained_run
    copy = shutil.copytree(run_dir, tmp_path / "run")
    result = json.loads((copy / "result.json").read_text())
    result["clip"]["weights"]["path"] = str(tmp_path / "moved_away.pt")
    (copy / "result.json").write_text(json.dumps(result))
    argv = ["nearest-words", "--runs", str(copy), "-k", "1", "--format", "csv"]
    assert analyze_prompts.run(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "moved_away.pt, which is not there any more" in err
    assert analyze_prompts.run([*argv, "--clip-weights", str(workdir / "small_clip.pt")]) == 0
    assert len(csv_rows(capsys.readouterr().out)) == K
