"""Parameters of a space that change nothing on its base: found before any trial.

A skip into a stage's later blocks does nothing when every stage has one block; a study
searching it would train identical networks under different names. For each parameter,
networks that differ only in its value are built from one seed and run on one fixed
batch; when every layer computes exactly the same thing for every value, at both ends of
the space (:meth:`search_spaces.Space.extremes`), and every weight gets the same gradient
of a fixed loss (a surrogate gradient's slope shows only there), the parameter has no effect.
"""
from __future__ import annotations

from ..trial_record import point_key

MAX_CHECKED_PARAMS = 1_000_000  # larger networks (GPU-scale) are not run on the CPU for this check


def _trace(config, data_shape: tuple[int, int, int], num_classes: int) -> list | None:
    """Every leaf module's output on a fixed batch, for a network built from seed 0, then
    every weight's gradient of a fixed loss (a surrogate's slope acts on these only); None
    when the network is too large to check here."""
    import torch

    import blocks

    c, h, w = data_shape
    torch.manual_seed(0)
    with torch.device("meta"):
        size = sum(p.numel() for p in blocks.build(config, num_classes=num_classes, in_channels=c,
                                                   image_size=h).parameters())
    if size > MAX_CHECKED_PARAMS:
        return None
    torch.manual_seed(0)
    model = blocks.build(config, num_classes=num_classes, in_channels=c, image_size=h)
    outputs: list = [size]
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out))
             for m in model.modules() if not list(m.children())]
    generator = torch.Generator().manual_seed(0)
    images = 3.0 * torch.randn(2, c, h, w, generator=generator)
    logits = model(images)
    for hook in hooks:
        hook.remove()
    (logits * torch.randn(logits.shape, generator=generator)).sum().backward()
    return [o.detach() if isinstance(o, torch.Tensor) else o for o in outputs] + [
        p.grad for p in model.parameters() if p.grad is not None]


def _same(a: list, b: list) -> bool:
    import torch

    if len(a) != len(b) or a[0] != b[0]:
        return False
    for x, y in zip(a[1:], b[1:]):
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            if x.shape != y.shape or not torch.equal(x, y):
                return False
    return True


def parameters_without_effect(space, data_shape: tuple[int, int, int], num_classes: int) -> list[str]:
    """One line per parameter of ``space`` whose every value builds the same network
    (``data_shape``: channels, height, width of the study's images)."""
    import torch

    cache: dict[str, list | None] = {}

    def trace(point: dict) -> list | None:
        """None: not comparable (another size, too large, or a value that switches other
        parameters on or off, so the point is no point of the space)."""
        from search_spaces import SpaceError

        key = point_key(point)
        if key not in cache:
            try:
                cache[key] = _trace(space.to_config(point), data_shape, num_classes)
            except SpaceError:
                cache[key] = None
        return cache[key]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is several times faster on a busy CPU
    try:
        return [line for p in space.parameters if (line := _judge(p, space, trace))]
    finally:
        torch.set_num_threads(threads)


def _judge(p, space, trace) -> str | None:
    """The warning line for parameter ``p`` if every value of it builds the same network at
    each end of the space where it is active (None if it acts, or is active at neither)."""
    ends = [point for point in space.extremes() if p.name in point]
    for point in ends:
        traces = [trace({**point, p.name: value}) for value in p.test_values()]
        if any(t is None for t in traces) or not all(_same(traces[0], t) for t in traces[1:]):
            return None
    if not ends:
        return None
    return (f"warning: parameter {p.name!r} ({', '.join(p.targets)}) of space {space.name!r} has no "
            f"effect on base {space.base.name!r}: its values ({', '.join(map(str, p.test_values()))}) "
            "build networks that compute the same outputs in every layer and the same gradients on "
            "a fixed batch; the study trains identical networks under different names")
