"""A run's recipe, validated at the edge: which data (:class:`DataConfig`) and how to train
(:class:`TrainConfig`). Plain pydantic models: the study config reads them without
importing torch or the training loop (nas/training/ uses them)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SOURCES = ("cifar10", "cifar100", "imagenet", "imagefolder", "npz", "digits", "synthetic")


class SyntheticSpec(BaseModel):
    """Shape of the synthetic data set (tests only)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    n_train: int = Field(512, ge=2)
    n_test: int = Field(128, ge=0)
    num_classes: int = Field(4, ge=2)
    channels: int = Field(3, ge=1)
    size: int = Field(16, ge=4)
    noise: float = Field(40.0, ge=0.0)  # std of the pixel noise, in 0..255 units


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Literal["cifar10", "cifar100", "imagenet", "imagefolder", "npz", "digits", "synthetic"]
    root: str | None = None
    download: bool = False
    image_size: int | None = Field(None, ge=4)  # resize target; None = native size
    subset: int | None = Field(None, ge=2)  # first N training examples (before the val split)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    seed: int = 0
    augment: Literal["none", "simple", "strong"] = "simple"
    batch_size: int = Field(128, ge=1)
    num_workers: int = Field(0, ge=0)
    # large image folders (ImageNet): JPEG decoding by PIL in the workers (cpu) or batched on
    # the GPU (gpu: nas/training/jpeg_decode.py); auto: gpu when training on CUDA
    decode: Literal["auto", "cpu", "gpu"] = "auto"
    synthetic: SyntheticSpec = SyntheticSpec()


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    epochs: int = Field(10, ge=1)
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    warmup_epochs: float = Field(0.0, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    amp: bool | None = None  # None: on for CUDA only
    amp_dtype: Literal["float16", "bfloat16"] = "float16"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_steps_per_epoch: int | None = Field(None, ge=1)
    grad_clip: float | None = Field(None, gt=0)
