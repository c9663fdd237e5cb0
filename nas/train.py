"""Train one architecture on one data set: the command over nas/training/ (the run its
options describe: plan.py; the training loop: loop.py).

    python -m nas.train --arch tiny --data digits --image-size 16 --epochs 5 --T 2 --lr 0.1
    python -m nas.train --arch-config winners/rank01_trial12.yaml    # an export, its recipe

The recipe and the checkpoints: nas/training/loop.py. Errors are one line: 2 for what
the input is, 1 for a run that failed.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

import torch

from blocks.config import one_line
from blocks.errors import NasError
from blocks.neurons import BACKENDS

from .cache import folder_problem
from .recipe import SOURCES, DataConfig, TrainConfig
from .training.checkpoint import CheckpointError
from .training.data import DataError
from .training.finetune import InitError
from .training.loop import TrainingDiverged, train
from .training.plan import PlanError, plan_run


def _parser() -> argparse.ArgumentParser:
    d, t = DataConfig.model_fields, TrainConfig.model_fields

    def default(fields, name: str) -> str:
        return f"default: {fields[name].default}, or the --arch-config file's recipe"

    p = argparse.ArgumentParser(
        prog="python -m nas.train", description="Train one spiking MLP architecture.",
        epilog="An architecture file exported by nas.export carries its recipe (data and training "
               "settings): `--arch-config FILE` alone trains it again exactly; flags override.")
    arch = p.add_mutually_exclusive_group(required=True)
    arch.add_argument("--arch", help="a preset name (see blocks.presets())")
    arch.add_argument("--arch-config", help="an architecture YAML file (e.g. from nas.export)")
    p.add_argument("--data", choices=SOURCES, help="the data set (required unless the file has a recipe)")
    p.add_argument("--data-root", help="data directory or .npz file")
    p.add_argument("--download", action="store_true", default=None, help="download CIFAR (needs internet)")
    p.add_argument("--epochs", type=int, help=default(t, "epochs"))
    p.add_argument("--batch-size", type=int, help=default(d, "batch_size"))
    p.add_argument("--lr", type=float, help=f"peak learning rate ({default(t, 'lr')})")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), help=default(t, "optimizer"))
    p.add_argument("--weight-decay", type=float, help=f"on weight matrices only ({default(t, 'weight_decay')})")
    p.add_argument("--warmup-epochs", type=float, help=f"linear warm-up before the cosine ({default(t, 'warmup_epochs')})")
    p.add_argument("--label-smoothing", type=float, help=default(t, "label_smoothing"))
    p.add_argument("--grad-clip", type=float, help="clip the gradient norm to this (default: none)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision (default: on for CUDA)")
    p.add_argument("--T", type=int, help="time steps (default: the architecture's T)")
    p.add_argument("--image-size", type=int, help="resize images to this size (default: native, or the recipe's)")
    p.add_argument("--subset", type=int, help="use only the first N training images (default: all)")
    p.add_argument("--val-fraction", type=float, help=f"validation split of the training set ({default(d, 'val_fraction')})")
    p.add_argument("--seed", type=int, help="seed of the split, the shuffles and the initialisation (default: 0)")
    p.add_argument("--augment", choices=("none", "simple", "strong"), help=default(d, "augment"))
    p.add_argument("--num-workers", type=int, help="DataLoader workers for streamed image folders (default: 0)")
    p.add_argument("--decode", choices=("auto", "cpu", "gpu"),
                   help="JPEG decoding of streamed image folders: PIL in the workers (cpu) or "
                        "nvJPEG batches on the GPU (gpu); default: auto (gpu on CUDA)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: auto (CUDA when present)")
    p.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads; default: the recipe's, "
                                               "which a study trial ran with, else torch's default)")
    p.add_argument("--neuron-backend", choices=BACKENDS,
                   help="compute every spiking neuron with this backend (default: the architecture's; "
                        "auto: our Triton kernel on CUDA, torch on CPU)")
    p.add_argument("--init-from", metavar="CKPT",
                   help="start from this checkpoint's weights (T, class count may differ; see "
                        "nas/training/finetune.py); a fresh optimiser: set --lr/--warmup-epochs for fine-tuning")
    p.add_argument("--freeze", action="append", metavar="PREFIX",
                   help="with --init-from: keep parameters under this name prefix fixed (repeatable)")
    p.add_argument("--max-steps-per-epoch", type=int, help="cap each epoch (smoke runs; default: none)")
    p.add_argument("--out", help="checkpoint directory (default runs/train/<arch>-<data>-<time>); "
                                 "an existing last.pt there is resumed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or log lines")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # exits 2 with a usage message on unknown flags/choices
    prog = "nas.train: error"
    try:
        plan = plan_run(vars(args))
    except PlanError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    if plan.threads is not None:
        torch.set_num_threads(plan.threads)
    out = args.out or f"runs/train/{plan.arch.name}-{plan.data.name}-{datetime.now():%Y%m%d-%H%M%S}"
    why = folder_problem(Path(out))
    if why:
        print(f"{prog}: --out: {out}: {why}; allowed: a folder that can be created and written",
              file=sys.stderr)
        return 2
    try:
        result = train(plan.arch, plan.data, plan.train, checkpoint_dir=out, progress=not args.no_progress,
                       init=plan.init)
        if args.no_progress:  # train() prints the final JSON line only with progress on
            print(json.dumps({k: v for k, v in result.items() if k != "history"}), flush=True)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; run again with --out {out} to resume", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - one line, never a traceback
        code, line = _training_error(err, plan.data)
        print(f"{prog}: {line}", file=sys.stderr)
        return code
    return 0


def _training_error(err: Exception, data: DataConfig) -> tuple[int, str]:
    """The exit code and the one line for an error raised while training: 2 for what the
    input is (data, checkpoints, the architecture), 1 for a run that failed."""
    if isinstance(err, InitError):
        return 2, err.for_flag("--init-from")
    if isinstance(err, DataError):
        return 2, err.for_flag("--data-root" if data.root else "--data")
    if isinstance(err, CheckpointError):
        return 2, err.for_flag("--out")
    if isinstance(err, NasError):
        return 2, one_line(err)
    if isinstance(err, TrainingDiverged):
        return 1, str(err)
    return 1, f"training failed: {type(err).__name__}: {one_line(err)}"[:2000]


if __name__ == "__main__":
    sys.exit(main())
