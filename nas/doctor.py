"""Check this machine before a search, in seconds: ``python -m nas.doctor [STUDY] [--storage URL]``.

One line per check, ``ok`` or ``FAIL``: versions, devices, backends, compilers, ray,
storage (nas/search/preflight.py says what each one checks). Exit status 0 when every
check passes, else 1 with one ``nas.doctor: ...`` line on stderr.
"""
from __future__ import annotations

import argparse
import sys

import torch

from .search.preflight import Machine, run_checks
from .study import StudyError, load_study


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nas.doctor", description=__doc__.split("\n")[0])
    p.add_argument("study", nargs="?", help="a study file: its storage (and Ray address) are checked")
    p.add_argument("--storage", help="a storage URL to check (default: the study's)")
    p.add_argument("--device", help="the device to check (default: cuda if available, else cpu)")
    p.add_argument("--ray-address", help="a Ray cluster to ask (default: the study's, else a local Ray)")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray check (it starts Ray: ~5 s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    url, address = args.storage, args.ray_address
    if args.study is not None:
        try:
            cfg = load_study(args.study)
        except StudyError as err:
            print(f"nas.doctor: {err}", file=sys.stderr)
            return 2
        url, address = url or cfg.storage_url, address or cfg.ray_address
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", 0)

    def show(name: str, failure: str | None, line: str) -> None:
        print(f"{'FAIL' if failure else 'ok':<6}{name:<10}{line}", flush=True)

    failed = run_checks(Machine(device, address, url, ray=not args.no_ray), show)
    if failed:
        name, reason = failed[0]
        more = f" (and {len(failed) - 1} more failed checks)" if len(failed) > 1 else ""
        print(f"nas.doctor: {name}: {reason}{more}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
