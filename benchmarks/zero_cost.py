"""Points scored per second by ``nas.zero_cost`` on CPU, per space.

    python benchmarks/zero_cost.py                       # c60 skips, full.yaml on c60, tiny skips
    python benchmarks/zero_cost.py --points 50 --batch 16 --threads 2 --json out.json

Each row samples ``--points`` distinct points of a space (the same sampler as the CLI),
scores them with ``--scorers`` on one fixed batch of random 32x32 images (the cost does
not depend on the pixels), and reports points/s and the predicted time for 1,000
candidates. The first point (warm-up: imports, allocator) is scored but not timed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.scoring import get_scorers, score_points  # noqa: E402
from search_spaces import load_space  # noqa: E402

# row label -> (space, base): the skip space and the full space on c60, the skip space on tiny
# (full.yaml sets four stage depths; tiny has two stages)
SPACES = {"c60-skips": ("skip_connections", None), "c60-full": ("full", None),
          "tiny-skips": ("skip_connections", "tiny")}


def bench(label: str, points: int, batch: int, scorers: str, T: int | None, seed: int) -> dict:
    name, base = SPACES[label]
    space = load_space(name, base=base) if base else load_space(name)
    pts = space.distinct_points(points + 1, seed)
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, 32, 32, generator=g)
    labels = torch.randint(0, 10, (batch,), generator=g)
    arch = {"T": T} if T else None
    chosen = get_scorers(scorers)
    score_points(space, pts[:1], images, chosen, seed, labels=labels, arch=arch)  # warm-up
    start = time.perf_counter()
    score_points(space, pts[1:], images, chosen, seed, labels=labels, arch=arch)
    wall = time.perf_counter() - start
    rate = len(pts[1:]) / wall
    return {"space": label, "points": len(pts) - 1, "batch": batch, "T": T or "point's",
            "scorers": scorers, "seconds": wall, "points_per_s": rate, "min_per_1000": 1000 / rate / 60}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spaces", default=",".join(SPACES), help=f"comma-separated of {', '.join(SPACES)}")
    ap.add_argument("--points", type=int, default=30, help="timed points per space (default: 30)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--scorers", default="snn_hamming,params")
    ap.add_argument("--T", type=int, default=None, help="score at T steps (default: each point's own)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default: 1; more threads than free cores thrash: 2 threads "
                         "beside another busy job ran ~100x slower)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    labels = [s.strip() for s in args.spaces.split(",") if s.strip()]
    bad = [s for s in labels if s not in SPACES]
    if bad:
        print(f"error: --spaces: unknown {', '.join(bad)}; allowed: {', '.join(SPACES)}", file=sys.stderr)
        return 2
    rows = [bench(s, args.points, args.batch, args.scorers, args.T, args.seed) for s in labels]
    print(f"zero-cost scoring on CPU ({torch.get_num_threads()} threads), scorers {args.scorers}")
    print(f"{'space':<10} {'points':>6} {'batch':>5} {'T':>7} {'seconds':>8} {'points/s':>9} {'min/1000':>9}")
    for r in rows:
        print(f"{r['space']:<10} {r['points']:>6} {r['batch']:>5} {str(r['T']):>7} {r['seconds']:>8.2f} "
              f"{r['points_per_s']:>9.2f} {r['min_per_1000']:>9.1f}")
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "zero_cost", "threads": torch.get_num_threads(),
                                         "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
