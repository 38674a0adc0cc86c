"""PROTOTYPE_VIEW dapt: the views DAPT's prototype generator draws, replayed independently.

DAPT's generator (official ``trainers/dapt.py``) runs right after its model build: per group
of at most 50 classes, a data loader with an unseeded random sampler and the whole group in
one batch, over the training transform (random resized crop, flip). The replay below redoes
those draws by hand (no DataLoader, sampler, toolbox transform or dataset wrapper) from the
generator state observed right after the trainer's model build.
"""
from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from tests.support.integration import prepared_workdir
from tests.support.toolbox import requires_toolbox
from tools.demo import demo_command
from trainers.dapt_init.prototypes import dapt_class_groups


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return prepared_workdir(tmp_path_factory.mktemp("prototype_view"))


def build_trainer(workdir, tmp_path, workers: int, monkeypatch):
    """A DAPT_Init trainer built as train.py builds it; returns it and the torch generator
    state observed right after its model build."""
    from dassl.engine import build_trainer as dassl_build_trainer
    from dassl.utils import set_random_seed

    import datasets.classes  # noqa: F401  (registers the dataset classes)
    from study.config import parse_args, setup_cfg
    from trainers.dapt_init.trainer import DAPT_Init

    argv = demo_command(workdir, "random", seed=1, shots=2)[2:]
    argv[argv.index("--output-dir") + 1] = str(tmp_path / f"run{workers}")
    argv += ["DATALOADER.NUM_WORKERS", str(workers),
             "TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR", str(tmp_path / "cache")]
    cfg = setup_cfg(parse_args(argv))
    seen = {}
    original = DAPT_Init.build_model

    def build_model_and_observe(self):
        original(self)
        seen["state"] = torch.random.get_rng_state()

    monkeypatch.setattr(DAPT_Init, "build_model", build_model_and_observe)
    set_random_seed(cfg.SEED)
    trainer = dassl_build_trainer(cfg)
    return trainer, seen["state"]


def replay_dapt_prototypes(state, train_x, visual, size, workers: int) -> torch.Tensor:
    """DAPT's draws for one group (fewer than 50 classes), redone step by step."""
    torch.random.set_rng_state(state)
    # Iterating a DataLoader draws its workers' base seed, then the unseeded RandomSampler
    # draws the seed of its own generator and permutes with it.
    base_seed = int(torch.empty((), dtype=torch.int64).random_().item())
    sampler_seed = int(torch.empty((), dtype=torch.int64).random_().item())
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(sampler_seed))
    if workers:  # the only batch goes to worker 0, whose torch generator is base_seed + 0
        torch.manual_seed(base_seed)
    crop = T.RandomResizedCrop(size, scale=(0.08, 1.0),
                               interpolation=T.InterpolationMode.BICUBIC)
    flip = T.RandomHorizontalFlip()
    finish = T.Compose([T.ToTensor(), T.Normalize((0.48145466, 0.4578275, 0.40821073),
                                                  (0.26862954, 0.26130258, 0.27577711))])
    images, labels = [], []
    for index in order.tolist():
        image = Image.open(train_x[index].impath).convert("RGB")
        images.append(finish(flip(crop(image))))
        labels.append(train_x[index].label)
    with torch.no_grad():
        features = visual(torch.stack(images)).double()
    features = features / features.norm(dim=-1, keepdim=True)
    labels = torch.tensor(labels)
    return torch.stack([features[labels == c].mean(0) for c in range(int(labels.max()) + 1)]
                       ).float()


@requires_toolbox
def test_dapt_view_prototypes_equal_an_independent_replay_of_dapts_draws(
        workdir, tmp_path, monkeypatch):
    prototypes = {}
    for workers in (0, 2):
        trainer, state = build_trainer(workdir, tmp_path, workers, monkeypatch)
        assert trainer.cfg.TRAINER.DAPT_INIT.PROTOTYPE_VIEW == "dapt"  # the default
        before = torch.random.get_rng_state()
        ours = trainer.class_prototypes()
        # The training stream is where it was: computing prototypes drew nothing from it.
        assert torch.equal(torch.random.get_rng_state(), before)
        expected = replay_dapt_prototypes(state, trainer.dm.dataset.train_x,
                                          trainer.model.image_encoder.visual, (32, 32), workers)
        assert ours.shape == (10, 64)
        assert torch.allclose(ours, expected, rtol=0, atol=1e-6), (ours - expected).abs().max()
        prototypes[workers] = ours
    # Worker 0 reseeds itself: the two settings draw other views (and cache apart).
    assert not torch.allclose(prototypes[0], prototypes[2], atol=1e-3)
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_classes_are_drawn_in_dapts_groups():
    # DAPT: one loader for at most 50 classes, else ceil(C / 51) chunks of the sorted labels.
    assert [len(g) for g in dapt_class_groups(list(range(50)) * 2)] == [50]
    assert [len(g) for g in dapt_class_groups(range(100))] == [50, 50]
    assert [len(g) for g in dapt_class_groups(range(101))] == [51, 50]
    assert [len(g) for g in dapt_class_groups(range(397))] == [50] * 7 + [47]
    assert [len(g) for g in dapt_class_groups(range(1000))] == [50] * 20
    assert dapt_class_groups([3, 1, 2, 1]) == [[1, 2, 3]]


@requires_toolbox
def test_the_old_train_view_is_refused_naming_dapt():
    from dassl.config import get_cfg_default

    from trainers.dapt_init.config import add_dapt_init_config, validate_config
    from trainers.dapt_init.errors import DaptInitError

    cfg = get_cfg_default()
    add_dapt_init_config(cfg)
    cfg.TRAINER.DAPT_INIT.PROTOTYPE_VIEW = "train"
    with pytest.raises(DaptInitError, match="'train' was removed.*PROTOTYPE_VIEW dapt"):
        validate_config(cfg, training=False)
