"""Train a U-Net on tiles: one loop for every target kind, the loss and metrics come from a task.

:class:`SegmentationTask` (class indices, cross-entropy + Dice) is the task of ``rootscope unet
train``; other heads (e.g. branching-point heat-maps) pass their own object with the same four
members (:class:`Task`). The loop does AdamW with a warm-up + cosine schedule planned over the epochs
or the time limit (whichever ends first), validation on fixed tiles each epoch, a metrics CSV,
best and last checkpoints (atomic), resume, early stopping and a clean stop at the time limit.
The task's ``meta()`` is read at every checkpoint save, so it may hold what the task learned during
validation; ``finish`` runs once on the best model file after training (e.g. to tune on whole images).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .. import io
from ..errors import ConfigError, ModelError
from ..metrics import dice, per_class_scores
from .data import NO_AUGMENT, Augment, Sample, TileSampler, class_frequencies, normalisation, split_samples
from .model import UNet, UNetConfig, build_model, read_model_file, save_model_file
from .predict import predict_tiled
from .runtime import Runtime, select_runtime, seeded, torch_threads


class Task(Protocol):
    """What the loop needs to know about the targets."""

    n_outputs: int

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss of ``N x K x H x W`` logits against a batch of targets."""

    def metrics(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """Validation figures on the whole validation set; must include ``score`` (higher is better)."""

    def meta(self) -> dict[str, Any]:
        """Plain data stored in the model file (``kind`` and what the outputs mean); read at every save."""

    # Optional: ``initial_bias(samples) -> list[float]`` (output biases to start from) and
    # ``mistakes(logits K x H x W, target) -> bool H x W`` (pixels to mine, see ``TrainConfig.mine_every``).


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """1 - weighted mean soft Dice over the classes present; ``target`` 0 = ignored, 1..K = classes."""
    k = logits.shape[1]
    valid = (target > 0).unsqueeze(1)
    probs = logits.float().softmax(1) * valid
    onehot = F.one_hot((target.long() - 1).clamp(min=0), k).permute(0, 3, 1, 2) * valid
    inter = (probs * onehot).sum((0, 2, 3))
    truth = onehot.sum((0, 2, 3))
    overlap = (2 * inter + 1.0) / (probs.sum((0, 2, 3)) + truth + 1.0)
    present = (truth > 0).float() * weight
    return 1.0 - (overlap * present).sum() / present.sum().clamp(min=1e-6)


@dataclass
class SegmentationTask:
    """Pixel classes: weighted cross-entropy + ``dice_weight`` x soft Dice, on labelled pixels only.

    ``score`` is the mean Dice of all classes but the first (the background). A class without a pixel
    in the validation targets is not scored: its figures are NaN, not the 1.0 of "nothing to find",
    and it is left out of ``score`` (NaN when no class but the background is scored).
    """

    classes: list[str]
    class_weights: list[float] | None = None
    dice_weight: float = 1.0

    @property
    def n_outputs(self) -> int:
        return len(self.classes)

    def _weights(self, device: torch.device) -> torch.Tensor:
        w = self.class_weights or [1.0] * self.n_outputs
        return torch.tensor(w, dtype=torch.float32, device=device)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.long()
        if not bool((target > 0).any()):
            return logits.sum() * 0.0
        weight = self._weights(logits.device)
        ce = F.cross_entropy(logits.float(), target - 1, weight=weight, ignore_index=-1)
        return ce + self.dice_weight * soft_dice_loss(logits, target, weight)

    def metrics(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        pred = (logits.argmax(1) + 1).numpy()
        truth = target.numpy()
        scores = per_class_scores(pred, truth, self.n_outputs + 1, ignore=0)
        out: dict[str, float] = {}
        for k, name in enumerate(self.classes, start=1):
            scored = bool((truth == k).any())
            for key in ("dice", "precision", "recall"):
                out[f"{key}_{name}"] = scores[k][key] if scored else math.nan
        foreground = [out[f"dice_{name}"] for name in self.classes[1:] if not math.isnan(out[f"dice_{name}"])]
        out["score"] = float(np.mean(foreground)) if foreground else math.nan
        return out

    def meta(self) -> dict[str, Any]:
        return {"kind": "segmentation", "classes": list(self.classes), "class_weights": self.class_weights}

    def initial_bias(self, samples: Sequence[Sample]) -> list[float]:
        """Output biases that start the network at the weighted class prior: log(weight x frequency).

        An untrained network says every class is equally likely; with AdamW moving a bias by about
        the learning rate per step, unlearning that takes hundreds of steps on rare classes.
        """
        freq = class_frequencies(samples, self.n_outputs)
        prior = np.maximum(freq, 1e-4) * np.asarray(self.class_weights or [1.0] * self.n_outputs)
        return np.log(prior / prior.sum()).tolist()

    def mistakes(self, logits: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Labelled pixels whose arg-max class is wrong (``K x H x W`` logits, ``H x W`` target)."""
        return (target > 0) & (logits.argmax(0) + 1 != target)


def calibrate_biases(path: str | os.PathLike, samples: Sequence[Sample], config: TrainConfig,
                     offsets: Sequence[float] = tuple(np.arange(-3.0, 3.01, 0.5))) -> dict[str, float]:
    """Shift each class's output bias so that its Dice on the whole validation images is best.

    Validation tiles are few and favour foreground, so a model picked on them tends to draw too much
    of a rare class on whole images. This segments the validation images of :func:`train` (same
    split) with the model file, tries each logit ``offsets`` per class (the background stays), keeps
    the best (a class-probability threshold, folded into the network) and rewrites the file with
    ``bias_offsets``. A class with no pixel in the validation images keeps offset 0. Returns
    ``{class: offset}``.
    """
    from .predict import load_segmenter

    _, val = split_samples(samples, config.val_fraction, config.seed)
    payload = read_model_file(path)
    classes = list(payload["classes"])
    segmenter = load_segmenter(path, device=config.device, precision=config.precision)
    logits = [np.log(segmenter.predict_proba(s.image) + 1e-6) for s in val]
    labelled = [s.target > 0 for s in val]
    truth = np.concatenate([s.target[m] for s, m in zip(val, labelled)])
    chosen = np.zeros(len(classes), np.float32)

    def pooled_dice(k: int, offset: float) -> float:
        shift = chosen.copy()
        shift[k] = offset
        pred = np.concatenate([(lg + shift[:, None, None]).argmax(0)[m] + 1 for lg, m in zip(logits, labelled)])
        return dice(pred == k + 1, truth == k + 1)

    for k in range(1, len(classes)):
        if (truth == k + 1).any():  # a class the validation images lack keeps its bias
            chosen[k] = max(offsets, key=lambda o: (pooled_dice(k, o), -abs(o)))
    model = build_model(payload, path)
    with torch.no_grad():
        model.head.bias += torch.from_numpy(chosen)
    fixed = ("format", "format_version", "rootscope_version", "architecture", "state_dict")
    result = {name: float(o) for name, o in zip(classes, chosen)}
    save_model_file(path, model, {**{k: v for k, v in payload.items() if k not in fixed}, "bias_offsets": result})
    return result


def balanced_class_weights(samples: Sequence[Sample], n_classes: int, power: float = 0.25) -> list[float]:
    """Class weights ~ frequency^-power (mean 1, within 0.1..10); absent classes get 1.

    A mild power (0.25) lifts rare classes without drawing them wider than they are (0.5 drew roots
    ~1.5 x too wide on synthetic plates: precision 0.75, recall 0.95).
    """
    freq = class_frequencies(samples, n_classes)
    w = np.where(freq > 0, np.maximum(freq, 1e-6) ** -power, np.nan)
    w = w / np.nanmean(w)
    return np.clip(np.nan_to_num(w, nan=1.0), 0.1, 10.0).round(4).tolist()


@dataclass
class TrainConfig:
    """Settings of a training run. ``time_limit`` is in minutes (None = no limit); ``tile`` in pixels.

    ``focus_fraction`` / ``val_focus_fraction``: share of training / validation tiles centred on a
    focus point (0 = tiles anywhere, as in whole images). ``threads``: CPU threads for torch during
    training (None = leave torch's setting). ``cpu_clock``: count training time (``time_limit``, the
    schedule, ``train_s``) in CPU seconds of this process instead of wall seconds, a fair budget on a
    machine shared with other jobs. ``mine_every``: every that many epochs (0 = never) the model
    segments one whole training image (in turn) and ``hard_fraction`` of that image's tiles are then
    centred on the labelled pixels it got wrong (hard-example mining; needs a task with
    ``mistakes``); the time it takes counts as training time.
    """

    epochs: int = 40
    time_limit: float | None = None
    tile: int = 256
    batch: int = 8
    tiles_per_epoch: int = 128
    val_tiles: int = 32
    val_fraction: float = 0.2
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup: float = 0.05
    patience: int = 12
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    focus_fraction: float = 0.7
    val_focus_fraction: float = 0.5
    threads: int | None = None
    cpu_clock: bool = False
    mine_every: int = 0
    hard_fraction: float = 0.5
    depth: int = 4
    width: int = 16
    norm: str = "batch"
    up: str = "bilinear"
    augment: Augment = field(default_factory=Augment)

    def check(self, multiple: int) -> None:
        if self.tile % multiple or self.tile < multiple:
            raise ConfigError(f"--tile must be a multiple of {multiple} (2^depth); got {self.tile}.")
        if self.epochs < 1 or self.batch < 1 or self.tiles_per_epoch < self.batch:
            raise ConfigError("epochs and batch must be >= 1 and tiles_per_epoch >= batch.")
        if self.time_limit is not None and self.time_limit <= 0:
            raise ConfigError(f"--time-limit must be a positive number of minutes (got {self.time_limit}).")
        if self.mine_every < 0:
            raise ConfigError(f"mine_every must be >= 0 epochs (got {self.mine_every}).")
        if not all(0.0 <= f <= 1.0 for f in (self.focus_fraction, self.val_focus_fraction, self.hard_fraction)):
            raise ConfigError("focus_fraction, val_focus_fraction and hard_fraction must lie in 0..1 (got "
                              f"{self.focus_fraction}, {self.val_focus_fraction}, {self.hard_fraction}).")


@dataclass
class TrainResult:
    """Where the models went and how training went (one row per epoch in ``history``)."""

    best_path: Path
    last_path: Path
    metrics_path: Path
    history: pd.DataFrame
    best: dict[str, float]
    stopped: str


def last_path(out: str | os.PathLike) -> Path:
    """The resumable last checkpoint beside the model file: ``root.pt`` -> ``root.last.pt``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.last{out.suffix or '.pt'}")


def metrics_path(out: str | os.PathLike) -> Path:
    """The per-epoch metrics table beside the model file: ``root.pt`` -> ``root.metrics.csv``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.metrics.csv")


def lr_factor(progress: float, warmup: float) -> float:
    """Linear warm-up over the first ``warmup`` of training, then cosine decay to 1 %."""
    if progress < warmup:
        return max(progress / warmup, 0.01)
    t = min((progress - warmup) / max(1.0 - warmup, 1e-9), 1.0)
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t))


def _normalise(images: np.ndarray, mean: torch.Tensor, std: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    x = runtime.tensor(torch.from_numpy(images))
    return (x - mean) / std


def _validate(model: UNet, task: Task, images: np.ndarray, targets: np.ndarray, mean: torch.Tensor,
              std: torch.Tensor, runtime: Runtime, batch: int) -> tuple[float, dict[str, float]]:
    model.eval()
    logits, losses = [], []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            with runtime.autocast():
                out = model(_normalise(images[i : i + batch], mean, std, runtime))
            target = torch.from_numpy(targets[i : i + batch]).to(runtime.device)
            losses.append(float(task.loss(out.float(), target)) * len(out))
            logits.append(out.float().cpu())
    model.train()
    return sum(losses) / len(images), task.metrics(torch.cat(logits), torch.from_numpy(targets))


def _mine(model: UNet, task: Task, sample: Sample, mean: torch.Tensor, std: torch.Tensor,
          runtime: Runtime) -> np.ndarray:
    """(row, col) of the labelled pixels of one whole training image that the model gets wrong."""
    image = (sample.image - mean.view(-1).cpu().numpy()) / std.view(-1).cpu().numpy()
    multiple = model.config.multiple
    model.eval()
    logits = predict_tiled(model, image.astype(np.float32), runtime, tile=max(256, 4 * multiple),
                           overlap=2 * multiple, activation="none", multiple=multiple)
    model.train()
    return np.argwhere(task.mistakes(logits, sample.target)).astype(np.int32)  # type: ignore[attr-defined]


def train(samples: Sequence[Sample], task: Task, out: str | os.PathLike, config: TrainConfig = TrainConfig(), *,
          meta: dict[str, Any] | None = None, resume: bool = False,
          report: Callable[[dict[str, Any]], None] | None = None,
          finish: Callable[[Path], Any] | None = None) -> TrainResult:
    """Train a U-Net on ``samples`` for ``task`` and write the best model to ``out``.

    Also writes ``<out>.last.pt`` (resumable, every epoch) and ``<out>.metrics.csv``. ``meta`` adds
    plain data to the model file (e.g. a training-data summary); ``task.meta()`` is read at every
    save. ``report`` gets each epoch's row (the CLI prints it). Stops after ``config.epochs``, at
    ``config.time_limit`` minutes of training (counted over resumed runs too) or when the validation
    score has not improved for ``config.patience`` epochs; the best checkpoint is kept in every case.
    ``finish`` is then called once with the best model file (when there is one), e.g. to tune a
    decision threshold on whole held-out images and store it there. Torch runs on
    ``config.threads`` CPU threads meanwhile.
    """
    with torch_threads(config.threads):
        result = _train(samples, task, Path(out), config, meta, resume, report)
        if finish is not None and result.best:
            finish(result.best_path)
    return result


def _train(samples: Sequence[Sample], task: Task, out: Path, config: TrainConfig, meta: dict[str, Any] | None,
           resume: bool, report: Callable[[dict[str, Any]], None] | None) -> TrainResult:
    channels = samples[0].image.shape[2]
    arch = UNetConfig(channels, task.n_outputs, config.depth, config.width, config.norm, config.up)
    config.check(arch.multiple)
    runtime = select_runtime(config.device, config.precision)
    train_set, val_set = split_samples(samples, config.val_fraction, config.seed)
    mean_list, std_list = normalisation(train_set, config.seed)
    with seeded(config.seed):
        model = UNet(arch)
    if hasattr(task, "initial_bias"):
        with torch.no_grad():
            model.head.bias.copy_(torch.tensor(task.initial_bias(train_set), dtype=torch.float32))
    model = runtime.prepare(model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=runtime.amp_dtype == torch.float16)
    if config.mine_every and not hasattr(task, "mistakes"):
        raise ConfigError(f"mine_every needs a task that finds mistakes; {type(task).__name__} does not.")
    sampler = TileSampler(train_set, config.tile, augment=config.augment, focus_fraction=config.focus_fraction,
                          hard_fraction=config.hard_fraction, seed=config.seed)
    val_images, val_targets = TileSampler(val_set, config.tile, augment=NO_AUGMENT,
                                          focus_fraction=config.val_focus_fraction,
                                          seed=config.seed + 1).batch(config.val_tiles)
    mean = torch.tensor(mean_list, device=runtime.device).view(1, -1, 1, 1)
    std = torch.tensor(std_list, device=runtime.device).view(1, -1, 1, 1)
    steps_per_epoch = config.tiles_per_epoch // config.batch
    total_steps = steps_per_epoch * config.epochs
    limit_s = config.time_limit * 60.0 if config.time_limit else math.inf
    clock = time.process_time if config.cpu_clock else time.perf_counter

    history: list[dict[str, Any]] = []
    epoch, step, trained_s, best_score, best_epoch = 0, 0, 0.0, -math.inf, 0
    if resume and last_path(out).exists():
        state = read_model_file(last_path(out))
        if state.get("architecture") != asdict(arch) or state.get("classes") != task.meta().get("classes"):
            raise ModelError(f"{last_path(out)}: checkpoint was trained with other classes or another "
                             "architecture; resume with the same settings or delete it to start afresh.")
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, step, trained_s = state["epoch"], state["step"], state["trained_s"]
        best_score, best_epoch, history = state["best_score"], state["best_epoch"], state["history"]
        sampler.rng.bit_generator.state = state["sampler_rng"]
        torch.random.set_rng_state(state["torch_rng"])

    def file_meta() -> dict[str, Any]:
        return {**(meta or {}), **task.meta(), "normalisation": {"mean": mean_list, "std": std_list},
                "tile": config.tile}

    training_summary = {"train_images": [s.name for s in train_set], "val_images": [s.name for s in val_set],
                        "val_on_held_out_rows": len(samples) == 1, "device": runtime.label,
                        "config": {k: v for k, v in asdict(config).items() if k != "augment"},
                        "augment": asdict(config.augment)}
    stopped = ""
    while not stopped:
        if epoch >= config.epochs:
            stopped = "epochs"
            break
        if best_epoch and epoch - best_epoch >= config.patience:
            stopped = "early stopping"
            break
        if trained_s >= limit_s:
            stopped = "time limit"
            break
        losses, tiles, t_epoch = [], 0, clock()
        for _ in range(steps_per_epoch):
            progress = max(step / total_steps, (trained_s + clock() - t_epoch) / limit_s)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * lr_factor(progress, config.warmup)
            images, targets = sampler.batch(config.batch)
            target = torch.from_numpy(targets).to(runtime.device)
            with runtime.autocast():
                logits = model(_normalise(images, mean, std, runtime))
            loss = task.loss(logits.float(), target)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
            step += 1
            tiles += len(images)
            if trained_s + clock() - t_epoch >= limit_s:
                break
        epoch += 1
        if config.mine_every and epoch % config.mine_every == 0:
            index = (epoch // config.mine_every - 1) % len(train_set)
            sampler.set_hard(index, _mine(model, task, train_set[index], mean, std, runtime))
        epoch_s = clock() - t_epoch
        trained_s += epoch_s
        val_loss, scores = _validate(model, task, val_images, val_targets, mean, std, runtime, config.batch)
        row = {"epoch": epoch, "step": step, "train_s": round(trained_s, 2), "lr": optimizer.param_groups[0]["lr"],
               "tiles_per_s": tiles / epoch_s, "train_loss": float(np.mean(losses)), "val_loss": val_loss, **scores}
        history.append(row)
        score = -math.inf if math.isnan(scores["score"]) else scores["score"]  # NaN: nothing scored
        improved = score > best_score or not best_epoch
        if improved:
            best_score, best_epoch = score, epoch
            summary = {**training_summary, "epochs": epoch, "steps": step, "train_s": trained_s}
            save_model_file(out, model, {**file_meta(), "training": summary, "metrics": row})
        save_model_file(last_path(out), model, {**file_meta(), "training": {**training_summary, "epochs": epoch},
                                                 "metrics": row},
                        optimizer=optimizer.state_dict(), epoch=epoch, step=step, trained_s=trained_s,
                        best_score=best_score, best_epoch=best_epoch, history=history,
                        sampler_rng=sampler.rng.bit_generator.state, torch_rng=torch.random.get_rng_state())
        io.write_table(metrics_path(out), pd.DataFrame(history))
        if report:
            report({**row, "best": improved})
    best = next(r for r in history if r["epoch"] == best_epoch) if best_epoch else {}
    return TrainResult(out, last_path(out), metrics_path(out), pd.DataFrame(history), best, stopped)

