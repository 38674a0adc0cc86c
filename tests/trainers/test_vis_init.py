"""Visual-prompt init from CLIP's CLS embedding (VIS_INIT_METHOD), checked against computations
written here; the random stream across every text x visual combination; validation; scripts."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch

from tests.trainers.test_config import toolbox_like_cfg
from tests.support.scripts_helpers import Fake, arg, error_lines
from trainers.dapt_init.config import validate_config
from trainers.dapt_init.errors import DaptInitError
from trainers.dapt_init.model import PromptLearner, PromptSettings

CLASSES = ["annual crop land", "forest", "river"]
EOS_ID = 49407
METHODS = ("random", "same", "diff")
V, K = 4, 5  # visual and text tokens


@pytest.fixture(scope="module")
def small_clip(small_clip_file):
    """One fp32 small CLIP for the module (these tests only read it)."""
    from trainers.dapt_init.clip_loading import load_clip

    return load_clip("ViT-B/16", small_clip_file).float()


def build_learner(clip_model, text: str, visual: str, seed: int = 7,
                  scale: float = 0.1) -> PromptLearner:
    torch.manual_seed(seed)
    return PromptLearner(clip_model, CLASSES, PromptSettings(V, K, 0.0, text, scale, visual))


def cls(clip_model) -> torch.Tensor:
    return clip_model.visual.class_embedding.detach().float()


def by_hand(clip_model, text: str, visual: str, seed: int | None, scale: float = 0.1,
            tokens: tuple[int, int] = (V, K)):
    """The documented rules written out: (visual (1, n_vis, w), text (n_txt, d)) for a seed."""
    n_vis, n_txt = tokens
    width = clip_model.visual.conv1.weight.shape[0]
    patch = clip_model.visual.conv1.weight.shape[-1]
    d = clip_model.ln_final.weight.shape[0]
    eos = clip_model.token_embedding.weight[EOS_ID].detach().float()
    if seed is not None:  # None: draw from the generator as it stands
        torch.manual_seed(seed)
    state = torch.random.get_rng_state()
    bound = math.sqrt(6.0 / (3 * patch * patch + width))
    dapt_visual = torch.zeros(1, n_vis, width, dtype=torch.float16).uniform_(-bound, bound).float()
    after_visual = torch.random.get_rng_state()
    if visual == "random":
        vis = dapt_visual
    else:
        torch.random.set_rng_state(state)  # the noise: the stream as it was before DAPT's draw
        u = torch.randn(width if visual == "same" else (n_vis, width))
        vis = (cls(clip_model) + scale * u / u.norm(dim=-1, keepdim=True)).expand(1, n_vis, width)
    torch.random.set_rng_state(after_visual)
    if text == "random":
        txt = torch.zeros(n_txt, d, dtype=torch.float16).normal_(0.0, 0.02).float()
    else:
        u = torch.randn(d if text == "same" else (n_txt, d))
        txt = (eos + scale * u / u.norm(dim=-1, keepdim=True)).expand(n_txt, d)
    return vis, txt


def test_same_visual_init_makes_all_tokens_cls_plus_one_noise_vector(small_clip):
    vis = build_learner(small_clip, "random", "same", scale=0.3).vis_ctx.detach()
    assert vis.shape == (1, V, small_clip.visual.conv1.weight.shape[0])
    assert torch.equal(vis[0], vis[0, 0].expand(V, -1))
    assert torch.linalg.vector_norm(vis[0, 0] - cls(small_clip)).item() == pytest.approx(0.3,
                                                                                        rel=1e-4)


def test_diff_visual_init_gives_each_token_its_own_noise_of_the_given_norm(small_clip):
    vis = build_learner(small_clip, "random", "diff", scale=0.25).vis_ctx.detach()[0]
    norms = torch.linalg.vector_norm(vis - cls(small_clip), dim=1)
    assert torch.allclose(norms, torch.full_like(norms, 0.25), rtol=1e-4)
    assert all(not torch.allclose(vis[i], vis[j]) for i, j in itertools.combinations(range(V), 2))


def test_zero_noise_scale_starts_every_visual_token_at_cls(small_clip):
    for visual in ("same", "diff"):
        vis = build_learner(small_clip, "random", visual, scale=0.0).vis_ctx.detach()[0]
        assert torch.equal(vis, cls(small_clip).expand_as(vis))


@pytest.mark.parametrize("text,visual", list(itertools.product(METHODS, METHODS)))
def test_every_text_x_visual_combination_equals_the_rules_written_out(small_clip, text, visual):
    learner = build_learner(small_clip, text, visual, seed=11)
    vis, txt = by_hand(small_clip, text, visual, seed=11)
    assert torch.allclose(learner.vis_ctx.detach(), vis, atol=1e-6, rtol=0)
    assert torch.allclose(learner.txt_ctx.detach(), txt, atol=1e-6, rtol=0)


def test_one_seed_differs_only_in_the_prompts_chosen(small_clip):
    # For each combination: the prompts, and the next numbers of the global stream (what data
    # order, augmentations and dropout will draw).
    built = {}
    for text, visual in itertools.product(METHODS, METHODS):
        learner = build_learner(small_clip, text, visual, seed=5)
        built[text, visual] = (learner.vis_ctx.detach(), learner.txt_ctx.detach(), torch.rand(8))
    following = built["random", "random"][2]
    assert all(torch.equal(after, following) for _, _, after in built.values())
    for text in METHODS:  # a visual init never moves the text prompts...
        assert all(torch.equal(built[text, v][1], built[text, "random"][1]) for v in METHODS)
    for visual in METHODS:  # ...nor a text init the visual ones
        assert all(torch.equal(built[t, visual][0], built["random", visual][0]) for t in METHODS)
    assert not torch.equal(built["random", "same"][0], built["random", "diff"][0])


def test_vis_init_method_is_validated_with_its_values():
    assert toolbox_like_cfg().TRAINER.DAPT_INIT.VIS_INIT_METHOD == "random"
    validate_config(toolbox_like_cfg(**{"TRAINER.DAPT_INIT.VIS_INIT_METHOD": "diff"}))
    with pytest.raises(DaptInitError, match="VIS_INIT_METHOD is 'cls'; valid values are random, "
                                            "same, diff"):
        validate_config(toolbox_like_cfg(**{"TRAINER.DAPT_INIT.VIS_INIT_METHOD": "cls"}))


# ------------------------------------------------------------------ scripts (stand-in python)
@pytest.fixture()
def fake(tmp_path) -> Fake:
    return Fake(tmp_path)


def test_main_names_the_folder_after_both_inits_and_passes_the_visual_one(fake):
    done = fake.run("main.sh", "eurosat", "diff", "4", SEEDS="1", VIS_INIT="same")
    assert done.returncode == 0, done.stderr
    [(_, args)] = fake.calls()
    assert arg(args, "--output-dir") == str(
        fake.out / "eurosat/DAPT_Init/diff_vis-same/vit_b16_ep100_4shots/seed1")
    assert arg(args, "TRAINER.DAPT_INIT.VIS_INIT_METHOD") == "same"
    assert arg(args, "TRAINER.DAPT_INIT.INIT_METHOD") == "diff"


@pytest.mark.parametrize("env,args,message", [
    ({"VIS_INIT": "cls"}, ["eurosat", "diff", "4"],
     "unknown visual init method 'cls' (VIS_INIT, VIS_INITS); valid init methods: random same"),
    ({}, ["eurosat", "diff", "4", "--", "TRAINER.DAPT_INIT.VIS_INIT_METHOD", "same"],
     "TRAINER.DAPT_INIT.VIS_INIT_METHOD is set by this script from VIS_INIT"),
])
def test_a_bad_visual_init_is_one_error_before_anything_runs(fake, env, args, message):
    done = fake.run("main.sh", *args, **env)
    assert done.returncode == 2 and fake.calls() == [] and not fake.out.exists()
    [error] = error_lines(done)
    assert message in error


def test_eval_and_base2new_find_the_runs_of_their_visual_init(fake):
    fake.finish("main.sh", "imagenet", "same", "16", SEEDS="1", VIS_INIT="diff")
    missing = fake.run("eval.sh", "same", "16", SEEDS="1", TARGETS="imagenet_r")
    assert missing.returncode == 2 and "imagenet/DAPT_Init/same/vit" in missing.stderr
    done = fake.run("eval.sh", "same", "16", SEEDS="1", TARGETS="imagenet_r", VIS_INIT="diff")
    assert done.returncode == 0, done.stderr
    [(_, args)] = fake.calls()
    assert arg(args, "--model-dir") == str(
        fake.out / "imagenet/DAPT_Init/same_vis-diff/vit_b16_ep50_16shots/seed1")
    assert arg(args, "--output-dir") == str(
        fake.out / "evaluation/imagenet_r/DAPT_Init/same_vis-diff/vit_b16_ep50_16shots/seed1")
    assert arg(args, "TRAINER.DAPT_INIT.VIS_INIT_METHOD") == "diff"

    hint = fake.run("base2new_test.sh", "dtd", "diff", SEEDS="1", VIS_INIT="same")
    assert hint.returncode == 2 and "VIS_INIT=same bash scripts/dapt_init/base2new_train.sh" \
        in hint.stderr
    for script in ("base2new_train.sh", "base2new_test.sh"):
        assert fake.run(script, "dtd", "diff", SEEDS="1", VIS_INIT="same").returncode == 0
    tail = "dtd/shots_16/DAPT_Init/diff_vis-same/vit_b16/seed1"
    train, test = (args for _, args in fake.calls()[1:])
    assert arg(train, "--output-dir") == str(fake.out / "base2new/train_base" / tail)
    assert arg(test, "--model-dir") == str(fake.out / "base2new/train_base" / tail)
    assert arg(test, "--output-dir") == str(fake.out / "base2new/test_new" / tail)


def test_sweep_runs_a_grid_of_visual_inits_into_their_own_folders(fake):
    env = {"DATASETS": "eurosat", "INITS": "diff", "VIS_INITS": "random same", "SHOTS": "1",
           "SEEDS": "1 2"}
    fake.finish("main.sh", "eurosat", "diff", "1", SEEDS="2", VIS_INIT="same")
    dry = fake.run("sweep.sh", "--dry-run", **env)
    assert dry.returncode == 0, dry.stderr
    assert "4 jobs (1 datasets x 1 inits x 2 visual inits x 1 shots x 2 seeds): 1 finished" \
        in dry.stdout
    assert "job 3 [finished]: SEEDS=2 VIS_INIT=same bash scripts/dapt_init/main.sh eurosat " \
        "diff 1 GPU" in dry.stdout
    done = fake.run("sweep.sh", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    folders = sorted(Path(arg(args, "--output-dir")).relative_to(fake.out).parts[2]
                     + f"/{arg(args, 'TRAINER.DAPT_INIT.VIS_INIT_METHOD')}"
                     for _, args in fake.calls())
    assert folders == ["diff/random", "diff/random", "diff_vis-same/same"]
    assert (fake.out / "sweep_logs/eurosat_diff_vis-same_1shots_seed1.log").exists()
