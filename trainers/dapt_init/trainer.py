"""The Dassl adapter: registers ``DAPT_Init`` and wires the toolbox to ``DAPTModel``.

It works on the stock toolbox and current torch: its own warm-up scheduler (the toolbox's
fails on torch >= 2), checkpoints that load with ``weights_only=True``, logits-only
inference for the toolbox's ``test()`` contract, and no hard-coded device.
"""
from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from dassl.data.data_manager import DataManager, DatasetWrapper
from dassl.data.transforms import build_transform
from dassl.engine import TRAINER_REGISTRY, TrainerX
from dassl.metrics import compute_accuracy
from dassl.optim import build_optimizer

from .atomic import json_dump_atomically, unused_path
from .checkpoint import (PROMPT_MODEL, checkpoint_name, latest_checkpoint, load_prompt_state,
                         prompts_name, read_checkpoint, save_checkpoint, save_prompts)
from .clip_loading import load_clip
from .config import check_input_size, validate_config
from .dapt_values import stale_defaults_warning
from .errors import DaptInitError
from .grad_norms import term_gradient_norms
from .loader_workers import cap_workers
from .losses import LossTerms, dapt_loss
from .model import DAPTModel, PromptSettings
from .prototypes import (cache_file_name, compute_dapt_prototypes, compute_prototypes,
                         dapt_views, file_identity, images_digest, load_cached_prototypes,
                         ordered_digest, save_prototypes)
from .rng import capture_rng_state, preserved_rng, restore_rng_state, torch_state_digest
from .runstate import (RESULT_FILE, RunIdentity, data_record, identity_differences,
                       run_identity)
from .schedule import EpochLR

RESULT_FORMAT = "dapt_init.result/1"
# DAPT meant to split the class texts over several GPUs for its two largest label sets only.
DATA_PARALLEL_TEXT_DATASETS = ("SUN397", "ImageNet")


# Names an older checkpoint's "run" record used for config keys.
LEGACY_KEYS = {"INIT_METHOD": "TRAINER.DAPT_INIT.INIT_METHOD"}


def loaded_backbone(clip_model: nn.Module) -> dict[str, Any]:
    """The architecture actually loaded (whatever the config or file name says)."""
    visual = clip_model.visual
    return {
        "input_resolution": int(visual.input_resolution),
        "patch_size": int(visual.conv1.kernel_size[0]),
        "vision_width": int(visual.conv1.out_channels),
        "vision_layers": len(visual.transformer.resblocks),
        "text_width": int(clip_model.ln_final.weight.shape[0]),
        "text_layers": len(clip_model.transformer.resblocks),
        "embed_dim": int(clip_model.text_projection.shape[1]),
    }


def resolve_precision(requested: str, device: torch.device) -> str:
    if device.type == "cpu" and requested != "fp32":
        print(f"Note: running on the CPU, so TRAINER.DAPT_INIT.PREC {requested} is replaced "
              "by fp32 (fp16 kernels are GPU-only)")
        return "fp32"
    return requested


class UnreadableImage(DaptInitError):
    """An image the run reads cannot be decoded (it changed after the start-up check)."""

    def __init__(self, message: str) -> None:
        # Raised in a loader worker, torch re-raises it in the main process as this type with
        # the worker's traceback as the message: keep the original one line, its last line.
        if "Original Traceback" in message:
            last = [line for line in message.splitlines() if line.strip()][-1]
            message = last.split(": ", 1)[-1]
        super().__init__(message)


def _unreadable(path: str) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.convert("RGB")
    except Exception as error:  # PIL raises many types for bad files; all mean "unreadable"
        return f"{type(error).__name__}: {error}"
    return None


class CheckedDatasetWrapper(DatasetWrapper):
    """The toolbox's dataset wrapper; an image that fails to load is named in one line."""

    def __getitem__(self, idx: int) -> dict:
        try:
            return super().__getitem__(idx)
        except Exception:
            path = self.data_source[idx].impath
            problem = _unreadable(path)  # only on failure: the usual path pays nothing
            if problem is None:
                raise
            raise UnreadableImage(
                f"image {path} cannot be read now ({problem}); it decoded when the run "
                "started, so the file changed on disk. Replace it with a good copy and run the "
                "same command again: the run resumes from its last checkpoint."
            ) from None


@TRAINER_REGISTRY.register()
class DAPT_Init(TrainerX):
    """DAPT with a choice of text-prompt initialisation (TRAINER.DAPT_INIT.INIT_METHOD)."""

    def check_cfg(self, cfg: Any) -> None:
        # Runs before the toolbox reads any data: bad values fail here, loading nothing.
        if "DAPT_INIT" not in cfg.TRAINER:
            raise DaptInitError(
                "the config has no TRAINER.DAPT_INIT keys: call "
                "trainers.dapt_init.config.add_dapt_init_config(cfg) where your train.py "
                "extends the config (README, 'Drop into another CoOp-family codebase')."
            )
        validate_config(cfg, training=False)

    def build_data_loader(self) -> None:
        # The toolbox's build_data_loader, with loaders whose datasets name an image that
        # cannot be read (one line) instead of failing deep in a loader worker.
        dm = DataManager(self.cfg, dataset_wrapper=CheckedDatasetWrapper)
        self.train_loader_x, self.train_loader_u = dm.train_loader_x, dm.train_loader_u
        self.val_loader, self.test_loader = dm.val_loader, dm.test_loader
        self.num_classes, self.num_source_domains = dm.num_classes, dm.num_source_domains
        self.lab2cname, self.dm = dm.lab2cname, dm
        # Workers beyond an epoch's batch count are started every epoch and never used; fewer
        # give bit-identical data (loader_workers.py says why).
        for loader in (self.train_loader_x, self.train_loader_u, self.val_loader,
                       self.test_loader):
            cap_workers(loader)

    # ----------------------------------------------------------------- model
    def build_model(self) -> None:
        cfg, node = self.cfg, self.cfg.TRAINER.DAPT_INIT
        self.precision = resolve_precision(node.PREC, self.device)
        source = node.CLIP_WEIGHTS or cfg.MODEL.BACKBONE.NAME
        print(f"Loading CLIP ({source})")
        clip_model = load_clip(cfg.MODEL.BACKBONE.NAME, node.CLIP_WEIGHTS)
        check_input_size(cfg, clip_model.visual.input_resolution, source)
        self.clip_loaded = loaded_backbone(clip_model)
        if self.precision in ("fp32", "amp"):
            clip_model.float()

        print(f"Building DAPT model (text prompt init: {node.INIT_METHOD}, "
              f"visual prompt init: {node.VIS_INIT_METHOD})")
        self.model = DAPTModel(clip_model, self.dm.dataset.classnames,
                               PromptSettings.from_config(node))
        # The prompts as built, before a resume loads trained ones: kept as epoch 0.
        self._initial_prompts = {name: tensor.detach().cpu().clone() for name, tensor
                                 in self.model.prompt_learner.state_dict().items()}
        print(f"Text encoder: {self.model.text_encoder_kind}")
        for name, param in self.model.named_parameters():
            param.requires_grad_(name.startswith("prompt_learner."))
        self.model.to(self.device)

        learner = self.model.prompt_learner
        self.optim = build_optimizer(learner, cfg.OPTIM)
        self.sched = EpochLR(self.optim, cfg.OPTIM)
        self.register_model(PROMPT_MODEL, learner, self.optim, self.sched)
        use_amp = self.precision == "amp"
        self.scaler = torch.amp.GradScaler(self.device.type) if use_amp else None
        self.autocast = (lambda: torch.autocast(self.device.type)) if use_amp else nullcontext

        gpus = torch.cuda.device_count() if self.device.type == "cuda" else 0
        if gpus > 1 and cfg.DATASET.NAME in DATA_PARALLEL_TEXT_DATASETS:
            # Both text encoders split along the classes (shared_prefix: each GPU encodes the
            # shared prefix once for its share of the classes).
            print(f"{gpus} GPUs: splitting the class texts over them")
            self.model.text_encoder = nn.DataParallel(self.model.text_encoder)

        self._prototypes: torch.Tensor | None = None
        # DAPT draws its prototype views right after building its model: keep that state.
        self._generators_after_build = capture_rng_state(torch.device("cpu"))
        # Checkpoints this process wrote or resumed from (same run: the fingerprint matched);
        # only these are ever deleted, and a file a killed process left is replaced, not kept.
        self._written_checkpoints: set[str] = set()
        self.trained_epochs = 0

    # -------------------------------------------------------------- training
    def before_train(self) -> None:
        if self.cfg.DATASET.NUM_SHOTS < 1:
            validate_config(self.cfg, training=True)  # raises, naming NUM_SHOTS
        warning = stale_defaults_warning(self.cfg)
        if warning:  # e.g. a host codebase that kept the toolbox's LR
            print(warning)
        super().before_train()  # resumes, after checking the checkpoint is this run's
        self._keep_prompts(0, self._initial_prompts)

    def _keep_prompts(self, epoch: int, prompts: dict[str, torch.Tensor]) -> None:
        """A run's epoch-0 and epoch-1 prompts, and KEEP_EPOCHS', as small files of their own."""
        if epoch > 1 and epoch not in self.cfg.TRAINER.DAPT_INIT.KEEP_EPOCHS:
            return
        path = os.path.join(self.output_dir, PROMPT_MODEL, prompts_name(epoch))
        if epoch == 0 and os.path.isfile(path):
            return  # a resumed run: written when it started
        save_prompts(prompts, self.output_dir, epoch)

    def parse_batch_train(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def forward_backward(self, batch: dict) -> dict[str, float]:
        images, labels = self.parse_batch_train(batch)
        prototypes = self.class_prototypes()
        node = self.cfg.TRAINER.DAPT_INIT
        with self.autocast():
            out = self.model.features(images)
            terms = dapt_loss(out.logits, labels, out.image_features, out.text_features,
                              prototypes, node.VIS_BETA, node.TXT_BETA, node.TXT_RBF_T)
        loss = terms.total.item()
        if not math.isfinite(loss):  # before the toolbox's own check, which is a traceback
            self._refuse_non_finite(f"the loss is {loss}", before_step=True)
        grad_norms = self._term_gradient_norms(terms) if self._logs_this_step() else {}
        if self.scaler is None:
            self.model_backward_and_update(terms.total)
        else:
            self.detect_anomaly(terms.total)
            self.optim.zero_grad()
            self.scaler.scale(terms.total).backward()
            self.scaler.step(self.optim)
            self.scaler.update()
        if not self._prompts_finite():  # an update that overflowed (LR far too high)
            self._refuse_non_finite(f"the update after a loss of {loss:.4g} made the prompts "
                                    "non-finite", before_step=False)
        return {
            "loss": loss,
            "loss_ce": terms.ce.item(),
            "loss_intra": terms.intra.item(),
            "loss_inter": terms.inter.item(),
            "acc": compute_accuracy(out.logits, labels)[0].item(),
            **grad_norms,
        }

    def _prompts_finite(self) -> bool:
        learner = self.model.prompt_learner
        return bool(torch.isfinite(learner.vis_ctx).all() and torch.isfinite(learner.txt_ctx).all())

    def _refuse_non_finite(self, what: str, before_step: bool) -> None:
        """Stop a diverged run: no later checkpoint, no result.json; earlier ones stay."""
        where = (f"epoch {self.epoch + 1}/{self.max_epoch}, batch {self.batch_idx + 1}/"
                 f"{self.num_batches}")
        optim, node = self.cfg.OPTIM, self.cfg.TRAINER.DAPT_INIT
        if before_step and not self._prompts_finite():
            cause = ("the prompts were already non-finite when this step began: the checkpoint "
                     "this run resumed from is damaged, or it was written by a run that "
                     "diverged. Remove this run folder and train again")
        else:
            cause = (f"the likely cause is a learning rate or loss weights too high for these "
                     f"settings (OPTIM.LR {optim.LR:g}, TRAINER.DAPT_INIT.VIS_BETA "
                     f"{node.VIS_BETA:g}, TXT_BETA {node.TXT_BETA:g}, PREC {self.precision}). "
                     "Lower them and run again in another --output-dir")
        raise DaptInitError(
            f"training stopped at {where}: {what}; {cause}. No result.json was written; the "
            f"checkpoints of earlier epochs in {self.output_dir} are kept."
        )

    def _logs_this_step(self) -> bool:
        """LOG_GRAD_NORMS on, and a step the toolbox prints (its rule in run_epoch)."""
        if not self.cfg.TRAINER.DAPT_INIT.LOG_GRAD_NORMS:
            return False
        freq = self.cfg.TRAIN.PRINT_FREQ
        return (self.batch_idx + 1) % freq == 0 or self.num_batches < freq

    def _term_gradient_norms(self, terms: LossTerms) -> dict[str, float]:
        """Per-term gradient norms (extra backward passes; the training step is unchanged)."""
        node, learner = self.cfg.TRAINER.DAPT_INIT, self.model.prompt_learner
        scale = self.scaler.get_scale() if self.scaler is not None else 1.0
        return term_gradient_norms(terms, node.VIS_BETA, node.TXT_BETA, learner.vis_ctx,
                                   learner.txt_ctx, loss_scale=scale)

    def after_train(self) -> None:
        # Older toolbox versions ended training with "Finished training", and parsers written
        # for them (RPO's parse_test_res.py) wait for that exact line before reading results;
        # the current toolbox prints "Finish training" next, which CoOp's and ours wait for.
        print("Finished training")
        super().after_train()

    def after_epoch(self) -> None:
        # One scheduler step per epoch, as DAPT and CoOp take it. Taking it here rather than
        # in the epoch's last batch keeps the LR printed for an epoch the LR it ran with.
        self.update_lr()
        super().after_epoch()  # the toolbox's best-val and periodic / last saves
        done = self.epoch + 1
        self.trained_epochs = done
        self._keep_prompts(done, self.model.prompt_learner.state_dict())
        folder = os.path.join(self.output_dir, PROMPT_MODEL)
        if os.path.join(folder, checkpoint_name(done)) not in self._written_checkpoints:
            self.save_model(self.epoch, self.output_dir)  # a resume point after every epoch
        previous = os.path.join(folder, checkpoint_name(done - 1))
        # Only this run's transient resume points (written or resumed from by this process).
        if previous in self._written_checkpoints and not self._keeps_checkpoint(done - 1):
            os.remove(previous)
            self._written_checkpoints.discard(previous)

    def _keeps_checkpoint(self, epoch: int) -> bool:
        """Checkpoints the toolbox would have written; other resume points are transient."""
        freq = self.cfg.TRAIN.CHECKPOINT_FREQ
        return epoch == self.max_epoch or (freq > 0 and epoch % freq == 0)

    # ------------------------------------------------------------ prototypes
    def class_prototypes(self) -> torch.Tensor:
        """(C, D) prototypes, loaded from the cache or computed on first use."""
        if self._prototypes is None:
            self._prototypes = self._load_or_compute_prototypes().to(self.device)
        return self._prototypes

    def _load_or_compute_prototypes(self) -> torch.Tensor:
        key = self._prototype_key()
        path = os.path.join(self._prototype_cache_dir(), cache_file_name(key))
        shape = (self.num_classes, self.clip_loaded["embed_dim"])
        cached = load_cached_prototypes(path, key, shape)
        if cached is not None:
            print(f"Loaded class prototypes from {path}")
            return cached
        print(f"Computing class prototypes ({key['view']} view of "
              f"{len(self.dm.dataset.train_x)} training images)")
        with preserved_rng(self.device):
            prototypes = self._compute_prototypes()
        if save_prototypes(path, key, prototypes):
            print(f"Saved class prototypes to {path}")
        return prototypes

    def _frozen_image_features(self, images: torch.Tensor) -> torch.Tensor:
        visual = self.model.image_encoder.visual  # CLIP's own forward: no prompts
        return visual(images.to(self.device, self.model.dtype))

    def _compute_prototypes(self) -> torch.Tensor:
        """The few-shot training images, once each, in the configured view, averaged.

        ``dapt``: DAPT's generator's views and averaging, drawn from the generator state right
        after the model build (the caller restores the training stream). ``test``: the
        deterministic test-time view, in order.
        """
        cfg, train_x = self.cfg, self.dm.dataset.train_x
        batch_size, workers = cfg.DATALOADER.TEST.BATCH_SIZE, cfg.DATALOADER.NUM_WORKERS
        if cfg.TRAINER.DAPT_INIT.PROTOTYPE_VIEW == "dapt":
            restore_rng_state(self._generators_after_build, torch.device("cpu"))
            transform = build_transform(cfg, is_train=True)
            groups = dapt_views(
                train_x, [item.label for item in train_x],
                lambda items: CheckedDatasetWrapper(cfg, items, transform=transform,
                                                   is_train=True),
                workers)
            return compute_dapt_prototypes(self._frozen_image_features, groups,
                                           self.num_classes, batch_size)
        loader = DataLoader(
            CheckedDatasetWrapper(cfg, train_x, transform=build_transform(cfg, is_train=False)),
            batch_size=batch_size, shuffle=False, num_workers=workers,
            pin_memory=self.device.type == "cuda",
        )
        batches = ((batch["img"], batch["label"]) for batch in loader)
        return compute_prototypes(self._frozen_image_features, batches, self.num_classes,
                                  total=len(loader))

    def _prototype_key(self) -> dict[str, Any]:
        cfg, node = self.cfg, self.cfg.TRAINER.DAPT_INIT
        weights = node.CLIP_WEIGHTS
        return {
            "dataset": cfg.DATASET.NAME,
            "shots": cfg.DATASET.NUM_SHOTS,
            "seed": cfg.SEED,
            "subsample_classes": cfg.DATASET.get("SUBSAMPLE_CLASSES", "all"),
            "backbone": cfg.MODEL.BACKBONE.NAME,
            "weights": file_identity(weights) if weights else "",
            "dtype": str(self.model.dtype),
            "view": node.PROTOTYPE_VIEW,
            # DAPT's views are random draws: from which generator state, and in which process.
            "generator": (torch_state_digest(self._generators_after_build)
                           if node.PROTOTYPE_VIEW == "dapt" else ""),
            "drawn_in_worker": (cfg.DATALOADER.NUM_WORKERS > 0
                                if node.PROTOTYPE_VIEW == "dapt" else ""),
            # The sampler permutes positions, so the order of the images matters too.
            "image_order": (ordered_digest(d.impath for d in self.dm.dataset.train_x)
                            if node.PROTOTYPE_VIEW == "dapt" else ""),
            "device": self.device.type,  # features differ in the last bits across devices
            "encode_batch_size": cfg.DATALOADER.TEST.BATCH_SIZE,
            "input": json.loads(json.dumps(cfg.INPUT, sort_keys=True, default=list)),
            "images": images_digest((d.impath, d.label) for d in self.dm.dataset.train_x),
        }

    def _prototype_cache_dir(self) -> str:
        configured = self.cfg.TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR
        if configured:
            return configured
        dataset_dir = getattr(self.dm.dataset, "dataset_dir", None)
        if dataset_dir:
            return os.path.join(dataset_dir, "split_fewshot", "prototypes")
        return os.path.join(self.output_dir, "prototypes")

    # ------------------------------------------------------------ evaluation
    def model_inference(self, input: torch.Tensor) -> torch.Tensor:
        return self.model(input)  # logits only, as the toolbox's evaluator expects

    @torch.no_grad()
    def test(self, split: str | None = None) -> float:
        """The toolbox's test loop, with class texts encoded once and a result record.

        ``split=None`` is the final evaluation (after training, or --eval-only): its metrics
        are also written to ``result.json`` beside ``log.txt``.
        """
        final = split is None
        split = split or self.cfg.TEST.SPLIT
        loader = self.val_loader if split == "val" and self.val_loader is not None else None
        if loader is None:
            split, loader = "test", self.test_loader
        if final and not self._prompts_finite():
            raise DaptInitError(
                f"the prompts to test (epoch {self.trained_epochs}) are not finite, so no "
                "result is written: they come from a checkpoint that is damaged or was saved "
                "by a run that diverged. Train again in a new --output-dir."
            )
        self.set_model_mode("eval")
        self.evaluator.reset()
        print(f"Evaluate on the *{split}* set")
        with self.autocast(), self.model.frozen_text_features():
            for batch in tqdm(loader):
                images, labels = self.parse_batch_test(batch)
                self.evaluator.process(self.model_inference(images), labels)
        results = self.evaluator.evaluate()
        for name, value in results.items():
            self.write_scalar(f"{split}/{name}", value, self.epoch)
        if final:
            self._write_result(split, results)
        return list(results.values())[0]

    def _write_result(self, split: str, metrics: dict[str, float]) -> None:
        cfg, identity = self.cfg, self.identity()
        bad = {name: value for name, value in metrics.items() if not math.isfinite(value)}
        if bad:  # a number that means nothing must not end as a finished run
            raise DaptInitError(f"the {split} metrics are not finite ({bad}), so no result.json "
                                "is written. Train again in a new --output-dir.")
        record = {
            "format": RESULT_FORMAT,
            "trainer": cfg.TRAINER.NAME,
            "dataset": cfg.DATASET.NAME,
            "init_method": cfg.TRAINER.DAPT_INIT.INIT_METHOD,
            "vis_init_method": cfg.TRAINER.DAPT_INIT.VIS_INIT_METHOD,
            "shots": cfg.DATASET.NUM_SHOTS,
            "seed": cfg.SEED,
            "subsample_classes": cfg.DATASET.get("SUBSAMPLE_CLASSES", "all"),
            "backbone": cfg.MODEL.BACKBONE.NAME,
            "split": split,
            "epoch": self.trained_epochs,
            "metrics": {name: float(value) for name, value in metrics.items()},
            "clip": {"weights": identity.weights, "loaded": getattr(self, "clip_loaded", None)},
            "fingerprint": identity.fingerprint,
            "fingerprint_keys": identity.keys,
            # The data read, by relative path: the finished rule checks it under the next
            # command's DATASET.ROOT (a root with other data is not this run's).
            "data": data_record(cfg.DATASET.ROOT, self.dm.dataset),
        }
        path = os.path.join(self.output_dir, RESULT_FILE)
        if os.path.exists(path):  # keep an earlier result, as the toolbox keeps earlier logs
            stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.localtime(os.path.getmtime(path)))
            os.replace(path, unused_path(f"{path}-{stamp}"))
        json_dump_atomically(record, path)
        print(f"Result saved to {path}")

    # ----------------------------------------------------------- checkpoints
    def save_model(self, epoch: int, directory: str, is_best: bool = False,
                   val_result: float | None = None, model_name: str = "") -> None:
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            state = {
                "state_dict": self._models[name].state_dict(),
                "epoch": epoch + 1,
                "optimizer": optim.state_dict() if optim is not None else None,
                "scheduler": sched.state_dict() if sched is not None else None,
                "val_result": val_result,
                "run": self._run_identity(),
                "rng": capture_rng_state(self.device),  # bit-identical resume
            }
            if self.scaler is not None:
                state["scaler"] = self.scaler.state_dict()
            file_name = model_name or checkpoint_name(epoch + 1)
            path = save_checkpoint(state, os.path.join(directory, name), file_name,
                                   latest=not model_name)
            self._written_checkpoints.add(path)
            print(f"Checkpoint saved to {path}")

    def identity(self) -> RunIdentity:
        """The run's fingerprint and CLIP weights: set by train.py (with an evaluation's
        model folder), else computed from the config once."""
        if getattr(self, "run_identity", None) is None:
            self.run_identity = run_identity(self.cfg)
        return self.run_identity

    def _run_identity(self) -> dict[str, Any]:
        """What a resumed run must share with the run that wrote the checkpoint."""
        return self.identity().record()

    def _check_resumable(self, checkpoint: dict[str, Any], path: str) -> None:
        stored = checkpoint.get("run") or {}
        if "fingerprint_keys" in stored:
            changed = identity_differences(stored, self.identity())
        else:  # an older checkpoint: compare the few keys it recorded
            keys, changed = self.identity().keys, []
            for key, value in stored.items():
                name = LEGACY_KEYS.get(key, key)
                if name in keys and keys[name] != value:
                    changed.append(f"{name} {value!r} -> {keys[name]!r}")
        if changed:
            raise DaptInitError(
                f"{path} belongs to another run ({'; '.join(changed)}), so it is not resumed. "
                "Give this run its own --output-dir (the scripts name folders by dataset, init, "
                "config, shots, seed and TAG), or use the original settings to finish that run."
            )

    def resume_model_if_exist(self, directory: str) -> int:
        start_epoch = 0
        for name in self.get_model_names():
            path = latest_checkpoint(os.path.join(directory, name))
            if path is None:
                print("No checkpoint found, train from scratch")
                return 0
            checkpoint = read_checkpoint(path)
            self._check_resumable(checkpoint, path)
            load_prompt_state(self._models[name], checkpoint["state_dict"], path)
            if self.scaler is not None and checkpoint.get("scaler"):
                self.scaler.load_state_dict(checkpoint["scaler"])
            self._restore_best_result(os.path.join(directory, name))
            if self._optims[name] is not None and checkpoint.get("optimizer"):
                self._optims[name].load_state_dict(checkpoint["optimizer"])
            if self._scheds[name] is not None and checkpoint.get("scheduler"):
                self._scheds[name].load_state_dict(checkpoint["scheduler"])
            start_epoch = checkpoint["epoch"]
            self._written_checkpoints.add(path)  # the same run's: superseded like our own
            if checkpoint.get("rng"):
                restore_rng_state(checkpoint["rng"], self.device)
            else:
                print(f"Note: {path} holds no random-generator state (an older checkpoint); "
                      "the resumed epochs draw other batches than an uninterrupted run")
            print(f"Resuming from {path} (epoch {start_epoch} done)")
        self.trained_epochs = start_epoch
        return start_epoch

    def _restore_best_result(self, folder: str) -> None:
        """Keep best_val's record across a resume, so a worse epoch never replaces the best."""
        best = os.path.join(folder, "model-best.pth.tar")
        if os.path.isfile(best):
            val = read_checkpoint(best).get("val_result")
            if isinstance(val, (int, float)):
                self.best_result = val
                print(f"Best validation result so far: {val:.1f} ({best})")

    def load_model(self, directory: str, epoch: int | None = None) -> None:
        if not directory:
            print("No --model-dir given: testing the initial prompts")
            return
        file_name = "model-best.pth.tar" if epoch is None else checkpoint_name(epoch)
        for name in self.get_model_names():
            folder = os.path.join(directory, name)
            path = os.path.join(folder, file_name)
            if not os.path.isfile(path):
                found = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
                choices = [f for f in found if f.startswith("model")]
                raise DaptInitError(
                    f"no checkpoint {path}. Found: {', '.join(choices) or 'none'}. Give "
                    "--model-dir the run's output folder and --load-epoch an epoch saved there "
                    "(the last epoch is always saved)."
                )
            checkpoint = read_checkpoint(path)
            load_prompt_state(self._models[name], checkpoint["state_dict"], path)
            self.trained_epochs = checkpoint["epoch"]
            val = checkpoint.get("val_result")
            extra = f", val accuracy {val:.1f}" if isinstance(val, (int, float)) else ""
            print(f"Loaded {path} (epoch {checkpoint['epoch']}{extra})")
