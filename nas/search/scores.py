"""A study's training-free scores: scoring points of its space on its validation images
(:mod:`nas.scoring`) and keeping them in the study (user attr ``zero_cost``: a list of
``{point, scores, settings}``, merged with earlier runs; no trials are created)."""
from __future__ import annotations

import json
import time
from typing import Callable, Sequence

from ..scoring import Scorer, image_batch, score_points
from ..training.data import load_data

ATTR = "zero_cost"  # the Optuna study's user attr holding every scored point


def store_scores(study, rows: list[dict]) -> int:
    """Merge ``rows`` ({point, scores, settings}) into the study's ``zero_cost`` user attr
    (a row with the same point and settings is replaced); the number stored in all."""
    def key(r: dict) -> str:
        return json.dumps([r["point"], r["settings"]], sort_keys=True, default=str)

    merged = {key(r): r for r in study.user_attrs.get(ATTR, [])}
    merged.update({key(r): r for r in rows})
    study.set_user_attr(ATTR, list(merged.values()))
    return len(merged)


def score_study(cfg, study, space, points: list[dict], scorers: Sequence[Scorer], *, batch: int = 16,
                seed: int = 0, T: int | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """Score ``points`` of the study's space on ``batch`` of the study's validation images
    and store them (:func:`store_scores`); the rows ``{point, scores, settings}``. Points
    already stored with the same settings and every requested score are not scored again
    (a resumed prefilter costs nothing)."""
    data = load_data(cfg.data, "cpu")
    images, labels = image_batch(data, batch)
    arch = {"num_classes": data.num_classes, "in_channels": data.in_channels,
            "image_size": data.image_size}
    if T is not None:
        arch["T"] = T
    settings = {"seed": seed, "batch": len(images), "T": T}
    names = [s.name for s in scorers]
    stored = {json.dumps([r["point"], r["settings"]], sort_keys=True, default=str): r["scores"]
              for r in study.user_attrs.get(ATTR, [])}

    def cached(p: dict) -> dict | None:
        got = stored.get(json.dumps([p, settings], sort_keys=True, default=str))
        return got if got is not None and all(n in got for n in names) else None

    todo = [p for p in points if cached(p) is None]
    log(f"scoring {len(todo)} points of {space.name!r} ({space.size or 'infinite'} in all) with "
        f"{', '.join(names)} on {len(images)} images"
        + (f" ({len(points) - len(todo)} scored before)" if len(todo) < len(points) else ""))
    start, last = time.perf_counter(), [time.perf_counter()]

    def progress(done: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= 10 or done == len(todo):
            last[0] = now
            log(f"  {done}/{len(todo)} scored, {done / (now - start):.2f} points/s")

    fresh = iter(score_points(space, todo, images, scorers, seed, labels=labels, arch=arch,
                              progress=progress))
    rows = [{"point": p, "scores": cached(p) or next(fresh), "settings": settings} for p in points]
    total = store_scores(study, rows)
    log(f"stored {len(rows)} scored points in {cfg.storage_url} (study {cfg.name!r}, user attr "
        f"{ATTR!r}: {total} in all)")
    return rows
