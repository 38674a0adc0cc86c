"""The Dassl adapter: registers ``DAPT_Init`` and wires the toolbox to ``DAPTModel``.

It works on the stock toolbox and current torch: its own warm-up scheduler (the toolbox's
fails on torch >= 2), checkpoints that load with ``weights_only=True``, logits-only
inference for the toolbox's ``test()`` contract, and no hard-coded device.
"""
from __future__ import annotations

import math
import os
from contextlib import nullcontext
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from dassl.data.data_manager import DataManager, DatasetWrapper
from dassl.data.transforms import build_transform
from dassl.engine import TRAINER_REGISTRY, TrainerX
from dassl.metrics import compute_accuracy
from dassl.optim import build_optimizer

from . import host_process, run_folder
from .checkpoint import PROMPT_MODEL, checkpoint_name, keep_prompts, save_checkpoint
from .clip_loading import load_clip, loaded_backbone
from .config import check_input_size, validate_config
from .dapt_values import apply_dapt_values
from .errors import DaptInitError
from .grad_norms import term_gradient_norms
from .loader_workers import cap_workers
from .losses import LossTerms, dapt_loss
from .model import AMP_DTYPE, DAPTModel, PromptSettings
from .prototype_cache import PrototypeCache, prototype_cache_dir
from .readable_images import NamesUnreadableImages
from .result_record import write_result
from .resume import (BEST_CHECKPOINT, ResumePoints, checkpoint_state, load_trained_prompts,
                     resume_from, toolbox_keeps)
from .rng import capture_rng_state
from .runstate import RUNNING_ELSEWHERE, RunIdentity, command_identity
from .schedule import EpochLR

# In a host codebase's own train.py, a refused run ends with one line, not a traceback.
host_process.install_excepthook()

# DAPT meant to split the class texts over several GPUs for its two largest label sets only.
DATA_PARALLEL_TEXT_DATASETS = ("SUN397", "ImageNet")


def resolve_precision(requested: str, device: torch.device, cpu_fp32: bool = True) -> str:
    """The precision to run: ``requested``, except fp32 on the CPU unless ``cpu_fp32`` is off
    (TRAINER.DAPT_INIT.CPU_FP32 False: fp16 / amp on the CPU, as on a GPU)."""
    if device.type == "cpu" and requested != "fp32" and cpu_fp32:
        print(f"Note: running on the CPU, so TRAINER.DAPT_INIT.PREC {requested} is replaced "
              "by fp32 (faster there; TRAINER.DAPT_INIT.CPU_FP32 False runs it as asked)")
        return "fp32"
    return requested


def amp_autocast(device: torch.device) -> Callable[[], Any]:
    """A factory of autocast contexts for ``device`` in ``AMP_DTYPE``."""
    return lambda: torch.autocast(device.type, dtype=AMP_DTYPE)


class CheckedDatasetWrapper(NamesUnreadableImages, DatasetWrapper):
    """The toolbox's dataset wrapper; an image that fails to load is named in one line."""


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
        # A host's dataset yaml carries no DAPT values: a run of a data set DAPT published
        # values for gets them (each key no config file or command set), before anything loads.
        frozen = cfg.is_frozen()
        cfg.defrost()
        applied = apply_dapt_values(cfg)
        if frozen:
            cfg.freeze()
        if applied:
            print(applied)

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
        self.precision = resolve_precision(node.PREC, self.device, node.get("CPU_FP32", True))
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
        self.autocast = amp_autocast(self.device) if use_amp else nullcontext

        gpus = torch.cuda.device_count() if self.device.type == "cuda" else 0
        if gpus > 1 and cfg.DATASET.NAME in DATA_PARALLEL_TEXT_DATASETS:
            # Both text encoders split along the classes (shared_prefix: each GPU encodes the
            # shared prefix once for its share of the classes).
            print(f"{gpus} GPUs: splitting the class texts over them")
            self.model.text_encoder = nn.DataParallel(self.model.text_encoder)

        self._prototypes: torch.Tensor | None = None
        # DAPT draws its prototype views right after building its model: keep that state.
        self.prototype_cache = PrototypeCache(
            cfg, self.model, self.device, self.dm.dataset.train_x, self.num_classes,
            self.clip_loaded["embed_dim"],
            prototype_cache_dir(cfg, getattr(self.dm.dataset, "dataset_dir", None),
                                self.output_dir),
            capture_rng_state(torch.device("cpu")), self._checked_datasets)
        self.resume_points = ResumePoints(os.path.join(self.output_dir, PROMPT_MODEL))
        self.trained_epochs = 0

    def _checked_datasets(self, is_train: bool) -> Callable[[Sequence[Any]], Dataset]:
        """items -> a dataset of them with the train or test transform (built once here)."""
        transform = build_transform(self.cfg, is_train=is_train)
        return lambda items: CheckedDatasetWrapper(self.cfg, items, transform=transform,
                                                   is_train=is_train)

    # ------------------------------------------------------------- the claim
    # This repository's train.py claims the run folder before it builds the trainer; a host
    # codebase's train.py knows nothing of it, so the trainer claims where a run starts:
    # train(), or load_model() for an evaluation. The same rule holds in every codebase.
    skipped = False

    def _claim(self, rule: bool = True) -> bool:
        """Hold the run folder (True), or skip a finished run (False); refusals raise.
        ``rule`` False: only the lock (an evaluation into the trained run's own folder)."""
        claim = run_folder.claim(self.output_dir, self.identity() if rule else None)
        if claim.skip:
            print(claim.message)
            self.skipped = True
            host_process.drop_fresh_log(self.output_dir)
            return False
        if claim.refused:
            host_process.drop_fresh_log(self.output_dir)
            error = run_folder.RunLocked if claim.status == RUNNING_ELSEWHERE else DaptInitError
            raise error(claim.message)
        for path in claim.removed:
            print(f"Removed {path} (left by a killed run)")
        return True

    def train(self) -> None:  # type: ignore[override]
        if run_folder.holds(self.output_dir) or self._claim():
            super().train()

    # -------------------------------------------------------------- training
    def before_train(self) -> None:
        if self.cfg.DATASET.NUM_SHOTS < 1:
            validate_config(self.cfg, training=True)  # raises, naming NUM_SHOTS
        super().before_train()  # resumes, after checking the checkpoint is this run's
        keep_prompts(self._initial_prompts, self.output_dir, 0,
                     self.cfg.TRAINER.DAPT_INIT.KEEP_EPOCHS)

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
        keep_prompts(self.model.prompt_learner.state_dict(), self.output_dir, done,
                     self.cfg.TRAINER.DAPT_INIT.KEEP_EPOCHS)
        if not self.resume_points.holds(done):
            self.save_model(self.epoch, self.output_dir)  # a resume point after every epoch
        if not toolbox_keeps(done - 1, self.max_epoch, self.cfg.TRAIN.CHECKPOINT_FREQ):
            self.resume_points.remove(done - 1)  # only this process's transient ones

    # ------------------------------------------------------------ prototypes
    def class_prototypes(self) -> torch.Tensor:
        """(C, D) prototypes, loaded from the cache or computed on first use."""
        if self._prototypes is None:
            self._prototypes = self.prototype_cache.load_or_compute().to(self.device)
        return self._prototypes

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
        if final and self.skipped:  # a finished run: its result.json stands
            return float("nan")
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
            run_folder.check_held(self.output_dir)
            path = write_result(self.output_dir, self.cfg, self.identity(), split, results,
                                self.trained_epochs, getattr(self, "clip_loaded", None),
                                self.dm.dataset, getattr(self, "run_spec", None))
            print(f"Result saved to {path}")
        return list(results.values())[0]

    # ----------------------------------------------------------- checkpoints
    def save_model(self, epoch: int, directory: str, is_best: bool = False,
                   val_result: float | None = None, model_name: str = "") -> None:
        run_folder.check_held(directory)
        for name in self.get_model_names():
            state = checkpoint_state(self._models[name], self._optims[name], self._scheds[name],
                                     self.scaler, epoch + 1, val_result, self.identity(),
                                     self.device)
            file_name = model_name or checkpoint_name(epoch + 1)
            path = save_checkpoint(state, os.path.join(directory, name), file_name,
                                   latest=not model_name)
            self.resume_points.add(path)
            print(f"Checkpoint saved to {path}")

    def identity(self) -> RunIdentity:
        """The run's fingerprint and CLIP weights: set by train.py (with an evaluation's
        model folder) or by load_model, else computed from the config once."""
        if getattr(self, "run_identity", None) is None:
            self.run_identity = command_identity(self.cfg)
        return self.run_identity

    def resume_model_if_exist(self, directory: str) -> int:
        start_epoch = 0
        for name in self.get_model_names():
            resumed = resume_from(os.path.join(directory, name), self._models[name],
                                  self._optims[name], self._scheds[name], self.scaler,
                                  self.identity(), self.device)
            if resumed is None:
                return 0
            if resumed.best_val is not None:
                self.best_result = resumed.best_val
            self.resume_points.add(resumed.path)  # the same run's: superseded like our own
            start_epoch = resumed.epoch
        self.trained_epochs = start_epoch
        return start_epoch

    def load_model(self, directory: str, epoch: int | None = None) -> None:
        if not run_folder.holds(self.output_dir):  # an evaluation starts here (a host's train.py)
            if directory:
                self.run_identity = command_identity(self.cfg, directory, epoch)
            # A host's eval scripts may test into the trained run's own folder (this
            # repository's train.py refuses that): the folder is locked, no rule is asked, and
            # the training's result.json is kept as result.json-<time> beside the new one.
            into_model = bool(directory) and (os.path.realpath(directory)
                                              == os.path.realpath(self.output_dir))
            if not self._claim(rule=not into_model):
                return
        if not directory:
            print("No --model-dir given: testing the initial prompts")
            return
        file_name = BEST_CHECKPOINT if epoch is None else checkpoint_name(epoch)
        for name in self.get_model_names():
            self.trained_epochs = load_trained_prompts(os.path.join(directory, name),
                                                       file_name, self._models[name],
                                                       self.identity().weights)
