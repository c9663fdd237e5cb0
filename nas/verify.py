"""``python -m nas.verify --arch mlp_spe_t``: check multiplication-free inference on an
architecture (BatchNorm calibrated on noise so that it fires); exit 1 when a layer reads
non-binary inputs (the check: nas/mfi.py)."""
from __future__ import annotations

import argparse
import sys

import torch

import blocks

from .mfi import calibrate_bn, mfi


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nas.verify",
                                 description="Check multiplication-free inference: every FC/conv "
                                             "except the exempt stem and classifier reads binary spikes.")
    arch = ap.add_mutually_exclusive_group(required=True)
    arch.add_argument("--arch", help="a preset name (see blocks.presets())")
    arch.add_argument("--arch-config", help="an architecture YAML file")
    ap.add_argument("--T", type=int, help="time steps (default: the architecture's)")
    ap.add_argument("--images", type=int, default=4, help="noise images to run (default: 4)")
    args = ap.parse_args(argv)
    try:
        model = blocks.build(args.arch or args.arch_config, **({} if args.T is None else {"T": args.T}))
    except (ValueError, KeyError) as err:
        print(f"nas.verify: error: {str(err).strip(chr(34) + chr(39))}", file=sys.stderr)
        return 2
    cfg = model.config
    x = torch.randn(args.images, cfg.in_channels, cfg.image_size, cfg.image_size,
                    generator=torch.Generator().manual_seed(0))
    report = mfi(calibrate_bn(model, x), x)
    print(f"{cfg.name}: {report.summary()}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
