"""How well training-free scores rank the skip-connection ablation's trained accuracy.

    python benchmarks/zero_cost_correlation.py --data-root DIR/cifar10 \\
        [--truth benchmarks/results/skip_connections_cpu.json] [--inits 3] [--batch 32]

Scores the 16 PT/PC/TC/CT points of the CPU-scale ground truth (``studies/
skip_connections_cpu.yaml``: cifar_ablation_c12, T = 2, trained 4 epochs, 3 seeds each)
with every registered scorer on the first ``--batch`` validation images of that study's
real CIFAR-10 split, once per network initialisation seed (``--inits``; the score is the
mean over them), and prints a table: Kendall's tau-b of score against the mean trained
accuracy with a bootstrap 95% interval over points, Spearman's rho, the top-quarter
overlap, and how stable the score's ranking is across initialisations (Kendall between
two inits). For random points of the full space use ``python -m nas.zero_cost STUDY
--trained`` on a trained study (``studies/zero_cost_full_cpu.yaml``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nas.search.racing_stats import kendall_tau  # noqa: E402
from nas.study import Override, load_study  # noqa: E402
from nas.scoring import available_scorers, get_scorers, image_batch, score_points  # noqa: E402
from nas.analysis.zero_cost_agreement import agreement_row  # noqa: E402


def truth_points(path: Path) -> tuple[list[dict], list[float], dict]:
    """The ground truth's points and their mean final accuracy over seeds."""
    d = json.loads(path.read_text())
    by: dict[str, list] = {}
    for t in d["trials"]:
        by.setdefault(json.dumps(t["params"], sort_keys=True), [t["params"], []])[1].append(t["curve"][-1])
    return [p for p, _ in by.values()], [float(np.mean(a)) for _, a in by.values()], d["meta"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", required=True, help="the CIFAR-10 ImageFolder tree (DIR/cifar10)")
    ap.add_argument("--truth", type=Path, default=ROOT / "benchmarks/results/skip_connections_cpu.json")
    ap.add_argument("--study", type=Path, default=ROOT / "studies/skip_connections_cpu.yaml")
    ap.add_argument("--scorers", default=",".join(available_scorers()))
    ap.add_argument("--inits", type=int, default=3, help="network initialisations per point")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from nas.training.data import load_data

    cfg = load_study(args.study, [Override("data.root", args.data_root, "--data-root")])
    space = cfg.load_space()
    points, accs, meta = truth_points(args.truth)
    data = load_data(cfg.data, "cpu")
    images, labels = image_batch(data, args.batch)
    arch = {"num_classes": data.num_classes, "in_channels": data.in_channels,
            "image_size": data.image_size}
    scorers = get_scorers(args.scorers)
    start = time.perf_counter()
    per_init = [score_points(space, points, images, scorers, seed, labels=labels, arch=arch)
                for seed in range(args.inits)]
    seconds = time.perf_counter() - start
    print(f"{len(points)} points of {meta['study']} ({meta['base']}, T={meta['T']}, "
          f"{meta['epochs']} epochs x {meta['repeats']} seeds), scored on {len(images)} real "
          f"validation images x {args.inits} inits in {seconds:.0f} s; "
          f"{sum(a < 0.11 for a in accs)} of {len(accs)} points at chance (< 11%) after training")
    print("| score | points | Kendall tau [95% CI] | Spearman rho | top quarter | init stability |")
    print("|---|---:|---|---:|---:|---:|")
    rows = []
    for s in scorers:
        by_init = np.array([[r[s.name] for r in init] for init in per_init])
        mean = np.where(np.isfinite(by_init), by_init, np.nan)
        score = np.nanmean(mean, axis=0) if np.isfinite(mean).any() else by_init[0]
        r = agreement_row(score, accs)
        stable = kendall_tau(by_init[0], by_init[1]) if args.inits > 1 else float("nan")
        rows.append({"score": s.name, **r, "init_stability": stable, "scores": score.tolist()})
        print(f"| {s.name} | {r['n']} | {r['kendall']:+.3f} [{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}] | "
              f"{r['spearman']:+.3f} | {r['top_quarter']:.2f} ({r['k']}) | {stable:+.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"points": points, "accs": accs, "rows": rows}, indent=1,
                                        default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
